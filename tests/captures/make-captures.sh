#!/usr/bin/env bash
# Regenerates the packet captures in tests/captures/ from real traffic.
#
# Topology (two network namespaces joined by one veth pair, nothing else):
#
#   netns fcap-cli                                 netns fcap-srv ("facade")
#   fcap-cli0  198.18.0.1-4/24  <--- veth --->  fcap-srv0  198.18.0.10/24
#                                                python3 -m http.server 80
#
# tcpdump runs inside fcap-cli on fcap-cli0, so it sees both directions.
#
# The VLAN capture uses the same namespaces and addresses on a tagged link:
#  - where the kernel has 802.1Q (CONFIG_VLAN_8021Q), the addresses sit on
#    sub-interfaces fcap-cli0.100 / fcap-srv0.100 ("ip link add link VETH name
#    VETH.100 type vlan id 100");
#  - where it has not ("Unknown device type", as on the Firecracker kernel of
#    the project's machines, which also lacks bridge VLAN filtering and the tc
#    vlan action), the addresses sit on the veths and the small tc-BPF program
#    vlan-tag.bpf.c (built with clang) pushes tag 100 on egress and pops it on
#    ingress of both veth ends: the same frames on the wire.
# Either way tcpdump listens on the parent veth fcap-cli0, so every frame it
# writes carries the 802.1Q tag (VLAN 100).
#
# Offloads (checksum, TSO/GSO/GRO, VLAN tag insertion/stripping) are turned off
# with ethtool so that the capture holds exactly what a wire would carry:
# correct IP/TCP checksums, IP packets of at most 1500 bytes (MTU).
# Neighbour entries are static (no ARP) and IPv6 is disabled in both
# namespaces, so the captures hold TCP only.
#
# Needs root, iproute2 (ip, ss, tc), tcpdump, curl, ethtool, coreutils timeout,
# Debian's /usr/bin/python3 with python3-scapy, and clang for the tc-BPF VLAN
# fallback. Debian: apt-get install iproute2 tcpdump curl ethtool python3-scapy clang
# Only traffic between the two namespaces is generated (198.18.0.0/15
# addresses). Everything started is torn down by the EXIT trap, and a watchdog
# bounds the whole run (WATCHDOG_S, default 180 s; a run takes ~5 s).
#
# The http-filter capture runs its own server (http-filter-server.py: the
# same file server plus POST), socket clients for the request shapes curl does
# not make (http-filter-clients.py), and the tc-BPF program drop-marked.bpf.c
# on the server's ingress, which loses one marked request segment so that the
# client retransmits it.
#
# Usage: sudo tests/captures/make-captures.sh [mixed] [vlan] [http-filter]
#        Without arguments it makes every capture; with some, only those (the
#        error fixtures and the raw copy come with "mixed"). It writes into
#        tests/captures/, or into $OUT_DIR if set, and always ends by
#        rewriting expected.json from every capture there. See README.md there
#        for what it produces.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${OUT_DIR:-$HERE}"
PY=/usr/bin/python3

NS_CLI=fcap-cli
NS_SRV=fcap-srv
IF_CLI=fcap-cli0
IF_SRV=fcap-srv0
MAC_CLI=02:00:c6:12:00:01
MAC_SRV=02:00:c6:12:00:0a
CLIENTS=(198.18.0.1 198.18.0.2 198.18.0.3 198.18.0.4)
FACADE=198.18.0.10
PORT=80
VLAN_ID=100
VLAN_METHOD=

WANT=("$@")
[[ ${#WANT[@]} -gt 0 ]] || WANT=(mixed vlan http-filter)
for w in "${WANT[@]}"; do
    case $w in mixed | vlan | http-filter) ;; *) echo "make-captures: unknown capture '$w'" >&2; exit 2 ;; esac
done
wanted() { local w; for w in "${WANT[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

die() { echo "make-captures: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"
for tool in ip ss tc tcpdump curl ethtool timeout; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
"$PY" -c 'import scapy' 2>/dev/null || die "$PY lacks scapy (apt-get install python3-scapy)"

WORK="$(mktemp -d /tmp/fcap.XXXXXX)"
chmod 755 "$WORK"
PIDS=()

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        # bounded: give each process up to 2 s, then SIGKILL
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PIDS=()
    teardown_netns
    rm -rf "$WORK"
    exit "$rc"
}

teardown_netns() {
    local ns pid
    for ns in "$NS_CLI" "$NS_SRV"; do
        if ip netns list | grep -qw "$ns"; then
            # anything still inside is one of ours (started by this script)
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# watchdog: the whole run is bounded (it normally takes a few seconds)
WATCHDOG_S=${WATCHDOG_S:-180}
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$WATCHDOG_S" &
    sleeper=$!
    wait "$sleeper"
    echo "make-captures: watchdog: ${WATCHDOG_S}s elapsed, aborting" >&2
    kill -TERM $$
) &
PIDS+=($!)

# wait_until TIMEOUT_S DESCRIPTION CMD...  -- poll CMD every 0.1 s
wait_until() {
    local timeout_s=$1 what=$2; shift 2
    local i
    for ((i = 0; i < timeout_s * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    die "timed out after ${timeout_s}s waiting for: $what"
}

# drop a pid we have already waited for, so cleanup never signals a reused pid
forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }

no_offloads() {  # ns ifname
    # ethtool -K fails when one feature is fixed on a device type: ask one by one
    local f
    for f in tx rx tso gso gro txvlan rxvlan; do
        ip netns exec "$1" ethtool -K "$2" "$f" off >/dev/null 2>&1 || true
    done
    if ip netns exec "$1" ethtool -k "$2" | grep -q '^tx-checksumming: on'; then
        die "could not disable tx checksum offload on $2"
    fi
}

# setup_topology plain|vlan
setup_topology() {
    local mode=$1 cif=$IF_CLI sif=$IF_SRV a
    teardown_netns
    ip netns add "$NS_CLI"
    ip netns add "$NS_SRV"
    for ns in "$NS_CLI" "$NS_SRV"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        ip netns exec "$ns" ip link set lo up
    done
    ip link add "$IF_CLI" netns "$NS_CLI" address "$MAC_CLI" type veth \
        peer name "$IF_SRV" netns "$NS_SRV" address "$MAC_SRV"
    no_offloads "$NS_CLI" "$IF_CLI"
    no_offloads "$NS_SRV" "$IF_SRV"
    if [[ $mode == vlan ]]; then
        if in_cli ip link add link "$IF_CLI" name "$IF_CLI.$VLAN_ID" type vlan id "$VLAN_ID" \
                2>"$WORK/vlan.err"; then
            VLAN_METHOD="802.1Q sub-interfaces $IF_CLI.$VLAN_ID / $IF_SRV.$VLAN_ID"
            in_srv ip link add link "$IF_SRV" name "$IF_SRV.$VLAN_ID" type vlan id "$VLAN_ID"
            no_offloads "$NS_CLI" "$IF_CLI.$VLAN_ID"
            no_offloads "$NS_SRV" "$IF_SRV.$VLAN_ID"
            cif=$IF_CLI.$VLAN_ID
            sif=$IF_SRV.$VLAN_ID
        else
            # kernel without CONFIG_VLAN_8021Q ("Unknown device type"): the
            # same frames on the wire, tagged/untagged by tc-BPF on the veths
            echo "no VLAN sub-interfaces ($(cat "$WORK/vlan.err")); tagging with tc-BPF" >&2
            VLAN_METHOD="tc-BPF push/pop of VLAN $VLAN_ID on $IF_CLI / $IF_SRV (vlan-tag.bpf.c)"
            command -v clang >/dev/null || die "no VLAN support in the kernel and no clang for the tc-BPF fallback"
            local dir ns ifc
            for dir in PUSH POP; do
                clang -O2 -g0 -target bpfel -DVLAN_ID="$VLAN_ID" -DVLAN_$dir \
                    -c "$HERE/vlan-tag.bpf.c" -o "$WORK/vlan-$dir.o"
            done
            for ns in "$NS_CLI" "$NS_SRV"; do
                ifc=$IF_CLI; [[ $ns == "$NS_SRV" ]] && ifc=$IF_SRV
                ip netns exec "$ns" tc qdisc add dev "$ifc" clsact
                ip netns exec "$ns" tc filter add dev "$ifc" egress bpf da obj "$WORK/vlan-PUSH.o" sec tc
                ip netns exec "$ns" tc filter add dev "$ifc" ingress bpf da obj "$WORK/vlan-POP.o" sec tc
            done
        fi
        echo "VLAN $VLAN_ID via $VLAN_METHOD"
    fi
    for a in "${CLIENTS[@]}"; do in_cli ip addr add "$a/24" dev "$cif"; done
    in_srv ip addr add "$FACADE/24" dev "$sif"
    in_cli ip link set "$IF_CLI" up
    in_srv ip link set "$IF_SRV" up
    in_cli ip link set "$cif" up
    in_srv ip link set "$sif" up
    # static neighbours: no ARP needed (ARP would be filtered out anyway)
    local cmac smac
    cmac=$(in_cli cat "/sys/class/net/$cif/address")
    smac=$(in_srv cat "/sys/class/net/$sif/address")
    for a in "${CLIENTS[@]}"; do in_srv ip neigh replace "$a" lladdr "$cmac" dev "$sif" nud permanent; done
    in_cli ip neigh replace "$FACADE" lladdr "$smac" dev "$cif" nud permanent
    wait_until 5 "$cif up" bash -c "ip netns exec $NS_CLI ip -br link show $cif | grep -q UP"
}

make_docroot() {
    mkdir -p "$WORK/www"
    "$PY" - "$WORK/www" <<'EOF'
import random, sys, os
d = sys.argv[1]
text = ("Fulcrum capture fixture: small.txt\n"
        "This file is served by python3 -m http.server inside netns fcap-srv\n"
        "at 198.18.0.10:80 to produce the replay-harness captures.\n")
while len(text) < 300:
    text += "0123456789abcdefghijklmnopqrstuvwxyz\n"
with open(os.path.join(d, "small.txt"), "w") as f:
    f.write(text)
with open(os.path.join(d, "medium.bin"), "wb") as f:
    f.write(random.Random(20240601).randbytes(64 * 1024))
with open(os.path.join(d, "large.bin"), "wb") as f:
    f.write(random.Random(20240602).randbytes(300 * 1024))
# request bodies of the http-filter capture (beside the served files, not
# among them): lines that look like a request head, which the HTTP filter must
# pass over as body
lines = ["POST body line %03d of the http-filter capture\r\n" % i for i in range(70)]
lines[10] = "GET /in-the-body HTTP/1.1\r\n"
lines[11] = "Host: 198.18.0.10\r\n"
lines[40] = "Host: 198.18.0.10:80\r\n"
with open(os.path.join(d, "..", "post-body.txt"), "w", newline="") as f:
    f.write("".join(lines))
with open(os.path.join(d, "..", "expect-body.bin"), "wb") as f:
    f.write(random.Random(20240604).randbytes(2048))
EOF
}

# (background processes we signal are started with a plain "ip netns exec", not
# through in_cli/in_srv: a function in the background runs in a subshell, which
# would then be the pid we signal, and such a subshell ignores SIGINT)
start_server() {
    ip netns exec "$NS_SRV" timeout 300 "$PY" -m http.server "$PORT" --bind "$FACADE" \
        --protocol HTTP/1.1 --directory "$WORK/www" >"$WORK/server.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID=$!
    wait_until 10 "http.server listening on $FACADE:$PORT" \
        bash -c "ip netns exec $NS_SRV ss -Hltn 'sport = :$PORT' | grep -q '$FACADE:$PORT'"
}

# the http-filter capture's server: the same files, plus POST
start_filter_server() {
    ip netns exec "$NS_SRV" timeout 300 "$PY" "$HERE/http-filter-server.py" "$FACADE" "$PORT" \
        "$WORK/www" >"$WORK/server.log" 2>&1 &
    PIDS+=($!)
    SERVER_PID=$!
    wait_until 10 "http-filter-server.py listening on $FACADE:$PORT" \
        bash -c "ip netns exec $NS_SRV ss -Hltn 'sport = :$PORT' | grep -q '$FACADE:$PORT'"
}

# loses the segments the retransmit client marks with TOS 0x20 (see
# drop-marked.bpf.c) when they arrive at the server
drop_marked_on_server() {
    command -v clang >/dev/null || die "clang is needed to build drop-marked.bpf.c"
    clang -O2 -g0 -target bpfel -c "$HERE/drop-marked.bpf.c" -o "$WORK/drop-marked.o"
    in_srv tc qdisc add dev "$IF_SRV" clsact
    in_srv tc filter add dev "$IF_SRV" ingress bpf da obj "$WORK/drop-marked.o" sec tc
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    forget_pid "$SERVER_PID"
}

# start_capture FILE FILTER
start_capture() {
    local file=$1 filter=$2
    : >"$WORK/tcpdump.err"
    # no "timeout" wrapper here: stop_capture signals tcpdump itself (SIGUSR1
    # for statistics, which timeout would not relay); the watchdog bounds it.
    # --immediate-mode: hand every packet to tcpdump at once, so that what the
    # kernel accepted is all written when we stop (TPACKET_V3 otherwise holds
    # packets in ring blocks for up to a second, and they are lost at SIGINT)
    ip netns exec "$NS_CLI" tcpdump --immediate-mode -Z root -i "$IF_CLI" -s 0 -U \
        -w "$file" "$filter" 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    PIDS+=("$TCPDUMP_PID")
    wait_until 10 "tcpdump listening" grep -q "listening on" "$WORK/tcpdump.err"
}

# latest "captured received dropped" figures tcpdump printed: one line
# "tcpdump: N packets captured, M packets received by filter, K packets dropped
# by kernel" after SIGUSR1, three separate lines at exit
tcpdump_stats() {
    grep -oE '[0-9]+ packets? (captured|received by filter|dropped by kernel)' "$WORK/tcpdump.err" |
        awk '/captured/ {c = $1} /received/ {r = $1} /dropped/ {d = $1} END {print c + 0, r + 0, d + 0}'
}

stats_reports() { grep -c 'packets dropped by kernel' "$WORK/tcpdump.err" || true; }

# true when tcpdump has written every packet the kernel let through its filter
# (asks for statistics with SIGUSR1; tcpdump prints them to stderr)
capture_drained() {
    local before captured received dropped
    before=$(stats_reports)
    kill -USR1 "$TCPDUMP_PID"
    wait_until 5 "tcpdump statistics" bash -c "[[ \$(grep -c 'packets dropped by kernel' '$WORK/tcpdump.err') -gt $before ]]"
    read -r captured received dropped < <(tcpdump_stats)
    [[ $dropped -eq 0 ]] || die "tcpdump: $dropped packets dropped by kernel"
    [[ $captured -eq $received ]]
}

stop_capture() {
    wait_until 10 "tcpdump to write every packet" capture_drained
    kill -INT "$TCPDUMP_PID"
    local rc=0
    wait "$TCPDUMP_PID" || rc=$?
    forget_pid "$TCPDUMP_PID"
    tail -3 "$WORK/tcpdump.err" >&2
    [[ $rc -eq 0 ]] || die "tcpdump exited with $rc"
    local captured received
    read -r captured received _ < <(tcpdump_stats)
    [[ $captured -eq $received && $captured -gt 0 ]] \
        || die "tcpdump captured $captured of $received packets"
}

# true when no TCP connection is still open or closing in either namespace
# (LISTEN and TIME-WAIT are fine)
quiescent() {
    local n
    n=$( { in_cli ss -Htan state established state syn-sent state syn-recv \
                state fin-wait-1 state fin-wait-2 state close-wait state last-ack state closing
           in_srv ss -Htan state established state syn-sent state syn-recv \
                state fin-wait-1 state fin-wait-2 state close-wait state last-ack state closing
         } | wc -l)
    [[ $n -eq 0 ]]
}

rst_client() {  # src_addr path
    in_cli timeout 15 "$PY" - "$1" "$FACADE" "$PORT" "$2" <<'EOF'
import socket, struct, sys
src, dst, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
# small receive buffer: the server can only put a little in flight before the RST
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind((src, 0))
s.connect((dst, port))
s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fcap-rst-client\r\n\r\n"
           % (path, dst)).encode())
got = b""
while len(got) < 1000:
    chunk = s.recv(1000 - len(got))
    if not chunk:
        sys.exit("server closed before 1000 bytes")
    got += chunk
assert got.startswith(b"HTTP/1.1 200"), got[:40]
# linger on, timeout 0: close() sends RST instead of FIN
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("rst-client: read %d bytes, closed with RST" % len(got))
EOF
}

url() { echo "http://$FACADE/$1"; }

traffic_mixed() {
    local files=(small.txt medium.bin large.bin small.txt medium.bin medium.bin
                 small.txt large.bin medium.bin missing.txt large.bin medium.bin)
    local jobs=() i pid rc=0
    for i in "${!files[@]}"; do
        in_cli curl -sS --max-time 10 --interface "${CLIENTS[i % 4]}" \
            -o /dev/null -w "curl[$i] ${CLIENTS[i % 4]} %{http_code} %{size_download}\n" \
            "$(url "${files[i]}")" &
        jobs+=($!)
    done
    # one keep-alive connection carrying 5 requests
    in_cli curl -sS -v --max-time 10 --interface "${CLIENTS[1]}" \
        -o /dev/null "$(url small.txt)" -o /dev/null "$(url medium.bin)" \
        -o /dev/null "$(url small.txt)" -o /dev/null "$(url medium.bin)" \
        -o /dev/null "$(url small.txt)" 2>"$WORK/keepalive.log" &
    jobs+=($!)
    # one connection reset by the client
    rst_client "${CLIENTS[2]}" /large.bin &
    jobs+=($!)
    for pid in "${jobs[@]}"; do wait "$pid" || rc=$?; done
    [[ $rc -eq 0 ]] || die "a client failed (rc=$rc)"
    local reused
    reused=$(grep -c 'Re-using existing connection' "$WORK/keepalive.log" || true)
    echo "keep-alive curl: $reused x 'Re-using existing connection'"
    [[ $reused -eq 4 ]] || { cat "$WORK/keepalive.log" >&2; die "keep-alive curl did not reuse its connection"; }
}

traffic_vlan() {
    local files=(small.txt medium.bin small.txt medium.bin)
    local jobs=() i pid rc=0
    for i in "${!files[@]}"; do
        in_cli curl -sS --max-time 10 --interface "${CLIENTS[i]}" \
            -o /dev/null -w "curl[$i] ${CLIENTS[i]} %{http_code} %{size_download}\n" \
            "$(url "${files[i]}")" &
        jobs+=($!)
    done
    for pid in "${jobs[@]}"; do wait "$pid" || rc=$?; done
    [[ $rc -eq 0 ]] || die "a client failed (rc=$rc)"
}

# The http-filter capture: one connection after the other (README.md says
# what each one is for).
traffic_http_filter() {
    local c=("${CLIENTS[@]}") reused
    # two sends must make two segments, not wait for each other in the stack
    in_cli sysctl -qw net.ipv4.tcp_autocorking=0
    in_cli curl -sS -v --max-time 10 --interface "${c[0]}" \
        -o /dev/null "$(url small.txt)" -o /dev/null "$(url medium.bin)" \
        -o /dev/null "$(url small.txt)" 2>"$WORK/keepalive.log"
    reused=$(grep -c 'Re-using existing connection' "$WORK/keepalive.log" || true)
    [[ $reused -eq 2 ]] || { cat "$WORK/keepalive.log" >&2; die "keep-alive curl did not reuse its connection"; }
    echo "curl ${c[0]}: 3 requests on one connection"
    in_cli curl -sS --max-time 10 --interface "${c[1]}" -H "Host: $FACADE:$PORT" \
        -o /dev/null -w "curl ${c[1]}: Host $FACADE:$PORT, %{http_code}\n" "$(url small.txt)"
    in_cli timeout 15 "$PY" "$HERE/http-filter-clients.py" pipelined "${c[2]}" "$FACADE" "$PORT"
    # a Content-Length body (no 100-continue), then a GET on the same connection
    in_cli curl -sS -v --max-time 10 --interface "${c[3]}" -H 'Expect:' \
        --data-binary @"$WORK/post-body.txt" -o /dev/null "$(url upload)" \
        --next --interface "${c[3]}" -o /dev/null "$(url small.txt)" 2>"$WORK/post.log"
    grep -q 'Re-using existing connection' "$WORK/post.log" \
        || { cat "$WORK/post.log" >&2; die "POST curl did not reuse its connection"; }
    echo "curl ${c[3]}: POST with Content-Length, then a GET"
    in_cli timeout 15 "$PY" "$HERE/http-filter-clients.py" chunked "${c[0]}" "$FACADE" "$PORT"
    in_cli curl -sS -v --max-time 10 --interface "${c[1]}" -H 'Expect: 100-continue' \
        --data-binary @"$WORK/expect-body.bin" -o /dev/null "$(url upload)" \
        --next --interface "${c[1]}" -o /dev/null "$(url small.txt)" 2>"$WORK/expect.log"
    grep -q '< HTTP/1.1 100 Continue' "$WORK/expect.log" \
        || { cat "$WORK/expect.log" >&2; die "no 100 Continue for the Expect request"; }
    grep -q 'Re-using existing connection' "$WORK/expect.log" \
        || { cat "$WORK/expect.log" >&2; die "Expect curl did not reuse its connection"; }
    echo "curl ${c[1]}: POST with Expect: 100-continue (answered 100), then a GET"
    in_cli timeout 15 "$PY" "$HERE/http-filter-clients.py" split "${c[2]}" "$FACADE" "$PORT"
    in_cli timeout 15 "$PY" "$HERE/http-filter-clients.py" not-http "${c[3]}" "$FACADE" "$PORT"
    in_cli timeout 15 "$PY" "$HERE/http-filter-clients.py" retransmit "${c[0]}" "$FACADE" "$PORT"
}

# capture MODE OUTFILE FILTER TRAFFIC_FN [SERVER]   (SERVER: plain or filter)
capture() {
    local mode=$1 out=$2 filter=$3 fn=$4 server=${5:-plain}
    echo "== $out ($mode)"
    setup_topology "$mode"
    if [[ $server == filter ]]; then
        drop_marked_on_server
        start_filter_server
    else
        start_server
    fi
    start_capture "$WORK/cap.pcap" "$filter"
    "$fn"
    wait_until 10 "all TCP connections closed" quiescent
    stop_capture
    stop_server
    teardown_netns
    mv "$WORK/cap.pcap" "$OUT_DIR/$out"
    chmod 644 "$OUT_DIR/$out"
}

make_docroot
if wanted vlan; then
    capture vlan http-vlan-eth.pcap "vlan $VLAN_ID and tcp" traffic_vlan
    echo "== checking VLAN tags"
    tcpdump -r "$OUT_DIR/http-vlan-eth.pcap" -nn -e -c 2 2>/dev/null
    untagged=$(tcpdump -r "$OUT_DIR/http-vlan-eth.pcap" -nn -e 2>/dev/null | grep -vc "vlan $VLAN_ID" || true)
    [[ $untagged -eq 0 ]] || die "$untagged frames without 'vlan $VLAN_ID' in http-vlan-eth.pcap"
fi
if wanted http-filter; then
    capture plain http-filter-eth.pcap 'tcp' traffic_http_filter filter
fi
if wanted mixed; then
capture plain http-mixed-eth.pcap 'tcp' traffic_mixed

echo "== http-mixed-raw.pcap"
"$PY" "$HERE/to-raw-ip.py" "$OUT_DIR/http-mixed-eth.pcap" "$OUT_DIR/http-mixed-raw.pcap"
raw_head=$(tcpdump -r "$OUT_DIR/http-mixed-raw.pcap" -nn -c 3 2>&1)
echo "$raw_head"
grep -q 'link-type RAW' <<<"$raw_head" || die "raw capture does not read as link-type RAW"
grep -q "IP 198.18.0.[1-4].[0-9]* > $FACADE.$PORT: Flags \[S\]" <<<"$raw_head" \
    || die "raw capture does not decode as IP"

echo "== error fixtures"
printf 'this is not a pcap file, just text\n' >"$OUT_DIR/not-a-capture.pcap"
# first ~1000 bytes of the Ethernet capture, cut inside a packet's data
cut_at=$("$PY" - "$OUT_DIR/http-mixed-eth.pcap" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off = 24
while True:
    incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
    start, end = off + 16, off + 16 + incl
    if end > 1000:
        # byte 1000 if it falls inside this record's packet data, otherwise
        # the middle of that data (never inside the 16-byte record header)
        print(1000 if start < 1000 < end else start + incl // 2)
        break
    off = end
EOF
)
head -c "$cut_at" "$OUT_DIR/http-mixed-eth.pcap" >"$OUT_DIR/truncated.pcap"
echo "truncated.pcap: $cut_at bytes"
chmod 644 "$OUT_DIR/not-a-capture.pcap" "$OUT_DIR/truncated.pcap" "$OUT_DIR/http-mixed-raw.pcap"
fi

echo "== expected.json"
"$PY" "$HERE/summarize.py" --facade "$FACADE:$PORT" -o "$OUT_DIR/expected.json" \
    "$OUT_DIR/http-mixed-eth.pcap" "$OUT_DIR/http-mixed-raw.pcap" "$OUT_DIR/http-vlan-eth.pcap" \
    "$OUT_DIR/http-filter-eth.pcap" "$OUT_DIR/not-a-capture.pcap" "$OUT_DIR/truncated.pcap"
if wanted http-filter; then
    # the marked request segment was lost once and sent again: the capture shows both
    "$PY" - "$OUT_DIR/expected.json" <<'EOF'
import json, sys
facts = json.load(open(sys.argv[1]))["http-filter-eth.pcap"]
if facts["client_retransmissions"] < 1:
    sys.exit("make-captures: http-filter-eth.pcap holds no retransmitted request segment")
print("http-filter-eth.pcap: %d request segment(s) retransmitted" % facts["client_retransmissions"])
EOF
fi
ls -l "$OUT_DIR"/*.pcap
