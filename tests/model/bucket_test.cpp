// SPDX-License-Identifier: Apache-2.0
// Token buckets: over 10 simulated seconds, admitted <= rate * t + burst at
// every instant (exactly, integer arithmetic), and within 1% of it under
// saturation.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "dataplane/model/bucket.h"
#include "dataplane/model/decide.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::kSecond;

// rate, burst, offered load as a multiple of the rate
class BucketBound : public ::testing::TestWithParam<std::tuple<uint64_t, uint64_t, uint64_t>> {};

// Offers a multiple of the rate at random instants; checks the bound after
// every take. A burst of 1 wastes the time between a token coming back and the
// next arrival, so those cases offer 1000x to be saturated.
TEST_P(BucketBound, NeverAboveRateTimesTPlusBurstAndWithinOnePercent) {
  const auto [rate, burst, load] = GetParam();
  const sl_bucket_params p = sl_bucket_params_make(rate, burst);
  const uint64_t t0 = 5 * kSecond;
  sl_bucket b;
  sl_bucket_init(&b, &p, t0);
  std::mt19937_64 rng(rate * 31 + burst);
  uint64_t now = t0;
  uint64_t admitted = 0;
  while (now < t0 + 10 * kSecond) {
    now += test::poisson_gap_ns(rng, static_cast<double>(rate * load));
    if (now >= t0 + 10 * kSecond) break;
    sl_bucket_refill(&b, &p, now);
    if (sl_bucket_has(&b, 0)) {
      sl_bucket_take(&b);
      admitted++;
      // admitted <= burst + rate * elapsed, in exact integer nanotokens
      const unsigned __int128 bound = static_cast<unsigned __int128>(burst) * SL_TOKEN +
                                      static_cast<unsigned __int128>(rate) * (now - t0);
      ASSERT_LE(static_cast<unsigned __int128>(admitted) * SL_TOKEN, bound)
          << "at t=" << (now - t0) << "ns";
    }
  }
  // The token earned exactly at the end of the interval cannot be spent in
  // it: allow that one token of quantisation on top of the 1%.
  const double ideal = static_cast<double>(rate) * 10 + static_cast<double>(burst);
  EXPECT_GE(static_cast<double>(admitted + 1), 0.99 * ideal);
}

INSTANTIATE_TEST_SUITE_P(
    Model, BucketBound,
    ::testing::Values(std::make_tuple(7, 1, 1000), std::make_tuple(333, 33, 10),
                      std::make_tuple(1000, 100, 10), std::make_tuple(1000, 1, 1000),
                      std::make_tuple(123457, 5000, 10), std::make_tuple(40000, 4000, 10)));

TEST(Bucket, TimeGoingBackwardsEarnsNothing) {
  const sl_bucket_params p = sl_bucket_params_make(1000, 10);
  sl_bucket b;
  sl_bucket_init(&b, &p, 10 * kSecond);
  for (int i = 0; i < 10; i++) sl_bucket_take(&b);
  sl_bucket_refill(&b, &p, 9 * kSecond);
  EXPECT_EQ(b.tokens_nt, 0u);
  EXPECT_EQ(b.last_ns, 10 * kSecond);
  sl_bucket_refill(&b, &p, 10 * kSecond + 1000000);  // 1 ms later: exactly one token
  EXPECT_EQ(b.tokens_nt, SL_TOKEN);
}

// A retune that shrinks the burst, and a lookup at the same instant (a
// capture's microsecond timestamps): the smaller burst holds, as the
// reference model's clamp at the retune makes it (XDP and DPDK write
// their state at no retune).
TEST(Bucket, AShrunkBurstHoldsAtTheInstantOfTheRetune) {
  const sl_bucket_params wide = sl_bucket_params_make(1000, 10);
  const sl_bucket_params narrow = sl_bucket_params_make(1000, 4);
  sl_bucket b;
  sl_bucket_init(&b, &wide, 10 * kSecond);
  int taken = 0;
  for (int i = 0; i < 10; i++) {
    sl_bucket_refill(&b, &narrow, 10 * kSecond);
    if (!sl_bucket_has(&b, 0)) break;
    sl_bucket_take(&b);
    taken++;
  }
  EXPECT_EQ(taken, 4);
}

TEST(Bucket, LongIdleFillsToBurstWithoutOverflow) {
  const sl_bucket_params p = sl_bucket_params_make(SL_MAX_RATE_PER_SEC, SL_MAX_BURST);
  sl_bucket b;
  sl_bucket_init(&b, &p, 0);
  b.tokens_nt = 0;
  sl_bucket_refill(&b, &p, 3600 * kSecond);
  EXPECT_EQ(b.tokens_nt, p.cap_nt);
  b.tokens_nt = 0;
  sl_bucket_refill(&b, &p, 3600 * kSecond + p.full_after_ns - 1);
  EXPECT_LT(b.tokens_nt, p.cap_nt);
  EXPECT_GT(b.tokens_nt, p.cap_nt - 2 * SL_MAX_RATE_PER_SEC);
}

// A source refused without its lock (XDP: sl_source_short, writing nothing)
// is decided as sl_source_take decides it, and the source's later decisions
// too, whatever the refills it skipped: two copies of the bucket, one taken
// exactly, one left unwritten on every refusal, over random gaps (some going
// back in time, as between CPUs), with some tokens given back.
TEST(Bucket, SourceRefusedWithoutWritingDecidesAsTheTake) {
  for (const auto& [rate, burst] : {std::pair<uint64_t, uint64_t>{5, 10},
                                    {1000, 1},
                                    {333, 7},
                                    {1000000, 1000},
                                    {250000000, 3}}) {
    sl_class_params cp{};
    cp.src_bucket = sl_gcra_params_make(rate, burst);
    sl_source_state exact, unlocked;
    uint64_t now = 50 * kSecond;
    sl_source_init(&exact);
    unlocked = exact;
    std::mt19937_64 rng(rate + burst);
    const double gap = 1e9 / static_cast<double>(rate) / 3;  // 3x the rate
    uint64_t refused = 0;
    for (int i = 0; i < 20000; i++) {
      now += static_cast<uint64_t>(gap * (static_cast<double>(rng() % 2000) / 1000.0));
      const uint64_t at = rng() % 16 == 0 && now > 1000 ? now - rng() % 1000 : now;
      const bool short_ = sl_source_short(&unlocked, &cp, at);
      const int want = sl_source_take(&exact, &cp, at);
      ASSERT_EQ(short_, want == SL_SOURCE_REFUSED) << rate << "/s burst " << burst << " at " << i;
      if (!short_) ASSERT_EQ(sl_source_take(&unlocked, &cp, at), SL_SOURCE_TAKEN);
      refused += short_;
      if (want == SL_SOURCE_TAKEN && rng() % 8 == 0) {  // a token the decision did not use
        sl_source_give_back(&exact, &cp);
        sl_source_give_back(&unlocked, &cp);
      }
    }
    EXPECT_GT(refused, 20000u / 2) << rate << "/s burst " << burst;
  }
}

// The same bound through the whole model: a class budget over real packets.
TEST(Bucket, ClassBudgetThroughTheModel) {
  ReferenceModel model(test::profile_from_toml(R"(
[[class]]
name = "citizen"
match = { src = "198.18.0.0/15" }
rate_per_sec = 250
burst = 25
shed_order = "random"
)"));
  std::mt19937_64 rng(7);
  auto frame = test::syn_v4(test::kNet198_18 + 1);
  uint64_t now = 100 * kSecond;
  const uint64_t end = now + 10 * kSecond;
  uint64_t admitted = 0;
  while (true) {
    now += test::poisson_gap_ns(rng, 5000);
    if (now >= end) break;
    test::set_src_v4(frame, test::kNet198_18 + static_cast<uint32_t>(rng() % 60000));
    sl_decision d = model.decide(frame.data(), static_cast<uint32_t>(frame.size()), now);
    ASSERT_EQ(d.class_id, 0);
    if (d.verdict == SL_VERDICT_ADMITTED) admitted++;
  }
  EXPECT_LE(admitted, 250u * 10 + 25);
  EXPECT_GE(admitted, static_cast<uint64_t>(0.99 * (250 * 10 + 25)));
}

}  // namespace
}  // namespace sluice
