// Command apollo-kubernetes runs a real Kubernetes control plane for Apollo's demo and tests:
// the upstream kube-apiserver, kube-controller-manager and kube-scheduler of the pinned
// k8s.io/kubernetes release, an embedded etcd, and simulated nodes (see nodes.go).
//
//	apollo-kubernetes up [--dir var/kubernetes] [--kubeconfig var/kubernetes.kubeconfig] [--port 6444]
//
// `up` runs etcd and the simulated nodes in its own process and starts the three upstream
// components as child processes of this same binary (`apollo-kubernetes kube-apiserver ...`):
// each upstream command installs process-wide signal handlers and logging, so one per process.
// SIGINT/SIGTERM stop everything; the children also die with the parent (Pdeathsig).
package main

import (
	"fmt"
	"os"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	"k8s.io/component-base/cli"
)

const usage = `usage: apollo-kubernetes up [flags]          start the control plane (see up --help)
       apollo-kubernetes kube-apiserver ...     upstream kube-apiserver
       apollo-kubernetes kube-controller-manager ...
       apollo-kubernetes kube-scheduler ...`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	// The upstream commands parse os.Args[1:] through cobra; drop our sub-command name.
	os.Args = append([]string{os.Args[0] + " " + name}, args...)
	switch name {
	case "up":
		os.Exit(up(args))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}
