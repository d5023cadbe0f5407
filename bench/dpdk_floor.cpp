// SPDX-License-Identifier: Apache-2.0
// The floor under DPDK target (a): what sluice (a)'s worker must do at the
// least, per burst of the benchmark's capture (SYNs and UDP lookups, IPv4 and
// IPv6, every one admitted):
//  - receive a burst from net_pcap (infinite_rx), as testpmd does;
//  - parse Ethernet, IPv4 (no options, not a fragment) or IPv6 (TCP or UDP
//    right after its header), and TCP or UDP;
//  - classify by source: rte_fib (DIR-24-8) and rte_lpm6, one bulk lookup per
//    family for the burst, 10 prefixes as in (a);
//  - decide each lookup on the worker's own credit (drawn 1024 tokens at a
//    time from one shared atomic budget);
//  - write each admitted SYN's flow into an open-addressed array (a
//    multiplicative hash of the 5-tuple, one 16-byte slot: no eviction
//    order, no partitions);
//  - count the verdict per class;
//  - with `queue`, pass the admitted burst through one single-producer
//    single-consumer rte_ring (the least a packet budget's queue costs: no
//    priorities, no pacing), then send it to net_null.
// What it leaves out is what sluice's semantics add: VLAN tags, IPv4
// options and fragments, IPv6 extension headers, ports and destinations in
// classification, sticky ranks, reserves, epochs, priorities and pacing,
// eviction by age, the delay histogram, captures. Not a dataplane: a
// yardstick, run by bench/dpdk_bench.sh next to testpmd and sluice.
#include "bench/dpdk_floor.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_fib.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_lpm6.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint32_t kFlows = 1U << 18;  // slots, a power of two
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t kCreditChunk = 1024;
constexpr uint64_t kFlowLifeNs = 10ULL * 1000000000ULL;

struct FlowSlot {
  uint64_t tag;  // the 5-tuple's hash | 1: 0 is empty
  uint64_t expires_ns;
};

struct Floor {
  uint16_t outside = 0, inside = 1;
  rte_fib* fib = nullptr;
  rte_lpm6* lpm6 = nullptr;
  rte_ring* ring = nullptr;  // nullptr: straight out
  std::vector<FlowSlot> flows = std::vector<FlowSlot>(kFlows);
  std::atomic<uint64_t> budget{~0ULL};  // the shared budget credits are drawn from
  std::atomic<bool> stop{false};
  uint64_t tsc_hz = 1;
  std::array<std::array<uint64_t, 2>, 2> verdicts{};  // class x admitted
};

uint64_t mix(uint64_t x) {
  x ^= x >> 32;
  x *= kGolden;
  return x ^ (x >> 29);
}

// One burst: parse, classify in bulk, decide, write flows, count, send.
void burst(Floor& f, rte_mbuf** pkts, uint16_t n, uint64_t now_ns, uint64_t& credit) {
  std::array<uint32_t, kBurst> v4{};
  std::array<uint64_t, kBurst> v4_class{};
  std::array<std::array<uint8_t, 16>, kBurst> v6{};
  std::array<int32_t, kBurst> v6_class{};
  std::array<uint16_t, kBurst> at_v4{}, at_v6{};
  std::array<uint64_t, kBurst> flow{};  // the 5-tuple's hash, 0: not a SYN
  std::array<int, kBurst> ok{};
  uint16_t n4 = 0, n6 = 0;
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* p = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    const uint32_t len = rte_pktmbuf_data_len(pkts[i]);
    ok[i] = 0;
    flow[i] = 0;
    if (len < 14) continue;
    const uint16_t type = static_cast<uint16_t>(p[12] << 8 | p[13]);
    const uint8_t* l4 = nullptr;
    uint8_t proto = 0;
    uint64_t addr_hash = 0;
    if (type == RTE_ETHER_TYPE_IPV4 && len >= 14 + 20) {
      const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p + 14);
      if (ip->version_ihl != 0x45 || (ip->fragment_offset & htons(0x3fff)) != 0) continue;
      proto = ip->next_proto_id;
      l4 = p + 14 + 20;
      v4[n4] = ntohl(ip->src_addr);
      at_v4[n4++] = i;
      addr_hash = static_cast<uint64_t>(ip->src_addr) << 32 | ip->dst_addr;
    } else if (type == RTE_ETHER_TYPE_IPV6 && len >= 14 + 40) {
      const auto* ip6 = reinterpret_cast<const rte_ipv6_hdr*>(p + 14);
      proto = ip6->proto;
      l4 = p + 14 + 40;
      std::memcpy(v6[n6].data(), ip6->src_addr, 16);
      at_v6[n6++] = i;
      uint64_t w[4];
      std::memcpy(w, ip6->src_addr, 32);  // source and destination, adjacent
      addr_hash = mix(w[0] ^ mix(w[1] ^ mix(w[2] ^ w[3])));
    } else {
      continue;
    }
    if (proto == IPPROTO_TCP && l4 + 20 <= p + len) {
      const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(l4);
      uint32_t ports;
      std::memcpy(&ports, l4, 4);
      if ((tcp->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) == RTE_TCP_SYN_FLAG)
        flow[i] = (mix(addr_hash ^ ports * kGolden) ^ proto) | 1;
      ok[i] = 1;
    } else if (proto == IPPROTO_UDP && l4 + 8 <= p + len) {
      ok[i] = 1;
    }
  }
  if (n4 != 0) rte_fib_lookup_bulk(f.fib, v4.data(), v4_class.data(), n4);
  if (n6 != 0)
    rte_lpm6_lookup_bulk_func(f.lpm6, reinterpret_cast<uint8_t(*)[16]>(v6.data()), v6_class.data(),
                              n6);
  std::array<uint8_t, kBurst> cls{};
  for (uint16_t k = 0; k < n4; k++) cls[at_v4[k]] = static_cast<uint8_t>(v4_class[k] & 1);
  for (uint16_t k = 0; k < n6; k++) cls[at_v6[k]] = static_cast<uint8_t>(v6_class[k] > 0);

  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; i++) {
    bool admitted = false;
    if (ok[i]) {
      if (credit == 0) {
        uint64_t left = f.budget.load(std::memory_order_relaxed);
        while (left >= kCreditChunk && !f.budget.compare_exchange_weak(left, left - kCreditChunk,
                                                                       std::memory_order_relaxed))
          ;
        if (left >= kCreditChunk) credit = kCreditChunk;
      }
      admitted = credit != 0;
      credit -= admitted;
      if (admitted && flow[i] != 0) {
        FlowSlot& s = f.flows[(flow[i] * kGolden) >> (64 - 18)];
        s.tag = flow[i];
        s.expires_ns = now_ns + kFlowLifeNs;
      }
    }
    f.verdicts[cls[i]][admitted]++;
    if (admitted)
      pkts[kept++] = pkts[i];
    else
      rte_pktmbuf_free(pkts[i]);
  }
  if (f.ring != nullptr) {
    const unsigned in =
        rte_ring_sp_enqueue_burst(f.ring, reinterpret_cast<void**>(pkts), kept, nullptr);
    for (unsigned i = in; i < kept; i++) rte_pktmbuf_free(pkts[i]);
    kept = static_cast<uint16_t>(
        rte_ring_sc_dequeue_burst(f.ring, reinterpret_cast<void**>(pkts), kBurst, nullptr));
  }
  const uint16_t sent = rte_eth_tx_burst(f.inside, 0, pkts, kept);
  for (uint16_t i = sent; i < kept; i++) rte_pktmbuf_free(pkts[i]);
}

int worker(void* arg) {
  Floor& f = *static_cast<Floor*>(arg);
  rte_mbuf* pkts[kBurst];
  uint64_t credit = 0;
  const uint64_t base = rte_rdtsc();
  while (!f.stop.load(std::memory_order_relaxed)) {
    const uint16_t n = rte_eth_rx_burst(f.outside, 0, pkts, kBurst);
    if (n == 0) continue;
    const uint64_t now_ns = static_cast<uint64_t>(static_cast<double>(rte_rdtsc() - base) * 1e9 /
                                                  static_cast<double>(f.tsc_hz));
    burst(f, pkts, n, now_ns, credit);
  }
  return 0;
}

bool port_up(uint16_t port, rte_mempool* pool, std::string* error) {
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 ||
      rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr, pool) != 0 ||
      rte_eth_tx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), nullptr) != 0 ||
      rte_eth_dev_start(port) != 0) {
    *error = "cannot start port " + std::to_string(port) + ": " + rte_strerror(rte_errno);
    return false;
  }
  return true;
}

// The checkpoint's ten prefixes as in (a) (bench/bench_config.hpp): 198.18.10.0/24
// and 2001:2:0:i::/64 for i = 1..9.
bool tables(Floor& f, std::string* error) {
  rte_fib_conf conf{};
  conf.type = RTE_FIB_DIR24_8;
  conf.default_nh = 0;
  conf.max_routes = 64;
  conf.dir24_8.nh_sz = RTE_FIB_DIR24_8_1B;
  conf.dir24_8.num_tbl8 = 16;
  f.fib = rte_fib_create("floor_fib4", SOCKET_ID_ANY, &conf);
  rte_lpm6_config conf6{};
  conf6.max_rules = 64;
  conf6.number_tbl8s = 256;
  f.lpm6 = rte_lpm6_create("floor_lpm6", SOCKET_ID_ANY, &conf6);
  if (f.fib == nullptr || f.lpm6 == nullptr) {
    *error = std::string("cannot create the prefix tables: ") + rte_strerror(rte_errno);
    return false;
  }
  if (rte_fib_add(f.fib, (198U << 24) | (18U << 16) | (10U << 8), 24, 1) != 0) {
    *error = "cannot add a prefix";
    return false;
  }
  for (uint8_t i = 1; i < 10; i++) {
    uint8_t a6[16] = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, i};
    if (rte_lpm6_add(f.lpm6, a6, 64, 1) != 0) {
      *error = "cannot add a prefix";
      return false;
    }
  }
  return true;
}

}  // namespace

int run_floor(const FloorOptions& o) {
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string lcores =
      "--lcores=0@(0-" + std::to_string(ncpu - 1) + "),1@" + std::to_string(ncpu - 1);
  std::vector<std::string> args = {"dpdk_bench",
                                   "--no-huge",
                                   "--no-pci",
                                   "-m",
                                   "1024",
                                   "--no-shconf",
                                   "--log-level=lib.eal:warning",
                                   lcores,
                                   "--vdev",
                                   "net_pcap_floor_out,rx_pcap=" + o.capture + ",infinite_rx=1",
                                   "--vdev",
                                   "net_null_floor_in,no-rx=1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "floor: cannot start the EAL: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  Floor f;
  std::string error;
  int rc = 1;
  rte_mempool* pool = rte_pktmbuf_pool_create("floor_pool", 65535, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (pool == nullptr) {
    error = std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno);
  } else if (rte_eth_dev_count_avail() != 2) {
    error = "expected two ports (net_pcap, net_null)";
  } else if (port_up(f.outside, pool, &error) && port_up(f.inside, pool, &error) &&
             tables(f, &error)) {
    if (o.queue)
      f.ring = rte_ring_create("floor_ring", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (o.queue && f.ring == nullptr) {
      error = std::string("cannot create the ring: ") + rte_strerror(rte_errno);
    } else {
      f.tsc_hz = rte_get_tsc_hz();
      rte_eal_remote_launch(worker, &f, 1);
      std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
      rte_eth_stats a{}, b{}, a_in{}, b_in{};
      rte_eth_stats_get(f.outside, &a);
      rte_eth_stats_get(f.inside, &a_in);
      const auto t0 = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
      rte_eth_stats_get(f.outside, &b);
      rte_eth_stats_get(f.inside, &b_in);
      const double dt =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      f.stop = true;
      rte_eal_wait_lcore(1);
      const double pps = static_cast<double>(b.ipackets - a.ipackets) / dt;
      const double out_pps = static_cast<double>(b_in.opackets - a_in.opackets) / dt;
      const uint64_t shed = f.verdicts[0][0] + f.verdicts[1][0];
      const uint64_t admitted = f.verdicts[0][1] + f.verdicts[1][1];
      std::printf(
          "floor dpdk: queue %s: %.3f Mpps rx, %.3f Mpps out, over %.2f s; since start: "
          "admitted %llu (checkpoint %llu), shed %llu\n",
          o.queue ? "on" : "off", pps / 1e6, out_pps / 1e6, dt,
          static_cast<unsigned long long>(admitted),
          static_cast<unsigned long long>(f.verdicts[1][1]), static_cast<unsigned long long>(shed));
      std::printf("RESULT pps=%.0f out_pps=%.0f all_admitted=%d healthy=1\n", pps, out_pps,
                  shed == 0 && admitted > 0 ? 1 : 0);
      rc = shed == 0 && admitted > 0 ? 0 : 2;
    }
  }
  if (rc == 1) std::fprintf(stderr, "floor: %s\n", error.c_str());
  rte_eth_dev_stop(f.outside);
  rte_eth_dev_stop(f.inside);
  if (f.ring != nullptr) rte_ring_free(f.ring);
  if (f.fib != nullptr) rte_fib_free(f.fib);
  if (f.lpm6 != nullptr) rte_lpm6_free(f.lpm6);
  rte_eal_cleanup();
  return rc;
}

}  // namespace sluice::bench
