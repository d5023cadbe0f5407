// SPDX-License-Identifier: Apache-2.0
// Per-source budgets as GCRA (dataplane/model/gcra.h): never more than
// burst + rate * t in any run of takes, at most the stated rounding short of
// it, decided exactly as the token bucket where the rate divides the clock,
// a retune never leaves more than the new burst, and no overflow at the
// largest values the validator lets through.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "dataplane/model/bucket.h"
#include "dataplane/model/decide.h"
#include "dataplane/model/gcra.h"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::kSecond;

sl_class_params with_source(uint64_t rate, uint64_t burst) {
  sl_class_params cp{};
  cp.src_bucket = sl_gcra_params_make(rate, burst);
  return cp;
}

// Tokens a source takes at one instant until refused (at most 10^6).
int takes_at(sl_source_state& ss, const sl_class_params& cp, uint64_t at) {
  int taken = 0;
  while (taken < 1000000 && sl_source_take(&ss, &cp, at) == SL_SOURCE_TAKEN) taken++;
  return taken;
}

// A new source that took n tokens at one instant, each one granted.
sl_source_state took(const sl_class_params& cp, int n, uint64_t at) {
  sl_source_state ss;
  sl_source_init(&ss);
  for (int i = 0; i < n; i++)
    if (sl_source_take(&ss, &cp, at) != SL_SOURCE_TAKEN)
      ADD_FAILURE() << "take " << i << " refused";
  return ss;
}

// rate, burst, offered load as a multiple of the rate
class GcraBound : public ::testing::TestWithParam<std::tuple<uint64_t, uint64_t, uint64_t>> {};

// The token bucket's bound after every take, exactly (integer nanotokens);
// under saturation at least burst + rate * t less the rounding gcra.h states
// (a quarter nanosecond per token) and the one token earned at the very end.
TEST_P(GcraBound, NeverAboveRateTimesTPlusBurstAndShortOnlyByTheRounding) {
  const auto [rate, burst, load] = GetParam();
  const sl_class_params cp = with_source(rate, burst);
  const uint64_t t0 = 7 * kSecond, span = 10 * kSecond;
  sl_source_state ss;
  sl_source_init(&ss);
  std::mt19937_64 rng(rate * 29 + burst);
  uint64_t now = t0, admitted = 0, given_back = 0;
  while (true) {
    now += test::poisson_gap_ns(rng, static_cast<double>(rate * load));
    if (now >= t0 + span) break;
    if (sl_source_take(&ss, &cp, now) != SL_SOURCE_TAKEN) continue;
    admitted++;
    if (rng() % 16 == 0) {  // a token the decision did not use
      sl_source_give_back(&ss, &cp);
      admitted--;
      given_back++;
    }
    const unsigned __int128 bound = static_cast<unsigned __int128>(burst) * SL_TOKEN +
                                    static_cast<unsigned __int128>(rate) * (now - t0);
    ASSERT_LE(static_cast<unsigned __int128>(admitted) * SL_TOKEN, bound)
        << rate << "/s burst " << burst << " at t=" << (now - t0) << "ns";
  }
  EXPECT_GT(given_back, 0u);
  const double ideal = static_cast<double>(rate) * 10 + static_cast<double>(burst);
  const double rounding = static_cast<double>(rate) / static_cast<double>(SL_GCRA_UNITS_PER_SEC);
  // Poisson arrivals waste a little of each refill at a low load: 1% as in
  // the token bucket's test, plus the rounding.
  EXPECT_GE(static_cast<double>(admitted + 1), (0.99 - rounding) * ideal)
      << rate << "/s burst " << burst;
}

INSTANTIATE_TEST_SUITE_P(Model, GcraBound,
                         ::testing::Values(std::make_tuple(7, 1, 1000), std::make_tuple(3, 5, 100),
                                           std::make_tuple(333, 33, 10),
                                           std::make_tuple(1000, 100, 10),
                                           std::make_tuple(1000, 1, 1000),
                                           std::make_tuple(123457, 5000, 10),
                                           std::make_tuple(300007, 3000, 4)));

// Where the rate divides 4 * 10^9 the emission interval is exact: every take
// and give-back is decided as the token bucket decides it, on a clock that
// never goes back (between CPUs GCRA refuses where the token bucket would
// not: below).
TEST(Gcra, DecidesAsTheTokenBucketWhereTheRateDividesTheClock) {
  for (const auto& [rate, burst] :
       {std::pair<uint64_t, uint64_t>{1, 2}, {5, 10}, {1000, 1}, {1000000, 1000}, {250000000, 3}}) {
    const sl_class_params cp = with_source(rate, burst);
    const sl_bucket_params bp = sl_bucket_params_make(rate, burst);
    sl_bucket b;
    uint64_t now = 3 * kSecond;
    sl_bucket_init(&b, &bp, now);
    sl_source_state ss;
    sl_source_init(&ss);
    std::mt19937_64 rng(rate + burst);
    const double gap = 1e9 / static_cast<double>(rate) / 2;  // 2x the rate
    uint64_t taken = 0;
    for (int i = 0; i < 20000; i++) {
      now += static_cast<uint64_t>(gap * (static_cast<double>(rng() % 2000) / 1000.0));
      sl_bucket_refill(&b, &bp, now);
      const bool bucket_has = sl_bucket_has(&b, 0);
      if (bucket_has) sl_bucket_take(&b);
      const int r = sl_source_take(&ss, &cp, now);
      ASSERT_EQ(r == SL_SOURCE_TAKEN, bucket_has) << rate << "/s burst " << burst << " at " << i;
      ASSERT_EQ(sl_gcra_whole_tokens(ss.tat_u, &cp.src_bucket, now), b.tokens_nt / SL_TOKEN);
      taken += bucket_has;
      if (bucket_has && rng() % 8 == 0) {
        b.tokens_nt += SL_TOKEN;
        sl_bucket_clamp(&b, &bp);
        sl_source_give_back(&ss, &cp);
      }
    }
    EXPECT_GT(taken, 20000u / 4) << rate << "/s burst " << burst;
    EXPECT_LT(taken, 20000u) << rate << "/s burst " << burst;
  }
}

// Another CPU's clock a little behind: a take at an earlier instant than the
// last never finds more than the burst, nor gets past the bound measured
// from the latest instant seen.
TEST(Gcra, ClockBehindAnotherCpuNeverAddsTokens) {
  const sl_class_params cp = with_source(100, 10);
  sl_source_state ss;
  sl_source_init(&ss);
  std::mt19937_64 rng(5);
  const uint64_t t0 = kSecond;
  uint64_t latest = t0, admitted = 0;
  for (int i = 0; i < 50000; i++) {
    latest += rng() % 2000000;                     // 0-2 ms: 2.5x the rate
    const uint64_t at = latest - rng() % 4000000;  // up to 4 ms behind
    admitted += sl_source_take(&ss, &cp, at) == SL_SOURCE_TAKEN;
    ASSERT_LE(admitted, 10 + 100 * (latest - t0 + 4000000) / kSecond + 1) << "at " << i;
  }
  EXPECT_GT(admitted, 100 * (latest - t0) / kSecond * 9 / 10);
}

// A retune keeps what the source owes: it never has more than the new
// burst, and a shrunk burst holds at once.
TEST(Gcra, ARetuneNeverLeavesMoreThanTheNewBurst) {
  const uint64_t now = 9 * kSecond;
  const sl_class_params before = with_source(10, 100);
  sl_source_state ss = took(before, 40, now);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &before.src_bucket, now), 60u);
  const sl_class_params shrunk = with_source(10, 50);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &shrunk.src_bucket, now), 10u);
  EXPECT_EQ(takes_at(ss, shrunk, now), 10);
  // A long idle fills it to the new burst, no more.
  const sl_class_params grown = with_source(1000, 20);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &grown.src_bucket, now + 100 * kSecond), 20u);
  EXPECT_EQ(takes_at(ss, grown, now + 100 * kSecond), 20);
}

// A retune that shrinks a source's reach (a smaller burst, or a higher rate)
// below what it owes cuts the debt back: the source starts empty, at most
// SL_GCRA_SLACK_NS late, instead of waiting out the old debt (10 s here).
TEST(Gcra, ARetuneNeverLocksASourceOutForItsOldDebt) {
  const uint64_t now = 20 * kSecond;
  const sl_class_params before = with_source(10, 100);
  sl_source_state ss = took(before, 100, now);
  const sl_class_params after = with_source(1000, 10);  // reach: 10 ms
  EXPECT_EQ(sl_source_take(&ss, &after, now), SL_SOURCE_REFUSED);
  EXPECT_EQ(sl_source_take(&ss, &after, now + SL_GCRA_SLACK_NS), SL_SOURCE_REFUSED)
      << "empty: never a token the cut gives";
  // Empty at the cut, plus the slack: the first token 1 ms after that.
  const uint64_t first = now + SL_GCRA_SLACK_NS + 1000000;
  EXPECT_EQ(sl_source_take(&ss, &after, first - 1), SL_SOURCE_REFUSED);
  EXPECT_EQ(sl_source_take(&ss, &after, first), SL_SOURCE_TAKEN);
  // Then the new rate and burst: full 10 ms after the last take.
  EXPECT_EQ(takes_at(ss, after, first + 10000000), 10);
  // A clock behind another CPU's by less than the slack cuts nothing.
  sl_source_state skewed;
  sl_source_init(&skewed);
  for (int i = 0; i < 10; i++) ASSERT_EQ(sl_source_take(&skewed, &after, now), SL_SOURCE_TAKEN);
  const uint64_t owed = skewed.tat_u;
  EXPECT_EQ(sl_source_take(&skewed, &after, now - 50000000), SL_SOURCE_REFUSED);
  EXPECT_EQ(skewed.tat_u, owed);
}

// The largest values the validator lets through, on a clock of 4 * 10^18 ns
// (pcap time in 2096): no overflow, the burst capped as gcra.h says.
TEST(Gcra, LargestRateBurstAndClockDoNotOverflow) {
  const uint64_t late = 4000000000000000000ULL;
  const sl_class_params fast = with_source(SL_MAX_RATE_PER_SEC, SL_MAX_BURST);
  EXPECT_EQ(fast.src_bucket.emit_u, 4u);
  sl_source_state ss = took(fast, 1000, late);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &fast.src_bucket, late), SL_MAX_BURST - 1000);

  const sl_class_params slow = with_source(1, SL_MAX_BURST);
  EXPECT_EQ(slow.src_bucket.limit_u, SL_GCRA_LIMIT_MAX);
  const uint64_t capped = SL_GCRA_LIMIT_MAX / slow.src_bucket.emit_u;  // 576 million
  sl_source_init(&ss);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &slow.src_bucket, late), capped);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(sl_source_take(&ss, &slow, late), SL_SOURCE_TAKEN);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &slow.src_bucket, late), capped - 1000);
  EXPECT_GT(ss.tat_u, late << SL_GCRA_SHIFT);

  // A rate of 0 (no config value): the burst once, no overflow.
  const sl_class_params never = with_source(0, SL_MAX_BURST);
  EXPECT_LE(never.src_bucket.limit_u, SL_GCRA_LIMIT_MAX);
  sl_source_init(&ss);
  EXPECT_EQ(sl_gcra_whole_tokens(ss.tat_u, &never.src_bucket, late), SL_MAX_BURST);

  const sl_class_params one = with_source(1, 1);
  sl_source_init(&ss);
  EXPECT_EQ(sl_source_take(&ss, &one, late), SL_SOURCE_TAKEN);
  EXPECT_EQ(sl_source_take(&ss, &one, late + kSecond - 1), SL_SOURCE_REFUSED);
  EXPECT_EQ(sl_source_take(&ss, &one, late + kSecond), SL_SOURCE_TAKEN);
}

}  // namespace
}  // namespace sluice
