// SPDX-License-Identifier: Apache-2.0
// The config both benchmarks measure: everything admitted (huge budgets) so
// every packet takes the full path, a checkpoint class with n source
// prefixes (one IPv4 /24 plus IPv6 /64s), a citizen class, and optionally
// per-source buckets on both.
#pragma once

#include <string>

namespace sluice::bench {

inline std::string bench_config_toml(int n_prefixes, bool per_source) {
  std::string prefixes = "\"198.18.10.0/24\"";
  for (int i = 1; i < n_prefixes; i++)
    prefixes +=
        ",\"2001:2:" + std::to_string(i / 10000) + ":" + std::to_string(i % 10000) + "::/64\"";
  const std::string source =
      per_source ? "per_source = { rate_per_sec = 1000000000, burst = 1000000000 }\n" : "";
  return R"(
[admission]
flow_learn_sec = 0  # continuations are verified by a flow, or charged
# Each frame repeats far past any flow's own rate: measure a verified
# continuation's path, not the class-reserve path of a flow past its rate.
flow_packets_per_sec = 0

[boundary]
lookups_per_sec = 1000000000
packets_per_sec = 1000000000

[[class]]
name = "checkpoint"
priority = 0
match = { src = [)" +
         prefixes + R"(], proto = "tcp", dst_ports = ["443", "8000-8100"] }
rate_per_sec = 1000000000
)" + source +
         R"(
[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
rate_per_sec = 1000000000
)" + source;
}

}  // namespace sluice::bench
