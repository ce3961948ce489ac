#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl), helm, and csrprobe
# (scripts/controlplane/csrprobe: Kubernetes' own reading of a CSR, for the approver's differential test) from
# the Go module proxy, at the versions pinned in scripts/controlplane/go.mod and scripts/helm/go.mod.
#
# KCR_KUBE_VERSION (a minor such as 1.34, or its pinned patch release v1.34.4) builds another release: the one
# pinned in scripts/controlplane/versions/v<minor>/go.mod, used with `go -modfile` in place of the default
# go.mod, so csrprobe is built against that release's own certificates code too. Unset, or the default's
# minor, builds the default (today's go.mod, byte for byte the same build and cache).
#
# Binaries are cached outside the repository, one directory per component and version, and built only
# when missing, so CI runs and later sessions on the same machine reuse them. Prints the bin directory.
#
# `build-controlplane.sh --node` also builds a test node's kube-scheduler and kubelet from the same module
# (default release only), and links them into the same bin directory.
#
# `build-controlplane.sh consumers` builds instead the consumer probes of scripts/consumers/ (one Go module
# per tool, each pinning that tool's own modules), cached by a digest of each probe's sources, and prints
# their bin directory. A probe whose go.mod needs Go 1.27 is built with the go1.27.3 toolchain, which the
# go command fetches from the module proxy (this machine's Go is 1.26).
#
#   KCR_CACHE_DIR      cache root (default ~/.cache/kubeconfig-rotator)
#   KCR_KUBE_VERSION   Kubernetes release of the control plane and csrprobe (default: scripts/controlplane/go.mod's)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeconfig-rotator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-controlplane] %s\n' "$*" >&2; }

module_version() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

# The toolchain a module needs: go1.27.3 (fetched by the go command) when its go.mod says go 1.27 or later,
# since this machine's Go is 1.26.
toolchain_for() { if grep -qE '^go 1\.(2[7-9]|[3-9][0-9])' "$1"; then echo go1.27.3; else echo local; fi; }

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
    GOTOOLCHAIN=$(toolchain_for "$dir/go.mod") build "$dir" . "$out" ""
    built+=("$out")
  done
  # One directory of links per set of probe versions, as for the control plane.
  bin="$cache/consumers-bin-$(printf '%s\n' "${built[@]}" | sha256sum | cut -c1-12)"
  mkdir -p "$bin"
  for out in "${built[@]}"; do ln -sfn "$out" "$bin/$(basename "$out")"; done
  echo "$bin"
  exit 0
fi

with_node=false
if [[ ${1:-} == --node ]]; then with_node=true; fi

# The Kubernetes module: the default go.mod, or the pinned one of the release KCR_KUBE_VERSION names.
gomod="$here/controlplane/go.mod"
default_k8s=$(module_version "$here/controlplane" k8s.io/kubernetes)
want=${KCR_KUBE_VERSION:-$default_k8s}
want=v${want#v}
minor=$(cut -d. -f1,2 <<<"$want")
if [[ $minor != "$(cut -d. -f1,2 <<<"$default_k8s")" ]]; then
  gomod="$here/controlplane/versions/$minor/go.mod"
  if [[ ! -f $gomod ]]; then
    log "no pinned module for Kubernetes $minor (KCR_KUBE_VERSION=$KCR_KUBE_VERSION); pinned: ${default_k8s%.*} (default)" \
      $(cd "$here/controlplane/versions" && echo v*)
    exit 1
  fi
  if $with_node; then
    log "a test node is built for the default release ($default_k8s) only, not KCR_KUBE_VERSION=$KCR_KUBE_VERSION"
    exit 1
  fi
  export GOFLAGS="$GOFLAGS -modfile=$gomod"
fi
kube_toolchain=$(toolchain_for "$gomod")
k8s=$(GOTOOLCHAIN=$kube_toolchain module_version "$here/controlplane" k8s.io/kubernetes)
if [[ $want == v*.*.* && $want != "$k8s" ]]; then
  log "KCR_KUBE_VERSION=$KCR_KUBE_VERSION, but the module for $minor pins $k8s"
  exit 1
fi
etcd=$(GOTOOLCHAIN=$kube_toolchain module_version "$here/controlplane" go.etcd.io/etcd/server/v3)
# helm has its own module, whatever the Kubernetes release.
helm=$(GOFLAGS=-buildvcs=false module_version "$here/helm" helm.sh/helm/v3)
helm_k8s=$(GOFLAGS=-buildvcs=false module_version "$here/helm" k8s.io/client-go)

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
GOTOOLCHAIN=$kube_toolchain build "$here/controlplane" go.etcd.io/etcd/server/v3 "$cache/etcd-$etcd/etcd" ""
cmds=(kube-apiserver kube-controller-manager kubectl)
if $with_node; then cmds+=(kube-scheduler kubelet); fi
for cmd in "${cmds[@]}"; do
  GOTOOLCHAIN=$kube_toolchain build "$here/controlplane" "k8s.io/kubernetes/cmd/$cmd" "$k8s_dir/$cmd" "$k8s_ldflags"
done
GOFLAGS=-buildvcs=false build "$here/helm" helm.sh/helm/v3/cmd/helm "$cache/helm-$helm/helm" "$helm_ldflags"
# csrprobe is our own source, so its cache key is a hash of that source and of the module's pins (so each
# release gets its own csrprobe, reading CSRs with that release's code).
probe_hash=$(cat "$here"/controlplane/csrprobe/*.go "$gomod" "${gomod%.mod}.sum" | sha256sum | cut -c1-12)
probe="$cache/csrprobe-$probe_hash/csrprobe"
GOTOOLCHAIN=$kube_toolchain build "$here/controlplane" ./csrprobe "$probe" ""

# One directory of links per pinned set of versions; tests and the demo put it first on PATH.
bin="$cache/bin-$k8s-etcd-$etcd-helm-$helm-csrprobe-$probe_hash"
mkdir -p "$bin"
ln -sfn "$cache/etcd-$etcd/etcd" "$bin/etcd"
for cmd in "${cmds[@]}"; do ln -sfn "$k8s_dir/$cmd" "$bin/$cmd"; done
ln -sfn "$cache/helm-$helm/helm" "$bin/helm"
ln -sfn "$probe" "$bin/csrprobe"
echo "$bin"
