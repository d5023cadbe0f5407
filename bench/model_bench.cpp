// SPDX-License-Identifier: Apache-2.0
// ns per decision of the reference model: 10 vs 100k source prefixes, and
// with per-source buckets on. Frames are prebuilt SYNs and UDP lookups from
// many sources; time advances 1 us per packet so buckets refill.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "bench/bench_config.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "dataplane/reference/reference.hpp"
#include "tests/support/packet_builder.hpp"

namespace {

using sluice::test::PacketBuilder;

sluice::CompiledProfile profile(int n_prefixes, bool per_source) {
  const std::string toml = sluice::bench::bench_config_toml(n_prefixes, per_source);
  sluice::LoadResult r = sluice::load_config_string(toml, "<bench>");
  if (!r.ok()) {
    for (const auto& e : r.errors) fprintf(stderr, "%s\n", e.to_string().c_str());
    abort();
  }
  return sluice::compile_profile(*r.config);
}

std::vector<std::vector<uint8_t>> frames() {
  std::vector<std::vector<uint8_t>> out;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 4096; i++) {
    std::string v4 = "198.18." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256);
    std::string v6 = "2001:2:" + std::to_string(rng() % 10) + ":" + std::to_string(rng() % 10000) +
                     "::" + std::to_string(rng() % 9999 + 1);
    switch (i % 4) {
      case 0:
        out.push_back(
            PacketBuilder().ipv4(v4, "198.19.0.1").tcp(40000, 443, sluice::test::kSyn).build());
        break;
      case 1:
        out.push_back(PacketBuilder().ipv4(v4, "198.19.0.1").udp(40000, 53).build());
        break;
      case 2:
        out.push_back(
            PacketBuilder().ipv6(v6, "2001:2::1").tcp(40000, 8080, sluice::test::kSyn).build());
        break;
      default:
        out.push_back(PacketBuilder().ipv6(v6, "2001:2::1").udp(40000, 53).build());
        break;
    }
  }
  return out;
}

void BM_Decision(benchmark::State& state) {
  sluice::ReferenceModel model(profile(static_cast<int>(state.range(0)), state.range(1) != 0));
  const auto fs = frames();
  uint64_t now = 1000000000000ULL;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& f = fs[i++ & 4095];
    now += 1000;
    benchmark::DoNotOptimize(model.decide(f.data(), static_cast<uint32_t>(f.size()), now));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns_per_decision"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_Decision)
    ->ArgNames({"prefixes", "per_source"})
    ->Args({10, 0})
    ->Args({100000, 0})
    ->Args({10, 1})
    ->Args({100000, 1});

}  // namespace

BENCHMARK_MAIN();
