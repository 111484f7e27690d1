package main

// Container logs of the simulated nodes, served on a kubelet port so the real API server's
// pods/log (kubectl logs, Apollo's LiveTail) works: GET /containerLogs/{ns}/{pod}/{container}
// with follow, tailLines, timestamps, previous, sinceSeconds, sinceTime and limitBytes.
//
// The lines follow kubesim's (kubesim/logs.py): three start-up lines, then request lines at
// --log-rate per second, computed from the run's start instead of stored; a crashed run ends
// with a FATAL line naming its exit code; only the last logBuffer lines of a run can be read.

import (
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const logBuffer = 10000

var (
	logPaths   = []string{"/api/orders", "/api/users", "/api/cart", "/healthz", "/api/search", "/metrics", "/api/payments", "/static/app.js", "/api/inventory", "/login"}
	logMethods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	logStatus  = []int{200, 200, 200, 200, 201, 204, 304, 400, 404, 500}
	logLevels  = []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"}
)

type logRun struct {
	pod, container, image string
	start                 time.Time
	end                   time.Time // zero while running
	exitCode              int32
	rate                  float64
}

func (r *logRun) head() []string {
	return []string{
		fmt.Sprintf("INFO  [%s] starting %s (%s)", r.pod, r.container, r.image),
		fmt.Sprintf("INFO  [%s] configuration loaded from /etc/app/config.yaml", r.pod),
		fmt.Sprintf("INFO  [%s] listening on 0.0.0.0:8080", r.pod),
	}
}

func (r *logRun) generated(until time.Time) int {
	if r.rate <= 0 || until.Before(r.start) {
		return 0
	}
	return int(math.Floor(until.Sub(r.start).Seconds() * r.rate))
}

func (r *logRun) ended(now time.Time) bool { return !r.end.IsZero() && !now.Before(r.end) }

// count is the number of lines written by now (the FATAL line included once a crash happened).
func (r *logRun) count(now time.Time) int {
	until := now
	if !r.end.IsZero() && r.end.Before(now) {
		until = r.end
	}
	n := 3 + r.generated(until)
	if r.ended(now) && r.exitCode != 0 {
		n++
	}
	return n
}

func (r *logRun) text(i int) string {
	head := r.head()
	if i < len(head) {
		return head[i]
	}
	if r.exitCode != 0 && !r.end.IsZero() && i == len(head)+r.generated(r.end) {
		return fmt.Sprintf("FATAL [%s] unrecoverable error: connection to database refused; exiting with code %d", r.pod, r.exitCode)
	}
	n := i - len(head)
	level := logLevels[(n*7+3)%len(logLevels)]
	path := logPaths[(n*13+5)%len(logPaths)]
	status := logStatus[(n*11+1)%len(logStatus)]
	method := logMethods[(n*5)%len(logMethods)]
	return fmt.Sprintf("%-5s [%s] %s %s/%d status=%d duration=%dms request_id=%08x",
		level, r.pod, method, path, n%9973, status, (n*37)%250+1, n)
}

func (r *logRun) stamp(i int) time.Time {
	if i < 3 || r.rate <= 0 {
		return r.start
	}
	if r.exitCode != 0 && !r.end.IsZero() && i == 3+r.generated(r.end) {
		return r.end
	}
	return r.start.Add(time.Duration(float64(i-2) / r.rate * float64(time.Second)))
}

// first is the index of the first line a query reads.
func (r *logRun) first(q *http.Request, now time.Time) int {
	count := r.count(now)
	first := max(count-logBuffer, 0)
	values := q.URL.Query()
	if tail, err := strconv.Atoi(values.Get("tailLines")); err == nil && tail >= 0 {
		first = max(first, count-tail)
	}
	var since time.Time
	if s, err := strconv.ParseInt(values.Get("sinceSeconds"), 10, 64); err == nil {
		since = now.Add(-time.Duration(s) * time.Second)
	} else if t, err := time.Parse(time.RFC3339, values.Get("sinceTime")); err == nil {
		since = t
	}
	for !since.IsZero() && first < count && r.stamp(first).Before(since) {
		if first >= 3 && r.rate > 0 { // jump close, then step
			jump := 2 + int(math.Ceil(since.Sub(r.start).Seconds()*r.rate))
			if jump > first {
				first = min(jump, count)
				continue
			}
		}
		first++
	}
	return first
}

// serveKubelet listens on a free port of 127.0.0.1 with the API server's certificate (valid for
// 127.0.0.1; the API server does not verify kubelet certificates without
// --kubelet-certificate-authority) and returns the port the nodes report.
func (k *kubelet) serveKubelet(p pki) (int, error) {
	cert, err := tls.LoadX509KeyPair(p.path("server.crt"), p.path("server.key"))
	if err != nil {
		return 0, err
	}
	listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return 0, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.containerLogs)
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", k.exec)
	go func() { _ = http.Serve(listener, mux) }()
	return listener.Addr().(*net.TCPAddr).Port, nil
}

func (k *kubelet) findPod(namespace, name string) *simPod {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sp := range k.pods {
		if sp.namespace == namespace && sp.name == name {
			return sp
		}
	}
	return nil
}

func (k *kubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	sp := k.findPod(r.PathValue("namespace"), r.PathValue("pod"))
	container := r.PathValue("container")
	if sp == nil {
		http.Error(w, fmt.Sprintf("pod %q not found", r.PathValue("pod")), http.StatusNotFound)
		return
	}
	values := r.URL.Query()
	previous := values.Get("previous") == "true"
	run := sp.logRun(container, previous)
	if run == nil {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		http.Error(w, fmt.Sprintf("%s %q in pod %q not found", what, container, sp.name), http.StatusBadRequest)
		return
	}
	follow := values.Get("follow") == "true" && !previous
	timestamps := values.Get("timestamps") == "true"
	limit := int64(-1)
	if l, err := strconv.ParseInt(values.Get("limitBytes"), 10, 64); err == nil && l > 0 {
		limit = l
	}
	w.Header().Set("Content-Type", "text/plain")
	flusher, _ := w.(http.Flusher)
	snapshot := func() logRun {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return *run
	}
	current := snapshot()
	next := current.first(r, time.Now())
	for {
		now := time.Now()
		run := snapshot()
		var b strings.Builder
		for count := run.count(now); next < count; next++ {
			if timestamps {
				b.WriteString(run.stamp(next).UTC().Format(time.RFC3339Nano) + " ")
			}
			b.WriteString(run.text(next) + "\n")
		}
		out := b.String()
		if limit >= 0 && int64(len(out)) >= limit {
			_, _ = w.Write([]byte(out[:limit]))
			return
		}
		if out != "" {
			if _, err := w.Write([]byte(out)); err != nil {
				return
			}
			if limit >= 0 {
				limit -= int64(len(out))
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if !follow || run.ended(now) || sp.stopped() {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logRun is the run a log request reads: the current (latest) one, or with previous the latest
// that has ended.
func (sp *simPod) logRun(container string, previous bool) *logRun {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	runs := sp.runs[container]
	now := time.Now()
	for i := len(runs) - 1; i >= 0; i-- {
		if !previous || runs[i].ended(now) {
			return runs[i]
		}
	}
	return nil
}

func (sp *simPod) stopped() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.stoppedAt != nil
}

// endRun closes the latest run of a container (exit code 0 when it was stopped).
func (sp *simPod) endRun(container string, exitCode int32) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if runs := sp.runs[container]; len(runs) > 0 && runs[len(runs)-1].end.IsZero() {
		runs[len(runs)-1].end, runs[len(runs)-1].exitCode = time.Now(), exitCode
	}
}
