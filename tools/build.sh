#!/usr/bin/env bash
# Build the upstream Kubernetes components gpufleet's end-to-end tests run against (kube-apiserver,
# kube-scheduler, kubectl, etcd, kwok) from their Go modules, into a cache keyed by the pinned versions.
# Prints the folder holding the binaries. Reuses a finished build while go.mod/go.sum and Go are unchanged.
# Not product code: see tools/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${GPUFLEET_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpufleet/k8s-tools}"
key="$( (go version; cat "$here"/kube/go.mod "$here"/kube/go.sum "$here"/etcd/go.mod "$here"/etcd/go.sum \
          "$here"/kwok/go.mod "$here"/kwok/go.sum "$here"/build.sh) | sha256sum | cut -c1-16)"
out="$cache_root/$key"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi
export GOFLAGS="-mod=readonly -trimpath"
start=$(date +%s)
build() {  # module-dir package binary-name
  echo "tools/build.sh: building $3 ($2)" >&2
  (cd "$here/$1" && go build -ldflags='-s -w' -o "$out/$3.tmp" "$2") && mv "$out/$3.tmp" "$out/$3"
}
build etcd go.etcd.io/etcd/server/v3 etcd
build kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build kube k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler
build kube k8s.io/kubernetes/cmd/kubectl kubectl
build kwok sigs.k8s.io/kwok/cmd/kwok kwok
echo "tools/build.sh: built in $(( $(date +%s) - start )) s into $out" >&2
touch "$out/.complete"
echo "$out"
