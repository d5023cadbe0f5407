// SPDX-License-Identifier: Apache-2.0
// What the DPDK tests share: EAL arguments for this machine (no hugepages,
// no PCI), awaiting a condition on the dataplane's stats, reading captures.
// The EAL starts once per process, so each TEST runs in its own process
// (gtest_discover_tests runs them one by one).
#pragma once

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dataplane.hpp"

namespace sluice::test {

inline DataplaneSettings dpdk_settings(const std::string& outside, const std::string& inside) {
  DataplaneSettings s;
  s.mode = DataplaneKind::dpdk;
  s.outside = outside;
  s.inside = inside;
  s.dpdk_args = {"--no-huge", "--no-pci", "-m", "256", "--log-level=lib.eal:warning"};
  s.dpdk_workers = 1;
  s.dpdk_mbufs = 8191;
  s.dpdk_queue_size = 4096;
  return s;
}

// Classes by source subnet: 198.18.1.0/24 priority 0, .3 priority 3, .7
// priority 7. The packet budget is the pace; its burst lets the model admit a
// whole batch at once so that the queues, not the model, order it.
inline std::string paced_config(uint64_t rate, uint64_t burst, uint64_t max_delay_us) {
  return "[boundary]\npackets_per_sec = " + std::to_string(rate) +
         "\npackets_burst = " + std::to_string(burst) +
         "\npackets_reserve_pct = [0, 0, 0, 0, 0, 0, 0, 0]\nmax_queue_delay_us = " +
         std::to_string(max_delay_us) + R"(
[[class]]
name = "p0"
priority = 0
match = { src = ["198.18.1.0/24"] }
[[class]]
name = "p3"
priority = 3
match = { src = ["198.18.3.0/24"] }
[[class]]
name = "p7"
priority = 7
match = { src = ["198.18.7.0/24"] }
)";
}

inline uint32_t priority_of(uint32_t subnet) {
  return subnet == 1 ? 0 : subnet;
}  // as configured above

// Packets (priorities in the order they left) that left while one of a
// higher priority (lower number) was still to leave.
inline uint64_t out_of_order_count(const std::vector<uint32_t>& priorities) {
  uint64_t remaining[8] = {}, n = 0;
  for (uint32_t p : priorities) remaining[p & 7]++;
  for (uint32_t p : priorities) {
    for (uint32_t q = 0; q < (p & 7); q++)
      if (remaining[q] != 0) {
        n++;
        break;
      }
    remaining[p & 7]--;
  }
  return n;
}

// Polls `done` until it holds or `timeout` passes; true when it held.
inline bool await(const std::function<bool()>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

inline uint64_t total_packets(const DataplaneStats& s) {
  uint64_t n = 0;
  for (const ClassStats& c : s.classes)
    for (const auto& v : c.packets)
      for (uint64_t x : v) n += x;
  return n;
}

// The stats in a few lines, for failure messages.
inline std::string describe(const DataplaneStats& s) {
  std::string out;
  for (const ClassStats& c : s.classes) {
    out += c.name + ":";
    for (int v = 0; v < SL_VERDICT_COUNT; v++)
      for (int r = 0; r < SL_REASON_COUNT; r++)
        if (c.packets[v][r] != 0)
          out += std::string(" ") + (v == 0 ? "admitted/" : "shed/") + std::to_string(r) + "=" +
                 std::to_string(c.packets[v][r]);
    out += "\n";
  }
  for (const QueueStats& q : s.queues)
    if (q.depth || q.dropped_full || q.dropped_delay)
      out += "queue " + std::to_string(q.priority) + ": depth " + std::to_string(q.depth) +
             " full " + std::to_string(q.dropped_full) + " late " +
             std::to_string(q.dropped_delay) + "\n";
  for (const PortStats& p : s.ports)
    out += p.name + ": rx " + std::to_string(p.rx_packets) + " tx " + std::to_string(p.tx_packets) +
           " missed " + std::to_string(p.rx_missed) + " nombuf " + std::to_string(p.rx_nombuf) +
           " tx_errors " + std::to_string(p.tx_errors) + " tx_dropped " +
           std::to_string(p.tx_dropped) + "\n";
  return out;
}

inline std::vector<std::vector<uint8_t>> read_frames(const std::string& path) {
  std::vector<std::vector<uint8_t>> out;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (p == nullptr) return out;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) out.emplace_back(data, data + h->caplen);
  pcap_close(p);
  return out;
}

}  // namespace sluice::test
