#!/usr/bin/env bash
# A fleet (issue 15): three XDP edges (host mode, one namespace, one
# interface each) enforce one boundary lookup budget together through a
# 3-member etcd cluster on the namespace's loopback. What the edges let
# through is counted where it arrives (nftables counters at prerouting, by
# interface and port), not by sluiced.
#
#   1. demand 1 : 3 : 6 at 5x the budget, checkpoint lookups only at the
#      smallest edge: after 2 s the fleet admits the budget +-5% every
#      second, and the checkpoint class keeps >= 99% of its lookups
#   2. demand moves from edge 1 to edge 3: shares follow within 2 s
#   3. the etcd leader is killed: nothing changes; then every member stops
#      (shorter than static_sec): the fleet stays within 5% of the budget,
#      and resyncs when etcd returns
#   4. kill -9 of edge 1 while its clients keep sending: its pinned program
#      keeps enforcing its last share, the others hold that share for
#      static_sec (total within the budget +5%), then take it over (total
#      within the budget plus the dead edge's share, the documented bound)
#
# "Every second" skips the seconds in which a load generator stalled (did
# not run for 50 ms or more, so the load was not offered) and the second
# after, and those whose counter reads were held up for 150 ms or more;
# more than a third of a window skipped fails the check. A second is judged
# with the error of its counter reads: its length is known to within the
# time they took (fleet_tools.py check).
#
# With "dpdk", edge 3 is a DPDK edge (af_packet ports, inline: its inside
# port's frames are counted) and the run is phases 1, 2 and 5.
#
# Usage: fleet_test.sh BUILD_DIR SOURCE_DIR [dpdk]
set -euo pipefail
build=$1
src=$2
variant=${3:-xdp}
source "$src/tests/integration/lab.sh"
lab_require_root "network namespaces, XDP and nftables"
if ! command -v etcd >/dev/null; then
  if [[ -n ${CI:-} ]]; then
    echo "FAIL: etcd is not installed (scripts/install-deps installs etcd-server)" >&2
    exit 1
  fi
  echo "SKIP: etcd is not installed (outside CI)"
  exit 77
fi

sluiced=$build/control/sluiced
py=/usr/bin/python3
tools=$src/tests/integration/fleet_tools.py
flood=$src/tests/integration/flood_tools.py
tmp=$(mktemp -d)
ns_c=sl-fc-$LAB_ID # clients
ns_s=sl-fs-$LAB_ID # the edges, etcd, the service they protect
budget=500         # boundary lookups per second, fleet-wide
static_sec=8
service=198.18.0.1
pids=()
etcd_pid=()
edge_pid=()
failures=0
cleanup() {
  for p in "${pids[@]}" "${etcd_pid[@]}" "${edge_pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if ((failures > 0)); then
    mkdir -p /tmp/sluice-test-logs && cp "$tmp"/*.log "$tmp"/*.jsonl /tmp/sluice-test-logs/ 2>/dev/null
    echo "logs kept in /tmp/sluice-test-logs"
  fi
  for i in 1 2 3; do
    [[ -f $tmp/edge$i.toml ]] &&
      nsenter --net="/run/netns/$ns_s" "$sluiced" --config "$tmp/edge$i.toml" --detach --all >/dev/null 2>&1
  done
  for ns in "$ns_c" "$ns_s"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$tmp"
  return 0
}
trap cleanup EXIT
in_s() { ip netns exec "$ns_s" "$@"; }

# --- the network: client veths c1..c3 <-> edge interfaces s1..s3 ----------
ip netns add "$ns_c"
ip netns add "$ns_s"
ip -n "$ns_c" link set lo up
ip -n "$ns_s" link set lo up
for i in 1 2 3; do
  ip link add "c$i" netns "$ns_c" type veth peer name "s$i" netns "$ns_s"
  ip -n "$ns_c" link set "c$i" up
  ip -n "$ns_s" link set "s$i" up
done
ip -n "$ns_s" addr add "$service/32" dev lo
if [[ $variant == dpdk ]]; then
  # Edge 3 bridges s3 -> i3a; what it forwards arrives on i3b, which has s3's
  # MAC address so that the frames are the stack's (and counted) there.
  ip -n "$ns_s" link add i3a type veth peer name i3b
  ip -n "$ns_s" link set i3b address "$(ip -n "$ns_s" link show s3 | awk '/link\/ether/ {print $2}')"
  for dev in s3 i3a i3b; do
    ip -n "$ns_s" link set "$dev" up
    ip netns exec "$ns_s" ethtool -K "$dev" gro off tso off gso off tx off >/dev/null 2>&1 || true
  done
fi
arrives() { [[ $variant == dpdk && $1 == 3 ]] && echo i3b || echo "s$1"; }
# What the edges pass, counted as it arrives: SYNs by interface and port.
{
  echo "table inet sl_fleet {"
  for i in 1 2 3; do
    for port in 443 8443; do echo "  counter s${i}_$port {}"; done
  done
  echo "  chain pre { type filter hook prerouting priority -300;"
  for i in 1 2 3; do
    for port in 443 8443; do
      echo "    iifname \"$(arrives "$i")\" tcp dport $port tcp flags syn counter name s${i}_$port"
    done
  done
  echo "  }"
  echo "}"
} >"$tmp/count.nft"
in_s nft -f "$tmp/count.nft"

# --- etcd: three members on the namespace's loopback -------------------------
cluster=""
for m in 1 2 3; do cluster+="${cluster:+,}m$m=http://127.0.0.1:$((23800 + m))"; done
start_member() {
  local m=$1 state=$2
  ip netns exec "$ns_s" etcd --name "m$m" --data-dir "$tmp/etcd-m$m" \
    --listen-client-urls "http://127.0.0.1:$((23700 + m))" \
    --advertise-client-urls "http://127.0.0.1:$((23700 + m))" \
    --listen-peer-urls "http://127.0.0.1:$((23800 + m))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + m))" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" \
    --auto-compaction-mode periodic --auto-compaction-retention 1h \
    --unsafe-no-fsync >>"$tmp/etcd-m$m.log" 2>&1 &
  etcd_pid[$m]=$!
  disown # killed on purpose below: no job notices
}
endpoints=http://127.0.0.1:23701,http://127.0.0.1:23702,http://127.0.0.1:23703
etcdctl() { in_s env ETCDCTL_API=3 /usr/bin/etcdctl --endpoints="$endpoints" --dial-timeout=1s --command-timeout=2s "$@"; }
etcd_healthy() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    etcdctl endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
for m in 1 2 3; do start_member "$m" new; done
etcd_healthy 20 || {
  echo "FAIL: the etcd cluster did not come up"
  failures=1
  exit 1
}

# --- three edges ---------------------------------------------------------------
dataplane_toml() {
  if [[ $variant == dpdk && $1 == 3 ]]; then
    cat <<TOML
mode = "dpdk"
outside = "net_af_packet0,iface=s3"
inside = "net_af_packet1,iface=i3a"
dpdk_idle_sleep_us = 50
dpdk_standby = "none"
TOML
  else
    printf 'mode = "xdp"\noutside = "s%s"\n' "$1"
  fi
}
for i in 1 2 3; do
  cat >"$tmp/edge$i.toml" <<TOML
[dataplane]
$(dataplane_toml "$i")
pin_path = "/sys/fs/bpf/sluice-fleet-$LAB_ID-$i"

[metrics]
listen = "127.0.0.1:$((19200 + i))"

[control]
socket = "$tmp/edge$i.sock"
audit_log = "$tmp/audit$i.jsonl"

[fleet]
etcd = ["http://127.0.0.1:23701", "http://127.0.0.1:23702", "http://127.0.0.1:23703"]
prefix = "/sluice/test-$LAB_ID"
node = "edge-$i"
static_sec = $static_sec
sync_ms = 250

# The fleet tables: the first edge to start seeds the fleet config with them.
[boundary]
lookups_per_sec = $budget

[[class]]
name = "checkpoint"
priority = 0
match = { proto = "tcp", dst_ports = 8443 }
shed_order = "random"

[[class]]
name = "citizen"
priority = 4
match = { proto = "tcp", dst_ports = 443 }
shed_order = "random"
TOML
done
start_edge() {
  local i=$1
  STATE_DIRECTORY=$tmp/state nsenter --net="/run/netns/$ns_s" "$sluiced" --config "$tmp/edge$i.toml" \
    --log-interval 60 >>"$tmp/edge$i.log" 2>&1 &
  edge_pid[$i]=$!
  disown
}
for i in 1 2 3; do
  start_edge "$i"
  wait_for "$tmp/edge$i.log" 'msg=started' 30
done
check "edge 3 runs the $variant dataplane" "$(grep -c "msg=started mode=$variant" "$tmp/edge3.log") == 1"
check "the first edge seeded the fleet config from its file" \
  "$(grep -c 'seeded it from' "$tmp/edge1.log") == 1 && $(grep -c 'seeded it from' "$tmp/edge2.log") == 0"

mac() { ip -n "$1" link show "$2" | awk '/link\/ether/ {print $2}'; }
# load I PORT RATE SECONDS SRC: SYNs from 100 sources through edge I, each
# frame on its own (no back-to-back batches: an edge's share of the burst is
# a fraction of the fleet's).
load() {
  ip netns exec "$ns_c" "$py" "$flood" syn-load --iface "c$1" --src-mac "$(mac "$ns_c" "c$1")" \
    --dst-mac "$(mac "$ns_s" "s$1")" --dst "$service" --dport "$2" --rate "$3" --seconds "$4" \
    --src-first "$5" --src-count 100 --batch 1 >>"$tmp/load.jsonl" &
  pids+=($!)
}
# count SECONDS FILE: per-second SYN rates by interface and port.
count() {
  in_s "$py" "$tools" count --table sl_fleet --seconds "$1" --out "$2" &
  pids+=($!)
}
# within FILE FROM TO LO HI NAMES...: every second whose sample is labelled in
# [FROM, TO) sums within (a sample is labelled with the end of its second:
# FROM 3 is the second from 2 s to 3 s; a load's last second is partial: TO
# is at most its length). Seconds in which a load generator stalled, and the
# second after, are not judged (fleet_tools.py check --stalls).
within() {
  local file=$1 from=$2 to=$3 lo=$4 hi=$5
  shift 5
  "$py" "$tools" check "$file" --start "$from" --end "$to" --lo "$lo" --hi "$hi" --names "$@" \
    --stalls "$tmp/load.jsonl" >"$file.check" 2>&1
  local rc=$?
  cat "$file.check"
  return $rc
}
lo=$((budget * 95 / 100))
hi=$((budget * 105 / 100))
total=$((budget * 5)) # offered: 1 : 3 : 6

# --- 1. demand 1 : 3 : 6 at 5x ---------------------------------------------------
# Edge 1: 50/s checkpoint + 200/s citizens; edge 2: 750; edge 3: 1500.
count 12 "$tmp/p1.jsonl"
load 1 8443 50 12 198.18.10.1
load 1 443 $((total / 10 - 50)) 12 198.18.21.1
load 2 443 $((total * 3 / 10)) 12 198.18.22.1
load 3 443 $((total * 6 / 10)) 12 198.18.23.1
sleep 10 # (mid-load: the figures below are kept for a failure's logs)
for i in 1 2 3; do in_s curl -s "http://127.0.0.1:$((19200 + i))/metrics" >"$tmp/metrics-p1-$i.log"; done
wait "${pids[@]}"
pids=()
ok=0
within "$tmp/p1.jsonl" 3 12 "$lo" "$hi" s1_ s2_ s3_ && ok=1
check "1:3:6 at 5x: the fleet admits $budget/s +-5% every second after 2 s" "$ok"
# Per second within one lookup (nftables counts a SYN that arrives at a
# second's edge in the next one: 51 then 49), and >= 99% over the window.
ok=0
"$py" "$tools" check "$tmp/p1.jsonl" --start 3 --end 12 --lo 48 --hi 1000 --mean-lo 49.5 \
  --names s1_8443 --stalls "$tmp/load.jsonl" && ok=1
check "the checkpoint lookups at the smallest edge keep >= 99% (of 50/s)" "$ok"

# --- 2. demand moves from edge 3 to edge 1 -------------------------------------
share() { # EDGE: its share of the boundary lookup budget now
  in_s curl -s "http://127.0.0.1:$((19200 + $1))/metrics" |
    awk '/^sluice_fleet_share_per_sec\{budget="boundary_lookups"/ {print int($2)}'
}
before1=$(share 1) before3=$(share 3)
count 10 "$tmp/p2.jsonl"
load 1 443 $((total * 6 / 10)) 10 198.18.21.1
load 2 443 $((total * 3 / 10)) 10 198.18.22.1
load 3 443 $((total / 10)) 10 198.18.23.1
sleep 2 # (the time the shares have to follow)
after1=$(share 1) after3=$(share 3)
wait "${pids[@]}"
pids=()
echo "shares of edges 1 and 3: $before1 and $before3 before, $after1 and $after3 2 s after the move"
check "2 s after demand moved from edge 3 to edge 1, their shares swapped (1: $before1 -> $after1, 3: $before3 -> $after3)" \
  "before3 > 2 * before1 && after1 > 3 * after3"
ok=0
within "$tmp/p2.jsonl" 3 10 "$lo" "$hi" s1_ s2_ s3_ && ok=1
check "and the fleet admits the budget +-5% every second from then on" "$ok"

if [[ $variant == xdp ]]; then
# --- 3. etcd: the leader killed, then every member stopped ----------------------
leader=$(etcdctl endpoint status -w json | "$py" -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["header"]["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"].rsplit(":", 1)[1][-1])')
count 16 "$tmp/p3.jsonl"
load 1 443 $((total / 10)) 16 198.18.21.1
load 2 443 $((total * 3 / 10)) 16 198.18.22.1
load 3 443 $((total * 6 / 10)) 16 198.18.23.1
sleep 3 # (the load's settling time: no condition to await)
kill -9 "${etcd_pid[$leader]}"
sleep 4
for m in 1 2 3; do kill -9 "${etcd_pid[$m]}" 2>/dev/null || true; done
outage_start=$SECONDS
sleep 5
for m in 1 2 3; do start_member "$m" existing; done
wait "${pids[@]}"
pids=()
ok=0
within "$tmp/p3.jsonl" 2 16 "$lo" "$hi" s1_ s2_ s3_ && ok=1
check "etcd leader killed, then all of etcd stopped for 5 s (< static_sec): the fleet stays within 5%" "$ok"
check "the edges said etcd was unreachable" "$(cat "$tmp"/edge?.log | grep -c 'etcd unreachable; keeping the last shares') >= 3"
etcd_healthy 20 || true
resynced=0
for _ in $(seq 1 100); do
  n=0
  for i in 1 2 3; do
    in_s curl -s "http://127.0.0.1:$((19200 + i))/metrics" | grep -q '^sluice_fleet_etcd_up 1' && n=$((n + 1))
  done
  ((n == 3)) && resynced=1 && break
  sleep 0.1
done
check "every edge resynced when etcd returned" "$resynced"

# --- 4. kill -9 of an edge ---------------------------------------------------
count_launched=$(date +%s.%N)
count 22 "$tmp/p4.jsonl"
load 1 443 $((total * 3 / 10)) 22 198.18.21.1
load 2 443 $((total * 3 / 10)) 22 198.18.22.1
load 3 443 $((total * 4 / 10)) 22 198.18.23.1
sleep 3
# What edge 1 enforces from now on: its last share.
share1=$(in_s curl -s http://127.0.0.1:19201/metrics |
  awk '/^sluice_fleet_share_per_sec\{budget="boundary_lookups"/ {print int($2)}')
kill -9 "${edge_pid[1]}"
# The kill on the counter's clock: at least 3 s (the sleep), and at most the
# time since the counter was launched (it starts counting a little later),
# rounded up: on a busy machine the kill can come well after 3 s.
killed_at=3
killed_late=$(awk -v a="$count_launched" -v b="$(date +%s.%N)" \
  'BEGIN { x = b - a; print (x == int(x)) ? x : int(x) + 1 }')
wait "${pids[@]}"
pids=()
# Its record goes when its lease expires (lease_ttl_sec 3, counted from its
# last keepalive, sent every ttl/3: 2 to 3 s after the kill); static_sec
# later the others release its share. The earliest second it can happen in:
released=$((killed_at + 3 - 1 + static_sec))
# From the kill on (second 3), as section 1 judges from second 3: the
# seconds before it hold the loads' start (a rehearsal saw 451 then 529 in
# seconds 1 and 2, 980 in both, with no stall flagged).
ok=0
within "$tmp/p4.jsonl" "$killed_at" "$released" "$lo" "$hi" s1_ s2_ s3_ && ok=1
check "edge 1 killed: until static_sec the fleet, edge 1 included, stays within 5%" "$ok"
# The first whole second after the latest it can happen in.
ok=0
within "$tmp/p4.jsonl" $((killed_late + 3 + static_sec + 1)) 22 "$lo" "$hi" s2_ s3_ && ok=1
check "after static_sec edges 2 and 3 take over the budget" "$ok"
ok=0
within "$tmp/p4.jsonl" 1 22 0 $(((budget + share1) * 105 / 100)) s1_ s2_ s3_ && ok=1
check "the fleet total stays within the documented bound: budget + the dead edge's share ($share1)" "$ok"

start_edge 1 # adopts its pinned program and rejoins the fleet
wait_for "$tmp/edge1.log" 'msg=started.*adopted=true' 20
# It runs the fleet config's revision, as the others do, not the next
# number its adopted state would have taken.
config_generation() {
  in_s curl -s "http://127.0.0.1:$((19200 + $1))/metrics" |
    sed -nE 's/^sluice_config_generation ([0-9]+)$/\1/p'
}
g1=$(config_generation 1)
g2=$(config_generation 2)
check "edge 1, adopting, runs the fleet's generation ($g1, edge 2 $g2)" "${g1:-0} == ${g2:-1}"
fi # xdp

# --- 5. policy in etcd --------------------------------------------------------
ctl() { "$build/control/sluicectl" --socket "$tmp/edge$1.sock" "${@:2}"; }
fctl() { in_s "$build/control/sluicectl" --fleet --config "$tmp/edge2.toml" "$@"; }
out=$(ctl 2 set boundary.lookups_per_sec=600 2>&1) && rc=0 || rc=$?
check "a local change of a fleet key is refused, naming sluicectl --fleet (rc $rc)" \
  "rc == 1 && $(grep -c 'sluicectl --fleet set' <<<"$out") == 1"
out=$(fctl set boundary.lookups_per_sec=0 2>&1) && rc=0 || rc=$?
check "a fleet change the validator refuses names the key and changes nothing (rc $rc)" \
  "rc == 1 && $(grep -c 'boundary.lookups_per_sec' <<<"$out") >= 1"
out=$(fctl set dataplane.mode=dpdk 2>&1) && rc=0 || rc=$?
check "a fleet change of an edge's own key is refused (rc $rc)" \
  "rc == 1 && $(grep -c "each edge's own" <<<"$out") == 1"
out=$(fctl set boundary.lookups_per_sec=600 2>&1) && rc=0 || rc=$?
echo "$out"
gen=$(sed -nE 's/applied as generation ([0-9]+)/\1/p' <<<"$out")
check "sluicectl --fleet set applies to every edge (rc $rc)" \
  "rc == 0 && $(grep -c 'every live edge runs it' <<<"$out") == 1"
# sluicectl waited for the edges' records; their /metrics and audit logs
# follow within a moment (bounded wait).
runs_everywhere() {
  local i n=0
  for i in 1 2 3; do
    in_s curl -s "http://127.0.0.1:$((19200 + i))/metrics" | grep -q "^sluice_config_generation $gen\$" && n=$((n + 1))
    grep -q "\"new_generation\":$gen" "$tmp/audit$i.jsonl" && n=$((n + 1))
  done
  ((n == 6))
}
n=0
for _ in $(seq 1 40); do
  runs_everywhere && n=6 && break
  sleep 0.05
done
if ((n != 6)); then
  for i in 1 2 3; do
    echo "edge $i: $(in_s curl -s "http://127.0.0.1:$((19200 + i))/metrics" | grep '^sluice_config_generation'); audit: $(tail -1 "$tmp/audit$i.jsonl" | cut -c1-200)"
  done
fi
check "every edge runs generation $gen (the config key's revision) and audited it" "n == 6"
check "the audit line names who changed the fleet" \
  "$(grep "\"new_generation\":$gen" "$tmp/audit3.jsonl" | grep -c 'sluicectl --fleet')== 1"
out=$(fctl rollback 2>&1) && rc=0 || rc=$?
check "sluicectl --fleet rollback returns every edge to the budget before (rc $rc)" \
  "rc == 0 && $(grep -c 'boundary.lookups_per_sec: 600 -> 500' <<<"$out") == 1"
# A change every edge's validator refuses (an adaptive boundary on host-mode
# edges): written, refused by the edges, which keep what they run, and
# sluicectl says so per edge and exits 1. Turning it back applies everywhere.
out=$(fctl set boundary.adaptive=true 2>&1) && rc=0 || rc=$?
echo "$out"
check "a fleet change the edges refuse exits 1, naming each edge and why (rc $rc)" \
  "rc == 1 && $(grep -c "^sluicectl --fleet: edge edge-[12] refused it and keeps the config it runs, and its budgets .*inline mode only" <<<"$out") == 2"
# With dpdk, edge 3 (inline) runs it and publishes a learned rate; edges 1
# and 2 learned none, so turning it off keeps the ceiling (not frozen at
# edge 3's rate).
if [[ $variant == dpdk ]]; then
  deadline=$((SECONDS + 10))
  until etcdctl get "/sluice/test-$LAB_ID/edges/edge-3" --print-value-only 2>/dev/null |
    grep -q adaptive_rate; do
    ((SECONDS < deadline)) || break
    sleep 0.05
  done
  check "edge 3 (inline) runs the adaptive boundary and published its learned rate" \
    "$(etcdctl get "/sluice/test-$LAB_ID/edges/edge-3" --print-value-only 2>/dev/null | grep -c adaptive_rate) == 1"
fi
out=$(fctl set boundary.adaptive=false 2>&1) && rc=0 || rc=$?
echo "$out"
rate=$(ctl 1 --json status | "$py" -c 'import json,sys; print(json.load(sys.stdin)["boundary"]["lookups_per_sec"])' 2>/dev/null || echo 0)
check "turning it back reaches every edge and keeps the fleet's $budget/s (rc $rc, $rate/s)" \
  "rc == 0 && $(grep -c 'every live edge runs it' <<<"$out") == 1 && $rate == $budget"
out=$(ctl 2 status)
check "status shows the fleet, its sync and this edge's shares" \
  "$(grep -c "^fleet /sluice/test-$LAB_ID as edge-2: 3 edges live, 0 held; etcd in sync" <<<"$out") == 1 && \
   $(grep -c "^this edge's shares: boundary_lookups [0-9]*/s" <<<"$out") == 1"
# SIGHUP on a member reloads its own tables only: the fleet's stay.
gen_before=$(ctl 2 --json status | "$py" -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
sed -i "s/^lookups_per_sec = $budget/lookups_per_sec = 7/" "$tmp/edge2.toml"
kill -HUP "${edge_pid[2]}"
wait_for "$tmp/edge2.log" 'msg=reloaded' 10
out=$(ctl 2 --json status)
gen_after=$(field "$out" generation 2>/dev/null || echo "?")
rate_after=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["boundary"]["lookups_per_sec"])' \
  "$out" 2>/dev/null || echo "?")
kept=0
if [[ $gen_after == "$gen_before" && $rate_after == "$budget" ]]; then
  kept=1
else  # what it saw, for the log
  echo "generation $gen_before -> $gen_after, lookups_per_sec $rate_after," \
    "$(grep -c 'msg=reloaded' "$tmp/edge2.log") reloads logged; status: ${out:0:300}"
fi
check "SIGHUP on a member whose file says 7/s keeps the fleet's $budget/s and generation" "kept == 1"
# A second edge under the name a live edge holds (a copied config): refused
# at the join, naming the live one; its shares would add to edge 2's.
sed -e "s|^pin_path = .*|pin_path = \"/sys/fs/bpf/sluice-fleet-$LAB_ID-dup\"|" \
  -e "s|^socket = .*|socket = \"$tmp/dup.sock\"|" -e "s|^audit_log = .*|audit_log = \"$tmp/audit-dup.jsonl\"|" \
  -e "s|^listen = .*|listen = \"127.0.0.1:19209\"|" "$tmp/edge2.toml" >"$tmp/dup.toml"
STATE_DIRECTORY=$tmp/state nsenter --net="/run/netns/$ns_s" "$sluiced" --config "$tmp/dup.toml" \
  >>"$tmp/dup.log" 2>&1 &
pids+=($!)
wait_for "$tmp/dup.log" 'msg="not in charge"' 20
dup_status=$("$build/control/sluicectl" --socket "$tmp/dup.sock" status 2>&1 || true)
kill "${pids[@]}"
pids=()
check "a second edge named edge-2 is refused, naming the live one" \
  "$(grep -c 'fleet.node \\"edge-2\\" is held by a live edge at' "$tmp/dup.log") >= 1"
# Not the file: status says the fleet could not be joined, not "fix the file".
check "its status says the fleet could not be joined: $(head -c 160 <<<"$dup_status")" \
  "$(grep -c 'the fleet could not be joined' <<<"$dup_status") == 1 && $(grep -c 'and reload' <<<"$dup_status") == 0"

# 100 changes: how long until every edge's dataplane runs each.
in_s "$py" "$tools" retune-latency --sluicectl "$build/control/sluicectl" --config "$tmp/edge2.toml" \
  --metrics http://127.0.0.1:19201/metrics http://127.0.0.1:19202/metrics http://127.0.0.1:19203/metrics \
  --changes 100 >"$tmp/latency.json"
cat "$tmp/latency.json"
check "100 fleet changes each reached every edge's dataplane" \
  "$(field "$(cat "$tmp/latency.json")" reached) == 100"

echo "fleet: $passes passed, $failures failed"
((failures == 0))
