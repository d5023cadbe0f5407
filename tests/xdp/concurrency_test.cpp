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
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/model/credit.h"
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

}  // namespace
}  // namespace sluice
