# shellcheck shell=bash
# Lab helpers for integration tests: client / edge / backend network
# namespaces joined by veth pairs, addresses only from 198.18.0.0/15 and
# 2001:2::/48. The edge bridges (XDP inline) so client and backend share
# 198.18.0.0/16 and 2001:2::/48. Everything is torn down by lab_down, which
# callers register with trap so it also runs on failure.
#
#   client (c0) ---- (e_out) edge (e_in) ---- (b0) backend
#
# Source this file; it defines LAB_* names unique to this process.

LAB_ID=${LAB_ID:-$$}
LAB_CLIENT=sl-client-$LAB_ID
LAB_EDGE=sl-edge-$LAB_ID
LAB_BACKEND=sl-backend-$LAB_ID
LAB_E_OUT=e-out
LAB_E_IN=e-in
LAB_BACKEND_V4=198.18.0.1
LAB_BACKEND_V6=2001:2::1
# sluiced keeps its sticky seed here (not in /var/lib/sluice); lab_down removes it.
export STATE_DIRECTORY=${STATE_DIRECTORY:-/tmp/sluice-lab-state-$LAB_ID}

lab_up() {
  : "${LAB_XDP_PASS:?set LAB_XDP_PASS to the built xdp_pass.bpf.o}"
  ip netns add "$LAB_CLIENT"
  ip netns add "$LAB_EDGE"
  ip netns add "$LAB_BACKEND"
  ip link add c0 netns "$LAB_CLIENT" type veth peer name "$LAB_E_OUT" netns "$LAB_EDGE"
  ip link add b0 netns "$LAB_BACKEND" type veth peer name "$LAB_E_IN" netns "$LAB_EDGE"
  for ns in "$LAB_CLIENT" "$LAB_EDGE" "$LAB_BACKEND"; do
    ip -n "$ns" link set lo up
  done
  # Client addresses: a checkpoint scanner and a citizen, IPv4 and IPv6.
  ip -n "$LAB_CLIENT" addr add 198.18.10.2/16 dev c0
  ip -n "$LAB_CLIENT" addr add 198.18.20.2/16 dev c0
  ip -n "$LAB_CLIENT" addr add 2001:2:0:10::2/48 dev c0 nodad
  ip -n "$LAB_CLIENT" addr add 2001:2:0:20::2/48 dev c0 nodad
  ip -n "$LAB_BACKEND" addr add "$LAB_BACKEND_V4/16" dev b0
  ip -n "$LAB_BACKEND" addr add "$LAB_BACKEND_V6/48" dev b0 nodad
  ip -n "$LAB_EDGE" link set "$LAB_E_OUT" up
  ip -n "$LAB_EDGE" link set "$LAB_E_IN" up
  ip -n "$LAB_CLIENT" link set c0 up
  ip -n "$LAB_BACKEND" link set b0 up
  # Frames XDP redirects or transmits into a veth are delivered promptly only
  # when the peer runs XDP too (tests/integration/xdp_pass.bpf.c, built as
  # $LAB_XDP_PASS). Senders fill in their own checksums: a frame XDP bridges
  # has lost the skb's "checksum left to the NIC" state, so a partial
  # checksum would be dropped as corrupt at the far end.
  for pair in "$LAB_CLIENT c0" "$LAB_BACKEND b0"; do
    set -- $pair
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
    ip -n "$1" link set dev "$2" xdpdrv obj "$LAB_XDP_PASS" sec xdp
  done
}

lab_down() {
  for ns in "$LAB_CLIENT" "$LAB_EDGE" "$LAB_BACKEND"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  [[ $STATE_DIRECTORY == /tmp/sluice-lab-state-* ]] && rm -rf "$STATE_DIRECTORY"
  return 0
}

# What the lab's kernels counted as dropped or sent again, for a failed
# run's log: a loss the edge did not cause shows up here (a listen queue
# overflow at the backend, a ring full on a veth).
lab_counters() {
  local ns
  for ns in "$LAB_CLIENT" "$LAB_EDGE" "$LAB_BACKEND"; do
    [[ -e /run/netns/$ns ]] || continue
    echo "-- $ns: nonzero drop and retransmission counters"
    ip netns exec "$ns" nstat -az 2>/dev/null |
      grep -E 'Drop|Overflow|Retrans|Timeout|InNoRoutes|InDiscards|OutDiscards' | awk '$2 != 0' || true
    ip -n "$ns" -s -j link show 2>/dev/null | "$lab_py" -c '
import json, sys
for l in json.load(sys.stdin):
    s = l.get("stats64", {})
    print(l["ifname"], "rx dropped", s.get("rx", {}).get("dropped"), "tx dropped", s.get("tx", {}).get("dropped"))
' || true
  done
}

# Privileged tests may skip only outside CI, and say why (what needs root:
# network namespaces and XDP, or what the caller names).
lab_require_root() {
  local what=${1:-network namespaces and XDP}
  if [[ $(id -u) -ne 0 ]]; then
    if [[ -n "${CI:-}" ]]; then
      echo "FAIL: needs root ($what); CI runs as root" >&2
      exit 1
    fi
    echo "SKIP: needs root for $what (outside CI)"
    exit 77
  fi
}

# wait_for FILE PATTERN SECONDS: waits until PATTERN appears in FILE.
wait_for() {
  local file=$1 pattern=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for '$pattern' in $file" >&2
  cat "$file" >&2
  return 1
}

# Helpers of the live tests (they set $src, the source tree).
lab_py=/usr/bin/python3
client() { ip netns exec "$LAB_CLIENT" "$lab_py" "$src/tests/integration/tcp_client.py" --deadline 20 "$@"; }
field() { "$lab_py" -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
# counter LOG CLASS KEY: the last value sluiced logged for a class.
counter() { grep "msg=\"class counters\" class=$2 " "$1" | tail -1 | sed -E "s/.* $3=([0-9]+).*/\1/"; }
passes=0
failures=0
check() {  # description, condition (arithmetic)
  if (($2)); then
    echo "ok: $1"
    passes=$((passes + 1))
  else
    echo "FAIL: $1"
    failures=$((failures + 1))
  fi
}

# The classes the live tests share: checkpoint scanners (priority 0, no
# limit of their own) and citizens (5/s, burst 5, sheds answered with a
# reset). Printed for a config's heredoc.
lab_classes_toml() {
  cat <<'TOML'
[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"], proto = "tcp", dst_ports = "443" }

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"], proto = "tcp" }
rate_per_sec = 5
burst = 5
on_shed = "reset"
shed_order = "random"
TOML
}

# lab_limits_hold LOG: real TCP through sluiced (classes of lab_classes_toml,
# LOG its --log-interval 1 output), IPv4 then IPv6: 50 checkpoint
# connections all served, 200 citizen ones held to burst + rate*t with the
# rest reset fast; then sluiced's own counters equal what the clients saw.
lab_limits_hold() {
  local log=$1 ok_total=0 reset_total=0 fam cp_src ci_src dst cp ci ci_ok ci_reset elapsed_ms bound
  for fam in 4 6; do
    if [[ $fam == 4 ]]; then cp_src=198.18.10.2; ci_src=198.18.20.2; dst=$LAB_BACKEND_V4
    else cp_src=2001:2:0:10::2; ci_src=2001:2:0:20::2; dst=$LAB_BACKEND_V6; fi
    cp=$(client --src "$cp_src" --dst "$dst" --count 50)
    ci=$(client --src "$ci_src" --dst "$dst" --count 200)
    echo "IPv$fam checkpoint: $cp"
    echo "IPv$fam citizen:    $ci"
    ci_ok=$(field "$ci" ok)
    ci_reset=$(field "$ci" reset)
    elapsed_ms=$("$lab_py" -c "print(int(float('$(field "$ci" elapsed_s)') * 1000))")
    bound=$((5 + 5 * elapsed_ms / 1000 + 1))
    check "IPv$fam checkpoint: every connection served" "$(field "$cp" ok) == 50"
    check "IPv$fam citizen: admitted $ci_ok <= burst + rate*t = $bound" "ci_ok <= bound"
    check "IPv$fam citizen: some admitted ($ci_ok)" "ci_ok >= 5"
    check "IPv$fam citizen: the rest reset, none timed out ($ci_reset resets)" \
      "ci_reset == 200 - ci_ok && $(field "$ci" timeout) == 0 && $(field "$ci" error) == 0"
    check "IPv$fam citizen: resets answered within 100 ms" \
      "$(field "$ci" reset_latency_max_ms | cut -d. -f1) < 100"
    ok_total=$((ok_total + ci_ok))
    reset_total=$((reset_total + ci_reset))
    sleep 1.1  # let the citizen bucket (5/s, burst 5) refill before the next family
  done
  # The counters are logged once a second: wait for the line that has them all.
  local deadline=$((SECONDS + 5))
  local ci_seen cp_seen
  while ((SECONDS < deadline)); do
    ci_seen=$(counter "$log" citizen lookups)
    cp_seen=$(counter "$log" checkpoint lookups)
    ((${ci_seen:-0} >= 400 && ${cp_seen:-0} >= 100)) && break
    sleep 0.1
  done
  check "sluiced counted 400 citizen lookups" "$(counter "$log" citizen lookups) == 400"
  check "sluiced admitted what the clients saw served ($ok_total)" \
    "$(counter "$log" citizen admitted) == ok_total"
  check "sluiced shed what the clients saw reset ($reset_total)" \
    "$(counter "$log" citizen packets_shed) == reset_total"
  check "checkpoint: 100 lookups, all admitted" \
    "$(counter "$log" checkpoint lookups) == 100 && $(counter "$log" checkpoint admitted) == 100"
}

# lab_capture_check SLUICECTL SOCKET LOG OUT_DIR: `sluicectl capture` of 10
# shed frames while the citizen (198.18.20.2) overruns its class; tshark
# finds the comments (class, verdict, reason) and tcpdump reads the file.
# Needs a citizen class with rate and burst well under 100.
lab_capture_check() {
  local ctl=$1 sock=$2 log=$3 dir=$4 rc=0
  "$ctl" --socket "$sock" capture --verdict shed --class citizen -c 10 --seconds 20 \
    -w "$dir/shed.pcapng" 2>"$dir/capture.err" &
  local pid=$!
  wait_for "$log" 'msg="capture started"' 10
  client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100 >/dev/null
  wait "$pid" || rc=$?
  cat "$dir/capture.err"
  check "sluicectl capture ended after 10 shed frames (exit $rc)" \
    "rc == 0 && $(grep -c '^captured 10 frames' "$dir/capture.err") == 1"
  local comments
  comments=$(tshark -r "$dir/shed.pcapng" -T fields -e frame.comment 2>/dev/null || true)
  echo "$comments" | head -3
  check "tshark: every frame says class=citizen verdict=shed reason=class_rate" \
    "$(grep -c '^class=citizen verdict=shed reason=class_rate$' <<<"$comments") == 10"
  local frames
  frames=$(tcpdump -nr "$dir/shed.pcapng" 2>/dev/null || true)
  check "tcpdump reads the file: 10 SYNs of 198.18.20.2" \
    "$(grep -c '198.18.20.2.* > .*Flags \[S\]' <<<"$frames") == 10"
  # -w -: to standard output, down a pipe, as tcpdump -w - does.
  local started
  started=$(grep -c 'msg="capture started"' "$log" || true)
  "$ctl" --socket "$sock" capture --verdict shed --class citizen -c 3 --seconds 20 -w - \
    2>"$dir/capture2.err" | tcpdump -nr - >"$dir/piped.txt" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 200); do # up to 10 s for its "capture started"
    (($(grep -c 'msg="capture started"' "$log") > started)) && break
    sleep 0.05
  done
  client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100 >/dev/null
  rc=0
  wait "$pid" || rc=$?
  check "sluicectl capture -w - | tcpdump -r -: 3 SYNs of 198.18.20.2 (exit $rc)" \
    "rc == 0 && $(grep -c '198.18.20.2.* > .*Flags \[S\]' "$dir/piped.txt") == 3 && \
     $(grep -c '^captured 3 frames to standard output' "$dir/capture2.err") == 1"
  # Stopped with ^C (SIGINT) before its count or time: the file holds every
  # frame written, whole, and the summary says so (before: an empty file).
  started=$(grep -c 'msg="capture started"' "$log" || true)
  "$ctl" --socket "$sock" capture --verdict shed --class citizen -c 1000 --seconds 60 \
    -w "$dir/stopped.pcapng" 2>"$dir/capture3.err" &
  pid=$!
  for _ in $(seq 1 200); do
    (($(grep -c 'msg="capture started"' "$log") > started)) && break
    sleep 0.05
  done
  client --src 198.18.20.2 --dst "$LAB_BACKEND_V4" --count 100 >/dev/null
  for _ in $(seq 1 100); do # up to 5 s for its frames to be in the file
    (($(tcpdump -nr "$dir/stopped.pcapng" 2>/dev/null | wc -l) >= 5)) && break
    sleep 0.05
  done
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  cat "$dir/capture3.err"
  local n
  n=$(sed -nE 's/^captured ([0-9]+) frames to .* \(interrupted\)$/\1/p' "$dir/capture3.err")
  check "sluicectl capture stopped by SIGINT: exit 0, its ${n:-no} frames whole in the file" \
    "rc == 0 && ${n:-0} >= 5 && $(tcpdump -nr "$dir/stopped.pcapng" 2>&1 | grep -c 'Flags \[S\]') == ${n:-0} && \
     $(tcpdump -nr "$dir/stopped.pcapng" 2>&1 | grep -ci 'truncated') == 0"
}
