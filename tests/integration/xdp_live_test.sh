#!/usr/bin/env bash
# Live traffic through sluiced in inline XDP mode: client / edge / backend
# namespaces, real TCP connections (IPv4 and IPv6) from a checkpoint scanner
# and a citizen to a server behind the edge. Shows the class limits holding
# (admitted and reset counts in sluiced, and what the clients saw), then
# kill -9 of sluiced mid-traffic: enforcement continues, and a restarted
# sluiced adopts the pinned state (generation and counters continue).
#
# Usage: xdp_live_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
LAB_XDP_PASS=$build/tests/bpf/xdp_pass.bpf.o
source "$src/tests/integration/lab.sh"
lab_require_root

sluiced=$build/control/sluiced
py=/usr/bin/python3
tmp=$(mktemp -d)
pin=/sys/fs/bpf/sluice-test-$LAB_ID
cfg=$tmp/sluice.toml
daemon_pid=
notify_pid=
stray_pid=
failures=0
cleanup() {
  [[ -n $daemon_pid ]] && kill -9 "$daemon_pid" 2>/dev/null
  [[ -n $stray_pid ]] && kill -9 "$stray_pid" 2>/dev/null
  [[ -n $notify_pid ]] && kill "$notify_pid" 2>/dev/null
  if ((failures > 0)); then
    mkdir -p /tmp/sluice-test-logs && cp "$tmp"/*.log /tmp/sluice-test-logs/ 2>/dev/null
    echo "logs kept in /tmp/sluice-test-logs"
  fi
  nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --detach --all >/dev/null 2>&1 || true
  [[ -e $pin-host ]] && nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$tmp/host.toml" --detach --all >/dev/null 2>&1
  [[ -e $pin-stray ]] && nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$tmp/stray.toml" --detach --all >/dev/null 2>&1
  lab_down
  rm -rf "$tmp"
}
trap cleanup EXIT
lab_up

cat >"$cfg" <<TOML
[dataplane]
mode = "xdp"
outside = "$LAB_E_OUT"
inside = "$LAB_E_IN"
xdp_attach = "native"
pin_path = "$pin"

[metrics]
listen = "127.0.0.1:19109"

[control]
socket = "$tmp/control.sock"
audit_log = "$tmp/audit.jsonl"

$(lab_classes_toml)
TOML

# sluiced joins only the edge's network namespace (nsenter, not ip netns
# exec) so that its pins land on the host's bpffs and outlive it.
# With a second argument, a listener stands in for systemd's NOTIFY_SOCKET
# and records sluiced's sd_notify messages there, with whether our program
# was on the outside link when READY=1 arrived.
start_daemon() {  # log file [notify record]
  local notify=()
  if [[ -n ${2:-} ]]; then
    "$py" "$src/tests/integration/notify_listener.py" --socket "$tmp/notify.sock" --out "$2" \
      --on-ready "ip -n $LAB_EDGE link show $LAB_E_OUT | grep -c xdp" --seconds 120 &
    notify_pid=$!
    wait_for "$2" listening 5
    notify=(NOTIFY_SOCKET="$tmp/notify.sock")
  fi
  env "${notify[@]}" nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" --log-interval 1 2>"$1" &
  daemon_pid=$!
  wait_for "$1" 'msg=started' 20
}
stop_daemon() {  # log file [what its last line says]
  kill -TERM "$daemon_pid"
  wait "$daemon_pid"
  daemon_pid=
  wait_for "$1" "${2:-msg=\"stopped; the dataplane keeps enforcing unattended\"}" 10
  if [[ -n ${notify_pid:-} ]]; then
    kill "$notify_pid" 2>/dev/null || true
    wait "$notify_pid" 2>/dev/null || true
    notify_pid=
  fi
}
detach() {  # sluiced --detach arguments
  nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" "$@" >>"$tmp/detach.log" 2>&1
}

ip netns exec "$LAB_BACKEND" "$py" "$src/tests/integration/tcp_server.py" --port 443 --seconds 300 >"$tmp/server.log" 2>&1 &
disown
wait_for "$tmp/server.log" listening 10

# --- phase 0: host mode, generic attach ---------------------------------------
# No inside interface: sluiced protects the edge's own stack, where a server
# listens on 198.18.0.254; admitted SYNs reach it, shed ones are answered.
host_cfg=$tmp/host.toml
cat >"$host_cfg" <<TOML
[dataplane]
mode = "xdp"
outside = "$LAB_E_OUT"
xdp_attach = "generic"
pin_path = "$pin-host"

[control]
socket = "$tmp/host.sock"
audit_log = "$tmp/host-audit.jsonl"

[[class]]
name = "all"
rate_per_sec = 1
burst = 1
on_shed = "reset"
shed_order = "random"
TOML
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$host_cfg" --log-interval 1 2>"$tmp/d0.log" &
daemon_pid=$!
wait_for "$tmp/d0.log" 'msg=started mode=xdp attach=generic' 20
ip -n "$LAB_EDGE" addr add 198.18.0.254/16 dev "$LAB_E_OUT"
ip netns exec "$LAB_EDGE" "$py" "$src/tests/integration/tcp_server.py" --port 443 --seconds 60 >"$tmp/edge-server.log" 2>&1 &
edge_server=$!
disown
wait_for "$tmp/edge-server.log" listening 10
check "host mode attaches in generic (skb) mode" \
  "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdpgeneric') == 1"
host=$(client --src 198.18.20.2 --dst 198.18.0.254 --count 20)
echo "host mode: $host"
check "host mode: the burst served by the edge's stack, the rest reset" \
  "$(field "$host" ok) == 1 && $(field "$host" reset) == 19"
kill "$edge_server"
ip -n "$LAB_EDGE" addr flush dev "$LAB_E_OUT"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
check "host mode: SIGTERM leaves the program enforcing" \
  "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdpgeneric') == 1"
# xdp_attach is restart-only: a restart that changes it moves the pinned
# link to the other mode (it adopted the old one unchanged, and said the new).
sed -i 's/^xdp_attach = "generic"/xdp_attach = "native"/' "$host_cfg"
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$host_cfg" 2>"$tmp/d0b.log" &
daemon_pid=$!
wait_for "$tmp/d0b.log" 'msg=started mode=xdp attach=native' 20
check "a restart with xdp_attach = \"native\" moved the link from generic to native" \
  "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdpgeneric') == 0 && \
   $(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'prog/xdp') == 1 && \
   $(grep -c 'adopted=true' "$tmp/d0b.log") == 1"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
detach --config "$host_cfg" --detach
check "host mode: --detach removes it" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') == 0"

# --- phase 1: limits hold for IPv4 and IPv6 ---------------------------------
start_daemon "$tmp/d1.log" "$tmp/n1.txt"
grep -q 'mode=xdp attach=native' "$tmp/d1.log"
wait_for "$tmp/n1.txt" 'READY=1' 5
check "sd_notify: READY=1 once, when the program was already on the link" \
  "$(grep -c 'READY=1' "$tmp/n1.txt") == 1 && $(grep -c "READY=1.*on-ready rc=0 out='[12]'" "$tmp/n1.txt") == 1"
check "sd_notify: STATUS says what enforces" \
  "$(grep -c 'STATUS=enforcing: xdp, generation 1' "$tmp/n1.txt") == 1"
seed1=$(cat "$STATE_DIRECTORY/seed" 2>/dev/null || true)
check "a config without admission.seed: sluiced made its own seed, kept 0600 in \$STATE_DIRECTORY" \
  "$(grep -cE '^[0-9]+$' <<<"$seed1") == 1 && $(stat -c %a "$STATE_DIRECTORY/seed") == 600"
# A second sluiced on the same pinned state is refused and changes nothing.
if nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$cfg" 2>"$tmp/second.log"; then
  second_rc=0
else
  second_rc=$?
fi
check "a second sluiced on the same pins is refused" \
  "second_rc == 1 && $(grep -c 'another sluiced is running' "$tmp/second.log") == 1"
check "the first one still runs and enforces" "$(kill -0 "$daemon_pid" && echo 1 || echo 0) == 1 && \
  $(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') >= 1"
# A stray second config (its own pins, socket and metrics port, the same
# interfaces): not in charge, the edge untouched, and once stopped nothing
# of it left at its pin_path (its maps and record were, and a later
# --detach took them for an incomplete edge).
sed "s|^pin_path = .*|pin_path = \"$pin-stray\"|; s|127.0.0.1:19109|127.0.0.1:19119|;
     s|$tmp/control.sock|$tmp/stray.sock|" "$cfg" >"$tmp/stray.toml"
nsenter --net="/run/netns/$LAB_EDGE" "$sluiced" --config "$tmp/stray.toml" 2>"$tmp/stray.log" &
stray_pid=$!
wait_for "$tmp/stray.log" 'msg="not in charge"' 20
kill -TERM "$stray_pid"
wait "$stray_pid" || true
stray_pid=
check "a stray config on the same interfaces leaves nothing pinned" \
  "$([[ -e $pin-stray ]] && echo 1 || echo 0) == 0 && $(kill -0 "$daemon_pid" && echo 1 || echo 0) == 1"
lab_limits_hold "$tmp/d1.log"
stop_daemon "$tmp/d1.log"
check "SIGTERM left the program enforcing" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') >= 1"
# failure_policy_test.sh covers what SIGTERM leaves; start phase 2 afresh.
detach --config "$cfg" --detach --all
check "--detach --all detached the program" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp')  == 0"
check "--detach --all removed the pins" "$([[ -e $pin ]] && echo 1 || echo 0) == 0"

# --- phase 2: kill -9 mid-traffic, enforcement continues, restart adopts ----
start_daemon "$tmp/d2.log"
# 300 attempts paced over ~3 s; sluiced is killed once a third have gone.
client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 300 --interval 0.01 >"$tmp/during.json" &
client_pid=$!
wait_for "$tmp/d2.log" 'class=citizen generation=1 lookups=[1-9][0-9][0-9]' 10
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
wait "$client_pid"
during=$(cat "$tmp/during.json")
echo "citizen while sluiced was killed: $during"
d_ok=$(field "$during" ok)
d_elapsed_ms=$("$py" -c "print(int(float('$(field "$during" elapsed_s)') * 1000))")
check "program still attached after kill -9" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') >= 1"
check "limit held across the kill: $d_ok <= $((5 + 5 * d_elapsed_ms / 1000 + 1))" \
  "d_ok <= 5 + 5 * d_elapsed_ms / 1000 + 1 && $(field "$during" reset) >= 250"
after_kill=$(client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 60)
check "still resetting with no sluiced running" "$(field "$after_kill" reset) >= 40"

# With a watchdog (WatchdogSec=): sd_watchdog_enabled() reads WATCHDOG_USEC.
WATCHDOG_USEC=400000 start_daemon "$tmp/d3.log" "$tmp/n3.txt"
check "the seed is kept across restarts" "$(cat "$STATE_DIRECTORY/seed") == seed1"
check "restart adopted the pinned state" "$(grep -c 'msg=started.*generation=2 adopted=true' "$tmp/d3.log") == 1"
wait_for "$tmp/d3.log" 'msg="class counters" class=citizen' 5
check "restart kept the counters (360 citizen lookups so far)" \
  "$(counter "$tmp/d3.log" citizen lookups) == 360"

# --- phase 3: SIGHUP reloads; a broken file changes nothing -----------------
sed -i 's/^rate_per_sec = 5$/rate_per_sec = 40/; s/^burst = 5$/burst = 40/' "$cfg"
kill -HUP "$daemon_pid"
wait_for "$tmp/d3.log" 'msg=reloaded generation=3' 5
sleep 1.1  # let the bigger bucket fill
reloaded=$(client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100)
# burst 40 + 40/s over the client's own run (longer on a busy machine) + 1
limit_40() { "$py" -c "import json,sys; print(41 + int(40 * json.loads(sys.argv[1])['elapsed_s']))" "$1"; }
check "after SIGHUP the citizen limit is 40/s burst 40: $(field "$reloaded" ok) served (at most $(limit_40 "$reloaded"))" \
  "$(field "$reloaded" ok) >= 40 && $(field "$reloaded" ok) <= $(limit_40 "$reloaded")"
echo 'rate_per_sec = "lots"' >>"$cfg"
kill -HUP "$daemon_pid"
wait_for "$tmp/d3.log" 'reload rejected' 5
check "a broken file is rejected with its position" "$(grep -c 'sluice.toml:[0-9]*:[0-9]*: ' "$tmp/d3.log") >= 1"
sleep 1.1
kept=$(client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100)
check "the running config stayed: $(field "$kept" ok) served (at most $(limit_40 "$kept"))" \
  "$(field "$kept" ok) >= 40 && $(field "$kept" ok) <= $(limit_40 "$kept")"
check "sd_notify: RELOADING=1 then READY=1 around each SIGHUP, STATUS with the generation" \
  "$(grep -c '^RELOADING=1$' "$tmp/n3.txt") == 2 && \
   $(grep -c 'READY=1 | STATUS=enforcing: xdp, generation 3' "$tmp/n3.txt") == 2"
# --- phase 4: the log level at run time; SIGUSR1 reopens the audit log ----
ctl() { "$build/control/sluicectl" --socket "$tmp/control.sock" "$@"; }
check "log-level says info" "$(ctl log-level | grep -c '^log level info$') == 1"
check "log-level debug" "$(ctl log-level debug | grep -c '^log level debug (was info)$') == 1"
ctl status >/dev/null
wait_for "$tmp/d3.log" 'level=debug msg="control request" op=status' 5
ctl log-level info >/dev/null
mv "$tmp/audit.jsonl" "$tmp/audit.jsonl.1"  # what logrotate does, then its postrotate:
kill -USR1 "$daemon_pid"
wait_for "$tmp/d3.log" 'msg="audit log reopened"' 5
ctl set class.citizen.rate_per_sec=41 >/dev/null
wait_for "$tmp/n3.txt" '^STATUS=enforcing: xdp, generation 4$' 5
check "sd_notify: STATUS follows a change through the API" \
  "$(grep -c '^STATUS=enforcing: xdp, generation 4$' "$tmp/n3.txt") == 1"
lab_capture_check "$build/control/sluicectl" "$tmp/control.sock" "$tmp/d3.log" "$tmp"
check "after SIGUSR1 the next change is in the new audit log" \
  "$(grep -c '"op":"set"' "$tmp/audit.jsonl" 2>/dev/null) == 1"
check "and not in the rotated one" "$(grep -c '"op":"set"' "$tmp/audit.jsonl.1") == 0"
# --- phase 5: the watchdog is fed while our program holds the link ----------
wait_for "$tmp/n3.txt" '^WATCHDOG=1$' 5
fed=$(grep -c '^WATCHDOG=1$' "$tmp/n3.txt")
detach --config "$cfg" --detach  # an operator hands the edge over under a running sluiced
wait_for "$tmp/d3.log" 'msg="dataplane unhealthy; watchdog not fed"' 5
check "watchdog: withheld, with why, once the program left the link" \
  "$(grep -c "why=\"sluice's program is no longer the one on the outside link\"" "$tmp/d3.log") == 1"
withheld=$(grep -c '^WATCHDOG=1$' "$tmp/n3.txt")
sleep 1  # five watchdog intervals (200 ms): a sluiced still feeding it would send 5
# (one sent just before the check may still be on its way to the listener)
check "watchdog: fed every 200 ms before ($fed by then), not since" \
  "fed >= 3 && $(grep -c '^WATCHDOG=1$' "$tmp/n3.txt") <= withheld + 1"
out=$(ctl set class.citizen.rate_per_sec=7 2>&1) && rc=0 || rc=$?
check "a change with the edge handed over is refused, saying why (rc $rc)" \
  "rc == 1 && $(grep -c 'the dataplane is not enforcing' <<<"$out") == 1"
out=$(ctl status --wait 0.3 2>&1) && rc=0 || rc=$?
check "status with the edge handed over exits 1 (not enforcing), saying why (rc $rc)" \
  "rc == 1 && $(grep -c '^DATAPLANE UNHEALTHY: ' <<<"$out") == 1"
# The lock file: the pin path with '-' and '%' escaped, '/' as '-'.
lock_name=${pin//%/%25}
lock_name=${lock_name//-/%2d}
lock_file=/run/sluice/instance${lock_name//\//-}.lock
check "the running sluiced holds its instance lock ($lock_file)" "$([[ -e $lock_file ]] && echo 1 || echo 0) == 1"
stop_daemon "$tmp/d3.log" 'msg="stopped; the dataplane was not enforcing"'
check "the stopped sluiced removed its instance lock ($lock_file)" "$([[ -e $lock_file ]] && echo 1 || echo 0) == 0"
check "sd_notify: STOPPING=1 at SIGTERM, saying the dataplane was not enforcing" \
  "$(grep -c '^STOPPING=1 | STATUS=stopping; the dataplane was not enforcing' "$tmp/n3.txt") == 1"
# Without a watchdog (the shipped units' default) STATUS= follows the
# dataplane's health too: it said "enforcing" after a --detach until the
# next change.
sed -i '/^rate_per_sec = "lots"$/d' "$cfg"  # the bad reload's line (phase 4)
start_daemon "$tmp/d4.log" "$tmp/n4.txt"
detach --config "$cfg" --detach
wait_for "$tmp/n4.txt" '^STATUS=not enforcing: ' 5
check "sd_notify without a watchdog: STATUS says not enforcing once the program left the link" \
  "$(grep -c "^STATUS=not enforcing: sluice's program is no longer the one on the outside link" "$tmp/n4.txt") == 1"
stop_daemon "$tmp/d4.log" 'msg="stopped; the dataplane was not enforcing"'
detach --config "$cfg" --detach --all
check "detached at the end" "$(ip -n "$LAB_EDGE" link show "$LAB_E_OUT" | grep -c 'xdp') == 0"

echo "$passes passed, $failures failed"
exit $((failures > 0))
