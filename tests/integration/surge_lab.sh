# shellcheck shell=bash
# Surge-lab topology (scripts/surge-lab, the surge_lab_short test): four
# network namespaces joined by veth pairs, addresses only from 198.18.0.0/15.
#
#   clients (c0) --- (e-out) edge (e-in) --- (f-out) firewall (f-in) --- (b0) backend
#   198.18.x.y/16                            198.18.0.254/16   198.19.0.254/24  198.19.0.1/24
#
# The edge is a layer-2 hop: a Linux bridge (configurations "none" and "nft")
# or sluiced's XDP inline bridge ("xdp"). The firewall routes between the two
# subnets and models the boundary that failed: conntrack plus a new-connection
# limit it cannot exceed (drops beyond it, indiscriminately).
#
# A two-edge fleet ("fleet", sl_up's edge mode) adds a second path through a
# second pair of edge interfaces, e2-out / e2-in, to the firewall's f2-out
# (198.18.0.253): the clients' route to the backend is multipath over both
# (hashed on addresses and ports, as ECMP does), and the firewall sends each
# connection's replies back out of the interface its SYN came in on (a
# conntrack mark and a routing rule), so they return through the same edge.
#
# Source this file; it defines SL_* names unique to this process. Callers
# register sl_down with trap so it also runs on failure; it is bounded in time.

SL_ID=${SL_ID:-$$}
SL_CLIENTS=sl-cli-$SL_ID
SL_EDGE=sl-edge-$SL_ID
SL_FW=sl-fw-$SL_ID
SL_BACKEND=sl-be-$SL_ID
SL_BACKEND_V4=198.19.0.1
SL_FW_OUT_V4=198.18.0.254
SL_FW_IN_V4=198.19.0.254
SL_FW_OUT2_V4=198.18.0.253
SL_XDP_PASS=${SL_XDP_PASS:?set SL_XDP_PASS to the built xdp_pass.bpf.o}
# Client source addresses: 10 checkpoint scanners in 198.18.10.0/24, 100
# citizens in 198.18.20.0/22 (per-address port ranges never run out); the
# large population (sl_up's second argument) adds 10,000 citizens from
# 198.18.64.0 (to 198.18.103.15), routed by the firewall through the
# clients' 198.18.0.2 rather than resolved one by one (the kernel's
# neighbour table, shared by every namespace, starts dropping at 1,024).
SL_CHECKPOINT_SRCS=()
for _i in $(seq 2 11); do SL_CHECKPOINT_SRCS+=("198.18.10.$_i"); done
SL_CITIZEN_SRCS=()
for _i in $(seq 2 51); do SL_CITIZEN_SRCS+=("198.18.20.$_i" "198.18.21.$_i"); done
unset _i
SL_POPULATION_FIRST=198.18.64.0
SL_POPULATION_NET=198.18.64.0/18
SL_POPULATION_GW=198.18.0.2
SL_POPULATION_SIZE=10000

sl_ns() { ip netns exec "$@"; }

# sl_up EDGE_MODE [POPULATION]: EDGE_MODE is "bridge" (Linux bridge at the
# edge), "xdp" or "dpdk" (no bridge: sluiced takes e-out/e-in itself), or
# "fleet" (as xdp, plus the second path e2-out/e2-in for a second edge);
# POPULATION "10k" adds the 10,000 citizen addresses.
sl_up() {
  local edge_mode=$1 population=${2:-} ns a
  for ns in "$SL_CLIENTS" "$SL_EDGE" "$SL_FW" "$SL_BACKEND"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add c0 netns "$SL_CLIENTS" type veth peer name e-out netns "$SL_EDGE"
  ip link add e-in netns "$SL_EDGE" type veth peer name f-out netns "$SL_FW"
  ip link add f-in netns "$SL_FW" type veth peer name b0 netns "$SL_BACKEND"

  for a in "${SL_CHECKPOINT_SRCS[@]}" "${SL_CITIZEN_SRCS[@]}"; do
    echo "address add $a/16 dev c0"
  done | ip -n "$SL_CLIENTS" -batch -
  if [[ $population == 10k ]]; then
    ip -n "$SL_CLIENTS" addr add "$SL_POPULATION_GW/16" dev c0
    /usr/bin/python3 - "$SL_POPULATION_FIRST" "$SL_POPULATION_SIZE" <<'PY' | ip -n "$SL_CLIENTS" -batch -
import ipaddress, sys
first = ipaddress.ip_address(sys.argv[1])
for i in range(int(sys.argv[2])):
    print(f"address add {first + i}/32 dev lo")
PY
  fi
  ip -n "$SL_FW" addr add "$SL_FW_OUT_V4/16" dev f-out
  ip -n "$SL_FW" addr add "$SL_FW_IN_V4/24" dev f-in
  ip -n "$SL_BACKEND" addr add "$SL_BACKEND_V4/24" dev b0

  ip -n "$SL_CLIENTS" link set c0 up
  ip -n "$SL_EDGE" link set e-out up
  ip -n "$SL_EDGE" link set e-in up
  ip -n "$SL_FW" link set f-out up
  ip -n "$SL_FW" link set f-in up
  ip -n "$SL_BACKEND" link set b0 up
  if [[ $edge_mode == fleet ]]; then
    sl_second_path
  else
    ip -n "$SL_CLIENTS" route add 198.19.0.0/16 via "$SL_FW_OUT_V4"
  fi
  ip -n "$SL_BACKEND" route add 198.18.0.0/16 via "$SL_FW_IN_V4"
  sl_ns "$SL_FW" sysctl -qw net.ipv4.ip_forward=1
  if [[ $population == 10k ]]; then
    ip -n "$SL_FW" route add "$SL_POPULATION_NET" via "$SL_POPULATION_GW" dev f-out
    # A fleet's second path: its replies through the same gateway (on-link
    # in table 102, they were resolved one by one, past the 1,024 limit).
    if [[ $edge_mode == fleet ]]; then
      ip -n "$SL_FW" route add "$SL_POPULATION_NET" via "$SL_POPULATION_GW" dev f2-out onlink table 102
    fi
  fi
  sl_ns "$SL_CLIENTS" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
  sl_ns "$SL_BACKEND" sysctl -qw net.core.somaxconn=4096
  sl_ns "$SL_BACKEND" sysctl -qw net.ipv4.tcp_max_syn_backlog=4096

  # Senders fill in their own checksums (a frame XDP bridges has lost the
  # skb's "checksum left to the NIC" state), and the peers of the edge's
  # interfaces run xdp_pass so that frames XDP redirects into them arrive.
  for a in "$SL_CLIENTS c0" "$SL_FW f-out" "$SL_FW f-in" "$SL_BACKEND b0"; do
    # shellcheck disable=SC2086  # "namespace interface"
    set -- $a
    sl_ns "$1" ethtool -K "$2" tx off >/dev/null
  done
  ip -n "$SL_CLIENTS" link set dev c0 xdpdrv obj "$SL_XDP_PASS" sec xdp
  ip -n "$SL_FW" link set dev f-out xdpdrv obj "$SL_XDP_PASS" sec xdp

  if [[ $edge_mode == dpdk ]]; then
    # af_packet sees frames after the veth's offloads: keep them whole.
    for a in e-out e-in; do
      sl_ns "$SL_EDGE" ethtool -K "$a" gro off tso off gso off tx off >/dev/null 2>&1 || true
    done
  fi
  if [[ $edge_mode == bridge ]]; then
    ip -n "$SL_EDGE" link add br0 type bridge
    ip -n "$SL_EDGE" link set e-out master br0
    ip -n "$SL_EDGE" link set e-in master br0
    ip -n "$SL_EDGE" link set br0 up
  fi
}

# The second path of a two-edge fleet (sl_up "fleet"): c1 --- (e2-out) edge
# (e2-in) --- f2-out. ECMP over both paths from the clients; replies leave the
# firewall by the interface their connection came in on.
sl_second_path() {
  ip link add c1 netns "$SL_CLIENTS" type veth peer name e2-out netns "$SL_EDGE"
  ip link add e2-in netns "$SL_EDGE" type veth peer name f2-out netns "$SL_FW"
  ip -n "$SL_FW" addr add "$SL_FW_OUT2_V4/32" dev f2-out
  ip -n "$SL_CLIENTS" link set c1 up
  ip -n "$SL_EDGE" link set e2-out up
  ip -n "$SL_EDGE" link set e2-in up
  ip -n "$SL_FW" link set f2-out up
  sl_ns "$SL_CLIENTS" sysctl -qw net.ipv4.fib_multipath_hash_policy=${SL_ECMP_HASH_POLICY:-1}
  sl_ns "$SL_CLIENTS" sysctl -qw net.ipv4.conf.all.rp_filter=0
  ip -n "$SL_CLIENTS" route add 198.19.0.0/16 \
    nexthop via "$SL_FW_OUT_V4" dev c0 onlink nexthop via "$SL_FW_OUT2_V4" dev c1 onlink
  # The firewall: 198.18.0.0/16 is on-link through f-out; connections that
  # came in on f2-out are marked, and their replies routed out of f2-out.
  ip -n "$SL_FW" route add 198.18.0.0/16 dev f2-out table 102
  ip -n "$SL_FW" rule add fwmark 2 table 102
  for dev in all default f-out f2-out; do
    sl_ns "$SL_FW" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
  done
  sl_ns "$SL_FW" nft -f - <<NFT
table inet paths {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ct state new iifname "f2-out" ct mark set 2
    ct mark 2 meta mark set ct mark
  }
}
NFT
  sl_ns "$SL_CLIENTS" ethtool -K c1 tx off >/dev/null
  sl_ns "$SL_FW" ethtool -K f2-out tx off >/dev/null
  ip -n "$SL_CLIENTS" link set dev c1 xdpdrv obj "$SL_XDP_PASS" sec xdp
  ip -n "$SL_FW" link set dev f2-out xdpdrv obj "$SL_XDP_PASS" sec xdp
}

# sl_firewall LIMIT BURST: the boundary: conntrack, new connections beyond
# LIMIT/s (burst BURST) dropped.
sl_firewall() {
  sl_ns "$SL_FW" nft -f - <<NFT
table inet boundary {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state new limit rate over $1/second burst $2 packets counter drop
  }
}
NFT
}

# sl_edge_nft RATE BURST: the plain answer at the edge: new connections (SYN
# without ACK) from the outside beyond RATE/s dropped, on the bridge.
sl_edge_nft() {
  sl_ns "$SL_EDGE" nft -f - <<NFT
table bridge edge {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "e-out" ether type ip tcp flags & (syn | ack) == syn limit rate over $1/second burst $2 packets counter drop
  }
}
NFT
}

sl_down() {
  local ns
  for ns in "$SL_CLIENTS" "$SL_EDGE" "$SL_FW" "$SL_BACKEND"; do
    timeout 5 ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  sleep 0.2
  for ns in "$SL_CLIENTS" "$SL_EDGE" "$SL_FW" "$SL_BACKEND"; do
    timeout 5 ip netns del "$ns" 2>/dev/null
  done
  return 0
}
