#!/bin/sh
# Builds the control plane (var/bin/apollo-kubernetes) and kubectl (var/bin/kubectl) from the
# modules pinned in cluster/go.mod. Idempotent: Go's module cache (~/go/pkg/mod) and build cache
# (~/.cache/go-build) make a second run take seconds. Niced: the build is long and the machine shared.
set -eu
cd "$(dirname "$0")"
out="${APOLLO_CLUSTER_BIN_DIR:-$(cd .. && pwd)/var/bin}"
mkdir -p "$out"
version=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes v\([0-9.]*\)$/\1/p' go.mod)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=v$version -X $pkg.gitMajor=${version%%.*}"
minor=${version#*.}
ldflags="$ldflags -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$version"
nice -n 19 go build -ldflags "$ldflags" -o "$out/apollo-kubernetes" .
nice -n 19 go build -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
