// SPDX-License-Identifier: Apache-2.0
// Per-CPU credits (dataplane/model/credit.h), on the reference model
// simulating CPUs (a lookup goes to the CPU its source hashes to, as RSS
// would send it): no budget ever admits more than rate * t + burst; the
// budgets lag the exact decision (one lock) by at most 1% of their burst;
// credits are given back when they expire; an exhausted budget is exact;
// priorities hold; small budgets are never drawn on.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/model/classify.h"
#include "dataplane/model/credit.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/sticky_settle.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/flow_fixtures.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::kSecond;

constexpr uint64_t kT0 = 1000 * kSecond;

uint32_t cpu_of(uint32_t src, uint32_t cpus) { return static_cast<uint32_t>(sl_mix64(src) % cpus); }

// A checkpoint class (priority 0, 198.18.10.0/24) and a citizen class
// (priority 5) under a boundary of 50,000 lookups/s, burst 25,000: large
// enough that up to 16 CPUs draw credits (1% of the burst over the CPUs).
constexpr uint64_t kRate = 50000, kBurst = 25000;
constexpr const char* kTwoClasses = R"(
[boundary]
lookups_per_sec = 50000
lookups_burst = 25000
[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }
shed_order = "random"
[[class]]
name = "citizen"
priority = 5
match = { src = "198.18.0.0/15" }
shed_order = "random"
)";

struct Trace {
  std::vector<uint64_t> at;
  std::vector<uint32_t> src;
};

// Poisson lookups: checkpoints at `checkpoint` per second from 50 sources,
// citizens at `citizen` per second from 50,000, for `seconds`.
Trace trace(double checkpoint, double citizen, uint64_t seconds, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Trace t;
  uint64_t next_c = kT0 + test::poisson_gap_ns(rng, checkpoint);
  uint64_t next_z = kT0 + test::poisson_gap_ns(rng, citizen);
  const uint64_t end = kT0 + seconds * kSecond;
  while (std::min(next_c, next_z) < end) {
    if (next_c <= next_z) {
      t.at.push_back(next_c);
      t.src.push_back(test::kNet198_18 + (10 << 8) + 1 + static_cast<uint32_t>(rng() % 50));
      next_c += test::poisson_gap_ns(rng, checkpoint);
    } else {
      t.at.push_back(next_z);
      t.src.push_back(test::kNet198_18 + (20 << 8) + static_cast<uint32_t>(rng() % 50000));
      next_z += test::poisson_gap_ns(rng, citizen);
    }
  }
  return t;
}

struct Result {
  std::vector<uint64_t> admitted_by_class{0, 0};
  uint64_t admitted = 0;
  uint64_t worst_over_bound = 0;  // admitted - (burst + rate * t) at its highest, if positive
};

Result replay(const Trace& t, uint16_t cpus, uint64_t rate, uint64_t burst) {
  ReferenceModel model(test::profile_from_toml(kTwoClasses));
  model.use_credits(cpus);
  Result r;
  auto f = test::syn_v4(0);
  for (std::size_t i = 0; i < t.at.size(); i++) {
    test::set_src_v4(f, t.src[i]);
    const sl_decision d = model.decide(f.data(), static_cast<uint32_t>(f.size()), t.at[i], nullptr,
                                       cpus ? cpu_of(t.src[i], cpus) : 0);
    if (d.verdict != SL_VERDICT_ADMITTED) continue;
    r.admitted++;
    r.admitted_by_class[d.class_id]++;
    // Since the start (full bucket): at most burst + rate * t.
    const uint64_t bound = burst + rate * (t.at[i] - kT0) / kSecond;
    if (r.admitted > bound) r.worst_over_bound = std::max(r.worst_over_bound, r.admitted - bound);
  }
  return r;
}

TEST(Credits, NeverOverTheBoundAndLagTheExactDecisionByAtMostOnePercentOfTheBurst) {
  for (uint16_t cpus : {2, 4, 16, 64}) {
    for (double mult : {0.5, 1.2, 3.0, 10.0}) {
      SCOPED_TRACE(std::to_string(cpus) + " CPUs, demand " + std::to_string(mult) + "x");
      const Trace t =
          trace(0.15 * kRate, mult * kRate, 3, cpus * 100 + static_cast<uint64_t>(mult * 10));
      const Result exact = replay(t, 0, kRate, kBurst);
      const Result credited = replay(t, cpus, kRate, kBurst);
      EXPECT_EQ(credited.worst_over_bound, 0u);
      EXPECT_EQ(exact.worst_over_bound, 0u);
      const uint64_t lag = kBurst / 100;
      EXPECT_LE(credited.admitted, exact.admitted + lag);
      EXPECT_GE(credited.admitted + lag, exact.admitted);
      // Checkpoints first: whatever credits the citizens held, checkpoints
      // lose at most the lag.
      EXPECT_GE(credited.admitted_by_class[0] + lag, exact.admitted_by_class[0]);
      std::printf("%2u CPUs %5.1fx: admitted %llu (exact %llu), checkpoints %llu (exact %llu)\n",
                  cpus, mult, static_cast<unsigned long long>(credited.admitted),
                  static_cast<unsigned long long>(exact.admitted),
                  static_cast<unsigned long long>(credited.admitted_by_class[0]),
                  static_cast<unsigned long long>(exact.admitted_by_class[0]));
    }
  }
}

// Many lookups at one instant, alternating between two CPUs: every token of
// the burst is admitted, none more, credits or not.
TEST(Credits, AnExhaustedBudgetIsExact) {
  ReferenceModel model(test::profile_from_toml(R"(
[[class]]
name = "web"
rate_per_sec = 1
burst = 50000
)"));
  model.use_credits(2);
  auto f = test::syn_v4(test::kNet198_18 + 1);
  uint64_t admitted = 0;
  for (int i = 0; i < 100000; i++)
    admitted +=
        model.decide(f.data(), static_cast<uint32_t>(f.size()), kT0, nullptr, i % 2).verdict ==
        SL_VERDICT_ADMITTED;
  EXPECT_EQ(admitted, 50000u);
}

// Verified continuations on the packet budget, at one instant, alternating
// between two CPUs: they draw packet credits, are mostly decided on them,
// and still take every token of the burst the SYN left, none more.
TEST(Credits, ContinuationsOnPacketCreditsAreExact) {
  ReferenceModel model(test::profile_from_toml(R"(
[admission]
flow_learn_sec = 0
flow_packets_per_sec = 0  # one flow's 100,000 packets, every one a continuation
[boundary]
packets_per_sec = 1
packets_burst = 50000
[[class]]
name = "web"
rate_per_sec = 1
burst = 1  # the SYN draws no lookup credit, which would hold packet tokens too
)"));
  model.use_credits(2);
  auto syn = test::syn_v4(test::kNet198_18 + 1);
  const auto ack = test::as_ack(syn);
  ASSERT_EQ(model.decide(syn.data(), static_cast<uint32_t>(syn.size()), kT0).reason,
            SL_REASON_LOOKUP);
  uint64_t admitted = 0, on_credit = 0;
  for (int i = 0; i < 100000; i++) {
    const uint64_t before = model.boundary_state().packets.tokens_nt;
    const sl_decision d =
        model.decide(ack.data(), static_cast<uint32_t>(ack.size()), kT0, nullptr, i % 2);
    if (d.verdict != SL_VERDICT_ADMITTED) continue;
    EXPECT_EQ(d.reason, SL_REASON_CONTINUATION);
    admitted++;
    on_credit += model.boundary_state().packets.tokens_nt == before;
  }
  EXPECT_EQ(admitted, 50000u - 1);
  EXPECT_GT(on_credit, 40000u) << "most on a credit, without the lock";
}

// A class whose ACKs of no flow are charged as its lookups, with a burst of
// 50,000 tokens and next to no refill.
constexpr const char* kChargedWeb = R"(
[admission]
flow_learn_sec = 0
[[class]]
name = "web"
rate_per_sec = 1
burst = 50000
)";

// ACKs of no flow (unverified, charged as lookups of their class) at one
// instant, alternating between two CPUs: they draw the class's lookup
// credits as its lookups do, are mostly decided on them without the lock,
// and take every token of the burst above the class's charged reserve (the
// lowest priority's 43% of it: 21,500), none more, each counted as a lookup
// with reason "unverified"; the class's real lookups then take that
// reserve. Before, every charged packet took the lock, and then (until the
// reserve) the whole burst.
TEST(Credits, ChargedPacketsOnLookupCreditsAreExact) {
  ReferenceModel model(test::profile_from_toml(kChargedWeb));
  model.use_credits(2);
  const auto ack = test::as_ack(test::syn_v4(test::kNet198_18 + 1));
  uint64_t admitted = 0, on_credit = 0;
  for (int i = 0; i < 100000; i++) {
    const uint64_t before = model.class_state(0).bucket.tokens_nt;
    const sl_decision d =
        model.decide(ack.data(), static_cast<uint32_t>(ack.size()), kT0, nullptr, i % 2);
    EXPECT_TRUE(d.is_start);
    if (d.verdict != SL_VERDICT_ADMITTED) continue;
    EXPECT_EQ(d.reason, SL_REASON_UNVERIFIED);
    EXPECT_EQ(d.flow_ops, 0u) << "a charged packet earns no flow";
    admitted++;
    on_credit += model.class_state(0).bucket.tokens_nt == before;
  }
  EXPECT_EQ(admitted, 28500u);
  EXPECT_GT(on_credit, 25000u) << "most on a credit, without the lock";
  EXPECT_EQ(model.counters().lookups[0][SL_VERDICT_ADMITTED][SL_REASON_UNVERIFIED], 28500u);

  const auto syn = test::syn_v4(test::kNet198_18 + 2);
  uint64_t lookups = 0;
  for (int i = 0; i < 30000; i++)
    lookups +=
        model.decide(syn.data(), static_cast<uint32_t>(syn.size()), kT0, nullptr, i % 2).verdict ==
        SL_VERDICT_ADMITTED;
  EXPECT_EQ(lookups, 21500u) << "the reserve is the class's real lookups'";
}

// A credit a lookup drew and left unspent, expired: the next charged packet
// decided under the lock gives it back, so that a new one is drawn. Before,
// only a lookup gave it back, and a class seeing only charged packets (an
// ACK flood) after its lookups stopped sent every one of them to the lock.
TEST(Credits, ChargedPacketsReclaimAnExpiredLookupCredit) {
  ReferenceModel model(test::profile_from_toml(kChargedWeb));
  model.use_credits(1);
  auto syn = test::syn_v4(test::kNet198_18 + 1);
  const auto ack = test::as_ack(test::syn_v4(test::kNet198_18 + 2));  // of no flow
  ASSERT_EQ(model.decide(syn.data(), static_cast<uint32_t>(syn.size()), kT0).verdict,
            SL_VERDICT_ADMITTED);  // draws a credit, spends one token of it
  const uint64_t later = kT0 + 2 * SL_CREDIT_TTL_NS;
  const uint64_t before = model.unlocked_decisions();
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ(model.decide(ack.data(), static_cast<uint32_t>(ack.size()), later + i).reason,
              SL_REASON_UNVERIFIED);
  EXPECT_GE(model.unlocked_decisions() - before, 990u);
  // Every token accounted for: 50,000 less the SYN and the 1000 ACKs, less
  // what the CPU holds now.
  const uint64_t left = model.class_state(0).bucket.tokens_nt / SL_TOKEN;
  EXPECT_LE(left, 50000u - 1001);
  EXPECT_GE(left + SL_CREDIT_CHUNK, 50000u - 1001);
}

// A CPU that drew a credit and then saw nothing more of the class gives it
// back on its next decision after SL_CREDIT_TTL_NS.
TEST(Credits, ExpiredCreditsAreGivenBack) {
  ReferenceModel model(test::profile_from_toml(R"(
[[class]]
name = "web"
rate_per_sec = 1
burst = 1000000
)"));
  model.use_credits(2);
  auto f = test::syn_v4(test::kNet198_18 + 1);
  ASSERT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), kT0).verdict,
            SL_VERDICT_ADMITTED);
  const uint64_t after_draw = model.class_state(0).bucket.tokens_nt / SL_TOKEN;
  EXPECT_EQ(after_draw, 1000000u - 1 - SL_CREDIT_CHUNK);
  // On credit: the bucket does not move.
  ASSERT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), kT0 + 1000).verdict,
            SL_VERDICT_ADMITTED);
  EXPECT_EQ(model.class_state(0).bucket.tokens_nt / SL_TOKEN, after_draw);
  // After the TTL: the SL_CREDIT_CHUNK - 1 unspent tokens back, one taken, a new chunk drawn.
  const uint64_t later = kT0 + SL_CREDIT_TTL_NS;
  ASSERT_EQ(model.decide(f.data(), static_cast<uint32_t>(f.size()), later).verdict,
            SL_VERDICT_ADMITTED);
  EXPECT_EQ(model.class_state(0).bucket.tokens_nt / SL_TOKEN,
            after_draw + (SL_CREDIT_CHUNK - 1) - 1 - SL_CREDIT_CHUNK);
}

// A small burst is never drawn on (1% of it over the CPUs is below
// SL_CREDIT_MIN): every decision is the exact one.
TEST(Credits, SmallBudgetsAreDecidedExactly) {
  const char* toml = R"(
[[class]]
name = "web"
rate_per_sec = 100
burst = 1000
)";
  ReferenceModel exact(test::profile_from_toml(toml));
  ReferenceModel credited(test::profile_from_toml(toml));
  credited.use_credits(4);
  std::mt19937_64 rng(7);
  auto f = test::syn_v4(0);
  uint64_t now = kT0;
  for (int i = 0; i < 20000; i++) {
    now += test::poisson_gap_ns(rng, 300);
    const uint32_t src = test::kNet198_18 + static_cast<uint32_t>(rng() % 1000);
    test::set_src_v4(f, src);
    const auto a = exact.decide(f.data(), static_cast<uint32_t>(f.size()), now);
    const auto b =
        credited.decide(f.data(), static_cast<uint32_t>(f.size()), now, nullptr, cpu_of(src, 4));
    ASSERT_EQ(a.verdict, b.verdict) << "packet " << i;
  }
}

// Sheds decided without the lock (sl_shed_unlocked) are the ones the lock
// would decide: one CPU, a surge (10x the boundary), a lull that lets the
// buckets fill (the sticky filter's "anyone when full"), a surge again.
// Before every packet the exact decision is made on a copy of the state;
// every packet must match it, and a shed made without the lock must leave
// the sticky controller's counts as the lock would.
class ShedsWithoutTheLock : public ::testing::TestWithParam<const char*> {};

TEST_P(ShedsWithoutTheLock, AreTheExactDecision) {
  CompiledProfile compiled = test::profile_from_toml(std::string(R"(
[boundary]
lookups_per_sec = 2000
lookups_burst = 200
[[class]]
name = "citizen"
match = { src = "198.18.0.0/15" }
shed_order = ")") + GetParam() + "\"\n");
  sl_profile& prof = compiled.prof;
  prof.credit_cpus = 1;
  auto cs = std::make_unique<sl_class_state>(), cs2 = std::make_unique<sl_class_state>();
  sl_boundary_state bs{}, bs2{};
  sl_cpu_credits cc{}, cc2{};
  // The CPU's counts of its sticky sheds made without the lock.
  auto sc = std::make_unique<sl_sticky_cpu>();
  // The locked path of every dataplane (credit.h): the CPUs' sticky counts
  // taken when due, reclaim, decide, draw, settle.
  // (The exact decision's state has them in already: its CPU has none.)
  auto none = std::make_unique<sl_sticky_cpu>();
  auto locked = [&prof](const sl_meta& m, uint32_t cls, sl_class_state* c, sl_boundary_state* b,
                        sl_sticky_cpu* counts, sl_cpu_credits* credits, uint64_t now,
                        sl_decision* d) {
    const sl_class_params& cp = prof.classes[cls];
    if (sl_sticky_due(&prof, &cp, c, now)) {
      sl_sticky_cpu taken{};
      sl_sticky_take(&taken, counts);
      sl_sticky_merge(c, &cp, &taken);
    }
    sl_credit_reclaim(&prof, &m, SL_PARSE_OK, cls, c, b, credits, now);
    sl_decide_source(&prof, &m, SL_PARSE_OK, cls, c, b, nullptr, SL_SOURCE_HERE, 0, now, d);
    sl_credit_draw(&prof, &m, SL_PARSE_OK, cls, c, b, credits, now, d);
  };
  std::mt19937_64 rng(11);
  auto f = test::syn_v4(0);
  uint64_t now = kT0, shed_unlocked = 0, surge = 0;
  const std::pair<double, uint64_t> phases[] = {{20000, 2}, {500, 1}, {20000, 1}};
  for (const auto& [rate, seconds] : phases) {
    const uint64_t end = now + seconds * kSecond;
    while ((now += test::poisson_gap_ns(rng, rate)) < end) {
      test::set_src_v4(f, test::kNet198_18 + static_cast<uint32_t>(rng() % 20000));
      sl_meta m;
      ASSERT_EQ(sl_parse(f.data(), f.data() + f.size(), &m), SL_PARSE_OK);
      const uint32_t cls = sl_classify(&prof, &m, 1, 0, 0);
      const sl_class_params& cp = prof.classes[cls];
      // The exact decision's state: this one, with the CPU's counts in it.
      *cs2 = *cs;
      sl_sticky_cpu pending = *sc, taken{};
      sl_sticky_take(&taken, &pending);
      sl_sticky_merge(cs2.get(), &cp, &taken);
      bs2 = bs;
      cc2 = cc;
      sl_decision exact{}, d{};
      if (!sl_decide_unlocked(&prof, &m, SL_PARSE_OK, cls, cs2.get(), &bs2, SL_SOURCE_HERE, 0, &cc2,
                              now, &exact))
        locked(m, cls, cs2.get(), &bs2, none.get(), &cc2, now, &exact);
      sl_sticky_settle(&prof, &cp, cs2.get(), &bs2, now);
      const bool unlocked = sl_decide_unlocked(&prof, &m, SL_PARSE_OK, cls, cs.get(), &bs,
                                               SL_SOURCE_HERE, 0, &cc, now, &d);
      const bool shed = !unlocked && sl_shed_unlocked(&prof, &m, SL_PARSE_OK, cls, cs.get(), &bs,
                                                      sc.get(), SL_SOURCE_HERE, 0, now, &d);
      if (!unlocked && !shed) locked(m, cls, cs.get(), &bs, sc.get(), &cc, now, &d);
      sl_sticky_settle(&prof, &cp, cs.get(), &bs, now);
      ASSERT_EQ(d.verdict, exact.verdict) << "at " << now - kT0 << " ns";
      ASSERT_EQ(d.reason, exact.reason) << "at " << now - kT0 << " ns";
      ASSERT_EQ(d.action, exact.action);
      surge += rate > 2000;
      if (!shed) continue;
      shed_unlocked++;
      // The state with the CPU's counts taken in counts what the lock's does.
      auto merged = std::make_unique<sl_class_state>(*cs);
      taken = sl_sticky_cpu{};
      pending = *sc;
      sl_sticky_take(&taken, &pending);
      sl_sticky_merge(merged.get(), &cp, &taken);
      ASSERT_EQ(merged->window_offered, cs2->window_offered);
      ASSERT_EQ(cs->threshold, cs2->threshold);
      ASSERT_EQ(merged->since_above, cs2->since_above);
      ASSERT_EQ(std::memcmp(merged->admitted_by_rank, cs2->admitted_by_rank,
                            sizeof(cs->admitted_by_rank)),
                0);
      ASSERT_EQ(std::memcmp(merged->shed_by_rank, cs2->shed_by_rank, sizeof(cs->shed_by_rank)), 0);
    }
  }
  // Most of the surges' lookups are shed, nearly all of them without the lock.
  EXPECT_GT(shed_unlocked, surge * 3 / 4) << shed_unlocked << " of " << surge;
}

INSTANTIATE_TEST_SUITE_P(Credits, ShedsWithoutTheLock, ::testing::Values("sticky", "random"));

// A flood claiming one source over its per-source budget is refused without
// the lock, ACKs (charged as lookups: unverified) as SYNs: the ACKs took the
// lock one by one, and a box of CPUs shed them at one lock's rate.
TEST(Credits, ASourceOverItsBudgetIsRefusedWithoutTheLockAcksAsSyns) {
  const std::string toml = R"(
[admission]
flow_learn_sec = 0

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24"] }
per_source = { rate_per_sec = 5 }
)";
  for (const uint8_t flags : {test::kSyn, test::kAck}) {
    SCOPED_TRACE(flags == test::kSyn ? "SYNs" : "ACKs");
    ReferenceModel exact(test::profile_from_toml(toml));
    ReferenceModel credited(test::profile_from_toml(toml));
    credited.use_credits(2);
    uint64_t shed = 0;
    for (uint32_t i = 0; i < 2000; i++) {  // 10,000 a second, 0.2 s
      const std::vector<uint8_t> f =
          test::seg4("198.18.10.5", static_cast<uint16_t>(10000 + i), "198.19.0.1", 443, flags);
      const uint64_t now = kT0 + i * 100'000ULL;
      const sl_decision want = exact.decide(f.data(), static_cast<uint32_t>(f.size()), now);
      const sl_decision got =
          credited.decide(f.data(), static_cast<uint32_t>(f.size()), now, nullptr, i % 2);
      ASSERT_EQ(got.verdict, want.verdict) << "packet " << i;
      ASSERT_EQ(got.reason, want.reason) << "packet " << i;
      ASSERT_EQ(got.action, want.action) << "packet " << i;
      shed += got.verdict == SL_VERDICT_SHED;
    }
    EXPECT_GE(shed, 1990u);
    EXPECT_GE(credited.unlocked_decisions(), shed);
  }
}

// Under unverified = "drop", a flood of ACKs of no flow (past the learning
// window) is dropped without the lock, as the lock drops it: every one
// took the state lock, and a box of CPUs dropped them at one lock's rate.
TEST(Credits, UnverifiedPacketsDroppedByPolicyAreDroppedWithoutTheLock) {
  const std::string toml = R"(
[admission]
flow_learn_sec = 0
unverified = "drop"

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24"] }
)";
  ReferenceModel exact(test::profile_from_toml(toml));
  ReferenceModel credited(test::profile_from_toml(toml));
  credited.use_credits(2);
  constexpr uint32_t kAcks = 2000;
  for (uint32_t i = 0; i < kAcks; i++) {
    const std::string src = "198.18.10." + std::to_string(1 + i % 200);
    const std::vector<uint8_t> f =
        test::seg4(src.c_str(), static_cast<uint16_t>(10000 + i), "198.19.0.1", 443, test::kAck);
    const uint64_t now = kT0 + i * 100'000ULL;
    const sl_decision want = exact.decide(f.data(), static_cast<uint32_t>(f.size()), now);
    const sl_decision got =
        credited.decide(f.data(), static_cast<uint32_t>(f.size()), now, nullptr, i % 2);
    ASSERT_EQ(got.verdict, SL_VERDICT_SHED) << "packet " << i;
    ASSERT_EQ(got.reason, SL_REASON_UNVERIFIED) << "packet " << i;
    ASSERT_EQ(got.verdict, want.verdict) << "packet " << i;
    ASSERT_EQ(got.reason, want.reason) << "packet " << i;
    ASSERT_EQ(got.action, want.action) << "packet " << i;
  }
  // The first makes the state (under the lock); none after it needs it.
  EXPECT_GE(credited.unlocked_decisions(), kAcks - 1);
}

// Each CPU counts its sticky sheds into its own counts while another CPU
// takes them into the class's state (sl_sticky_take, then sl_sticky_merge
// under the lock) over and over: every count arrives exactly once, in the
// bin the CPU counted it in, however the swaps and the adds interleave.
TEST(StickyCounts, EveryCpusShedsArriveOnceWhileTheyAreTaken) {
  constexpr unsigned kCpus = 3;
  constexpr uint32_t kLookups = 200000;  // per CPU
  sl_profile prof{};
  prof.sticky_epoch_ns = kSecond;  // each lookup counts in this epoch and the next
  sl_class_params cp{};
  cp.state_epoch = 7;
  auto cs = std::make_unique<sl_class_state>();
  cs->epoch = cp.state_epoch;
  std::vector<std::unique_ptr<sl_sticky_cpu>> counts;
  for (unsigned c = 0; c < kCpus; c++) counts.push_back(std::make_unique<sl_sticky_cpu>());
  // What one lock would have counted: the same lookups, one after another.
  auto expected = std::make_unique<sl_class_state>();
  const uint64_t epoch = 3;
  auto source_hash = [](unsigned cpu, uint32_t i) { return sl_mix64(uint64_t{cpu} << 32 | i); };
  for (unsigned c = 0; c < kCpus; c++)
    for (uint32_t i = 0; i < kLookups; i++)
      sl_sticky_count(&prof, expected.get(), source_hash(c, i), epoch,
                      sl_rank_in(source_hash(c, i), epoch), SL_RANK_ABOVE, 0);

  std::atomic<unsigned> running{kCpus};
  std::mutex lock;  // the state lock
  std::atomic<uint64_t> takes{0};
  auto take_all = [&] {
    sl_sticky_cpu taken{};
    for (auto& sc : counts) sl_sticky_take(&taken, sc.get());
    std::lock_guard<std::mutex> g(lock);
    sl_sticky_merge(cs.get(), &cp, &taken);
    takes++;
  };
  std::thread taker([&] {
    while (running.load() > 0) take_all();
  });
  std::vector<std::thread> cpus;
  for (unsigned c = 0; c < kCpus; c++)
    cpus.emplace_back([&, c] {
      for (uint32_t i = 0; i < kLookups; i++) {
        sl_sticky_count_cpu(&prof, counts[c].get(), source_hash(c, i), epoch,
                            sl_rank_in(source_hash(c, i), epoch));
        // Every 10,000 lookups, a take since the last: on a loaded machine
        // the taker might otherwise run only after the counting is done.
        if (i % 10000 == 9999)
          while (takes.load() < (i + 1) / 10000) std::this_thread::yield();
      }
      running--;
    });
  for (auto& t : cpus) t.join();
  taker.join();
  take_all();  // what was counted after the last take
  EXPECT_GE(takes.load(), kLookups / 10000) << "the counts were taken while the CPUs counted";
  EXPECT_EQ(cs->window_offered, kCpus * kLookups);
  EXPECT_EQ(cs->since_above, kCpus * kLookups);
  EXPECT_EQ(std::memcmp(cs->shed_by_rank, expected->shed_by_rank, sizeof(cs->shed_by_rank)), 0);
  for (auto& sc : counts) {
    EXPECT_EQ(sc->offered, 0u);
    for (uint32_t b = 0; b < SL_RANK_BINS; b++) ASSERT_EQ(sc->bin[0][b] + sc->bin[1][b], 0u);
  }
}

// A retune that resets a sticky class: its state waits to be made afresh
// (its epoch is the old one), which makes the CPUs' counts due before the
// lock; taken then, they are dropped with the old state, and the CPUs'
// words are left at 0. Once the state is made afresh, counts merge again.
TEST(StickyCounts, TakenWhileTheStateWaitsToBeMadeAfreshAreDropped) {
  sl_profile prof{};
  prof.sticky_window_ns = 100000000;
  sl_class_params cp{};
  cp.shed_order = SL_SHED_STICKY;
  cp.state_epoch = 5;
  auto cs = std::make_unique<sl_class_state>();
  cs->epoch = 4;  // the state of the class before the retune
  cs->window_start_ns = kT0;
  ASSERT_TRUE(sl_sticky_due(&prof, &cp, cs.get(), kT0 + 1));
  auto sc = std::make_unique<sl_sticky_cpu>();
  for (uint32_t i = 0; i < 100; i++)
    sl_sticky_count_cpu(&prof, sc.get(), sl_mix64(i), 0, sl_rank_in(sl_mix64(i), 0));
  auto taken = std::make_unique<sl_sticky_cpu>();
  sl_sticky_take(taken.get(), sc.get());
  EXPECT_EQ(taken->offered, 100u);
  sl_sticky_merge(cs.get(), &cp, taken.get());
  EXPECT_EQ(cs->window_offered, 0u);
  uint64_t left = 0, merged = 0;
  for (uint32_t b = 0; b < SL_RANK_BINS; b++) {
    left += sc->bin[0][b] + sc->bin[1][b];
    merged += cs->shed_by_rank[0].bin[b] + cs->shed_by_rank[1].bin[b];
  }
  EXPECT_EQ(sc->offered, 0u);
  EXPECT_EQ(left, 0u);
  EXPECT_EQ(merged, 0u);
  // Made afresh: not due within its window, and counts merge.
  cs->epoch = cp.state_epoch;
  EXPECT_FALSE(sl_sticky_due(&prof, &cp, cs.get(), kT0 + 1));
  sl_sticky_merge(cs.get(), &cp, taken.get());
  EXPECT_EQ(cs->window_offered, 100u);
  // A slot given to a class that does not shed by rank: its state made
  // afresh takes (and drops) what the CPUs counted for the sticky class
  // before, so that none of it reaches a class made sticky there later.
  cp.shed_order = SL_SHED_RANDOM;
  cp.state_epoch = 6;
  EXPECT_TRUE(sl_sticky_due(&prof, &cp, cs.get(), kT0 + 1));
  cs->epoch = cp.state_epoch;
  EXPECT_FALSE(sl_sticky_due(&prof, &cp, cs.get(), kT0 + prof.sticky_window_ns + 1));
}

// Two CPUs due at a window's close (XDP, where the counts are taken outside
// the lock): the first claims the take; the second, finding the claim held,
// takes nothing and its tick leaves the window open; the claim's holder
// merges every CPU's counts, releases the claim and closes the window with
// all of them in. Without the claim the second CPU closed the window while
// the first held part of its counts, which then went to the next window: a
// window short by them, whose rate off by half replaced the average.
TEST(StickyCounts, AWindowClosesWithTheCountsBeingTakenIn) {
  const sl_source_key kSource{};
  sl_profile prof{};
  prof.sticky_window_ns = 100000000;
  sl_class_params cp{};
  cp.shed_order = SL_SHED_STICKY;
  cp.state_epoch = 5;
  auto cs = std::make_unique<sl_class_state>();
  cs->epoch = cp.state_epoch;
  cs->window_start_ns = kT0;
  cs->threshold = SL_RANK_ONE / 2;
  cs->band_top = SL_RANK_ONE / 2;
  cs->window_offered = 50;
  std::vector<std::unique_ptr<sl_sticky_cpu>> counts;
  for (uint32_t c = 0; c < 2; c++) {
    counts.push_back(std::make_unique<sl_sticky_cpu>());
    for (uint32_t i = 0; i < 100; i++)
      sl_sticky_count_cpu(&prof, counts[c].get(), sl_mix64(c << 16 | i), 0,
                          sl_rank_in(sl_mix64(c << 16 | i), 0));
  }
  const uint64_t now = kT0 + prof.sticky_window_ns + 1000;
  ASSERT_TRUE(sl_sticky_due(&prof, &cp, cs.get(), now));

  // CPU 0 claims and has taken CPU 0's counts, not yet CPU 1's.
  ASSERT_TRUE(sl_sticky_claim(cs.get(), now));
  auto taken = std::make_unique<sl_sticky_cpu>();
  sl_sticky_take(taken.get(), counts[0].get());
  // CPU 1 (its clock a little behind) takes nothing; its lookup counts in
  // the window, which its tick leaves open.
  EXPECT_FALSE(sl_sticky_claim(cs.get(), now - 2000));
  sl_sticky_tick(&prof, cs.get(), now - 2000);
  EXPECT_EQ(cs->settle, 0u);
  const uint64_t h = sl_source_hash(&prof, &kSource);
  const uint32_t rank = sl_rank_in(h, cs->rank_epoch);
  const uint32_t where = sl_rank_where(rank, cs->threshold, cs->band_top);
  sl_sticky_count(&prof, cs.get(), h, cs->rank_epoch, rank, where, 1);
  // CPU 0 takes the rest, merges, releases and ticks: the window closes
  // with every count.
  sl_sticky_take(taken.get(), counts[1].get());
  sl_sticky_merge(cs.get(), &cp, taken.get());
  sl_sticky_release(cs.get());
  sl_sticky_tick(&prof, cs.get(), now);
  sl_sticky_count(&prof, cs.get(), h, cs->rank_epoch, rank, where, 1);
  EXPECT_EQ(cs->settle, SL_SETTLE_CLOSE);
  EXPECT_EQ(cs->window_offered, 50u + 200 + 2);
  sl_boundary_state bs{};
  sl_sticky_settle(&prof, &cp, cs.get(), &bs, now);
  EXPECT_EQ(cs->window_start_ns, now);
  EXPECT_EQ(cs->avg_offered, uint64_t{252} * SL_AVG_ONE * 1000000 / ((now - kT0) / 1000));
  EXPECT_EQ(cs->window_offered, 0u);

  // A claim its holder could not release stops nothing for long: held
  // within SL_TAKER_HOLD (~1 ms) either way, stale after it.
  cs->settle = 0;
  const uint64_t later = now + prof.sticky_window_ns + 1000;
  ASSERT_TRUE(sl_sticky_claim(cs.get(), later));
  sl_sticky_tick(&prof, cs.get(), later + 500000);
  EXPECT_EQ(cs->settle, 0u);
  EXPECT_FALSE(sl_sticky_claim(cs.get(), later - 500000));
  sl_sticky_tick(&prof, cs.get(), later + 1100000);
  EXPECT_EQ(cs->settle, SL_SETTLE_CLOSE);
  EXPECT_TRUE(sl_sticky_claim(cs.get(), later + 1100000));
}

}  // namespace
}  // namespace sluice
