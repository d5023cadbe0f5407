// SPDX-License-Identifier: Apache-2.0
// The budgets' bounds when every CPU runs the XDP program at once: one
// thread per CPU, pinned, released together, each a BPF_PROG_TEST_RUN of
// many SYNs (or ACKs of flows they opened: verified continuations, on the
// packet budget). The clock is held still, so nothing refills: however the CPUs
// interleave, each budget admits what it holds, as the reference model fed
// the same lookups one after another (one lock, exact) counts it, less at
// most SL_CREDIT_CHUNK per CPU that per-CPU credits (credit.h) may still
// hold, and never more. Each budget holds more than half of what is
// offered, so the CPUs draw on it together for most of their runs.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bpf/shared_state.h"
#include "dataplane/model/credit.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/sticky.h"
#include "tests/support/packet_builder.hpp"
#include "tests/support/parallel_test_run.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/traffic.hpp"
#include "tests/support/xdp_harness.hpp"

namespace sluice {
namespace {

using test::kSecond;

constexpr int kRepeat = 50000;  // per CPU: tens of milliseconds, so the runs overlap

struct Case {
  const char* name;
  const char* toml;
  bool one_source;    // every CPU sends from the same source (else one each)
  bool acks = false;  // each CPU sends the ACKs of a flow its SYN opened first
};

std::vector<Case> cases() {
  return {
      {"boundary lookups", R"(
[boundary]
lookups_per_sec = 1000
lookups_burst = 60000
[[class]]
name = "web"
on_shed = "drop"
)",
       false},
      {"boundary packets, priority reserve", R"(
[boundary]
packets_per_sec = 1000
packets_burst = 60000
[[class]]
name = "web"
priority = 3
on_shed = "drop"
)",
       false},
      {"class", R"(
[[class]]
name = "web"
rate_per_sec = 1000
burst = 60000
on_shed = "drop"
)",
       false},
      {"class, random order (its sheds without the lock)", R"(
[[class]]
name = "web"
rate_per_sec = 1000
burst = 60000
on_shed = "drop"
shed_order = "random"
)",
       false},
      {"per source, one source on every CPU", R"(
[[class]]
name = "web"
on_shed = "drop"
per_source = { rate_per_sec = 100, burst = 60000 }
)",
       true},
      {"class, random order, one source with its own budget on every CPU (each shed takes "
       "and gives back its token)",
       R"(
[[class]]
name = "web"
rate_per_sec = 1000
burst = 60000
on_shed = "drop"
shed_order = "random"
per_source = { rate_per_sec = 100, burst = 1000000 }
)",
       true},
      {"per source, a source per CPU", R"(
[[class]]
name = "web"
on_shed = "drop"
per_source = { rate_per_sec = 100, burst = 30000 }
)",
       false},
      {"boundary packets, verified continuations", R"(
[admission]
flow_learn_sec = 0
[boundary]
packets_per_sec = 1000
packets_burst = 60000
[[class]]
name = "web"
on_shed = "drop"
)",
       false, true},
  };
}

class XdpConcurrency : public ::testing::TestWithParam<Case> {};

TEST_P(XdpConcurrency, EveryCpuAtOnceAdmitsExactlyWhatTheBudgetHolds) {
  SLUICE_REQUIRE_ROOT();
  const unsigned cpus = std::thread::hardware_concurrency();
  SLUICE_REQUIRE_CPUS(2u, cpus);
  test::XdpHarness h;
  ASSERT_TRUE(h.load(GetParam().toml));
  const uint64_t now = 1000 * kSecond;
  h.program().set_clock(now);

  std::vector<std::vector<uint8_t>> frames, syns;
  for (unsigned c = 0; c < cpus; c++)
    syns.push_back(test::syn_v4(test::kNet198_18 + 1 + (GetParam().one_source ? 0 : c)));
  for (auto& syn : syns) {
    if (!GetParam().acks) {
      frames.push_back(syn);
      continue;
    }
    // Its flow first (one SYN, one CPU), then its ACKs from every CPU.
    ASSERT_GT(test::test_run_ns(h.program().outside_prog_fd(), syn, 1), 0);
    auto ack = syn;
    ack[14 + 20 + 13] = test::kAck;  // TCP flags
    frames.push_back(ack);
  }
  std::string error;
  double overlap = 0;
  std::vector<double> ns =
      test::test_run_parallel(h.program().outside_prog_fd(), frames, kRepeat, &error, &overlap);
  ASSERT_EQ(ns.size(), cpus) << error;
  for (double t : ns) ASSERT_GT(t, 0) << "a test run failed";
  // The CPUs really ran together (else this tests nothing); a noisy
  // neighbour may delay one thread's start by part of the run.
  EXPECT_GT(overlap, 0.25);

  // The model, one lookup after another, round robin over the CPUs' frames.
  ReferenceModel exact(test::profile_from_toml(GetParam().toml));
  uint64_t expected = 0;
  if (GetParam().acks)
    for (auto& syn : syns)
      ASSERT_EQ(exact.decide(syn.data(), static_cast<uint32_t>(syn.size()), now).verdict,
                SL_VERDICT_ADMITTED);
  for (int i = 0; i < kRepeat; i++)
    for (auto& f : frames)
      expected += exact.decide(f.data(), static_cast<uint32_t>(f.size()), now).verdict ==
                  SL_VERDICT_ADMITTED;
  ASSERT_GT(expected, 0u);
  ASSERT_LT(expected, static_cast<uint64_t>(kRepeat) * cpus);  // the budget is the limit

  DataplaneStats s = h.program().stats();
  ASSERT_FALSE(s.classes.empty());
  uint64_t admitted = 0, offered = 0;
  if (GetParam().acks) {  // continuations count as packets, the SYNs as lookups
    for (int v = 0; v < SL_VERDICT_COUNT; v++)
      for (int r = 0; r < SL_REASON_COUNT; r++)
        offered += s.classes[0].packets[v][r] - s.classes[0].lookups[v][r];
    admitted = s.classes[0].packets[SL_VERDICT_ADMITTED][SL_REASON_CONTINUATION];
  } else {
    for (int v = 0; v < SL_VERDICT_COUNT; v++)
      for (int r = 0; r < SL_REASON_COUNT; r++) {
        offered += s.classes[0].lookups[v][r];
        if (v == SL_VERDICT_ADMITTED) admitted += s.classes[0].lookups[v][r];
      }
  }
  EXPECT_EQ(offered, static_cast<uint64_t>(kRepeat) * cpus);
  // Never more than the exact decision; per-CPU credits (credit.h) may hold
  // back at most a chunk per CPU.
  EXPECT_LE(admitted, expected) << cpus << " CPUs, overlap " << overlap;
  EXPECT_GE(admitted + uint64_t{cpus} * SL_CREDIT_CHUNK, expected) << cpus << " CPUs";
  std::printf("%s: %u CPUs at once (overlap %.2f), admitted %llu, the model %llu\n",
              GetParam().name, cpus, overlap, static_cast<unsigned long long>(admitted),
              static_cast<unsigned long long>(expected));
}

INSTANTIATE_TEST_SUITE_P(Budgets, XdpConcurrency, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n;
                           for (const char* p = i.param.name; *p; p++)
                             n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                           return n;
                         });

// The program's map named `name` (bpf_map_get_fd_by_id: a new fd the
// caller closes), or -1.
int map_of(int prog_fd, const std::string& name) {
  bpf_prog_info info{};
  uint32_t ids[64] = {};
  info.nr_map_ids = 64;
  info.map_ids = reinterpret_cast<uint64_t>(ids);
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return -1;
  for (uint32_t i = 0; i < info.nr_map_ids && i < 64; i++) {
    const int fd = bpf_map_get_fd_by_id(ids[i]);
    bpf_map_info m{};
    uint32_t mlen = sizeof(m);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &m, &mlen) == 0 && name == m.name) return fd;
    if (fd >= 0) close(fd);
  }
  return -1;
}

// A sticky class shedding above its band from every CPU at once: the sheds
// count into each CPU's own counts, none into the class's shared state, and
// when the window closes the controller has every one of them, once: its
// offered rate is exactly what the window saw.
TEST(XdpStickySheds, EveryCpusShedsReachTheControllerOnce) {
  SLUICE_REQUIRE_ROOT();
  const unsigned cpus = std::thread::hardware_concurrency();
  SLUICE_REQUIRE_CPUS(2u, cpus);
  test::XdpHarness h;
  ASSERT_TRUE(h.load(R"(
[[class]]
name = "citizen"
rate_per_sec = 1000
burst = 100
on_shed = "drop"
)"));
  // A surge from 2,000 sources places the threshold and the band.
  std::mt19937_64 rng(3);
  uint64_t now = 1000 * kSecond;
  for (int i = 0; i < 40000; i++) {
    now += test::poisson_gap_ns(rng, 20000);
    h.run(test::udp_v4(test::kNet198_18 + static_cast<uint32_t>(rng() % 2000)), now);
  }
  const int prog = h.program().outside_prog_fd();
  const int state_fd = map_of(prog, "sl_state"), counts_fd = map_of(prog, "sl_sticky_cpus");
  ASSERT_GE(state_fd, 0);
  ASSERT_GE(counts_fd, 0);
  auto state = std::make_unique<sl_shared_state>();
  const uint32_t zero = 0;
  const sl_profile& prof = h.model().profile().prof;
  const sl_class_params& cp = prof.classes[0];
  const uint32_t slot = cp.state_index & (SL_MAX_CLASSES - 1);
  ASSERT_EQ(bpf_map_lookup_elem(state_fd, &zero, state.get()), 0);
  const sl_class_state before = state->classes[slot];
  ASSERT_LT(before.threshold, SL_RANK_ONE) << "the surge made the class shed";

  // A source per CPU ranked above the band and what overflows from it.
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t host = 5000; frames.size() < cpus && host < 60000; host++) {
    auto f = test::udp_v4(test::kNet198_18 + host);
    sl_meta m;
    ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
    sl_source_key k;
    sl_source_key_make(&k, &m, &cp);
    if (sl_rank_in(sl_source_hash(&prof, &k), before.rank_epoch) >=
        sl_overflow_top(before.threshold, before.band_top))
      frames.push_back(f);
  }
  ASSERT_EQ(frames.size(), cpus);
  // The surge's sheds since the controller last took the counts.
  const int possible = libbpf_num_possible_cpus();
  ASSERT_GT(possible, 0);
  std::vector<sl_sticky_cpu> per_cpu(static_cast<std::size_t>(possible));
  ASSERT_EQ(bpf_map_lookup_elem(counts_fd, &slot, per_cpu.data()), 0);
  uint64_t pending = 0;
  for (const auto& c : per_cpu) pending += c.offered;
  const DataplaneStats s0 = h.program().stats();
  std::string error;
  double overlap = 0;
  std::vector<double> ns = test::test_run_parallel(prog, frames, kRepeat, &error, &overlap);
  ASSERT_EQ(ns.size(), cpus) << error;
  for (double t : ns) ASSERT_GT(t, 0) << "a test run failed";
  EXPECT_GT(overlap, 0.25);
  const uint64_t lookups = uint64_t{kRepeat} * cpus;
  const DataplaneStats s1 = h.program().stats();
  EXPECT_EQ(s1.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_STICKY] -
                s0.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_STICKY],
            lookups);

  // None in the shared state; each CPU's in its own counts.
  ASSERT_EQ(bpf_map_lookup_elem(state_fd, &zero, state.get()), 0);
  EXPECT_EQ(state->classes[slot].window_offered, before.window_offered);
  ASSERT_EQ(bpf_map_lookup_elem(counts_fd, &slot, per_cpu.data()), 0);
  uint64_t counted = 0;
  for (const auto& c : per_cpu) counted += c.offered;
  EXPECT_EQ(counted, pending + lookups);

  // The window closes at the next lookup: the controller takes every CPU's
  // counts first. Its offered rate is the window's lookups (the surge's
  // before the runs, in the state and pending, the runs', and that
  // lookup's) over its length; a rate off by more than half from the
  // average replaces it.
  const uint64_t closing = before.window_start_ns + prof.sticky_window_ns + 1000000;
  h.run(frames[0], closing);
  ASSERT_EQ(bpf_map_lookup_elem(state_fd, &zero, state.get()), 0);
  const uint64_t offered = uint64_t{before.window_offered} + pending + lookups + 1;
  const uint64_t us = (closing - before.window_start_ns) / 1000;
  EXPECT_EQ(state->classes[slot].avg_offered, offered * SL_AVG_ONE * 1000000 / us);
  EXPECT_EQ(state->classes[slot].window_start_ns, closing);
  ASSERT_EQ(bpf_map_lookup_elem(counts_fd, &slot, per_cpu.data()), 0);
  for (const auto& c : per_cpu) EXPECT_EQ(c.offered, 0u);
  close(state_fd);
  close(counts_fd);
  std::printf("%u CPUs (overlap %.2f): %llu sticky sheds without the lock, all counted once\n",
              cpus, overlap, static_cast<unsigned long long>(lookups));
}

}  // namespace
}  // namespace sluice
