// SPDX-License-Identifier: Apache-2.0
// The DPDK workers' per-source table (dataplane/dpdk/source_sets.hpp): a
// source's budget bound when workers take it at once by compare-and-swap,
// give-backs, and which way a full set recycles. No
// EAL: the table needs none.
#include "dataplane/dpdk/source_sets.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "dataplane/model/decide.h"
#include "dataplane/model/gcra.h"

namespace sluice::dpdk {
namespace {

using Op = SourceSets::Op;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000ULL * 1'000'000'000ULL;

sl_class_params with_source(uint64_t rate, uint64_t burst) {
  sl_class_params cp{};
  cp.src_bucket = sl_gcra_params_make(rate, burst);
  return cp;
}

sl_source_key source(uint8_t last) {
  sl_source_key k{};
  k.addr_be[0] = 198;
  k.addr_be[1] = 18;
  k.addr_be[3] = last;
  k.family = SL_FAMILY_V4;
  k.prefix_len = 32;
  return k;
}

// Takes at `now` until the source refuses; how many it gave.
int drain(SourceSets& t, const sl_source_key& k, const sl_class_params& cp, uint64_t now) {
  int n = 0;
  while (t.op(k, cp, now, Op::kTake, 0) == SL_SOURCE_TAKEN) n++;
  return n;
}

// Two threads take one source's tokens at once over the same 0.6 s, each on
// its own clock but never more than 16 us ahead of the other's (workers
// share the TSC; a clock far behind is AWorkerOnAStaleClockCutsNoDebtAnotherLeft's
// case): together never more than burst + rate x t (the bound of
// docs/architecture.md, "Per-source budgets as GCRA"), and no fewer than
// the budget gave by the end (a take that loses a race retries: no lookup
// is refused for contention).
TEST(DpdkSourceSets, TwoWorkersOnOneSourceStayWithinItsBudget) {
  constexpr uint64_t kRate = 1000, kBurst = 100, kSteps = 600'000, kStepNs = 1000;
  constexpr uint64_t kAhead = 16;  // steps: 16 us
  SourceSets table(1024, 2);
  const sl_class_params cp = with_source(kRate, kBurst);
  const sl_source_key k = source(7);
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> progress[2] = {0, 0};
  auto worker = [&](uint32_t w) {
    uint64_t mine = 0;
    for (uint64_t i = 0; i < kSteps; i++) {
      if (i % 8 == 0) {
        progress[w].store(i);
        while (i > progress[1 - w].load() + kAhead) std::this_thread::yield();
      }
      mine += table.op(k, cp, kT0 + i * kStepNs, Op::kTake, w) == SL_SOURCE_TAKEN;
    }
    progress[w].store(kSteps + kAhead);  // done: the other runs on freely
    admitted.fetch_add(mine);
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  const uint64_t bound = kBurst + kRate * kSteps * kStepNs / 1'000'000'000ULL;  // 700
  EXPECT_LE(admitted.load(), bound);
  EXPECT_GE(admitted.load(), bound - 1);  // the last 1 us's token is not yet due
  EXPECT_EQ(table.inserts(0) + table.inserts(1), 1u) << "entered once";
}

// A token given back is there for the next take; a peek takes none.
TEST(DpdkSourceSets, GiveBackReturnsTheTokenAndPeekTakesNone) {
  SourceSets table(1024, 1);
  const sl_class_params cp = with_source(1, 3);
  const sl_source_key k = source(1);
  EXPECT_EQ(table.op(k, cp, kT0, Op::kPeek, 0), SL_SOURCE_TAKEN);
  EXPECT_EQ(drain(table, k, cp, kT0), 3);
  EXPECT_EQ(table.op(k, cp, kT0, Op::kPeek, 0), SL_SOURCE_REFUSED);
  EXPECT_EQ(table.op(k, cp, kT0, Op::kGiveBack, 0), 0);
  EXPECT_EQ(table.op(k, cp, kT0, Op::kPeek, 0), SL_SOURCE_TAKEN);
  EXPECT_EQ(drain(table, k, cp, kT0), 1);
  // A source the table does not hold has nothing to give back: not entered.
  EXPECT_EQ(table.op(source(2), cp, kT0, Op::kGiveBack, 0), 0);
  EXPECT_EQ(table.inserts(0), 1u);
}

// A worker on a clock 0.5 s behind another's (descheduled mid-burst, or on
// a capture's timestamps) meets the debt the other's takes left: judged on
// its own clock that debt reaches past the burst by more than the slack, as
// a retune's would, and was cut back, handing the source a whole burst
// again. Judged on the latest clock it stays: the fresh worker gets no
// token more than rate x t. Its takes from a source that was full on its
// old clock count on the latest too. A retune's debt is still cut.
TEST(DpdkSourceSets, AWorkerOnAStaleClockCutsNoDebtAnotherLeft) {
  constexpr uint64_t kStale = 500 * kMs;
  SourceSets table(1024, 2);
  const sl_class_params cp = with_source(1000, 100);  // a burst's reach: 100 ms
  const sl_source_key k = source(1);
  const uint64_t t = kT0 + kStale;
  uint64_t got = 0;
  while (table.op(k, cp, t, Op::kTake, 0) == SL_SOURCE_TAKEN) got++;
  EXPECT_EQ(got, 100u);
  EXPECT_EQ(table.op(k, cp, t - kStale, Op::kTake, 1), SL_SOURCE_REFUSED);
  EXPECT_EQ(table.op(k, cp, t - kStale, Op::kPeek, 1), SL_SOURCE_REFUSED);
  // 10 ms later: 10 tokens, not a burst.
  got = 0;
  while (table.op(k, cp, t + 10 * kMs, Op::kTake, 0) == SL_SOURCE_TAKEN) got++;
  EXPECT_EQ(got, 10u);
  // Its takes from a source full on its old clock are taken on the latest:
  // 10 there leave the fresh worker 90 of the burst, not all 100 again.
  const sl_source_key full = source(3);
  got = 0;
  for (int i = 0; i < 10; i++)
    got += table.op(full, cp, t - kStale, Op::kTake, 1) == SL_SOURCE_TAKEN;
  EXPECT_EQ(got, 10u);
  got = 0;
  while (table.op(full, cp, t + 10 * kMs, Op::kTake, 0) == SL_SOURCE_TAKEN) got++;
  EXPECT_EQ(got, 90u) << "a burst of 100 in all, 10 of them on the stale clock";
  // A retune's debt: 100 tokens at 100/s leave 1 s; retuned to 1000/s with
  // a burst of 10 (reach 10 ms), the next use (at 250 ms) cuts the debt to
  // the reach plus the 100 ms slack, so the source has its burst again at
  // 360 ms, where the old debt would keep it empty until 1 s.
  const sl_source_key r = source(2);
  got = 0;
  while (table.op(r, with_source(100, 100), t, Op::kTake, 0) == SL_SOURCE_TAKEN) got++;
  EXPECT_EQ(got, 100u);
  const sl_class_params fast = with_source(1000, 10);
  EXPECT_EQ(table.op(r, fast, t + 250 * kMs, Op::kTake, 1), SL_SOURCE_REFUSED);
  got = 0;
  while (table.op(r, fast, t + 360 * kMs, Op::kTake, 1) == SL_SOURCE_TAKEN) got++;
  EXPECT_EQ(got, 10u);
}

// A table for two entries is one set of four ways. Sources seen once (a
// spoofed flood's) take each other's ways, oldest first, never the way of
// a source that came back while it owes tokens, however many pass: an
// eviction would give it a full budget again (decide.h,
// sl_source_evict_order). With the set's least recently used way taken,
// source 1 would go at the third new source and come back full.
TEST(DpdkSourceSets, SourcesSeenOnceNeverTakeTheWayOfOneThatOwes) {
  SourceSets table(2, 1);
  ASSERT_EQ(table.capacity(), 4u);
  const sl_class_params cp = with_source(1, 2);
  EXPECT_EQ(drain(table, source(1), cp, kT0), 2);  // three takes: it came back
  for (uint8_t s = 10; s < 40; s++)
    EXPECT_EQ(table.op(source(s), cp, kT0 + s * kMs, Op::kTake, 0), SL_SOURCE_TAKEN) << int{s};
  EXPECT_EQ(table.evictions(0), 27u);  // 30 entered, 3 ways free
  EXPECT_EQ(table.op(source(1), cp, kT0 + 50 * kMs, Op::kPeek, 0), SL_SOURCE_REFUSED);
  // The last three seen once are there, the ones before them went.
  for (uint8_t s : {37, 38, 39})
    EXPECT_EQ(table.op(source(s), cp, kT0 + 51 * kMs, Op::kPeek, 0), SL_SOURCE_TAKEN);
  EXPECT_EQ(table.evictions(0), 27u);
  // Once its budget is full again (a token a second: at 2 s) and it has
  // been idle a second, its way goes like any other's: losing it loses
  // nothing. At 3 s four new sources take the ways of 37, 38 and 39 (their
  // second is over), then of source 1.
  for (uint8_t s = 40; s < 44; s++)
    EXPECT_EQ(table.op(source(s), cp, kT0 + (3000 + s) * kMs, Op::kTake, 0), SL_SOURCE_TAKEN);
  EXPECT_EQ(table.evictions(0), 31u);
  for (uint8_t s = 40; s < 44; s++)
    EXPECT_EQ(table.op(source(s), cp, kT0 + 3100 * kMs, Op::kPeek, 0), SL_SOURCE_TAKEN);
  EXPECT_EQ(table.evictions(0), 31u);  // all four held: source 1 went
}

// When every way's source came back and owes, a new source takes the way
// whose budget is full soonest (what its eviction gives back is least):
// source 1, drained first, though used last (a refusal is a use).
TEST(DpdkSourceSets, AFullSetOfSourcesThatOweRecyclesTheOneOwingLeast) {
  SourceSets table(2, 1);
  const sl_class_params cp = with_source(1, 2);
  for (uint8_t s = 1; s <= 4; s++)
    EXPECT_EQ(drain(table, source(s), cp, kT0 + s * kMs), 2) << "source " << int{s};
  EXPECT_EQ(table.op(source(1), cp, kT0 + 10 * kMs, Op::kTake, 0), SL_SOURCE_REFUSED);
  EXPECT_EQ(drain(table, source(5), cp, kT0 + 11 * kMs), 2);
  EXPECT_EQ(table.inserts(0), 5u);
  EXPECT_EQ(table.evictions(0), 1u);
  // 2, 3 and 4 kept their (empty) budgets; 1 went, and comes back full.
  for (uint8_t s : {2, 3, 4})
    EXPECT_EQ(table.op(source(s), cp, kT0 + 12 * kMs, Op::kPeek, 0), SL_SOURCE_REFUSED)
        << "source " << int{s};
  EXPECT_EQ(drain(table, source(1), cp, kT0 + 13 * kMs), 2);
  EXPECT_EQ(table.evictions(0), 2u);
}

}  // namespace
}  // namespace sluice::dpdk
