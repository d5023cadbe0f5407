// SPDX-License-Identifier: Apache-2.0
// What a DPDK-like dataplane reports beyond XDP's figures, for control-plane
// tests (status, sluicectl, metrics): two priority queues and both ports,
// every figure distinct so that a test sees which one went where.
#pragma once

#include <vector>

#include "dataplane/dataplane.hpp"

namespace sluice::test {

inline std::vector<QueueStats> sample_dpdk_queues() {
  QueueStats q0;
  q0.priority = 0;
  q0.depth = 7;
  q0.delay_bucket_bound_ns = {100'000, 1'000'000, 5'000'000};  // 0.1, 1, 5 ms
  q0.delay_bucket_count = {10, 5, 2, 1};
  q0.delay_sum_ns = 20'000'000;
  q0.dropped_full = 3;
  q0.dropped_delay = 11;
  QueueStats q5;
  q5.priority = 5;
  q5.delay_bucket_bound_ns = {100'000, 1'000'000, 5'000'000};
  q5.delay_bucket_count = {0, 0, 0, 0};
  return {q0, q5};
}

inline std::vector<PortStats> sample_dpdk_ports() {
  PortStats outside;
  outside.name = "outside";
  outside.device = "net_af_packet0";
  outside.rx_packets = 123456;
  outside.tx_packets = 1000;
  outside.rx_missed = 17;
  outside.rx_nombuf = 2;
  PortStats inside;
  inside.name = "inside";
  inside.device = "net_af_packet1";
  inside.rx_packets = 999;
  inside.tx_packets = 120000;
  inside.tx_errors = 5;
  inside.tx_dropped = 8;
  return {outside, inside};
}

}  // namespace sluice::test
