#!/usr/bin/env bash
# replay_cooked: `sluicectl replay` reads what `tcpdump -i any -Q in` writes
# (Linux cooked, LINUX_SLL2) and gives the same counts as the Ethernet
# capture of the same traffic. Two namespaces joined by a veth pair; in the
# receiving one (one interface), tcpdump captures incoming frames twice at
# once: on "any" and on the interface. IPv4 and IPv6 SYNs (refused: nothing
# listens), with the ARP and ND they bring.
#
# Usage: replay_cooked_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
source "$src/tests/integration/lab.sh"  # lab_require_root, wait_for, check
lab_require_root "network namespaces and tcpdump"
sender=sl-rc-a-$$
receiver=sl-rc-b-$$
tmp=$(mktemp -d)
dumps=()
cleanup() {
  for p in "${dumps[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  ip netns del "$sender" 2>/dev/null || true
  ip netns del "$receiver" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$sender"
ip netns add "$receiver"
ip link add a0 netns "$sender" type veth peer name b0 netns "$receiver"
ip -n "$sender" addr add 198.18.30.2/24 dev a0
ip -n "$sender" addr add 2001:2:0:30::2/64 dev a0 nodad
ip -n "$receiver" addr add 198.18.30.1/24 dev b0
ip -n "$receiver" addr add 2001:2:0:30::1/64 dev b0 nodad
for ns in "$sender" "$receiver"; do ip -n "$ns" link set lo up; done
ip -n "$sender" link set a0 up
ip -n "$receiver" link set b0 up

client() { ip netns exec "$sender" /usr/bin/python3 "$src/tests/integration/tcp_client.py" --deadline 20 "$@"; }
# Every SYN the clients sent is in both files before tcpdump stops (it drops
# what it has not read yet when interrupted).
syns_in() { tcpdump -nr "$1" 'tcp[tcpflags] & tcp-syn != 0 or ip6[6] == 6' 2>/dev/null | wc -l; }
# One capture of the traffic by both tcpdumps. The comparison needs both to
# hold every packet: on a busy machine the kernel may drop some from a
# capture's ring, so a run that lost any is made again (at most 3 runs).
capture() {
  rm -f "$tmp"/*.pcap "$tmp"/*.log
  ip netns exec "$receiver" tcpdump -i any -Q in -B 8192 --immediate-mode -U -w "$tmp/any.pcap" 2>"$tmp/any.log" &
  dumps+=($!)
  ip netns exec "$receiver" tcpdump -i b0 -Q in -B 8192 --immediate-mode -U -w "$tmp/eth.pcap" 2>"$tmp/eth.log" &
  dumps+=($!)
  wait_for "$tmp/any.log" "listening on any" 10
  wait_for "$tmp/eth.log" "listening on b0" 10
  v4=$(client --src 198.18.30.2 --dst 198.18.30.1 --count 150 --interval 0.002)
  v6=$(client --src 2001:2:0:30::2 --dst 2001:2:0:30::1 --count 50 --interval 0.002)
  echo "IPv4: $v4"
  echo "IPv6: $v6"
  local deadline=$((SECONDS + 10))
  while (($(syns_in "$tmp/eth.pcap") < 200 || $(syns_in "$tmp/any.pcap") < 200)) && ((SECONDS < deadline)); do
    sleep 0.1
  done
  for p in "${dumps[@]}"; do kill -INT "$p"; done
  for p in "${dumps[@]}"; do wait "$p" || true; done
  dumps=()
  cat "$tmp/any.log" "$tmp/eth.log"
  [[ $(grep -c '^0 packets dropped by kernel' "$tmp/any.log" "$tmp/eth.log" | grep -c ':1$') == 2 ]]
}
for attempt in 1 2 3; do
  capture && break
  echo "attempt $attempt: the kernel dropped packets from a capture; again"
done
check "both captures hold every packet (no kernel drops)" \
  "$(grep -c '^0 packets dropped by kernel' "$tmp/any.log" "$tmp/eth.log" | grep -c ':1$') == 2"

linktype() { /usr/bin/python3 -c "import struct,sys; print(struct.unpack('<I', open(sys.argv[1],'rb').read(24)[20:24])[0])" "$1"; }
check "tcpdump -i any wrote LINUX_SLL2 ($(linktype "$tmp/any.pcap")), -i b0 Ethernet ($(linktype "$tmp/eth.pcap"))" \
  "$(linktype "$tmp/any.pcap") == 276 && $(linktype "$tmp/eth.pcap") == 1"

# Random order: the classes shed by their budgets alone, so that the counts
# below are the buckets' (sticky order may shed by rank a few tokens early).
cat >"$tmp/sluice.toml" <<'TOML'
[[class]]
name = "citizen"
match = { src = "198.18.0.0/15" }
rate_per_sec = 1
burst = 50
on_shed = "reset"
shed_order = "random"

[[class]]
name = "citizen6"
match = { src = "2001:2::/48" }
rate_per_sec = 1
burst = 20
shed_order = "random"
TOML
replay() { "$build/control/sluicectl" replay --config "$tmp/sluice.toml" --pcap "$1" --json; }
replay "$tmp/eth.pcap" >"$tmp/eth.json"
replay "$tmp/any.pcap" >"$tmp/any.json"
cat "$tmp/eth.json"
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$1" "$2"; }
check "the Ethernet capture holds the 200 SYNs: $(field "$tmp/eth.json" "d['totals']['lookups']") lookups" \
  "$(field "$tmp/eth.json" "d['totals']['lookups']") >= 200"
check "and both budgets shed: citizen admitted $(field "$tmp/eth.json" "d['classes']['citizen']['admitted']") of 150" \
  "$(field "$tmp/eth.json" "d['classes']['citizen']['admitted']") >= 50 && \
   $(field "$tmp/eth.json" "d['classes']['citizen']['shed']") >= 90"
check "replay of the cooked capture gives the same counts, every class and reason" \
  "$(cmp -s "$tmp/eth.json" "$tmp/any.json" && echo 1 || echo 0) == 1"
((failures == 0)) || diff "$tmp/eth.json" "$tmp/any.json" || true
echo "$failures failed"
exit $((failures > 0))
