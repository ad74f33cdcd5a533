#!/usr/bin/env bash
# Installs the real servers Governor's integration tests run against, pinned by
# version, into one cache folder that later runs reuse:
#   prometheus, promtool, alertmanager  (Debian packages)
#   chromium                            (Debian package, dashboard browser tests)
#   mold                                (Debian package, the linker of the test build)
#   buildah                             (Debian package, builds the image in the image test)
#   haproxy                             (Debian package, HTTP 429/500/503 from the API server)
#   initdb, postgres, pg_ctl, pg_isready (Debian package postgresql, the real-workload benchmark)
#   kube-apiserver, etcd, jaeger, helm  (built from Go modules)
#   toxiproxy-server                    (built from its Go module; fault injection)
#   prometheus3, promtool3              (Prometheus 3.x, built from its Go module)
# Prints the bin folder on the last line of stdout. Idempotent.
set -euo pipefail

K8S_VERSION=v1.37.2       # k8s.io/kubernetes; staging modules are v0.37.2
ETCD_VERSION=v3.6.16      # go.etcd.io/etcd/server/v3
JAEGER_VERSION=v1.76.0    # github.com/jaegertracing/jaeger (the v2 all-in-one binary)
HELM_VERSION=v3.22.0      # helm.sh/helm/v3
TOXIPROXY_VERSION=v2.5.0  # github.com/Shopify/toxiproxy/v2 (not in TOOLS_KEY: added later,
                          # built into the same folder by name; bump by renaming the binary)
PROMETHEUS3_VERSION=v0.316.0  # github.com/prometheus/prometheus: v0.3MM.P is Prometheus 3.MM.P (not
                              # in TOOLS_KEY either; built as prometheus3 and promtool3 beside 2.x)
DEBIAN_PACKAGES=(prometheus prometheus-alertmanager chromium mold buildah haproxy postgresql)

TOOLS_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_jaeger-${JAEGER_VERSION}_helm-${HELM_VERSION}"
TOOLS_ROOT="${GOVERNOR_TOOLS_DIR:-$HOME/.cache/governor-tools}"
PREFIX="$TOOLS_ROOT/$TOOLS_KEY"
BIN="$PREFIX/bin"
SRC="$PREFIX/src"
mkdir -p "$BIN" "$SRC"

# Go caches live outside the clone so a second run is fast.
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE)}"
export GOCACHE="${GOCACHE:-$(go env GOCACHE)}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

say() { printf '[install] %s\n' "$*" >&2; }
fail() { printf '[install] FAILED: %s\n' "$*" >&2; exit 1; }
step_start=0
timed() { step_start=$SECONDS; }
took() { say "$1 done in $((SECONDS - step_start)) s"; }

# --- Debian packages -------------------------------------------------------
install_debian() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "debian packages present: ${DEBIAN_PACKAGES[*]} (cached)"
  else
    timed
    say "installing debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # The packages' init scripts must not start system services here.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
      $sudo chmod +x /usr/sbin/policy-rc.d
      local remove_policy=1
    fi
    $sudo apt-get update -qq >&2 || fail "apt-get update"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || fail "apt-get install ${missing[*]}"
    [ -z "${remove_policy:-}" ] || $sudo rm -f /usr/sbin/policy-rc.d
    took "debian packages"
  fi
  ln -sf /usr/bin/prometheus "$BIN/prometheus"
  ln -sf /usr/bin/promtool "$BIN/promtool"
  ln -sf /usr/bin/prometheus-alertmanager "$BIN/alertmanager"
  ln -sf /usr/bin/chromium "$BIN/chromium"
  ln -sf /usr/sbin/haproxy "$BIN/haproxy"
  # The server binaries live in a versioned folder; take the newest.
  local pg
  pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$pg" ] || fail "postgresql installed but no /usr/lib/postgresql/*/bin"
  for t in initdb postgres pg_ctl pg_isready; do
    ln -sf "$pg/$t" "$BIN/$t"
  done
}

# --- Go-built tools --------------------------------------------------------
# build NAME MODULE@VERSION PACKAGE [LDFLAGS] [EXTRA go.mod lines]
build_go() {
  local name=$1 modver=$2 pkg=$3 ldflags=${4:-} extra=${5:-}
  if [ -x "$BIN/$name" ]; then
    say "$name: cached at $BIN/$name"
    return
  fi
  timed
  local dir="$SRC/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  say "$name: building $pkg from $modver (first run only; several minutes on 2 cores)"
  (
    cd "$dir"
    cat >go.mod <<GOMOD
module governor.dev/tools/$name

go 1.26
$extra
GOMOD
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
    go get "$modver" >&2 || fail "$name: go get $modver"
    go mod tidy >&2 || fail "$name: go mod tidy"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$name.tmp" "$pkg" >&2 || fail "$name: go build $pkg"
  ) || exit 1
  mv "$BIN/$name.tmp" "$BIN/$name"
  took "$name"
}

kube_apiserver() {
  if [ -x "$BIN/kube-apiserver" ]; then say "kube-apiserver: cached at $BIN/kube-apiserver"; return; fi
  local gomod staging_ver replaces
  staging_ver="v0.${K8S_VERSION#v1.}"
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null || fail "download k8s.io/kubernetes@$K8S_VERSION"
  gomod="$GOMODCACHE/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
  # k8s.io/kubernetes replaces each staging module with a local path; a consumer
  # must pin the published v0.X.Y of each instead.
  replaces=$(grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
    | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}')
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local vpkg=k8s.io/component-base/version
  local ld="-X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  build_go kube-apiserver "k8s.io/kubernetes@$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$ld" "$replaces"
}

jaeger() {
  if [ -x "$BIN/jaeger" ]; then say "jaeger: cached at $BIN/jaeger"; return; fi
  go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" >/dev/null || fail "download jaeger"
  local gomod="$GOMODCACHE/cache/download/github.com/jaegertracing/jaeger/@v/$JAEGER_VERSION.mod"
  # Copy Jaeger's own replace lines: they do not apply to a consumer otherwise.
  local replaces
  replaces=$(awk '/^replace \(/{b=1;next} b&&/^\)/{b=0;next} b{print "replace " $0; next} /^replace /{print}' "$gomod" | grep -v '=> \./' || true)
  build_go jaeger "github.com/jaegertracing/jaeger@$JAEGER_VERSION" github.com/jaegertracing/jaeger/cmd/jaeger "" "$replaces"
}

# Prometheus 3 and its promtool, without the web UI's assets (the tests use the
# HTTP API only) and without the cloud service discoveries (remove_all_sd keeps
# file and http SD: a third of the build time); the version is stamped the way
# Prometheus's own build does.
prometheus3() {
  local minor=${PROMETHEUS3_VERSION#v0.}; minor=${minor%%.*}
  local patch=${PROMETHEUS3_VERSION##*.}
  local v="3.$((10#${minor:1})).$patch"
  local ld="-X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Branch=release-3"
  local GOFLAGS="$GOFLAGS -tags=remove_all_sd"
  export GOFLAGS
  build_go prometheus3 "github.com/prometheus/prometheus@$PROMETHEUS3_VERSION" \
    github.com/prometheus/prometheus/cmd/prometheus "$ld"
  build_go promtool3 "github.com/prometheus/prometheus@$PROMETHEUS3_VERSION" \
    github.com/prometheus/prometheus/cmd/promtool "$ld"
}

main() {
  say "tools folder: $PREFIX"
  command -v go >/dev/null || fail "go is not installed (needed to build kube-apiserver, etcd, jaeger, helm)"
  install_debian
  build_go etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3 \
    "-X go.etcd.io/etcd/api/v3/version.GitSHA=release-$ETCD_VERSION"
  build_go helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  kube_apiserver
  jaeger
  build_go toxiproxy-server "github.com/Shopify/toxiproxy/v2@$TOXIPROXY_VERSION" \
    github.com/Shopify/toxiproxy/v2/cmd/server \
    "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION"
  prometheus3
  for t in prometheus promtool prometheus3 promtool3 alertmanager chromium haproxy etcd helm kube-apiserver \
    jaeger toxiproxy-server initdb postgres pg_ctl pg_isready; do
    [ -x "$BIN/$t" ] || fail "$t missing from $BIN"
  done
  say "all tools ready in $BIN"
  echo "$BIN"
}

main "$@"
