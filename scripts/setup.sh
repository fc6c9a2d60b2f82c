#!/usr/bin/env bash
# Installs what chatd needs to build and test, from Debian 12's packages only.
# Idempotent: installs nothing when everything is present. Run as root.
# `--tests` adds what only the tests need (Chromium for the browser tests,
# clang-15 and libFuzzer for the fuzz targets, PostgreSQL 15); `--postgres`
# adds PostgreSQL 15 only (scripts/cluster.sh).
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config git dpkg-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev sqlite3 libpq-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev openssl ca-certificates
  libjs-markdown-it
  procps
)
case "${1:-}" in
  --tests) packages+=(chromium fonts-dejavu-core clang-15 libfuzzer-15-dev curl jq systemd postgresql-15
                     prometheus) ;;  # prometheus: its promtool checks /metrics
  --postgres) packages+=(postgresql-15 curl jq) ;;
esac
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
