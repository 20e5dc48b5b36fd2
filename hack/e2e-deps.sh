#!/usr/bin/env bash
# Installs the Debian packages the e2e data-path harness drives: iptables, ipset, iproute2.
# A no-op when they are present; `apt-get update` only runs when the first install attempt fails.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

declare -A need=([iptables]=iptables [iptables-save]=iptables [ipset]=ipset [ip]=iproute2)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if ((${#missing[@]} == 0)); then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
  echo "e2e-deps: missing ${missing[*]}; run as root (the e2e suite needs root for netns and iptables)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "e2e-deps: installing ${missing[*]}" >&2
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; then
  apt-get update -qq
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
