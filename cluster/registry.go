package main

// The simulated image registry. Image behaviour follows kubesim's rules (kubesim/README.md):
//
//  1. a behaviour registered for the exact reference (repo:tag), 2. then for the repository,
//  3. the naming convention: "missing" is not in the registry, "crashloop" crash-loops,
//     "notready" never becomes ready, "slow" becomes ready late; anything else pulls and runs.
//
// Registrations live in the ConfigMap kube-system/apollo-simulated-registry, key images.json:
// {"registry.example/shop:sha": {"behaviour": "crashloop", "seconds": 2, "exitCode": 3}, ...}
// so tests (and people) change them through the real API server.

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const (
	registryNamespace = "kube-system"
	registryConfigMap = "apollo-simulated-registry"
	registryKey       = "images.json"
)

type registration struct {
	Behaviour string  `json:"behaviour"`
	Seconds   float64 `json:"seconds"`
	ExitCode  *int32  `json:"exitCode"`
}

type imageBehaviour struct {
	exists     bool
	crashloop  bool
	crashAfter time.Duration
	exitCode   int32
	notready   bool
	slow       time.Duration
}

type registry struct {
	crashAfter time.Duration
	mu         sync.RWMutex
	images     map[string]registration
}

func (r *registry) watch(ctx context.Context, client kubernetes.Interface) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(registryNamespace))
	informer := factory.Core().V1().ConfigMaps().Informer()
	load := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == registryConfigMap {
			images := map[string]registration{}
			_ = json.Unmarshal([]byte(cm.Data[registryKey]), &images)
			r.mu.Lock()
			r.images = images
			r.mu.Unlock()
		}
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    load,
		UpdateFunc: func(_, obj any) { load(obj) },
		DeleteFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == registryConfigMap {
				r.mu.Lock()
				r.images = nil
				r.mu.Unlock()
			}
		},
	})
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)
}

func repository(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

func (r *registry) lookup(image string) imageBehaviour {
	r.mu.RLock()
	reg, ok := r.images[image]
	if !ok {
		reg, ok = r.images[repository(image)]
	}
	r.mu.RUnlock()
	b := imageBehaviour{exists: true, crashAfter: r.crashAfter, exitCode: 1}
	if !ok {
		b.exists = !strings.Contains(image, "missing")
		b.crashloop = strings.Contains(image, "crashloop")
		b.notready = strings.Contains(image, "notready")
		if strings.Contains(image, "slow") {
			b.slow = slowStart
		}
		return b
	}
	seconds := time.Duration(reg.Seconds * float64(time.Second))
	switch reg.Behaviour {
	case "missing":
		b.exists = false
	case "crashloop":
		b.crashloop = true
		if seconds > 0 {
			b.crashAfter = seconds
		}
	case "notready":
		b.notready = true
	case "slow":
		b.slow = slowStart
		if seconds > 0 {
			b.slow = seconds
		}
	}
	if reg.ExitCode != nil {
		b.exitCode = *reg.ExitCode
	}
	return b
}
