#!/usr/bin/env bash
# Builds the upstream kubeconfig-secretreader exec plugin (sigs.k8s.io/cluster-inventory-api's
# plugins/kubeconfig-secretreader/cmd/plugin) at the version this module pins (go.mod's `tool` line keeps its
# packages in go.sum), cached by a digest of go.mod and go.sum as the probes are, and links it into the
# consumer probes' bin directory given as the only argument (`build-controlplane.sh consumers` prints it).
# Run by scripts/testbed/binaries.ts ensureConsumerProbes after the probes are built.
set -euo pipefail

bin=${1:?usage: build-plugin.sh CONSUMERS_BIN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KCR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeconfig-rotator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

digest=$(cd "$here" && sha256sum go.mod go.sum | sha256sum | cut -c1-12)
out="$cache/consumer-kubeconfig-secretreader-$digest/kubeconfig-secretreader-plugin"
if [[ ! -x $out ]]; then
  mkdir -p "$(dirname "$out")"
  printf '[build-plugin] building kubeconfig-secretreader-plugin\n' >&2
  start=$SECONDS
  # Into a temporary file, then renamed: an interrupted build never leaves a binary that looks complete.
  (cd "$here" && go build -p 2 -trimpath -ldflags "-s -w" -o "$out.partial" \
    sigs.k8s.io/cluster-inventory-api/plugins/kubeconfig-secretreader/cmd/plugin)
  mv -f "$out.partial" "$out"
  printf '[build-plugin] built kubeconfig-secretreader-plugin in %d s\n' $((SECONDS - start)) >&2
fi
mkdir -p "$bin"
ln -sfn "$out" "$bin/kubeconfig-secretreader-plugin"
echo "$bin"
