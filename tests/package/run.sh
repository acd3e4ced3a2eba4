#!/usr/bin/env bash
# The Debian package as an operator gets it (issue 8):
#   1. cpack builds fulcrum_<version>_amd64.deb from the build directory;
#   2. dpkg-deb: control fields, conffiles, maintainer scripts, every path;
#      each program's --help options are all in its man page;
#   3. lintian: no error, and no warning that packaging/README.md does not
#      explain ("Kept lintian tags");
#   4. as root, on this machine (CI: a throwaway Debian 12 without systemd as
#      PID 1): dpkg -i; the installed fulcrum-control and fulcrum-data run from
#      their installed paths as the fulcrum user with a temporary
#      /etc/default/fulcrum-style argument file; fulcrum loads and commits a
#      configuration and `show servers` lists it; logrotate rotates the syslog
#      file with a copy of the packaged rule and fulcrum-control writes on in a
#      new one; an upgrade to a newer version keeps the store and the edited
#      conffile; dpkg --purge removes binaries, store and logs.
# Steps 1-3 need no root; without root step 4 is skipped (exit 77). An
# installed fulcrum package is never touched: step 4 is skipped then too.
# A trap stops the daemons and purges the package on any failure.
set -euo pipefail

BUILD=${FULCRUM_BUILD:?FULCRUM_BUILD must name the build directory}
VERSION=${FULCRUM_VERSION:?FULCRUM_VERSION must be the project version}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
UPGRADE_VERSION="${VERSION}+pkgtest1"

step() { printf '=== %s\n' "$*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

missing=()
for tool in cpack dpkg-deb lintian logrotate gzip; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || fail "the package test needs: ${missing[*]} (scripts/setup-deps installs them)"

tmp=$(mktemp -d /tmp/fulcrum-package.XXXXXX)
pids=()
netns=""
installed_by_us=0
user_made_by_us=0
# The package's state in dpkg's database: not-installed when absent (or
# unknown), else installed, unpacked, half-configured, config-files...
package_state() {
  local state
  state=$(dpkg-query -W -f='${db:Status-Status}' fulcrum 2>/dev/null) || state=not-installed
  echo "${state:-not-installed}"
}
# Drops a reaped daemon from `pids`, so cleanup never signals a pid that
# may since belong to another process.
forget() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
# Stops `pid` (TERM, then KILL after 5 s) and reaps it; never waits unbounded.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - TERM INT HUP
  if [ -n "${watchdog:-}" ]; then kill "$watchdog" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ -n "$netns" ]; then ip netns delete "$netns" 2>/dev/null || true; fi
  # Whatever state a failed step left it in (unpacked, half-configured...).
  if [ "$installed_by_us" = 1 ] && [ "$(package_state)" != not-installed ]; then
    timeout 120 dpkg --purge fulcrum >/dev/null 2>&1 || echo "cleanup: dpkg --purge fulcrum failed" >&2
  fi
  if [ "$user_made_by_us" = 1 ] && getent passwd fulcrum >/dev/null; then
    deluser --system fulcrum >/dev/null 2>&1 || true
    if getent group fulcrum >/dev/null; then delgroup --system fulcrum >/dev/null 2>&1 || true; fi
  fi
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] && { echo "--- $log"; tail -20 "$log"; }
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# ctest's TIMEOUT kills bash with SIGKILL, which no trap sees: give up a
# little before it, so the trap still stops the daemons and purges.
trap 'exit 1' TERM INT HUP
# The sleep holds no output (ctest would wait for it to close), and the
# watchdog takes it along when cleanup stops it.
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep 270 >/dev/null 2>&1 &
  sleeper=$!
  wait "$sleeper" || exit 0
  # Only this script: if it was killed outright, $$ may be another process.
  grep -q 'package/run.sh' "/proc/$$/cmdline" 2>/dev/null || exit 0
  echo "package test: over 270 s, giving up" >&2
  kill -TERM $$
) &
watchdog=$!

# Polls `command...` every 0.1 s until it succeeds; fails after `limit`
# seconds, or at once when the daemon with pid `watch` (0: none) has exited.
wait_for() {
  local what=$1 limit=$2 watch=$3
  shift 3
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$watch" != 0 ] && ! kill -0 "$watch" 2>/dev/null; then fail "$what: the daemon exited"; fi
    [ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.1
  done
}

build_package() {  # version output-dir
  cpack -G DEB --config "$BUILD/CPackConfig.cmake" -R "$1" -B "$2" >"$tmp/cpack-$1.log" 2>&1 ||
    fail "cpack -R $1 failed (see $tmp/cpack-$1.log): $(tail -5 "$tmp/cpack-$1.log")"
  deb="$2/fulcrum_$1_amd64.deb"
  [ -f "$deb" ] || fail "cpack made no $deb"
}

step "cpack: fulcrum_${VERSION}_amd64.deb"
build_package "$VERSION" "$tmp/out"
DEB=$deb

step "dpkg-deb: control fields and maintainer scripts"
info=$(dpkg-deb --info "$DEB")
field() { dpkg-deb --field "$DEB" "$1"; }
[ "$(field Package)" = fulcrum ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$VERSION" ] || fail "Version is '$(field Version)', not $VERSION"
[ "$(field Architecture)" = amd64 ] || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
# Computed by dpkg-shlibdeps from what the binaries link.
for lib in libc6 libstdc++6 libevent- libsqlite3- libprotobuf liburing adduser; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
for script in postinst prerm postrm conffiles; do
  grep -q " $script" <<<"$info" || fail "no $script in the control archive"
done
conffiles=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)
for f in /etc/default/fulcrum /etc/logrotate.d/fulcrum; do
  grep -qx "$f" <<<"$conffiles" || fail "$f is not a conffile"
done

step "dpkg-deb: contents"
contents=$(dpkg-deb --contents "$DEB" | awk '{print $6}')
expected=(
  ./usr/bin/fulcrum ./usr/sbin/fulcrum-control ./usr/sbin/fulcrum-data
  ./lib/systemd/system/fulcrum-control.service ./lib/systemd/system/fulcrum-data@.service
  ./etc/default/fulcrum ./etc/logrotate.d/fulcrum
  ./usr/share/man/man1/fulcrum.1.gz ./usr/share/man/man8/fulcrum-control.8.gz
  ./usr/share/man/man8/fulcrum-data.8.gz
  ./usr/share/doc/fulcrum/copyright ./usr/share/doc/fulcrum/changelog.gz
)
for path in "${expected[@]}"; do
  grep -qxF "$path" <<<"$contents" || fail "$path is not in the package"
done

step "man pages and --version: every option of each program's --help, one version"
mkdir -p "$tmp/unpacked"
dpkg-deb --extract "$DEB" "$tmp/unpacked"
check_man() {  # program man-page
  local program=$1 page=$2 help options
  help=$("$tmp/unpacked$program" --help)
  options=$(grep -oE -- '--[a-z][a-z-]+' <<<"$help" | sort -u)
  [ -n "$options" ] || fail "$program --help lists no options"
  local text
  # roff writes "-" as "\-"; the rendered page is what a reader sees.
  text=$(zcat "$tmp/unpacked$page" | sed 's/\\-/-/g')
  for option in $options; do
    grep -qF -- "$option" <<<"$text" || fail "$page does not describe $program $option"
  done
}
check_man /usr/bin/fulcrum /usr/share/man/man1/fulcrum.1.gz
check_man /usr/sbin/fulcrum-control /usr/share/man/man8/fulcrum-control.8.gz
check_man /usr/sbin/fulcrum-data /usr/share/man/man8/fulcrum-data.8.gz
for page in man1/fulcrum.1 man8/fulcrum-control.8 man8/fulcrum-data.8; do
  zcat "$tmp/unpacked/usr/share/man/$page.gz" | head -1 | grep -qF "\"fulcrum $VERSION\"" ||
    fail "$page does not name version $VERSION"
done
# The version changes in project(); the changelog's latest entry must follow.
zcat "$tmp/unpacked/usr/share/doc/fulcrum/changelog.gz" | head -1 | grep -qF "fulcrum ($VERSION)" ||
  fail "packaging/debian/changelog's latest entry is not for $VERSION: add one"
for program in /usr/bin/fulcrum /usr/sbin/fulcrum-control /usr/sbin/fulcrum-data; do
  out=$("$tmp/unpacked$program" --version)
  [ "$out" = "$(basename "$program") $VERSION" ] || fail "$program --version says '$out'"
done

step "lintian"
# Tags kept on purpose are the first column of packaging/README.md's table.
# shellcheck disable=SC2016 # the backquotes are Markdown's
kept=$(sed -n '/^## Kept lintian tags/,/^## /p' "$SRC/packaging/README.md" |
  grep -oE '^\| `[a-z0-9.+-]+`' | tr -d '|` ' | sort -u)
lintian --fail-on none --tag-display-limit 0 --display-info --pedantic "$DEB" \
  >"$tmp/lintian.log" 2>&1 || fail "lintian did not run: $(cat "$tmp/lintian.log")"
grep -E '^[EWIPX]: ' "$tmp/lintian.log" || true
bad=()
while read -r level _ tag _; do
  grep -qxF "$tag" <<<"$kept" || bad+=("$level $tag")
done < <(grep -E '^[EW]: ' "$tmp/lintian.log")
[ ${#bad[@]} -eq 0 ] || fail "lintian reports tags packaging/README.md does not explain: ${bad[*]}"

if [ "$(id -u)" -ne 0 ]; then
  echo "package built and checked; installing it needs root: installation steps skipped"
  exit 77
fi
if [ "$(package_state)" != not-installed ]; then
  echo "a fulcrum package is on this machine ($(package_state)); not touching it: installation steps skipped"
  exit 77
fi
# Files an operator may have made by hand (README "Running it"): the package
# would adopt them and purge would delete them, so it is not installed here.
for path in /var/lib/fulcrum /var/log/fulcrum /etc/default/fulcrum /etc/logrotate.d/fulcrum; do
  if [ -e "$path" ]; then
    echo "$path exists on this machine; installing the package would take it over: installation steps skipped"
    exit 77
  fi
done

step "dpkg -i"
getent passwd fulcrum >/dev/null || user_made_by_us=1
installed_by_us=1
dpkg -i "$DEB" </dev/null >"$tmp/dpkg-install.log" 2>&1 || fail "dpkg -i failed: $(cat "$tmp/dpkg-install.log")"
getent passwd fulcrum >/dev/null || fail "postinst made no fulcrum user"
for dir in /var/lib/fulcrum /var/log/fulcrum; do
  [ -d "$dir" ] || fail "postinst made no $dir"
  [ "$(stat -c %U:%a "$dir")" = fulcrum:750 ] || fail "$dir is $(stat -c %U:%a "$dir"), not fulcrum:750"
done
[ "$(/usr/bin/fulcrum --version)" = "fulcrum $VERSION" ] || fail "installed fulcrum --version"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/fulcrum-control.service \
    /lib/systemd/system/fulcrum-data@1.service >"$tmp/systemd-analyze.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$tmp/systemd-analyze.log")"
fi

# The daemons run as their units run them: as the fulcrum user, arguments
# from a file like /etc/default/fulcrum, stores and logs in the packaged
# places; only the sockets are private to this test.
run=$tmp/run
mkdir -p "$run"
chmod 0755 "$tmp"
chown fulcrum:fulcrum "$run"
cat >"$tmp/default" <<EOF
FULCRUM_CONTROL_ARGS="--listen $run/engines.sock --socket $run/mgmt.sock"
FULCRUM_DATA_ARGS="--control $run/engines.sock --io none"
EOF
# setpriv execs the daemon, so $! is the daemon's pid.
as_fulcrum=(setpriv --reuid fulcrum --regid fulcrum --init-groups --)
cli() { /usr/bin/fulcrum --socket "$run/mgmt.sock" --timeout 5 "$@"; }
start_daemons() {
  # shellcheck source=/dev/null
  . "$tmp/default"
  # shellcheck disable=SC2086 # word splitting of the arguments, as systemd does
  "${as_fulcrum[@]}" /usr/sbin/fulcrum-control $FULCRUM_CONTROL_ARGS >>"$tmp/control.log" 2>&1 &
  control_pid=$!
  pids+=("$control_pid")
  wait_for "fulcrum-control's management socket" 10 "$control_pid" cli show servers
  # shellcheck disable=SC2086
  "${as_fulcrum[@]}" /usr/sbin/fulcrum-data --engine-id pkgtest-1 $FULCRUM_DATA_ARGS >>"$tmp/data.log" 2>&1 &
  data_pid=$!
  pids+=("$data_pid")
  wait_for "engine pkgtest-1 in show engines" 10 "$data_pid" \
    sh -c "/usr/bin/fulcrum --socket '$run/mgmt.sock' show engines | grep -q 'pkgtest-1 *$VERSION'"
}
stop_daemons() {
  kill "$data_pid" "$control_pid"
  local data_rc=0 control_rc=0
  wait "$data_pid" || data_rc=$?
  forget "$data_pid"
  wait "$control_pid" || control_rc=$?
  forget "$control_pid"
  [ "$data_rc" = 0 ] || fail "fulcrum-data did not stop cleanly (exit $data_rc)"
  [ "$control_rc" = 0 ] || fail "fulcrum-control did not stop cleanly (exit $control_rc)"
}

step "the installed daemons: load, commit, show servers"
start_daemons
cat >"$tmp/smoke.conf" <<'EOF'
set service-set web inside-interface fs-web-in outside-interface fs-web-out
set application shop service-set web facade 198.18.0.10 port 80 algorithm least-connections
set application shop server s1 address 198.18.1.11 port 80
EOF
cli load "$tmp/smoke.conf" >/dev/null
cli commit -m "package smoke test" >/dev/null
servers=$(cli show servers)
echo "$servers"
grep -q 's1 .*198\.18\.1\.11' <<<"$servers" || fail "show servers does not list s1"
[ -f /var/lib/fulcrum/config.db ] || fail "no store at /var/lib/fulcrum/config.db"
log=/var/log/fulcrum/fulcrum.log
wait_for "the commit in $log" 5 "$control_pid" grep -q "package smoke test" "$log"

step "an engine on TUN devices with the unit's privileges only (fulcrum user, CAP_NET_ADMIN)"
# As fulcrum-data@.service runs it: User=fulcrum, AmbientCapabilities and
# CapabilityBoundingSet CAP_NET_ADMIN. In a network namespace of its own, so
# its TUN devices never reach this machine's stack, and with a private
# /dev/net/tun node of mode 0666, as Debian's udev makes it (a host without
# udev may have it 0600, which the README's Install section covers); the
# machine's own node is not touched.
if command -v ip >/dev/null && command -v unshare >/dev/null; then
  netns=fulcrum-pkgtest-$$
  ip netns add "$netns"
  # shellcheck disable=SC2016 # expanded by the inner shell
  ip netns exec "$netns" unshare -m sh -c '
    mount -t tmpfs -o mode=0755 tmpfs /dev/net &&
    mknod -m 0666 /dev/net/tun c 10 200 &&
    exec setpriv --reuid fulcrum --regid fulcrum --init-groups \
      --inh-caps -all,+net_admin --ambient-caps -all,+net_admin --bounding-set -all,+net_admin \
      -- /usr/sbin/fulcrum-data --engine-id pkgtest-tun --control "$1" --loops 2' \
    sh "$run/engines.sock" >>"$tmp/data-tun.log" 2>&1 &
  tun_pid=$!
  pids+=("$tun_pid")
  wait_for "fulcrum-data's TUN devices fs-web-in and fs-web-out, up" 10 "$tun_pid" \
    sh -c "ip -n $netns link show fs-web-in | grep -q ',UP' && ip -n $netns link show fs-web-out | grep -q ',UP'"
  wait_for "engine pkgtest-tun in show engines" 10 "$tun_pid" \
    sh -c "/usr/bin/fulcrum --socket '$run/mgmt.sock' show engines | grep -q 'pkgtest-tun'"
  grep -q "started:.*packet loops (tun" "$tmp/data-tun.log" || fail "fulcrum-data did not start on TUN devices"
  ! grep -qi "permission\|not permitted" "$tmp/data-tun.log" || fail "fulcrum-data lacked a privilege: $(cat "$tmp/data-tun.log")"
  kill "$tun_pid"
  tun_rc=0
  wait "$tun_pid" || tun_rc=$?
  forget "$tun_pid"
  [ "$tun_rc" = 0 ] || fail "fulcrum-data (TUN) did not stop cleanly (exit $tun_rc)"
  ip netns delete "$netns"
  netns=""
else
  echo "skipped: needs ip and unshare"
fi

step "logrotate with the packaged rule"
# The packaged rule, with the signal sent to this test's fulcrum-control.
awk -v pid="$control_pid" '
  /^[[:space:]]*postrotate/ { print; print "\t\tkill -HUP " pid; skip = 1; next }
  /^[[:space:]]*endscript/ { skip = 0 }
  !skip' /etc/logrotate.d/fulcrum >"$tmp/logrotate.conf"
logrotate -f -s "$tmp/logrotate.state" "$tmp/logrotate.conf" >"$tmp/logrotate.log" 2>&1 ||
  fail "logrotate: $(cat "$tmp/logrotate.log")"
grep -q "package smoke test" "$log.1" || fail "logrotate did not move $log to $log.1"
cli set application shop server s2 address 198.18.1.12 port 80 >/dev/null
cli commit -m "after rotation" >/dev/null
wait_for "the next commit in a new $log" 5 "$control_pid" grep -q "after rotation" "$log"
grep -q "after rotation" "$log.1" && fail "fulcrum-control still writes to $log.1 after SIGHUP"
[ "$(stat -c %U "$log")" = fulcrum ] || fail "$log is not the fulcrum user's"

step "upgrade to $UPGRADE_VERSION keeps the store and an edited conffile"
stop_daemons
echo "# edited by the package test" >>/etc/default/fulcrum
build_package "$UPGRADE_VERSION" "$tmp/out-upgrade"
dpkg -i "$deb" </dev/null >"$tmp/dpkg-upgrade.log" 2>&1 || fail "dpkg -i (upgrade) failed: $(cat "$tmp/dpkg-upgrade.log")"
[ "$(dpkg-query -W -f='${Version}' fulcrum)" = "$UPGRADE_VERSION" ] || fail "the upgrade did not happen"
grep -q "edited by the package test" /etc/default/fulcrum || fail "the upgrade lost the edit of /etc/default/fulcrum"
start_daemons
commits=$(cli show commits)
grep -q "after rotation" <<<"$commits" || fail "the store lost its commits in the upgrade: $commits"
grep -q 's2 .*198\.18\.1\.12' <<<"$(cli show servers)" || fail "the running configuration is not the stored one"
stop_daemons

step "dpkg --purge"
dpkg --purge fulcrum </dev/null >"$tmp/dpkg-purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$tmp/dpkg-purge.log")"
installed_by_us=0
for path in /usr/bin/fulcrum /usr/sbin/fulcrum-control /usr/sbin/fulcrum-data /var/lib/fulcrum \
  /var/log/fulcrum /etc/default/fulcrum /etc/logrotate.d/fulcrum \
  /lib/systemd/system/fulcrum-control.service /lib/systemd/system/fulcrum-data@.service; do
  [ ! -e "$path" ] || fail "$path is still there after purge"
done
echo "package test passed"
