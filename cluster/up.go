package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type upOptions struct {
	dir, kubeconfig string
	port, etcdPort  int
	nodes           int
	namespaces      stringList
	startupDelay    time.Duration
	crashBackoff    time.Duration
	pullBackoff     time.Duration
	logRate         float64
	crashAfter      time.Duration
	stopDelay       time.Duration
}

// Controllers of kube-controller-manager that work without real nodes or a cloud.
const controllers = "deployment-controller,replicaset-controller,garbage-collector-controller," +
	"namespace-controller,serviceaccount-controller,serviceaccount-token-controller," +
	"root-ca-certificate-publisher-controller,endpoints-controller,endpointslice-controller," +
	"endpointslice-mirroring-controller,statefulset-controller,job-controller,cronjob-controller," +
	"daemonset-controller,disruption-controller,horizontal-pod-autoscaler-controller," +
	"replicationcontroller-controller,resourcequota-controller,ttl-after-finished-controller," +
	"pod-garbage-collector-controller,clusterrole-aggregation-controller"

func parseUp(args []string) (upOptions, error) {
	var o upOptions
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "var/kubernetes", "state directory: etcd data, certificates, keys, tokens, logs")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "var/kubernetes.kubeconfig", "kubeconfig written at start (mode 0600)")
	fs.IntVar(&o.port, "port", 6444, "kube-apiserver's HTTPS port on 127.0.0.1")
	fs.IntVar(&o.etcdPort, "etcd-port", 2479, "etcd's client port on 127.0.0.1 (the peer port is the next one; 0: free ports)")
	fs.IntVar(&o.nodes, "nodes", 3, "simulated nodes")
	fs.Var(&o.namespaces, "namespace", "namespace created at start (repeatable; the first is the kubeconfig's)")
	fs.DurationVar(&o.startupDelay, "startup-delay", 2*time.Second, "from a pod's binding to its containers running")
	fs.DurationVar(&o.crashBackoff, "crash-backoff", 10*time.Second, "first back-off of a crash-looping container (doubles up to 5m, as the kubelet)")
	fs.Float64Var(&o.logRate, "log-rate", 2, "log lines per second of a running container")
	fs.DurationVar(&o.pullBackoff, "pull-backoff", 10*time.Second, "first back-off of a failed image pull (doubles up to 5m)")
	fs.DurationVar(&o.crashAfter, "crash-after", time.Second, "how long a crash-looping container runs before it exits")
	fs.DurationVar(&o.stopDelay, "stop-delay", time.Second, "how long a terminating pod takes to stop (capped by its grace period)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if len(o.namespaces) == 0 {
		o.namespaces = stringList{"default"}
	}
	return o, nil
}

func up(args []string) int {
	o, err := parseUp(args)
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runUp(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "apollo-kubernetes:", err)
		return 1
	}
	return 0
}

func runUp(ctx context.Context, o upOptions) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	p, err := ensurePKI(dir)
	if err != nil {
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return err
	}
	if o.etcdPort == 0 {
		if o.etcdPort, err = freePortPair(); err != nil {
			return err
		}
	}
	etcd, err := startEtcd(dir, o.etcdPort)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()
	server := fmt.Sprintf("https://127.0.0.1:%d", o.port)
	children := &supervisor{logs: logs}
	defer children.stopAll()
	if err := children.start("kube-apiserver", apiserverArgs(p, o)); err != nil {
		return err
	}
	if err := waitReady(ctx, server, p, children); err != nil {
		return err
	}
	for _, c := range []struct{ name, token string }{
		{"kube-controller-manager", p.tokens["controller-manager"]},
		{"kube-scheduler", p.tokens["scheduler"]},
	} {
		path := p.path(c.name + ".kubeconfig")
		if err := writeKubeconfig(path, server, p.caPEM, []kubeContext{{name: "default", token: c.token}}); err != nil {
			return err
		}
	}
	if err := children.start("kube-controller-manager", controllerManagerArgs(p)); err != nil {
		return err
	}
	if err := children.start("kube-scheduler", []string{
		"--kubeconfig=" + p.path("kube-scheduler.kubeconfig"), "--leader-elect=false", "--secure-port=0",
	}); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig(server, p, "nodes"))
	if err != nil {
		return err
	}
	if err := createNamespaces(ctx, client, o.namespaces); err != nil {
		return err
	}
	if err := bindViewer(ctx, client); err != nil {
		return err
	}
	kubelet := newKubelet(client, o)
	if kubelet.kubeletPort, err = kubelet.serveKubelet(p); err != nil {
		return fmt.Errorf("serving the kubelet API: %w", err)
	}
	if err := kubelet.registerNodes(ctx); err != nil {
		return fmt.Errorf("registering nodes: %w", err)
	}
	go kubelet.run(ctx)
	if err := writeKubeconfig(o.kubeconfig, server, p.caPEM, []kubeContext{
		{name: "kubernetes", token: p.tokens["kubectl"], namespace: o.namespaces[0]},
		{name: "apollo", token: p.tokens["apollo"], namespace: o.namespaces[0]},
		{name: "apollo-viewer", token: p.tokens["viewer"], namespace: o.namespaces[0]},
	}); err != nil {
		return err
	}
	fmt.Printf("kubernetes ready on %s (kubeconfig: %s; logs: %s)\n", server, o.kubeconfig, logs)
	select {
	case <-ctx.Done():
		fmt.Println("stopping")
		return nil
	case name := <-children.exited:
		return fmt.Errorf("%s exited; see %s", name, filepath.Join(logs, name+".log"))
	}
}

func apiserverArgs(p pki, o upOptions) []string {
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", o.etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", o.port),
		"--tls-cert-file=" + p.path("server.crt"),
		"--tls-private-key-file=" + p.path("server.key"),
		"--token-auth-file=" + p.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--anonymous-auth=true", // /version, /healthz, /readyz as system:public-info-viewer
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/12",
		"--allow-privileged=true",
		"--profiling=false",
		"--kubelet-preferred-address-types=InternalIP",
		"--endpoint-reconciler-type=none",
	}
}

func controllerManagerArgs(p pki) []string {
	return []string{
		"--kubeconfig=" + p.path("kube-controller-manager.kubeconfig"),
		"--controllers=" + controllers,
		"--service-account-private-key-file=" + p.path("sa.key"),
		"--root-ca-file=" + p.path("ca.crt"),
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
	}
}

func startEtcd(dir string, port int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "apollo"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dir, "logs", "etcd.log")}
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port+1))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A development cluster on a shared disk: durability is not worth an fsync per write.
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("etcd did not become ready within 60 s")
	}
}

// freePortPair finds a free port whose next port is free too (etcd's client and peer ports).
func freePortPair() (int, error) {
	for range 50 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := first.Addr().(*net.TCPAddr).Port
		second, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		first.Close()
		if err == nil {
			second.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free pair of ports for etcd")
}

func restConfig(server string, p pki, user string) *rest.Config {
	return &rest.Config{
		Host:            server,
		BearerToken:     p.tokens[user],
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		QPS:             200,
		Burst:           400,
		UserAgent:       "apollo-simulated-nodes",
	}
}

func waitReady(ctx context.Context, server string, p pki, children *supervisor) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+p.tokens["kubectl"])
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case name := <-children.exited:
			return fmt.Errorf("%s exited; see %s", name, filepath.Join(children.logs, name+".log"))
		case <-time.After(300 * time.Millisecond):
		}
	}
	return errors.New("kube-apiserver was not ready within 3 minutes; see " + filepath.Join(children.logs, "kube-apiserver.log"))
}

func createNamespaces(ctx context.Context, client kubernetes.Interface, names []string) error {
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	return nil
}

// bindViewer gives the viewer token the built-in view ClusterRole (read everything but secrets).
func bindViewer(ctx context.Context, client kubernetes.Interface) error {
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "apollo-viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "apollo-viewer"}},
	}
	_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("binding the viewer: %w", err)
	}
	return nil
}

// supervisor runs the upstream components as children of this binary, logs in files.
type supervisor struct {
	logs   string
	procs  []*exec.Cmd
	exited chan string
}

func (s *supervisor) start(name string, args []string) error {
	if s.exited == nil {
		s.exited = make(chan string, 8)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(s.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	// The child dies with this process even when it is killed without a chance to clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	s.procs = append(s.procs, cmd)
	go func() {
		_ = cmd.Wait()
		log.Close()
		s.exited <- name
	}()
	return nil
}

func (s *supervisor) stopAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		if s.procs[i].Process != nil {
			_ = s.procs[i].Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(15 * time.Second)
	for range s.procs {
		select {
		case <-s.exited:
		case <-deadline:
			for _, p := range s.procs {
				_ = p.Process.Kill()
			}
			return
		}
	}
}
