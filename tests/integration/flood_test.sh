#!/usr/bin/env bash
# Floods through sluiced (issue 10, verified continuations), live, for IPv4
# and IPv6, on the dataplane given (xdp: inline XDP; dpdk: net_af_packet
# vdevs on the edge's veths):
#
#  A/B. crafted TCP ACKs (no connection behind them) toward the backend at
#       >= 10x the boundary packet budget, from one spoofed source (A) and
#       from 1,000 (B), all outside the protected prefixes: the protected
#       class still gets >= 99% of its connections answered, and a download
#       that started before the flood completes during it;
#  C.   the same from 200 spoofed sources INSIDE the protected prefix: the
#       unverified ACKs are charged to the class and to their sources'
#       per-source buckets, so they can take at most 200 x R lookups/s (+ the
#       sources' bursts); the class's rate covers that plus the legitimate
#       clients, who still get >= 99% answered;
#  ND.  IPv6 neighbour discovery during B's flood, neighbour caches flushed
#       and not pinned: ND passes sluiced untouched, >= 99% answered;
#  D.   B's flood within 1 s of a fresh start, in the learning window
#       (flow_learn_sec = 10): flows still being learned take the packet
#       budget only down to their class's reserve, >= 99% answered.
# XDP only:
#  4.   a fresh start under established traffic resets none of it: SIGTERM
#       and --detach (the pass-through forwards; maps and flow table gone),
#       then start again; the learning
#       window re-learns the running downloads, the inside confirms them,
#       they complete;
#  5.   kill -9 and a restart that adopts the pins keeps the flows: with no
#       learning window, the downloads' packets still count as continuations
#       (never `unverified`) and complete.
#
# Usage: flood_test.sh BUILD_DIR SOURCE_DIR [xdp|dpdk]
set -euo pipefail
build=$1
src=$2
dataplane=${3:-xdp}
LAB_XDP_PASS=$build/tests/bpf/xdp_pass.bpf.o
source "$src/tests/integration/lab.sh"
lab_require_root
case $dataplane in xdp | dpdk) ;; *) echo "unknown dataplane '$dataplane'" >&2; exit 2 ;; esac

sluiced=$build/control/sluiced
sluicectl=$build/control/sluicectl
tools=$src/tests/integration/flood_tools.py
tmp=$(mktemp -d)
pin=/sys/fs/bpf/sluice-flood-$LAB_ID
cfg=$tmp/sluice.toml
metrics_port=19129
daemon_pid=
cleanup() {
  [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null
  if ((failures > 0)); then
    mkdir -p /tmp/sluice-test-logs && cp "$tmp"/*.log "$tmp"/*.json "$tmp"/*.txt /tmp/sluice-test-logs/ 2>/dev/null
    echo "logs kept in /tmp/sluice-test-logs"
  fi
  # Whatever a killed sluiced left pinned (XDP) goes with the lab.
  if [[ $dataplane == xdp && -e /run/netns/$LAB_EDGE ]]; then
    nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach --all >/dev/null 2>&1 || true
  fi
  lab_down
  rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
test_start=$SECONDS

# --- the numbers --------------------------------------------------------------
pps=3000            # boundary.packets_per_sec
pps_burst=300       # boundary.packets_burst
flood_rate=100000   # the sender aims at ~33x the packet budget...
flood_min=$((10 * pps))  # ...and the dataplane must see at least 10x
flood_sec=7         # floods last at least this long, and until the clients are done...
flood_max=15        # ...but no longer than this
cls_rate=2000       # checkpoint: class rate and burst
cls_burst=2000
src_rate=5          # checkpoint: per_source (per /32, per /64)
src_burst=5
legit_n=10          # legitimate checkpoint clients (one address each)...
legit_count=20      # ...each opening this many connections...
legit_interval=0.25 # ...4/s, within its per-source 5/s
legit_total=$((legit_n * legit_count))
attack_c=200        # case C: spoofed sources inside the protected prefix
dl_bytes=2500000    # download during a flood: 5 s at 500 kB/s
dl_rate=500000
# Case C's bound: each of the attacker's N sources has its own bucket, so its
# unverified ACKs can take at most N x (B + R x t) lookups of the class in t
# seconds; the class bucket (2000/s) leaves 2000 - N x R = 1000/s for the
# legitimate clients, who need 10 x 4/s = 40/s (required: 10x that room).
attack_bound_rate=$((attack_c * src_rate))
((cls_rate - attack_bound_rate >= 10 * legit_n * 4)) || { echo "case C numbers leave no room" >&2; exit 2; }

# --- the lab ----------------------------------------------------------------
# Protected prefixes: 198.18.10.0/24 and 2001:2:0:1000::/56 (per-source
# buckets are per /64 in IPv6, so the protected IPv6 clients are 256 /64s,
# as the IPv4 ones are 256 /32s). Legitimate clients: .2-.11 and
# 2001:2:0:10NN::2 (NN = 00..09); the downloads come from .20 and
# 2001:2:0:1010::2. Case C's attacker spoofs .50-.249 and the /64s
# 2001:2:0:1032:: .. 2001:2:0:10f9::. Cases A/B spoof 198.18.200.0/22 and
# 2001:2:0:f000::/52.
legit_v4=() legit_v6=()
for i in $(seq 0 $((legit_n - 1))); do
  legit_v4+=("198.18.10.$((2 + i))")
  legit_v6+=("2001:2:0:100$i::2")
done
dl_v4=198.18.10.20
dl_v6=2001:2:0:1010::2
for a in "${legit_v4[@]}" "$dl_v4"; do
  ip -n "$LAB_CLIENT" addr replace "$a/16" dev c0
done
for a in "${legit_v6[@]}" "$dl_v6"; do
  ip -n "$LAB_CLIENT" addr replace "$a/48" dev c0 nodad
done
c0_mac=$(ip netns exec "$LAB_CLIENT" cat /sys/class/net/c0/address)
b0_mac=$(ip netns exec "$LAB_BACKEND" cat /sys/class/net/b0/address)
# The backend reaches the client side through a gateway that is the client
# veth, pinned (nobody owns its address): its answers to spoofed sources
# (RSTs to the ACKs the edge admits) go back out through the edge without
# neighbour resolution for thousands of addresses that nobody owns. The
# client resolves the backend as usual (ARP, IPv6 neighbour discovery): both
# pass sluiced untouched, never charged, whatever the flood.
ip -n "$LAB_BACKEND" neigh replace 198.18.0.254 lladdr "$c0_mac" dev b0 nud permanent
ip -n "$LAB_BACKEND" neigh replace 2001:2::fe lladdr "$c0_mac" dev b0 nud permanent
for p in 198.18.10.0/24 198.18.200.0/22; do
  ip -n "$LAB_BACKEND" route replace "$p" via 198.18.0.254 dev b0
done
for p in 2001:2:0:1000::/56 2001:2:0:f000::/52; do
  ip -n "$LAB_BACKEND" -6 route replace "$p" via 2001:2::fe dev b0
done

if [[ $dataplane == dpdk ]]; then
  # af_packet sees frames after the veth's offloads: keep them whole.
  for dev in "$LAB_E_OUT" "$LAB_E_IN"; do
    ip netns exec "$LAB_EDGE" ethtool -K "$dev" gro off tso off gso off tx off >/dev/null 2>&1 || true
  done
  # sluiced pins its worker to the last allowed CPU: the flood sender, the
  # clients and the servers keep off it (time-sliced, the worker would
  # stall for milliseconds and shed admitted packets as queue_delay).
  others=$(/usr/bin/python3 -c "import os; c = sorted(os.sched_getaffinity(0)); print(','.join(map(str, c[:-1])))")
  if [[ -n $others ]]; then
    printf '#!/bin/sh\nexec taskset -c %s /usr/bin/python3 "$@"\n' "$others" >"$tmp/py"
    chmod +x "$tmp/py"
    lab_py=$tmp/py
  fi
  # The queues hold what the packet budget's burst admits (300 packets at
  # 3000/s = 100 ms), so that the pacer, not the queue limit, sheds. With
  # the default 5 ms (15 packets), the micro-bursts of case C's attacker
  # (its 200 per-source buckets refill in step: 200 admitted ACKs every
  # 200 ms) overflow ring 0, which priority-0 lookups share with every
  # verified continuation, and 2-3% of the legitimate connections time out.
  dp_boundary="max_queue_delay_us = 100000"
  dp_toml="mode = \"dpdk\"
outside = \"net_af_packet0,iface=$LAB_E_OUT,framecnt=4096\"
inside = \"net_af_packet1,iface=$LAB_E_IN,framecnt=4096\"
dpdk_args = [\"--no-huge\", \"--no-pci\", \"-m\", \"512\"]
dpdk_idle_sleep_us = 20"
else
  dp_boundary=
  dp_toml="mode = \"xdp\"
outside = \"$LAB_E_OUT\"
inside = \"$LAB_E_IN\"
xdp_attach = \"native\""
fi

write_config() {  # flow_learn_sec
  cat >"$cfg" <<TOML
[dataplane]
$dp_toml
pin_path = "$pin"

[boundary]
packets_per_sec = $pps
packets_burst = $pps_burst
$dp_boundary

[admission]
unverified = "charge"
flow_learn_sec = $1

[metrics]
listen = "127.0.0.1:$metrics_port"

[control]
socket = "$tmp/control.sock"
audit_log = "$tmp/audit.jsonl"

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:1000::/56"], proto = "tcp", dst_ports = ["443", "8080"] }
rate_per_sec = $cls_rate
burst = $cls_burst
on_shed = "reset"
shed_order = "random"
per_source = { rate_per_sec = $src_rate, burst = $src_burst }

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"], proto = "tcp" }
on_shed = "reset"
shed_order = "random"
TOML
}

# sluiced joins only the edge's network namespace (nsenter) so that its XDP
# pins land on the host's bpffs and outlive it. Ready when `sluicectl status`
# answers (the socket appears before the dataplane is ready).
start_daemon() {  # log file
  nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --log-interval 1 2>"$1" &
  daemon_pid=$!
  local deadline=$((SECONDS + 30))
  until "$sluicectl" --socket "$tmp/control.sock" status >/dev/null 2>&1; do
    if ((SECONDS >= deadline)) || ! kill -0 "$daemon_pid" 2>/dev/null; then
      echo "FAIL: sluiced did not become ready" >&2
      cat "$1" >&2
      failures=$((failures + 1))
      return 1
    fi
    sleep 0.1
  done
}
stop_daemon() {  # [keep]: leave what SIGTERM leaves (the program enforcing)
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || true
  daemon_pid=
  # Every case starts fresh: SIGTERM leaves the program and its pinned
  # state (flows included) enforcing, which the next start would adopt.
  [[ ${1:-} == keep ]] ||
    nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach --all >>"$tmp/detach.log" 2>&1
}
scrape() {  # file
  ip netns exec "$LAB_EDGE" curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$1"
}
msum() {  # file name label=value...
  "$lab_py" "$tools" msum "$@"
}
delta() {  # before after name label=value...
  local a=$1 b=$2
  shift 2
  echo $(($(msum "$b" "$@") - $(msum "$a" "$@")))
}
ratio() {  # a b -> a/b with two decimals
  "$lab_py" -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"
}
fsub() {  # a b -> a - b (floats), two decimals
  "$lab_py" -c "import sys; print('%.2f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$1" "$2"
}
ms() {  # seconds (float) -> integer milliseconds
  "$lab_py" -c "import sys; print(int(float(sys.argv[1]) * 1000))" "$1"
}

ip netns exec "$LAB_BACKEND" "$lab_py" "$src/tests/integration/tcp_server.py" --port 443 --seconds 600 >"$tmp/server.log" 2>&1 &
disown
ip netns exec "$LAB_BACKEND" "$lab_py" "$tools" download-server --port 8080 --seconds 600 >"$tmp/dl-server.log" 2>&1 &
disown
wait_for "$tmp/server.log" listening 10
wait_for "$tmp/dl-server.log" listening 10

download() {  # src dst bytes rate name: in the background, JSON in $tmp/NAME.json
  ip netns exec "$LAB_CLIENT" "$lab_py" "$tools" download-client --src "$1" --dst "$2" \
    --bytes "$3" --rate "$4" --stall 10 --deadline 40 >"$tmp/$5.json" 2>"$tmp/$5.log" &
}

# One flood case: a download starts, then the flood, then the legitimate
# clients open their connections during it.
#   flood_case FAMILY CASE SRC_FIRST SRC_COUNT SRC_SHIFT
flood_case() {
  local fam=$1 name=$2 first=$3 count=$4 shift_bits=$5
  local dst legit=() dl_src pids=() pid out ok=0 total=0 timeouts=0 resets=0
  if [[ $fam == 4 ]]; then dst=$LAB_BACKEND_V4; legit=("${legit_v4[@]}"); dl_src=$dl_v4
  else dst=$LAB_BACKEND_V6; legit=("${legit_v6[@]}"); dl_src=$dl_v6; fi
  local tag="IPv$fam case $name"
  local key="v$fam-$name"

  download "$dl_src" "$dst" "$dl_bytes" "$dl_rate" "dl-$key"
  local dl_pid=$!
  wait_for "$tmp/dl-$key.log" receiving 5
  sleep 1.5  # the download runs before the flood starts
  scrape "$tmp/m0-$key.txt"
  ip netns exec "$LAB_CLIENT" "$lab_py" "$tools" ack-flood --iface c0 --src-mac "$c0_mac" \
    --dst-mac "$b0_mac" --dst "$dst" --dport 443 --src-first "$first" --src-count "$count" \
    --src-shift "$shift_bits" --rate "$flood_rate" --min-seconds "$flood_sec" --seconds "$flood_max" \
    --stop-file "$tmp/stop-$key" --count $((flood_rate * flood_max)) >"$tmp/flood-$key.json" &
  local flood_pid=$!
  sleep 0.7
  for i in "${!legit[@]}"; do
    client --src "${legit[$i]}" --dst "$dst" --count "$legit_count" --interval "$legit_interval" \
      >"$tmp/legit-$key-$i.json" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  local legit_end=$EPOCHREALTIME
  touch "$tmp/stop-$key"
  wait "$flood_pid"
  wait "$dl_pid" || true
  sleep 1.2  # the XDP counters are read per CPU; let a stats period pass
  scrape "$tmp/m1-$key.txt"

  for i in "${!legit[@]}"; do
    out=$(cat "$tmp/legit-$key-$i.json")
    ok=$((ok + $(field "$out" ok)))
    resets=$((resets + $(field "$out" reset)))
    timeouts=$((timeouts + $(field "$out" timeout)))
    total=$((total + $(field "$out" ok) + $(field "$out" reset) + $(field "$out" timeout) + $(field "$out" error)))
  done
  local flood dl
  flood=$(cat "$tmp/flood-$key.json")
  dl=$(cat "$tmp/dl-$key.json")
  local sent elapsed_ms seen seen_pps
  sent=$(field "$flood" sent)
  elapsed_ms=$(ms "$(field "$flood" elapsed_s)")
  seen=$(delta "$tmp/m0-$key.txt" "$tmp/m1-$key.txt" sluice_packets_total)
  seen_pps=$((seen * 1000 / elapsed_ms))
  echo "$tag: flood of $(field "$flood" sources) source(s): sent $sent ACKs in $(field "$flood" elapsed_s) s" \
    "= $(field "$flood" rate_pps) pps; the dataplane saw $seen_pps pps" \
    "($(ratio "$seen_pps" "$pps")x the packet budget of $pps/s)"
  echo "$tag: checkpoint clients answered $ok/$total (resets $resets, timeouts $timeouts)"
  echo "$tag: download $(field "$dl" bytes)/$dl_bytes bytes in $(field "$dl" elapsed_s) s" \
    "(started $(fsub "$(field "$flood" start_wall)" "$(field "$dl" start_wall)") s before the flood," \
    "ended $(fsub "$(field "$dl" end_wall)" "$(field "$flood" start_wall)") s into it)"

  check "$tag: the flood reached 10x the packet budget ($seen_pps >= $flood_min pps)" \
    "seen_pps >= flood_min"
  check "$tag: checkpoint clients: $total connections made" "total == legit_total"
  check "$tag: >= 99% of the checkpoint connections answered ($ok/$total)" "ok * 100 >= 99 * total && total > 0"
  check "$tag: the clients ran during the flood" \
    "$("$lab_py" -c "import sys; print(int(float(sys.argv[1]) < float(sys.argv[2])))" "$legit_end" "$(field "$flood" end_wall)") == 1"
  check "$tag: the download that started before the flood completed, no reset, no stall" \
    "$([[ $(field "$dl" ok) == True ]] && echo 1 || echo 0) == 1"
  check "$tag: the download ended during the flood" \
    "$("$lab_py" -c "import sys; s, e, fs, fe = map(float, sys.argv[1:]); print(int(s < fs < e <= fe))" \
      "$(field "$dl" start_wall)" "$(field "$dl" end_wall)" "$(field "$flood" start_wall)" "$(field "$flood" end_wall)") == 1"

  local m0=$tmp/m0-$key.txt m1=$tmp/m1-$key.txt
  if [[ $dataplane == dpdk ]]; then
    echo "$tag: DPDK queues dropped: priority 0: $(delta "$m0" "$m1" sluice_queue_dropped_total priority=0)," \
      "all: full $(delta "$m0" "$m1" sluice_queue_dropped_total cause=full)," \
      "delay $(delta "$m0" "$m1" sluice_queue_dropped_total cause=delay);" \
      "ports dropped $(delta "$m0" "$m1" sluice_port_dropped_total)"
  fi
  local cp_cont cp_unv_adm
  cp_cont=$(delta "$m0" "$m1" sluice_packets_total class=checkpoint verdict=admitted reason=continuation)
  cp_unv_adm=$(delta "$m0" "$m1" sluice_lookups_total class=checkpoint verdict=admitted reason=unverified)
  if [[ $name != C ]]; then
    local ci_shed ci_adm bound
    ci_shed=$(delta "$m0" "$m1" sluice_packets_total class=citizen verdict=shed reason=unverified)
    ci_adm=$(delta "$m0" "$m1" sluice_packets_total class=citizen verdict=admitted reason=unverified)
    bound=$((pps * (elapsed_ms + 1000) / 1000 + pps_burst))
    echo "$tag: citizen (the flood's class): admitted $ci_adm, shed $ci_shed as unverified;" \
      "checkpoint continuations admitted $cp_cont"
    check "$tag: the flood was charged as unverified lookups of its class, most of it shed" \
      "ci_shed + ci_adm >= sent * 95 / 100 && ci_shed >= sent * 80 / 100"
    check "$tag: what the flood got stayed within the packet budget ($ci_adm <= $bound)" \
      "ci_adm <= bound"
    check "$tag: the flood never took the protected class's lookups (checkpoint: 0 unverified)" \
      "cp_unv_adm == 0"
  else
    local c_bound c_shed
    c_bound=$((attack_c * src_burst + attack_c * src_rate * (elapsed_ms + 100) / 1000))
    c_shed=$(delta "$m0" "$m1" sluice_packets_total class=checkpoint verdict=shed reason=unverified)
    echo "$tag: bound: $attack_c sources x (burst $src_burst + $src_rate/s x $(field "$flood" elapsed_s) s)" \
      "= $c_bound unverified lookups; admitted $cp_unv_adm, shed $c_shed;" \
      "class rate $cls_rate/s - $attack_bound_rate/s leaves $((cls_rate - attack_bound_rate))/s" \
      "for $legit_n clients at 4/s"
    check "$tag: the flood's unverified lookups stayed within the bound ($cp_unv_adm <= $c_bound)" \
      "cp_unv_adm <= c_bound && cp_unv_adm > 0"
    check "$tag: the rest of the flood was shed as unverified" "c_shed >= sent * 80 / 100"
  fi
}

# IPv6 neighbour discovery during a flood: ND (and MLD) pass sluiced
# untouched like ARP, never charged, so a flood of a higher class cannot shed
# them. For this check the backend reaches the checkpoint clients on-link
# (not through its pinned gateway), and both neighbour caches are flushed
# before the clients connect and every second while they do, so that both
# sides resolve each other (NS, NA both ways) through sluiced during the
# 1,000-source v6 flood. The flood's spoofed sources stay behind the pinned
# gateway (nobody owns them to answer).
nd_case() {
  local dst=$LAB_BACKEND_V6 pids=() pid out ok=0 total=0 timeouts=0 resets=0 key=v6-ND
  local tag="IPv6 neighbour discovery during a flood"
  local m0=$tmp/m0-$key.txt m1=$tmp/m1-$key.txt
  ip -n "$LAB_BACKEND" -6 route del 2001:2:0:1000::/56
  scrape "$m0"
  ip netns exec "$LAB_CLIENT" "$lab_py" "$tools" ack-flood --iface c0 --src-mac "$c0_mac" \
    --dst-mac "$b0_mac" --dst "$dst" --dport 443 --src-first 2001:2:0:f000::1:0 --src-count 1000 \
    --rate "$flood_rate" --min-seconds "$flood_sec" --seconds "$flood_max" --stop-file "$tmp/stop-$key" \
    --count $((flood_rate * flood_max)) >"$tmp/flood-$key.json" &
  local flood_pid=$!
  sleep 0.7
  local flushes=0
  nd_flush() {
    ip -n "$LAB_CLIENT" -6 neigh flush dev c0
    ip -n "$LAB_BACKEND" -6 neigh flush dev b0  # not the pinned gateway (permanent)
    flushes=$((flushes + 1))
  }
  nd_flush
  for i in "${!legit_v6[@]}"; do
    client --src "${legit_v6[$i]}" --dst "$dst" --count "$legit_count" --interval "$legit_interval" \
      >"$tmp/legit-$key-$i.json" &
    pids+=($!)
  done
  local until=$((SECONDS + 4))
  while ((SECONDS < until)); do sleep 1; nd_flush; done
  for pid in "${pids[@]}"; do wait "$pid"; done
  local legit_end=$EPOCHREALTIME
  ip -n "$LAB_BACKEND" -6 neigh show dev b0 >"$tmp/neigh-backend-$key.txt"
  ip -n "$LAB_CLIENT" -6 neigh show dev c0 >"$tmp/neigh-client-$key.txt"
  touch "$tmp/stop-$key"
  wait "$flood_pid"
  sleep 1.2
  scrape "$m1"
  # The pinned gateway again, for the cases that follow.
  ip -n "$LAB_BACKEND" -6 route replace 2001:2:0:1000::/56 via 2001:2::fe dev b0

  for i in "${!legit_v6[@]}"; do
    out=$(cat "$tmp/legit-$key-$i.json")
    ok=$((ok + $(field "$out" ok)))
    resets=$((resets + $(field "$out" reset)))
    timeouts=$((timeouts + $(field "$out" timeout)))
    total=$((total + $(field "$out" ok) + $(field "$out" reset) + $(field "$out" timeout) + $(field "$out" error)))
  done
  local flood sent elapsed_ms seen seen_pps non_ip def_shed dyn_backend dyn_client
  flood=$(cat "$tmp/flood-$key.json")
  sent=$(field "$flood" sent)
  elapsed_ms=$(ms "$(field "$flood" elapsed_s)")
  seen=$(delta "$m0" "$m1" sluice_packets_total)
  seen_pps=$((seen * 1000 / elapsed_ms))
  non_ip=$(delta "$m0" "$m1" sluice_packets_total reason=non_ip)
  def_shed=$(delta "$m0" "$m1" sluice_packets_total class=default verdict=shed)
  # Entries the backend resolved for the clients (not pinned), and the
  # client's for the backend.
  dyn_backend=$(grep -c '^2001:2:0:100.::2 lladdr .* \(REACHABLE\|STALE\|DELAY\|PROBE\)' "$tmp/neigh-backend-$key.txt" || true)
  dyn_client=$(grep -c "^$LAB_BACKEND_V6 lladdr .* \(REACHABLE\|STALE\|DELAY\|PROBE\)" "$tmp/neigh-client-$key.txt" || true)
  echo "$tag: flood sent $sent ACKs in $(field "$flood" elapsed_s) s; the dataplane saw $seen_pps pps" \
    "($(ratio "$seen_pps" "$pps")x the packet budget)"
  echo "$tag: neighbour caches flushed $flushes times; checkpoint clients answered $ok/$total" \
    "(resets $resets, timeouts $timeouts); sluiced passed $non_ip packets as non_ip, shed $def_shed of" \
    "the default class; at the end the backend had $dyn_backend client entries, the client" \
    "$dyn_client backend entry (none pinned)"
  check "$tag: the flood reached 10x the packet budget ($seen_pps >= $flood_min pps)" \
    "seen_pps >= flood_min"
  check "$tag: checkpoint clients: $total connections made" "total == legit_total"
  check "$tag: >= 99% of the checkpoint connections answered ($ok/$total)" "ok * 100 >= 99 * total && total > 0"
  check "$tag: the clients ran during the flood" \
    "$("$lab_py" -c "import sys; print(int(float(sys.argv[1]) < float(sys.argv[2])))" "$legit_end" "$(field "$flood" end_wall)") == 1"
  check "$tag: the neighbours were resolved through sluiced ($dyn_backend + $dyn_client entries, not pinned)" \
    "dyn_backend * 2 >= legit_n && dyn_client == 1"
  check "$tag: sluiced passed the ND packets untouched (non_ip: $non_ip >= $((flushes * legit_n / 2)))" \
    "non_ip >= flushes * legit_n / 2"
  check "$tag: nothing of the default class was shed ($def_shed)" "def_shed == 0"
}

# Case D, a flood in the learning window: sluiced starts with a fresh flow
# table (XDP: SIGTERM removed the pins; DPDK: a new process) and the default
# flow_learn_sec = 10, and the 1,000-source flood of case B starts within
# 1 s of it being ready. Unknown TCP flows are admitted and learned in the
# window, but a flow still being learned has proven nothing: it takes the
# packet budget only down to the lowest priority's reserve (and waits in the
# lowest DPDK ring), so the checkpoint clients still get >= 99% answered. The
# backend answers each flood ACK that gets through with a RST (no such
# connection), as any host does: that must not make the flood's learned flows
# verified. sluiced is fresh: its counters start at zero.
#   learn_case FAMILY
learn_case() {
  local fam=$1 dst legit=() first pids=() pid out ok=0 total=0 timeouts=0 resets=0
  if [[ $fam == 4 ]]; then dst=$LAB_BACKEND_V4; legit=("${legit_v4[@]}"); first=198.18.200.0
  else dst=$LAB_BACKEND_V6; legit=("${legit_v6[@]}"); first=2001:2:0:f000::1:0; fi
  local tag="IPv$fam case D (flood in the learning window)"
  local key="v$fam-D" ready flood_start_ms
  local d_sec=$((flood_sec + 2))  # the clients (5 s, more on a busy CPU) fit with room
  write_config 10
  start_daemon "$tmp/d-$key.log" || return 0
  ready=$EPOCHREALTIME
  ip netns exec "$LAB_CLIENT" "$lab_py" "$tools" ack-flood --iface c0 --src-mac "$c0_mac" \
    --dst-mac "$b0_mac" --dst "$dst" --dport 443 --src-first "$first" --src-count 1000 \
    --rate "$flood_rate" --min-seconds "$d_sec" --seconds "$flood_max" --stop-file "$tmp/stop-$key" \
    --count $((flood_rate * flood_max)) >"$tmp/flood-$key.json" &
  local flood_pid=$!
  sleep 0.7
  local legit_start=$EPOCHREALTIME
  for i in "${!legit[@]}"; do
    client --src "${legit[$i]}" --dst "$dst" --count "$legit_count" --interval "$legit_interval" \
      >"$tmp/legit-$key-$i.json" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  local legit_end=$EPOCHREALTIME
  touch "$tmp/stop-$key"
  wait "$flood_pid"
  sleep 1.2  # a stats period
  local m1=$tmp/m1-$key.txt
  scrape "$m1"
  stop_daemon

  for i in "${!legit[@]}"; do
    out=$(cat "$tmp/legit-$key-$i.json")
    ok=$((ok + $(field "$out" ok)))
    resets=$((resets + $(field "$out" reset)))
    timeouts=$((timeouts + $(field "$out" timeout)))
    total=$((total + $(field "$out" ok) + $(field "$out" reset) + $(field "$out" timeout) + $(field "$out" error)))
  done
  local flood sent elapsed_ms seen seen_pps
  flood=$(cat "$tmp/flood-$key.json")
  sent=$(field "$flood" sent)
  elapsed_ms=$(ms "$(field "$flood" elapsed_s)")
  flood_start_ms=$(ms "$(fsub "$(field "$flood" start_wall)" "$ready")")
  seen=$(msum "$m1" sluice_packets_total)
  seen_pps=$((seen * 1000 / elapsed_ms))
  local ci_cont ci_unv ci_shed learned confirmed entries cp_unv_adm bound
  ci_cont=$(msum "$m1" sluice_packets_total class=citizen verdict=admitted reason=continuation)
  ci_unv=$(msum "$m1" sluice_packets_total class=citizen verdict=admitted reason=unverified)
  ci_shed=$(msum "$m1" sluice_packets_total class=citizen verdict=shed)
  learned=$(msum "$m1" sluice_flow_events_total event=learned)
  confirmed=$(msum "$m1" sluice_flow_events_total event=confirmed)
  entries=$(msum "$m1" sluice_flows priority=5)  # the flood's partition: only learning fills it
  cp_unv_adm=$(msum "$m1" sluice_lookups_total class=checkpoint verdict=admitted reason=unverified)
  bound=$((pps * (elapsed_ms + 1000) / 1000 + pps_burst))
  echo "$tag: flood of $(field "$flood" sources) sources started $flood_start_ms ms after sluiced was ready:" \
    "sent $sent ACKs in $(field "$flood" elapsed_s) s = $(field "$flood" rate_pps) pps;" \
    "the dataplane saw $seen_pps pps ($(ratio "$seen_pps" "$pps")x the packet budget of $pps/s)"
  echo "$tag: checkpoint clients answered $ok/$total (resets $resets, timeouts $timeouts)"
  echo "$tag: flood (citizen) admitted as continuation $ci_cont, as unverified $ci_unv, shed $ci_shed" \
    "($(msum "$m1" sluice_packets_total class=citizen verdict=shed reason=boundary_packets) boundary_packets," \
    "$(msum "$m1" sluice_packets_total class=citizen verdict=shed reason=unverified) unverified);" \
    "flows learned $learned, confirmed $confirmed (flow events); flood flows in the table $entries"
  echo "$tag: the clients ran from $(fsub "$legit_start" "$ready") s to" \
    "$(fsub "$legit_end" "$ready") s after sluiced was ready; the flood until" \
    "$(fsub "$(field "$flood" end_wall)" "$ready") s"
  if [[ $dataplane == dpdk ]]; then
    echo "$tag: DPDK queues dropped: priority 0: $(msum "$m1" sluice_queue_dropped_total priority=0)," \
      "priority 5: $(msum "$m1" sluice_queue_dropped_total priority=5)," \
      "all: full $(msum "$m1" sluice_queue_dropped_total cause=full)," \
      "delay $(msum "$m1" sluice_queue_dropped_total cause=delay)"
  fi
  if [[ $dataplane == xdp ]]; then
    check "$tag: sluiced started fresh (not adopted)" "$(grep -c 'adopted=true' "$tmp/d-$key.log") == 0"
  fi
  check "$tag: the flood started within 1 s of sluiced being ready ($flood_start_ms ms)" \
    "flood_start_ms <= 1000"
  check "$tag: the flood reached 10x the packet budget ($seen_pps >= $flood_min pps)" \
    "seen_pps >= flood_min"
  check "$tag: checkpoint clients: $total connections made" "total == legit_total"
  check "$tag: >= 99% of the checkpoint connections answered ($ok/$total)" "ok * 100 >= 99 * total && total > 0"
  check "$tag: the clients ran during the flood, in the learning window" \
    "$("$lab_py" -c "import sys; e, fe, r = map(float, sys.argv[1:]); print(int(e < fe and e < r + 10))" \
      "$legit_end" "$(field "$flood" end_wall)" "$ready") == 1"
  check "$tag: the flood was in the learning window: its flows were learned ($entries in the table)" \
    "entries > 0"
  check "$tag: what the flood got stayed within the packet budget ($((ci_cont + ci_unv)) <= $bound)" \
    "ci_cont + ci_unv <= bound"
  check "$tag: the flood never took the protected class's lookups (checkpoint: 0 unverified)" \
    "cp_unv_adm == 0"
}

# --- cases A, B, C: both families ------------------------------------------
write_config 10
start_daemon "$tmp/d1.log"
check "sluiced runs the $dataplane dataplane" "$(grep -c "msg=started mode=$dataplane" "$tmp/d1.log") == 1"
# Warm-up connections; they also open the learning window of the fresh flow
# table (flow_learn_sec = 10), which must be closed before any flood: during
# it, continuations of unknown flows are admitted and learned.
for fam in 4 6; do
  if [[ $fam == 4 ]]; then warm=$(client --src 198.18.10.2 --dst "$LAB_BACKEND_V4" --count 2)
  else warm=$(client --src 2001:2:0:1000::2 --dst "$LAB_BACKEND_V6" --count 2); fi
  check "IPv$fam warm-up connections answered" "$(field "$warm" ok) == 2"
done
learn_closes=$((SECONDS + 11))

# Spoofed sources: A and B outside the protected prefixes, C inside.
for fam in 4 6; do
  if [[ $fam == 4 ]]; then a_first=198.18.200.1; b_first=198.18.200.0; c_first=198.18.10.50; c_shift=0
  else a_first=2001:2:0:f000::1; b_first=2001:2:0:f000::1:0; c_first=2001:2:0:1032::; c_shift=64; fi
  while ((SECONDS < learn_closes)); do sleep 0.2; done
  flood_case "$fam" A "$a_first" 1 0
  flood_case "$fam" B "$b_first" 1000 0
  flood_case "$fam" C "$c_first" "$attack_c" "$c_shift"
done
nd_case
scrape "$tmp/m-end.txt"
check "no flow was learned (every flood came after the learning window)" \
  "$(msum "$tmp/m-end.txt" sluice_flow_events_total event=learned) == 0"
stop_daemon

# --- case D: a flood in the learning window, both families -----------------
learn_case 4
learn_case 6

if [[ $dataplane == xdp ]]; then
  # --- 4: a fresh start under established traffic resets none of it --------
  # SIGTERM, then --detach: the pass-through forwards and the maps go, flow
  # table included. The next sluiced starts fresh: its learning window
  # admits the running downloads' packets as learned flows and the inside's
  # packets confirm them.
  write_config 10
  start_daemon "$tmp/d4a.log"
  download "$dl_v4" "$LAB_BACKEND_V4" 4000000 400000 dl-fresh4
  dl4=$!
  download "$dl_v6" "$LAB_BACKEND_V6" 4000000 400000 dl-fresh6
  dl6=$!
  wait_for "$tmp/dl-fresh4.log" receiving 5
  wait_for "$tmp/dl-fresh6.log" receiving 5
  sleep 2.5
  gap_start=$EPOCHREALTIME
  stop_daemon keep
  nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach >>"$tmp/detach.log" 2>&1
  check "--detach removed the maps (the flow table is gone)" \
    "$(compgen -G "$pin/layout-*" | wc -l) == 0"
  start_daemon "$tmp/d4b.log"
  gap_ms=$("$lab_py" -c "import sys; print(int((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$gap_start" "$EPOCHREALTIME")
  check "the restart started fresh (not adopted)" "$(grep -c 'adopted=true' "$tmp/d4b.log") == 0"
  wait "$dl4" || true
  wait "$dl6" || true
  sleep 1.2
  scrape "$tmp/m4.txt"
  learned=$(msum "$tmp/m4.txt" sluice_flow_events_total event=learned)
  confirmed=$(msum "$tmp/m4.txt" sluice_flow_events_total event=confirmed)
  for fam in 4 6; do
    dl=$(cat "$tmp/dl-fresh$fam.json")
    echo "fresh start, IPv$fam download: $dl"
    check "fresh start: the IPv$fam download survived the restart (${gap_ms} ms without sluiced), no reset" \
      "$([[ $(field "$dl" ok) == True ]] && echo 1 || echo 0) == 1"
  done
  echo "fresh start: flow events learned=$learned confirmed=$confirmed"
  check "fresh start: the running flows were learned ($learned) and confirmed ($confirmed)" \
    "learned >= 2 && confirmed >= 2"
  check "fresh start: none of their packets was shed as unverified" \
    "$(msum "$tmp/m4.txt" sluice_packets_total class=checkpoint verdict=shed reason=unverified) == 0"

  # --- 5: kill -9, a new sluiced adopts the pins, the flows stay verified ---
  stop_daemon
  write_config 0  # no learning window: only the kept flow table can verify
  start_daemon "$tmp/d5a.log"
  download "$dl_v4" "$LAB_BACKEND_V4" 4000000 400000 dl-adopt4
  dl4=$!
  download "$dl_v6" "$LAB_BACKEND_V6" 4000000 400000 dl-adopt6
  dl6=$!
  wait_for "$tmp/dl-adopt4.log" receiving 5
  wait_for "$tmp/dl-adopt6.log" receiving 5
  sleep 2
  kill -9 "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=
  sleep 1  # the pinned program forwards on its own
  scrape_before=$tmp/m5a.txt
  start_daemon "$tmp/d5b.log"
  check "the restart adopted the pinned state" "$(grep -c 'msg=started.*adopted=true' "$tmp/d5b.log") == 1"
  scrape "$scrape_before"
  flows_p0=$(msum "$scrape_before" sluice_flows priority=0)
  check "the adopted flow table holds the downloads' flows ($flows_p0 in priority 0)" "flows_p0 >= 2"
  wait "$dl4" || true
  wait "$dl6" || true
  sleep 1.2
  scrape "$tmp/m5b.txt"
  cont=$(delta "$scrape_before" "$tmp/m5b.txt" sluice_packets_total class=checkpoint verdict=admitted reason=continuation)
  unv=$(msum "$tmp/m5b.txt" sluice_packets_total class=checkpoint reason=unverified)
  for fam in 4 6; do
    dl=$(cat "$tmp/dl-adopt$fam.json")
    echo "kill -9 and adopt, IPv$fam download: $dl"
    check "adopt: the IPv$fam download completed, no reset" \
      "$([[ $(field "$dl" ok) == True ]] && echo 1 || echo 0) == 1"
  done
  echo "adopt: after the restart $cont checkpoint packets admitted as continuation, $unv unverified in all"
  check "adopt: the downloads' packets after the restart were verified continuations ($cont)" "cont >= 100"
  check "adopt: none was unverified ($unv)" "unv == 0"
  check "adopt: nothing was learned (flow_learn_sec = 0)" \
    "$(msum "$tmp/m5b.txt" sluice_flow_events_total event=learned) == 0"
  stop_daemon
fi

echo "run time $((SECONDS - test_start)) s"
echo "$passes passed, $failures failed"
exit $((failures > 0))
