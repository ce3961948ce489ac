#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl), helm, and csrprobe
# (scripts/controlplane/csrprobe: Kubernetes' own reading of a CSR, for the approver's differential test) from
# the Go module proxy, at the versions pinned in scripts/controlplane/go.mod and scripts/helm/go.mod.
#
# Binaries are cached outside the repository, one directory per component and version, and built only
# when missing, so CI runs and later sessions on the same machine reuse them. Prints the bin directory.
#
# `build-controlplane.sh consumers` builds instead the consumer probes of scripts/consumers/ (one Go module
# per tool, each pinning that tool's own modules), cached by a digest of each probe's sources, and prints
# their bin directory. A probe whose go.mod needs Go 1.27 is built with the go1.27.3 toolchain, which the
# go command fetches from the module proxy (this machine's Go is 1.26).
#
#   KCR_CACHE_DIR   cache root (default ~/.cache/kubeconfig-rotator)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeconfig-rotator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-controlplane] %s\n' "$*" >&2; }

module_version() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

# build DIR PACKAGE OUT LDFLAGS: build into a temporary file, then rename, so an interrupted build never
# leaves a binary that looks complete.
build() {
  local dir=$1 pkg=$2 out=$3 ldflags=$4
  if [[ -x $out ]]; then return 0; fi
  mkdir -p "$(dirname "$out")"
  log "building $(basename "$out") ($pkg)"
  local start=$SECONDS
  (cd "$dir" && go build -p 2 -trimpath -ldflags "-s -w $ldflags" -o "$out.partial" "$pkg")
  mv -f "$out.partial" "$out"
  log "built $(basename "$out") in $((SECONDS - start)) s"
}

# The consumer probes: a probe's cache directory is named by the digest of its sources and the shared loop's.
if [[ ${1:-} == consumers ]]; then
  consumers="$here/consumers"
  digest_of() { (cd "$consumers" && find "$1" probe -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | sort | xargs sha256sum | sha256sum | cut -c1-12); }
  built=()
  for dir in "$consumers"/*/; do
    tool=$(basename "$dir")
    [[ $tool == probe || $tool == kube ]] && continue  # the shared packages, not probes
    out="$cache/consumer-$tool-$(digest_of "$tool")/$tool-probe"
    toolchain=local
    if grep -qE '^go 1\.(2[7-9]|[3-9][0-9])' "$dir/go.mod"; then toolchain=go1.27.3; fi
    GOTOOLCHAIN=$toolchain build "$dir" . "$out" ""
    built+=("$out")
  done
  # One directory of links per set of probe versions, as for the control plane.
  bin="$cache/consumers-bin-$(printf '%s\n' "${built[@]}" | sha256sum | cut -c1-12)"
  mkdir -p "$bin"
  for out in "${built[@]}"; do ln -sfn "$out" "$bin/$(basename "$out")"; done
  echo "$bin"
  exit 0
fi

k8s=$(module_version "$here/controlplane" k8s.io/kubernetes)
etcd=$(module_version "$here/controlplane" go.etcd.io/etcd/server/v3)
helm=$(module_version "$here/helm" helm.sh/helm/v3)
helm_k8s=$(module_version "$here/helm" k8s.io/client-go)

k8s_minor=$(cut -d. -f2 <<<"$k8s")
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

# helm reports the Kubernetes version it was built against (v0.x client libraries = Kubernetes 1.x).
helm_k8s_minor=$(cut -d. -f2 <<<"$helm_k8s")
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$helm -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done

k8s_dir="$cache/kubernetes-$k8s"
build "$here/controlplane" go.etcd.io/etcd/server/v3 "$cache/etcd-$etcd/etcd" ""
for cmd in kube-apiserver kube-controller-manager kubectl; do
  build "$here/controlplane" "k8s.io/kubernetes/cmd/$cmd" "$k8s_dir/$cmd" "$k8s_ldflags"
done
build "$here/helm" helm.sh/helm/v3/cmd/helm "$cache/helm-$helm/helm" "$helm_ldflags"
# csrprobe is our own source, so its cache key is a hash of that source and of the module's pins.
probe_hash=$(cat "$here"/controlplane/csrprobe/*.go "$here/controlplane/go.mod" "$here/controlplane/go.sum" |
  sha256sum | cut -c1-12)
probe="$cache/csrprobe-$probe_hash/csrprobe"
build "$here/controlplane" ./csrprobe "$probe" ""

# One directory of links per pinned set of versions; tests and the demo put it first on PATH.
bin="$cache/bin-$k8s-etcd-$etcd-helm-$helm-csrprobe-$probe_hash"
mkdir -p "$bin"
ln -sfn "$cache/etcd-$etcd/etcd" "$bin/etcd"
for cmd in kube-apiserver kube-controller-manager kubectl; do ln -sfn "$k8s_dir/$cmd" "$bin/$cmd"; done
ln -sfn "$cache/helm-$helm/helm" "$bin/helm"
ln -sfn "$probe" "$bin/csrprobe"
echo "$bin"
