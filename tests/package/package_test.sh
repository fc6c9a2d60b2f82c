#!/usr/bin/env bash
# The Debian package: built by CPack from this build tree, it holds the
# binary, the web UI and the systemd unit where Debian expects them, and the
# binary it installs serves its UI and API with no source tree: it finds
# share/chatd/web beside itself.
#
#   package_test.sh BUILD_DIR
#   CHATD_TEST_DPKG_INSTALL=1  also `dpkg -i` it into this machine, run the
#                              installed /usr/bin/chatd, then purge it (CI's
#                              throw-away machines; needs root)
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/chatd-package-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }

# Starts `$1` (a chatd binary) with its own data dir and sets `url` to its
# base URL once it prints that it listens (not in a subshell: `pids` must
# keep the pid for cleanup).
start() {
  local bin=$1 name=$2
  "$bin" --port 0 --data-dir "$work/$name-data" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 200); do
    url=$(grep -o 'http://[^ ]*' "$work/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && return
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/$name.err" >&2; fail "$name exited"; }
    sleep 0.05
  done
  cat "$work/$name.err" >&2
  fail "$name did not listen within 10 s"
}

# The UI and the API of a running chatd whose UI files are in `$2`.
check_serves() {
  local url=$1 web=$2 name=$3
  curl -sf "$url/" -o "$work/index.html" || fail "$name: GET / failed"
  cmp -s "$work/index.html" "$web/index.html" || fail "$name: / is not $web/index.html"
  grep -q "serving the web UI from $web" "$work/$name.err" ||
    fail "$name: the UI did not come from $web: $(grep 'web UI' "$work/$name.err")"
  local id
  id=$(curl -sf -XPOST "$url/api/v1/chat/sessions" -H 'Content-Type: application/json' -d '{}' |
         sed -n 's/.*"id":"\(ses_[^"]*\)".*/\1/p')
  [ -n "$id" ] || fail "$name: creating a session failed"
  echo "package_test: $name serves its UI from $web and the API ($id)"
}

echo "== cpack"
cpack -G DEB -B "$work/out" --config "$build/CPackConfig.cmake" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/out/chatd_*.deb)
echo "package_test: built $(basename "$deb")"

echo "== contents"
dpkg-deb --info "$deb" >"$work/info"
grep -q '^ Package: chatd$' "$work/info" || fail "package name"
grep -Eq '^ Depends: .*libsqlite3' "$work/info" || fail "Depends lacks libsqlite3: $(grep Depends "$work/info")"
grep -Eq '^ Recommends: .*libjs-markdown-it' "$work/info" || fail "Recommends lacks libjs-markdown-it"
dpkg-deb --contents "$deb" >"$work/contents"
for path in ./usr/bin/chatd ./usr/share/chatd/web/index.html ./usr/share/chatd/web/app.js \
            ./usr/lib/systemd/system/chatd.service ./usr/share/doc/chatd/README.md; do
  grep -q " $path\$" "$work/contents" || fail "the package lacks $path"
done
# (listed to a file: `grep -q` closing a pipe early fails it under pipefail)
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$work/control"
for script in postinst prerm postrm; do
  grep -q "$script\$" "$work/control" || fail "the package lacks its $script"
done

echo "== the unpacked tree, no source tree"
dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/chatd" --version | grep -Eq '^chatd [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-f]+\)$' ||
  fail "--version: $("$work/root/usr/bin/chatd" --version)"
start "$work/root/usr/bin/chatd" unpacked
check_serves "$url" "$work/root/usr/share/chatd/web" unpacked
# The unit parses and names only what exists (its ExecStart is /usr/bin/chatd,
# there only once installed).
unit_problems() {
  systemd-analyze verify --man=no "$1" 2>&1 | grep -v "${2:-^$}" || true
}
problems=$(unit_problems "$work/root/usr/lib/systemd/system/chatd.service" \
             'Command /usr/bin/chatd is not executable: No such file')
[ -z "$problems" ] || fail "systemd-analyze verify: $problems"

if [ "${CHATD_TEST_DPKG_INSTALL:-}" = 1 ]; then
  echo "== dpkg -i"
  [ "$(id -u)" = 0 ] || fail "CHATD_TEST_DPKG_INSTALL needs root"
  dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }
  trap 'cleanup; dpkg --purge chatd >/dev/null 2>&1 || true' EXIT
  start /usr/bin/chatd installed
  check_serves "$url" /usr/share/chatd/web installed
  problems=$(unit_problems /usr/lib/systemd/system/chatd.service)
  [ -z "$problems" ] || fail "systemd-analyze verify (installed): $problems"
  kill "${pids[-1]}"
  dpkg --purge chatd >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge failed"; }
  [ ! -e /usr/bin/chatd ] || fail "/usr/bin/chatd is still there after purge"
fi
echo "package_test: ok"
