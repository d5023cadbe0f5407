// SPDX-License-Identifier: Apache-2.0
// The adaptive boundary's step in the control plane, up to ten a second:
// ControlState::set_adaptive_rate (the running profile with its boundary
// lookup budget set anew) against compiling the whole config at the rate,
// which it did until 2026-12-01; 10 and 100k source prefixes. The
// dataplane is a stand-in that takes the profile and does nothing: the
// figures are the control plane's own.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_config.hpp"
#include "control/adaptive/adaptive_rate.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"

namespace {

class NullDataplane final : public sluice::Dataplane {
 public:
  bool start(const sluice::CompiledProfile&, uint64_t, std::string*) override { return true; }
  bool apply(const sluice::CompiledProfile& profile, uint64_t, std::string*) override {
    benchmark::DoNotOptimize(profile.prof.boundary_lookups.rate_per_sec);
    return true;
  }
  sluice::DataplaneStats stats() const override { return {}; }
  void stop() override {}
  const char* kind() const override { return "null"; }
  bool adopted_state() const override { return false; }
};

sluice::LoadResult adaptive_config(int n_prefixes) {
  std::string toml = sluice::bench::bench_config_toml(n_prefixes, false);
  const std::string rate = "lookups_per_sec = 1000000000\n";
  toml.insert(toml.find(rate) + rate.size(), "adaptive = true\n");
  sluice::LoadResult r = sluice::load_config_string(toml, "<bench>");
  if (!r.ok()) {
    for (const auto& e : r.errors) fprintf(stderr, "%s\n", e.to_string().c_str());
    abort();
  }
  return r;
}

// Rates alternate so that every step moves the budget.
double rate_of(uint64_t i) { return i % 2 == 0 ? 120000.0 : 80000.0; }

void BM_AdaptiveStep(benchmark::State& state) {
  const sluice::LoadResult cfg = adaptive_config(static_cast<int>(state.range(0)));
  NullDataplane dp;
  sluice::ControlState control(dp, "/nonexistent/sluice.toml", cfg, 1, nullptr);
  std::string error;
  uint64_t i = 0;
  for (auto _ : state) {
    if (!control.set_adaptive_rate(rate_of(i++), &error)) state.SkipWithError(error.c_str());
  }
}

void BM_WholeCompile(benchmark::State& state) {
  const sluice::LoadResult cfg = adaptive_config(static_cast<int>(state.range(0)));
  uint64_t i = 0;
  for (auto _ : state) {
    sluice::CompiledProfile p =
        sluice::compile_profile(sluice::with_adaptive_rate(*cfg.config, rate_of(i++)));
    benchmark::DoNotOptimize(p.prof.boundary_lookups.rate_per_sec);
  }
}

BENCHMARK(BM_AdaptiveStep)
    ->ArgName("prefixes")
    ->Arg(10)
    ->Arg(100000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_WholeCompile)
    ->ArgName("prefixes")
    ->Arg(10)
    ->Arg(100000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
