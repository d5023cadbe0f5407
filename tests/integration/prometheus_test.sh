#!/usr/bin/env bash
# sluiced's /metrics scraped by Debian's real Prometheus server, and every
# query of docs/grafana-dashboard.json run against what it scraped. In the
# lab (client / edge / backend namespaces, XDP inline): sluiced serves
# metrics.listen inside the edge namespace, Prometheus runs there too and
# scrapes it every second. Real TCP traffic moves the counters (checkpoint
# admitted, citizen admitted and shed), a SIGHUP reload changes the config
# and a broken one is rejected, so that every panel and annotation has data;
# panels marked "DPDK only" (queues, ports) need only be valid PromQL on XDP.
# With DATAPLANE = dpdk, sluiced runs DPDK on net_af_packet vdevs on the same
# veths and the DPDK-only panels must have data too.
#
# Usage: prometheus_test.sh BUILD_DIR SOURCE_DIR [xdp|dpdk]
set -euo pipefail
build=$1
src=$2
dataplane=${3:-xdp}
LAB_XDP_PASS=$build/tests/bpf/xdp_pass.bpf.o
source "$src/tests/integration/lab.sh"
lab_require_root

prometheus=/usr/bin/prometheus
if [[ ! -x $prometheus ]]; then
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: $prometheus not installed; scripts/install-deps installs it" >&2
    exit 1
  fi
  echo "SKIP: $prometheus not installed outside CI (scripts/install-deps installs it)"
  exit 77
fi
sluiced=$build/control/sluiced
py=/usr/bin/python3
dashboard=$src/docs/grafana-dashboard.json
tmp=$(mktemp -d)
pin=/sys/fs/bpf/sluice-test-$LAB_ID
cfg=$tmp/sluice.toml
# Both listen on the edge namespace's own loopback: no port is shared with
# the host or another test.
metrics_addr=127.0.0.1:9109
prom_url=http://127.0.0.1:9090
daemon_pid=
prom_pid=
failures=0
cleanup() {
  # Each gets 10 s to stop cleanly (Prometheus closes its TSDB), then
  # sluiced --detach --all removes the pins and lab_down kills what is left.
  for pid in $prom_pid $daemon_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    timeout 10 tail --pid="$pid" -f /dev/null || true
  done
  if ((failures > 0)); then
    mkdir -p /tmp/sluice-test-logs && cp "$tmp"/*.log /tmp/sluice-test-logs/ 2>/dev/null
    echo "logs kept in /tmp/sluice-test-logs"
  fi
  [[ -e $pin ]] && nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach --all >/dev/null 2>&1
  lab_down
  rm -rf "$tmp"
}
trap cleanup EXIT
lab_up

if [[ $dataplane == dpdk ]]; then
  # af_packet sees frames after the veth's offloads: keep them whole.
  for dev in "$LAB_E_OUT" "$LAB_E_IN"; do
    ip netns exec "$LAB_EDGE" ethtool -K "$dev" gro off tso off gso off tx off >/dev/null 2>&1 || true
  done
  dataplane_toml="mode = \"dpdk\"
outside = \"net_af_packet0,iface=$LAB_E_OUT\"
inside = \"net_af_packet1,iface=$LAB_E_IN\"
dpdk_idle_sleep_us = 20"
  dataplane_info='sluice_dataplane_info{mode="dpdk"} 1'
else
  dataplane_toml="mode = \"xdp\"
outside = \"$LAB_E_OUT\"
inside = \"$LAB_E_IN\"
xdp_attach = \"native\""
  dataplane_info='sluice_dataplane_info{mode="xdp",attach="native"} 1'
fi

cat >"$cfg" <<TOML
[dataplane]
$dataplane_toml
pin_path = "$pin"

# Budgets far above this traffic: only the citizen class rate sheds, and the
# dashboard's budget-use panels have a budget to divide by.
[boundary]
lookups_per_sec = 10000
lookups_burst = 1000
packets_per_sec = 1000000
packets_burst = 100000

[metrics]
listen = "$metrics_addr"

[control]
socket = "$tmp/control.sock"
audit_log = "$tmp/audit.jsonl"

$(lab_classes_toml)
TOML

edge() { ip netns exec "$LAB_EDGE" "$@"; }
prom() { edge "$py" "$src/tests/integration/prom_check.py" "$prom_url" "$@"; }
# prom_wait DESCRIPTION EXPR: counts a check on Prometheus returning EXPR non-empty.
prom_wait() {
  if prom wait "$2" --timeout 10 >/dev/null; then check "$1" 1; else check "$1" 0; fi
}

ip netns exec "$LAB_BACKEND" "$py" "$src/tests/integration/tcp_server.py" --port 443 --seconds 120 >"$tmp/server.log" 2>&1 &
disown
wait_for "$tmp/server.log" listening 10

# sluiced joins only the edge's network namespace (nsenter): its pins stay
# on the host's bpffs, and metrics.listen is the edge's loopback.
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --log-interval 1 2>"$tmp/sluiced.log" &
daemon_pid=$!
wait_for "$tmp/sluiced.log" 'msg="control plane ready"' 20
scrape=$(edge curl -sf --max-time 5 "http://$metrics_addr/metrics" || true)
check "sluiced serves /metrics on $metrics_addr in the edge namespace" \
  "$(grep -cx 'sluice_dataplane_up 1' <<<"$scrape") == 1"
check "sluice_dataplane_info: $dataplane_info" "$(grep -cxF "$dataplane_info" <<<"$scrape") == 1"

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: ["$metrics_addr"]
YAML
edge "$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="${prom_url#http://}" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
if prom target sluice --scrapes 3 --timeout 30; then check "Prometheus scrapes sluiced" 1; else
  check "Prometheus scrapes sluiced" 0
  exit 1
fi

# --- traffic: checkpoint all admitted, citizen over its 5/s rate ------------
ckp=$(client --src 198.18.10.2 --dst "$LAB_BACKEND_V4" --count 20)
ci=$(client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 60)
ci6=$(client --src 2001:2:0:20::2 --dst "$LAB_BACKEND_V6" --count 20)
echo "checkpoint: $ckp"
echo "citizen:    $ci"
echo "citizen v6: $ci6"
ci_ok=$(($(field "$ci" ok) + $(field "$ci6" ok)))
ci_reset=$(($(field "$ci" reset) + $(field "$ci6" reset)))
check "checkpoint: every connection served" "$(field "$ckp" ok) == 20"
check "citizen: some admitted ($ci_ok), some reset ($ci_reset), 80 in all" \
  "ci_ok >= 5 && ci_reset >= 40 && ci_ok + ci_reset == 80"
# What Prometheus scraped is what the clients saw, to the connection.
l='sluice_lookups_total{job="sluice"'
prom_wait "Prometheus: checkpoint admitted 20 lookups" \
  "$l,class=\"checkpoint\",verdict=\"admitted\",reason=\"lookup\"} == 20"
prom_wait "Prometheus: citizen admitted $ci_ok lookups" \
  "$l,class=\"citizen\",verdict=\"admitted\",reason=\"lookup\"} == $ci_ok"
prom_wait "Prometheus: citizen shed $ci_reset lookups for class_rate" \
  "$l,class=\"citizen\",verdict=\"shed\",reason=\"class_rate\"} == $ci_reset"
prom_wait "Prometheus: citizen shed packets counted" \
  'sluice_packets_total{class="citizen",verdict="shed",reason="class_rate"} > 0'

# --- config: one reload applied, one rejected ---------------------------------
sed -i 's/^rate_per_sec = 5$/rate_per_sec = 10/' "$cfg"
kill -HUP "$daemon_pid"
wait_for "$tmp/sluiced.log" 'msg=reloaded' 5
prom_wait "Prometheus: citizen rate 10/s after the reload" \
  'sluice_class_rate_per_sec{class="citizen"} == 10'
prom_wait "Prometheus: the generation changed" 'changes(sluice_config_generation[1m]) > 0'
prom_wait "Prometheus: the dataplane enforces that generation" \
  'sluice_dataplane_generation == on() sluice_config_generation'
prom_wait "Prometheus: one reload applied" 'sluice_config_reloads_total{result="applied"} == 1'
cp "$cfg" "$tmp/reloaded.toml"
echo 'rate_per_sec = "lots"' >>"$cfg"
kill -HUP "$daemon_pid"
wait_for "$tmp/sluiced.log" 'reload rejected' 5
cp "$tmp/reloaded.toml" "$cfg"  # --detach in cleanup needs a valid file
prom_wait "Prometheus: one reload rejected" 'sluice_config_reloads_total{result="rejected"} == 1'
prom_wait "Prometheus: a rejected change" 'sluice_config_changes_total{result="rejected"} >= 1'

prom_wait "Prometheus: no scrape lost figures to a failing callback" \
  'sluice_exporter_callback_errors_total == 0'

# --- the dashboard: every expression against what Prometheus holds -----------
if [[ $dataplane == dpdk ]]; then
  what="every dashboard query is valid PromQL with data, DPDK-only panels included"
  dpdk_flag=--dpdk
else
  what="every dashboard query is valid PromQL with data (DPDK-only panels: valid)"
  dpdk_flag=
fi
# shellcheck disable=SC2086  # an optional flag
if prom dashboard "$dashboard" $dpdk_flag; then check "$what" 1; else check "$what" 0; fi

echo "$passes passed, $failures failed"
exit $((failures > 0))
