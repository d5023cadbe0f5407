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
  bool one_source;       // every CPU sends from the same source (else one each)
  bool acks = false;     // each CPU sends the ACKs of a flow its SYN opened first
  bool charged = false;  // each CPU sends ACKs of no flow (charged as lookups)
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
      {"class, unverified ACKs charged as its lookups", R"(
[admission]
flow_learn_sec = 0
[[class]]
name = "web"
rate_per_sec = 1000
burst = 60000
on_shed = "drop"
)",
       false, false, true},
  };
}

// Runs frames[i] kRepeat times on CPU i, every CPU at once, and checks that
// they ran together; overlap: the share of the run they all ran.
void run_on_every_cpu(test::XdpHarness& h, const std::vector<std::vector<uint8_t>>& frames,
                      double* overlap) {
  std::string error;
  std::vector<double> ns =
      test::test_run_parallel(h.program().outside_prog_fd(), frames, kRepeat, &error, overlap);
  ASSERT_EQ(ns.size(), frames.size()) << error;
  for (double t : ns) ASSERT_GT(t, 0) << "a test run failed";
  // The CPUs really ran together (else this tests nothing); a noisy
  // neighbour may delay one thread's start by part of the run.
  EXPECT_GT(*overlap, 0.25);
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
    if (GetParam().charged) {  // an ACK of no flow
      frames.push_back(test::as_ack(syn));
      continue;
    }
    if (!GetParam().acks) {
      frames.push_back(syn);
      continue;
    }
    // Its flow first (one SYN, one CPU), then its ACKs from every CPU.
    ASSERT_GT(test::test_run_ns(h.program().outside_prog_fd(), syn, 1), 0);
    frames.push_back(test::as_ack(syn));
  }
  double overlap = 0;
  ASSERT_NO_FATAL_FAILURE(run_on_every_cpu(h, frames, &overlap));

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

// One source's lookups from every CPU at once, its budget far from spent
// and no other. With one compare-and-swap try and no more (sluiced makes
// SL_SOURCE_CAS_TRIES, then up to SL_SOURCE_CAS_RETRIES in a bpf_loop), the
// CPUs lose some of their races: each lookup refused lost its source's race
// and is counted in source_races, the metric sluice_source_races_total.
// With the bpf_loop's tries after the one, the same races are won later:
// no lookup refused. With every try, as sluiced runs: none either.
TEST(XdpSourceRaces, ALostRaceIsTriedAgainAndOnlyEveryTryLostIsRefused) {
  SLUICE_REQUIRE_ROOT();
  const unsigned cpus = std::thread::hardware_concurrency();
  SLUICE_REQUIRE_CPUS(2u, cpus);
  constexpr const char* kToml = R"(
[[class]]
name = "web"
on_shed = "drop"
per_source = { rate_per_sec = 100, burst = 100000000 }
)";
  struct Tries {
    uint32_t inline_tries, retries;
  };
  for (const Tries t : {Tries{1, 0}, Tries{1, SL_SOURCE_CAS_RETRIES},
                        Tries{SL_SOURCE_CAS_TRIES, SL_SOURCE_CAS_RETRIES}}) {
    test::XdpHarness h;
    ASSERT_TRUE(h.load(kToml, 65536, t.inline_tries, t.retries));
    h.program().set_clock(1000 * kSecond);
    const std::vector<std::vector<uint8_t>> frames(cpus, test::syn_v4(test::kNet198_18 + 1));
    double overlap = 0;
    ASSERT_NO_FATAL_FAILURE(run_on_every_cpu(h, frames, &overlap));
    const DataplaneStats s = h.program().stats();
    ASSERT_FALSE(s.classes.empty());
    uint64_t offered = 0, shed = 0;
    for (int v = 0; v < SL_VERDICT_COUNT; v++)
      for (int r = 0; r < SL_REASON_COUNT; r++) {
        offered += s.classes[0].lookups[v][r];
        if (v != SL_VERDICT_ADMITTED) shed += s.classes[0].lookups[v][r];
      }
    const std::string what = std::to_string(t.inline_tries) + " tries, then " +
                             std::to_string(t.retries) + ", overlap " + std::to_string(overlap);
    EXPECT_EQ(offered, uint64_t{kRepeat} * cpus) << what;
    EXPECT_EQ(shed, s.source_races) << what;
    if (t.retries == 0)  // one try: two CPUs on one word lose some races
      EXPECT_GT(s.source_races, 0u) << what;
    else  // tried again until won: none lost, none refused
      EXPECT_EQ(s.source_races, 0u) << what;
    std::printf("%s: %llu races lost of %llu lookups\n", what.c_str(),
                static_cast<unsigned long long>(s.source_races),
                static_cast<unsigned long long>(offered));
  }
}

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

// A sticky class (config 1,000/s, burst 100) that a surge from 2,000
// sources made shed, with a frame per CPU from a source ranked above its
// band and what overflows from it: every lookup of those is shed without the
// lock and counts into its CPU's own counts.
struct StickySurge {
  int state_fd = -1, counts_fd = -1;
  uint32_t slot = 0;  // the class's state slot
  std::vector<std::vector<uint8_t>> frames;
  ~StickySurge() {
    if (state_fd >= 0) close(state_fd);
    if (counts_fd >= 0) close(counts_fd);
  }
  sl_class_state state() const {
    auto st = std::make_unique<sl_shared_state>();
    const uint32_t zero = 0;
    if (bpf_map_lookup_elem(state_fd, &zero, st.get()) != 0) return {};
    return st->classes[slot];
  }
  // Lookups counted on the CPUs, not yet taken into the state.
  uint64_t pending() const {
    std::vector<sl_sticky_cpu> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    if (bpf_map_lookup_elem(counts_fd, &slot, per_cpu.data()) != 0) return ~0ULL;
    uint64_t n = 0;
    for (const auto& c : per_cpu) n += c.offered;
    return n;
  }
};

void sticky_surge(test::XdpHarness& h, unsigned cpus, StickySurge* s) {
  ASSERT_TRUE(h.load(R"(
[[class]]
name = "citizen"
rate_per_sec = 1000
burst = 100
on_shed = "drop"
)"));
  std::mt19937_64 rng(3);
  uint64_t now = 1000 * kSecond;
  for (int i = 0; i < 40000; i++) {
    now += test::poisson_gap_ns(rng, 20000);
    h.run(test::udp_v4(test::kNet198_18 + static_cast<uint32_t>(rng() % 2000)), now);
  }
  const int prog = h.program().outside_prog_fd();
  s->state_fd = map_of(prog, "sl_state");
  s->counts_fd = map_of(prog, "sl_sticky_cpus");
  ASSERT_GE(s->state_fd, 0);
  ASSERT_GE(s->counts_fd, 0);
  const sl_profile& prof = h.model().profile().prof;
  const sl_class_params& cp = prof.classes[0];
  s->slot = cp.state_index & (SL_MAX_CLASSES - 1);
  const sl_class_state st = s->state();
  ASSERT_LT(st.threshold, SL_RANK_ONE) << "the surge made the class shed";
  for (uint32_t host = 5000; s->frames.size() < cpus && host < 60000; host++) {
    auto f = test::udp_v4(test::kNet198_18 + host);
    sl_meta m;
    ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
    sl_source_key k;
    sl_source_key_make(&k, &m, &cp);
    if (sl_rank_in(sl_source_hash(&prof, &k), st.rank_epoch) >=
        sl_overflow_top(st.threshold, st.band_top))
      s->frames.push_back(f);
  }
  ASSERT_EQ(s->frames.size(), cpus);
}

uint64_t sticky_sheds(const DataplaneStats& s) {
  return s.classes[0].lookups[SL_VERDICT_SHED][SL_REASON_STICKY];
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
  StickySurge s;
  ASSERT_NO_FATAL_FAILURE(sticky_surge(h, cpus, &s));
  const sl_profile& prof = h.model().profile().prof;
  const sl_class_state before = s.state();
  // The surge's sheds since the controller last took the counts.
  const uint64_t pending = s.pending();
  const DataplaneStats s0 = h.program().stats();
  std::string error;
  double overlap = 0;
  const int prog = h.program().outside_prog_fd();
  std::vector<double> ns = test::test_run_parallel(prog, s.frames, kRepeat, &error, &overlap);
  ASSERT_EQ(ns.size(), cpus) << error;
  for (double t : ns) ASSERT_GT(t, 0) << "a test run failed";
  EXPECT_GT(overlap, 0.25);
  const uint64_t lookups = uint64_t{kRepeat} * cpus;
  EXPECT_EQ(sticky_sheds(h.program().stats()) - sticky_sheds(s0), lookups);

  // None in the shared state; each CPU's in its own counts.
  EXPECT_EQ(s.state().window_offered, before.window_offered);
  EXPECT_EQ(s.pending(), pending + lookups);

  // The window closes at the next lookup: the controller takes every CPU's
  // counts first. Its offered rate is the window's lookups (the surge's
  // before the runs, in the state and pending, the runs', and that
  // lookup's) over its length; a rate off by more than half from the
  // average replaces it.
  const uint64_t closing = before.window_start_ns + prof.sticky_window_ns + 1000000;
  h.run(s.frames[0], closing);
  const sl_class_state after = s.state();
  const uint64_t offered = uint64_t{before.window_offered} + pending + lookups + 1;
  const uint64_t us = (closing - before.window_start_ns) / 1000;
  EXPECT_EQ(after.avg_offered, offered * SL_AVG_ONE * 1000000 / us);
  EXPECT_EQ(after.window_start_ns, closing);
  EXPECT_EQ(s.pending(), 0u);
  std::printf("%u CPUs (overlap %.2f): %llu sticky sheds without the lock, all counted once\n",
              cpus, overlap, static_cast<unsigned long long>(lookups));
}

// The window's close found due by every CPU at once (their runs start past
// its end): one CPU at a time takes every CPU's counts (sl_sticky_claim),
// and the window closes with all of them in: its offered rate counts at
// least the lookups before it and every pending one, and nothing is lost or
// counted twice across the close (the closed window's, the new one's and
// what the CPUs still hold add up to every lookup), and the claim is
// released. Without the claim, a CPU could close the window while another
// held part of the counts, which went to the next window: the CPUs here
// rarely meet in that microsecond, so StickyCounts.
// AWindowClosesWithTheCountsBeingTakenIn (tests/model) plays it step by step.
TEST(XdpStickySheds, AWindowClosedOnEveryCpuAtOnceKeepsEveryCount) {
  SLUICE_REQUIRE_ROOT();
  const unsigned cpus = std::thread::hardware_concurrency();
  SLUICE_REQUIRE_CPUS(2u, cpus);
  test::XdpHarness h;
  StickySurge s;
  ASSERT_NO_FATAL_FAILURE(sticky_surge(h, cpus, &s));
  const sl_profile& prof = h.model().profile().prof;
  const int prog = h.program().outside_prog_fd();
  std::string error;
  // Sheds pending on every CPU, then every CPU past the window's end.
  ASSERT_EQ(test::test_run_parallel(prog, s.frames, kRepeat / 5, &error).size(), cpus) << error;
  const sl_class_state before = s.state();
  const uint64_t pending = s.pending();
  ASSERT_GT(pending, 0u);
  const uint64_t closing = before.window_start_ns + prof.sticky_window_ns + 1000000;
  h.program().set_clock(closing);
  double overlap = 0;
  std::vector<double> ns = test::test_run_parallel(prog, s.frames, kRepeat, &error, &overlap);
  ASSERT_EQ(ns.size(), cpus) << error;
  for (double t : ns) ASSERT_GT(t, 0) << "a test run failed";
  const uint64_t lookups = uint64_t{kRepeat} * cpus;

  const sl_class_state after = s.state();
  EXPECT_EQ(after.window_start_ns, closing) << "the window closed once, at the runs' time";
  EXPECT_EQ(after.taker, 0u) << "the claim was released";
  // The closed window's lookups, from its rate (an exact integer: the rate
  // is at least one per microsecond of SL_AVG_ONE).
  const uint64_t us = (closing - before.window_start_ns) / 1000;
  const uint64_t per = SL_AVG_ONE * 1000000;
  const uint64_t closed = (after.avg_offered * us + per - 1) / per;
  ASSERT_EQ(closed * per / us, after.avg_offered)
      << "the average was replaced by the window's rate";
  EXPECT_GE(closed, uint64_t{before.window_offered} + pending + 1)
      << "the window closed without some of the counts the CPUs held";
  EXPECT_EQ(closed + after.window_offered + s.pending(),
            uint64_t{before.window_offered} + pending + lookups);
  std::printf(
      "%u CPUs (overlap %.2f) closing a window at once: %llu lookups in it (%llu "
      "pending at its end), %llu after\n",
      cpus, overlap, static_cast<unsigned long long>(closed),
      static_cast<unsigned long long>(pending),
      static_cast<unsigned long long>(after.window_offered + s.pending()));
}

}  // namespace
}  // namespace sluice
