package main

// Simulated nodes: there is no container runtime, so this small kubelet registers a few Ready
// nodes and walks the pods the real scheduler binds to them through the states a kubelet
// reports, with kubesim's image convention (kubesim/README.md, "Driving failures"):
//
//   - an image whose reference contains "missing" is not in the registry: ErrImagePull, then
//     ImagePullBackOff, retried with a growing back-off, with the kubelet's Events;
//   - "crashloop" runs --crash-after then exits with code 1: lastState.terminated, a rising
//     restartCount and CrashLoopBackOff with the kubelet's back-off (10s doubling up to 5m);
//   - "notready" runs but never becomes ready (Unhealthy events); "slow" becomes ready after 3 s;
//   - any other image pulls and runs; a container with a readiness probe becomes ready after
//     the probe's initialDelaySeconds, one without at once.
//
// Terminating pods are stopped (Killing) and deleted after their grace period, capped by
// --stop-delay. Container logs are served on the nodes' kubelet port (logs.go); exec is not.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

const (
	kubeletVersion  = "v1.37.2"
	maxCrashBackoff = 5 * time.Minute
	maxPullBackoff  = 5 * time.Minute
	slowStart       = 3 * time.Second
)

type kubelet struct {
	client      kubernetes.Interface
	opts        upOptions
	kubeletPort int
	nodes       map[string]bool
	registry    *registry

	mu      sync.Mutex
	pods    map[types.UID]*simPod
	nextIP  int
	stopped map[types.UID]bool
}

func newKubelet(client kubernetes.Interface, o upOptions) *kubelet {
	k := &kubelet{client: client, opts: o, nodes: map[string]bool{}, pods: map[types.UID]*simPod{}, stopped: map[types.UID]bool{},
		registry: &registry{crashAfter: o.crashAfter}}
	for i := 1; i <= o.nodes; i++ {
		k.nodes[fmt.Sprintf("apollo-node-%d", i)] = true
	}
	return k
}

func (k *kubelet) registerNodes(ctx context.Context) error {
	for name := range k.nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			"type": "apollo-simulated",
		}}}
		created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			created, err = k.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return err
		}
		created.Status = nodeStatus(name, k.kubeletPort)
		updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		// The TaintNodesByCondition admission taints a new node not-ready; the node-lifecycle
		// controller (not run: there are no real kubelets to watch) would lift it once Ready.
		var taints []corev1.Taint
		for _, t := range updated.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				taints = append(taints, t)
			}
		}
		if len(taints) != len(updated.Spec.Taints) {
			updated.Spec.Taints = taints
			if _, err := k.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}

func nodeStatus(name string, kubeletPort int) corev1.NodeStatus {
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (simulated by Apollo)"),
		},
		// Every node's kubelet API is this process on 127.0.0.1 (logs.go): container logs are
		// served; exec, attach and port-forward are not (404).
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletPort)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: kubeletVersion, OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "simulated://apollo", OSImage: "Apollo simulated node", KernelVersion: "simulated",
		},
	}
}

func (k *kubelet) run(ctx context.Context) {
	k.registry.watch(ctx, k.client)
	factory := informers.NewSharedInformerFactory(k.client, 0)
	informer := factory.Core().V1().Pods().Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.observe(ctx, obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				k.forget(pod.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	go k.heartbeat(ctx)
	<-ctx.Done()
}

// heartbeat keeps the nodes' Ready condition fresh, as a kubelet does.
func (k *kubelet) heartbeat(ctx context.Context) {
	ticker := time.NewTicker(40 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for name := range k.nodes {
			_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				node, err := k.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				for i := range node.Status.Conditions {
					node.Status.Conditions[i].LastHeartbeatTime = metav1.Now()
				}
				_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
				return err
			})
		}
	}
}

func (k *kubelet) observe(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !k.nodes[pod.Spec.NodeName] {
		return
	}
	k.mu.Lock()
	sp, known := k.pods[pod.UID]
	if !known {
		if k.stopped[pod.UID] || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			k.mu.Unlock()
			return
		}
		k.nextIP++
		sp = newSimPod(k, pod, fmt.Sprintf("10.244.%d.%d", (k.nextIP/250)%250, k.nextIP%250+2))
		k.pods[pod.UID] = sp
	}
	k.mu.Unlock()
	if !known {
		go sp.run(ctx)
	}
	if pod.DeletionTimestamp != nil {
		sp.terminate(ctx, pod)
	}
}

func (k *kubelet) forget(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sp, ok := k.pods[uid]; ok {
		sp.cancel()
		delete(k.pods, uid)
	}
	delete(k.stopped, uid)
}

// -- one pod ------------------------------------------------------------------------------------

type simPod struct {
	k          *kubelet
	namespace  string
	name       string
	uid        types.UID
	spec       corev1.PodSpec
	ref        corev1.ObjectReference
	podIP      string
	startedAt  metav1.Time
	ctx        context.Context
	cancel     context.CancelFunc
	mu         sync.Mutex
	statuses   map[string]*corev1.ContainerStatus
	runs       map[string][]*logRun
	stoppedAt  *time.Time
	terminated sync.Once
}

func newSimPod(k *kubelet, pod *corev1.Pod, ip string) *simPod {
	ctx, cancel := context.WithCancel(context.Background())
	sp := &simPod{
		k: k, namespace: pod.Namespace, name: pod.Name, uid: pod.UID, spec: *pod.Spec.DeepCopy(), podIP: ip,
		startedAt: metav1.Now(), ctx: ctx, cancel: cancel, statuses: map[string]*corev1.ContainerStatus{}, runs: map[string][]*logRun{},
		ref: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion},
	}
	for _, c := range pod.Spec.Containers {
		sp.statuses[c.Name] = &corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		}
	}
	return sp
}

func (sp *simPod) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	go func() {
		select {
		case <-sp.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	sp.writeStatus(ctx)
	for _, c := range sp.spec.Containers {
		go sp.runContainer(ctx, c)
	}
	<-ctx.Done()
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (sp *simPod) runContainer(ctx context.Context, c corev1.Container) {
	field := fmt.Sprintf("spec.containers{%s}", c.Name)
	delay := sp.k.opts.startupDelay
	if !sleep(ctx, delay/2) || !sp.pull(ctx, c, field) || !sleep(ctx, delay/2) {
		return
	}
	backoff := sp.k.opts.crashBackoff
	for restart := int32(0); ; restart++ {
		b := sp.k.registry.lookup(c.Image)
		sp.started(ctx, c, restart, field, b)
		if b.crashloop {
			if !sleep(ctx, b.crashAfter) {
				return
			}
			sp.crashed(ctx, c, restart+1, b.exitCode, backoff, field)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, maxCrashBackoff)
			continue
		}
		if b.notready {
			for {
				sp.event(ctx, corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", field)
				if !sleep(ctx, 10*time.Second) {
					return
				}
			}
		}
		if wait := readyAfter(c, b); wait > 0 && sleep(ctx, wait) {
			sp.setContainer(ctx, c.Name, func(s *corev1.ContainerStatus) { s.Ready = true })
		}
		return
	}
}

// readyAfter is how long after its start a container that will be ready becomes ready: the
// readiness probe's initialDelaySeconds (its first probe succeeds), or a slow image's start.
func readyAfter(c corev1.Container, b imageBehaviour) time.Duration {
	wait := b.slow
	if c.ReadinessProbe != nil {
		wait = max(wait, time.Duration(c.ReadinessProbe.InitialDelaySeconds)*time.Second)
	}
	return wait
}

func (sp *simPod) pull(ctx context.Context, c corev1.Container, field string) bool {
	image := c.Image
	sp.event(ctx, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", image), field)
	detail := fmt.Sprintf("failed to pull and unpack image %q: failed to resolve reference %q: %s: not found", image, image, image)
	backoff := sp.k.opts.pullBackoff
	for {
		// Re-read each time: registering a missing image later lets the pod start, like a push.
		if sp.k.registry.lookup(image).exists {
			sp.event(ctx, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in 812ms (812ms including waiting). Image size: 48213411 bytes.", image), field)
			return true
		}
		sp.event(ctx, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: rpc error: code = NotFound desc = %s", image, detail), field)
		sp.event(ctx, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull", field)
		sp.setContainer(ctx, c.Name, func(s *corev1.ContainerStatus) {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "rpc error: code = NotFound desc = " + detail}}
		})
		if !sleep(ctx, min(time.Second, backoff)) {
			return false
		}
		sp.event(ctx, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", image), field)
		sp.event(ctx, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff", field)
		sp.setContainer(ctx, c.Name, func(s *corev1.ContainerStatus) {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", image)}}
		})
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, maxPullBackoff)
	}
}

func containerID(uid types.UID, name string, restart int32) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", uid, name, restart)))
	return "containerd://" + hex.EncodeToString(sum[:])
}

func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	repo := image
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo = image[:i]
	}
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

func (sp *simPod) started(ctx context.Context, c corev1.Container, restart int32, field string, b imageBehaviour) {
	sp.event(ctx, corev1.EventTypeNormal, "Created", "Created container: "+c.Name, field)
	sp.event(ctx, corev1.EventTypeNormal, "Started", "Started container "+c.Name, field)
	// A crash-looping application fails its readiness probe before it crashes.
	ready := !b.crashloop && !b.notready && readyAfter(c, b) == 0
	sp.mu.Lock()
	sp.runs[c.Name] = append(sp.runs[c.Name], &logRun{pod: sp.name, container: c.Name, image: c.Image, start: time.Now(), rate: sp.k.opts.logRate})
	sp.mu.Unlock()
	sp.setContainer(ctx, c.Name, func(s *corev1.ContainerStatus) {
		started := true
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		s.Ready, s.Started = ready, &started
		s.ImageID, s.ContainerID = imageID(c.Image), containerID(sp.uid, c.Name, restart)
	})
}

func (sp *simPod) crashed(ctx context.Context, c corev1.Container, restarts, exitCode int32, backoff time.Duration, field string) {
	sp.endRun(c.Name, exitCode)
	sp.event(ctx, corev1.EventTypeWarning, "BackOff",
		fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, sp.name, sp.namespace, sp.uid), field)
	sp.setContainer(ctx, c.Name, func(s *corev1.ContainerStatus) {
		startedAt := metav1.Now()
		if s.State.Running != nil {
			startedAt = s.State.Running.StartedAt
		}
		s.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCode, Reason: "Error", StartedAt: startedAt, FinishedAt: metav1.Now(), ContainerID: s.ContainerID,
		}}
		s.RestartCount = restarts
		started := false
		s.Ready, s.Started = false, &started
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, c.Name, sp.name, sp.namespace, sp.uid),
		}}
	})
}

func (sp *simPod) setContainer(ctx context.Context, name string, change func(*corev1.ContainerStatus)) {
	sp.mu.Lock()
	change(sp.statuses[name])
	sp.mu.Unlock()
	sp.writeStatus(ctx)
}

// writeStatus renders the pod status from the containers' states and writes it.
func (sp *simPod) writeStatus(ctx context.Context) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := sp.k.client.CoreV1().Pods(sp.namespace).Get(ctx, sp.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.UID != sp.uid {
			return nil
		}
		sp.render(pod)
		_, err = sp.k.client.CoreV1().Pods(sp.namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		fmt.Printf("simulated kubelet: pod %s/%s: %v\n", sp.namespace, sp.name, err)
	}
}

func (sp *simPod) render(pod *corev1.Pod) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := metav1.Now()
	st := &pod.Status
	st.HostIP, st.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
	st.PodIP, st.PodIPs = sp.podIP, []corev1.PodIP{{IP: sp.podIP}}
	st.StartTime = &sp.startedAt
	// The API server computes the QoS class from the requests and limits when it creates the
	// pod, and the field is immutable: a pod with resources is Burstable or Guaranteed.
	if st.QOSClass == "" {
		st.QOSClass = corev1.PodQOSBestEffort
	}
	var statuses []corev1.ContainerStatus
	var notReady []string
	allStarted := true
	for _, c := range sp.spec.Containers {
		s := *sp.statuses[c.Name]
		statuses = append(statuses, s)
		if !s.Ready {
			notReady = append(notReady, c.Name)
		}
		if s.State.Running == nil && s.RestartCount == 0 {
			allStarted = false
		}
	}
	st.ContainerStatuses = statuses
	if allStarted {
		st.Phase = corev1.PodRunning
	} else if st.Phase == "" {
		st.Phase = corev1.PodPending
	}
	message := ""
	if len(notReady) > 0 {
		message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
	}
	setCondition(st, corev1.PodReadyToStartContainers, true, "", "", now)
	setCondition(st, corev1.PodInitialized, true, "", "", now)
	setCondition(st, corev1.ContainersReady, len(notReady) == 0, "ContainersNotReady", message, now)
	setCondition(st, corev1.PodReady, len(notReady) == 0, "ContainersNotReady", message, now)
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, message string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status, reason, message = corev1.ConditionTrue, "", ""
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, message
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: now})
}

// terminate stops the containers and deletes the pod once its grace period (capped) is over.
func (sp *simPod) terminate(parent context.Context, pod *corev1.Pod) {
	sp.terminated.Do(func() {
		sp.cancel()
		now := time.Now()
		for _, c := range sp.spec.Containers {
			sp.endRun(c.Name, 0)
		}
		sp.mu.Lock()
		sp.stoppedAt = &now
		sp.mu.Unlock()
		sp.k.mu.Lock()
		sp.k.stopped[sp.uid] = true
		sp.k.mu.Unlock()
		go func() {
			for _, c := range sp.spec.Containers {
				sp.event(parent, corev1.EventTypeNormal, "Killing", "Stopping container "+c.Name, fmt.Sprintf("spec.containers{%s}", c.Name))
			}
			sp.mu.Lock()
			for _, s := range sp.statuses {
				s.Ready = false
			}
			sp.mu.Unlock()
			sp.writeStatus(parent)
			wait := sp.k.opts.stopDelay
			if pod.DeletionGracePeriodSeconds != nil {
				wait = min(wait, time.Duration(*pod.DeletionGracePeriodSeconds)*time.Second)
			}
			if !sleep(parent, wait) {
				return
			}
			zero := int64(0)
			uid := sp.uid
			err := sp.k.client.CoreV1().Pods(sp.namespace).Delete(parent, sp.name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && parent.Err() == nil {
				fmt.Printf("simulated kubelet: deleting pod %s/%s: %v\n", sp.namespace, sp.name, err)
			}
		}()
	})
}

// event records a core/v1 Event from the kubelet of the pod's node.
func (sp *simPod) event(ctx context.Context, eventType, reason, message, field string) {
	now := metav1.Now()
	ref := sp.ref
	ref.FieldPath = field
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", sp.name, time.Now().UnixNano()), Namespace: sp.namespace},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: "kubelet", Host: sp.spec.NodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubelet",
		ReportingInstance:   sp.spec.NodeName,
	}
	if _, err := sp.k.client.CoreV1().Events(sp.namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil &&
		!apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		fmt.Printf("simulated kubelet: event %s on %s/%s: %v\n", reason, sp.namespace, sp.name, err)
	}
}
