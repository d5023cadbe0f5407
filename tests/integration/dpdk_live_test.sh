#!/usr/bin/env bash
# Live traffic through sluiced's DPDK fast path: client / edge / backend
# namespaces, sluiced on the edge owning the edge's two veths through
# net_af_packet vdevs, real TCP connections (IPv4 and IPv6) from a checkpoint
# scanner and a citizen. Admitted packets go through the priority queues
# (the config has a packet budget). Then mode "auto" on a machine where the
# EAL cannot start (no hugepages): sluiced says why and enforces with XDP.
#
# Usage: dpdk_live_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
LAB_XDP_PASS=$build/tests/bpf/xdp_pass.bpf.o
source "$src/tests/integration/lab.sh"
lab_require_root

sluiced=$build/control/sluiced
sluicectl=$build/control/sluicectl
tmp=$(mktemp -d)
pin=/sys/fs/bpf/sluice-test-$LAB_ID
cfg=$tmp/sluice.toml
daemon_pid=
cleanup() {
  set +e  # every step runs, whatever the one before it did
  [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null
  if ((failures > 0)); then
    mkdir -p /tmp/sluice-test-logs && cp "$tmp"/*.log /tmp/sluice-test-logs/ 2>/dev/null
    echo "logs kept in /tmp/sluice-test-logs"
  fi
  # The standby's pins: whichever config the test got to (auto.toml from
  # its second phase on), and the pin directory itself.
  for f in "$tmp/auto.toml" "$cfg" "$tmp/gone.toml"; do
    [[ -e $f ]] && nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$f" --detach --all >/dev/null 2>&1
  done
  lab_down
  rm -rf "$tmp" "$pin"
}
trap cleanup EXIT
lab_up
# af_packet sees frames after the veth's offloads: keep them whole.
for dev in "$LAB_E_OUT" "$LAB_E_IN"; do
  ip netns exec "$LAB_EDGE" ethtool -K "$dev" gro off tso off gso off tx off >/dev/null 2>&1 || true
done

write_config() {  # file mode dpdk_args
  cat >"$1" <<TOML
[dataplane]
mode = "$2"
outside = "net_af_packet0,iface=$LAB_E_OUT"
inside = "net_af_packet1,iface=$LAB_E_IN"
dpdk_args = $3
dpdk_idle_sleep_us = 20
pin_path = "$pin"

[boundary]
packets_per_sec = 20000
packets_burst = 2000
max_queue_delay_us = 20000

[metrics]
listen = "127.0.0.1:19119"

[control]
socket = "$tmp/control.sock"
audit_log = "$tmp/audit.jsonl"

$(lab_classes_toml)
TOML
}
write_config "$cfg" dpdk '["--no-huge", "--no-pci", "-m", "512"]'

start_daemon() {  # config log
  nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$1" --log-interval 1 2>"$2" &
  daemon_pid=$!
  wait_for "$2" 'msg=started' 30
}
stop_daemon() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid"
  daemon_pid=
}

ip netns exec "$LAB_BACKEND" "$lab_py" "$src/tests/integration/tcp_server.py" --port 443 --seconds 300 >"$tmp/server.log" 2>&1 &
disown
wait_for "$tmp/server.log" listening 10

# --- phase 1: DPDK on af_packet vdevs, limits hold for IPv4 and IPv6 ---------
start_daemon "$cfg" "$tmp/d1.log"
check "sluiced runs the DPDK dataplane" "$(grep -c 'msg=started mode=dpdk' "$tmp/d1.log") == 1"
lab_limits_hold "$tmp/d1.log"
status=$(nsenter --net="/run/netns/$LAB_EDGE" "$sluicectl" --socket "$tmp/control.sock" status --json)
queued=$("$lab_py" -c "import json,sys; print(len(json.loads(sys.argv[1])['queues']))" "$status")
check "status reports the eight priority queues" "$queued == 8"
ports_rx=$("$lab_py" -c "import json,sys; s=json.loads(sys.argv[1]); print(min(p['rx_packets'] for p in s['ports']))" "$status")
check "both ports received traffic ($ports_rx packets at least)" "ports_rx > 100"
metrics=$(ip netns exec "$LAB_EDGE" curl -s http://127.0.0.1:19119/metrics)
check "queue delay histogram exported with samples" \
  "$(grep -E '^sluice_queue_delay_seconds_count\{priority="0"\} [1-9]' <<<"$metrics" | wc -l) == 1"
lab_capture_check "$sluicectl" "$tmp/control.sock" "$tmp/d1.log" "$tmp"
stop_daemon
# SIGTERM releases the ports; the XDP standby on the veths takes over
# (failure_policy_test.sh dpdk measures it) until --detach --all.
check "SIGTERM left the XDP standby on the veths" \
  "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') >= 1"
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach --all >/dev/null 2>&1
check "--detach --all removed it" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') == 0"

# --- phase 2: mode auto without hugepages falls back to XDP, and says why ---
write_config "$tmp/auto.toml" auto '["--no-pci", "-m", "512"]'
start_daemon "$tmp/auto.toml" "$tmp/d2.log"
check "auto: says why DPDK did not start, as a warning" \
  "$(grep -c 'level=warn msg="dataplane selection" detail="mode auto: dpdk could not start (dpdk: DPDK EAL did not start' "$tmp/d2.log") == 1"
auto_metrics=$(ip netns exec "$LAB_EDGE" curl -s http://127.0.0.1:19119/metrics)
check "auto: sluice_dataplane_fallback is 1" \
  "$(grep -c '^sluice_dataplane_fallback 1$' <<<"$auto_metrics") == 1"
check "auto: runs XDP on the vdevs' interfaces" \
  "$(grep -c 'msg=started mode=xdp' "$tmp/d2.log") == 1 && \
   $(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') >= 1"
ci=$(client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100)
echo "auto/XDP citizen: $ci"
check "auto/XDP: the citizen limit holds ($(field "$ci" ok) served)" \
  "$(field "$ci" ok) >= 5 && $(field "$ci" ok) <= 8 && $(field "$ci" reset) == 100 - $(field "$ci" ok)"
stop_daemon

# --- phase 3: DPDK that cannot start after its EAL did (no such interface) ---
# The EAL starts once per process: sluiced is not in charge and says to
# restart it, with no retry on a timer (each one failed again, counted and
# logged, every 5-60 s).
write_config "$tmp/gone.toml" dpdk '["--no-huge", "--no-pci", "-m", "512"]'
sed -i "s/iface=$LAB_E_OUT/iface=sl-gone0/; s/iface=$LAB_E_IN/iface=sl-gone1/" "$tmp/gone.toml"
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$tmp/gone.toml" 2>"$tmp/d3.log" &
daemon_pid=$!
wait_for "$tmp/d3.log" 'msg="not in charge"' 30
sleep 6  # past the first retry's 5 s: none may come
st=$(nsenter --net="/run/netns/$LAB_EDGE" "$sluicectl" --socket "$tmp/control.sock" status 2>&1 || true)
check "DPDK spent: not in charge once, no retry on a timer, status says to restart" \
  "$(grep -c 'msg="not in charge"' "$tmp/d3.log") == 1 && \
   $(grep -c 'msg="not in charge".*retry_sec=none' "$tmp/d3.log") == 1 && \
   $(grep -c 'restart sluiced (DPDK starts once per process' <<<"$st") == 1"
stop_daemon

echo "$passes passed, $failures failed"
exit $((failures > 0))
