// SPDX-License-Identifier: Apache-2.0
// Sticky shedding: a class shedding about half of its demand sheds the same
// sources for an epoch (>= 90% of sources all-or-none within each epoch), the admitted set changes
// across epochs, and the class still uses its budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataplane/model/sticky_settle.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::kSecond;

struct EpochStats {
  std::map<uint32_t, std::pair<int, int>> per_source;  // admitted, offered
  uint64_t admitted = 0;
  uint64_t offered = 0;

  double all_or_none_share() const {
    int consistent = 0, counted = 0;
    for (const auto& [src, ao] : per_source) {
      if (ao.second < 2) continue;  // one lookup is trivially all-or-none
      counted++;
      consistent += ao.first == 0 || ao.first == ao.second;
    }
    return counted ? static_cast<double>(consistent) / counted : 0;
  }
  std::set<uint32_t> admitted_sources() const {
    std::set<uint32_t> s;
    for (const auto& [src, ao] : per_source)
      if (ao.first > 0) s.insert(src);
    return s;
  }
};

// 10,000 sources offering 2000 lookups/s in all to a class of 1000/s for
// three 60-second epochs. Admitted and offered counts are by minute of the
// run; per-source outcomes by sticky epoch (the minutes, epoch-aligned).
std::vector<EpochStats> run(const char* shed_order) {
  ReferenceModel model(test::profile_from_toml(std::string(R"(
[admission]
sticky_epoch_sec = 60

[[class]]
name = "citizen"
match = { src = "198.18.0.0/15" }
rate_per_sec = 1000
burst = 100
shed_order = ")") + shed_order + "\"\n"));
  std::mt19937_64 rng(2024);
  const uint64_t t0 = 600 * kSecond;  // epoch-aligned
  const uint64_t epoch = 60 * kSecond;
  std::vector<EpochStats> epochs(3);
  auto f = test::syn_v4(0);
  uint64_t now = t0;
  while (true) {
    now += test::poisson_gap_ns(rng, 2000);
    if (now >= t0 + 3 * epoch) break;
    uint32_t src = test::kNet198_18 + 1 + static_cast<uint32_t>(rng() % 10000);
    test::set_src_v4(f, src);
    sl_decision d = model.decide(f.data(), static_cast<uint32_t>(f.size()), now);
    const uint64_t own = sl_sticky_epoch(&model.profile().prof, now) - t0 / epoch;
    bool ok = d.verdict == SL_VERDICT_ADMITTED;
    epochs[own].per_source[src].first += ok;
    epochs[own].per_source[src].second++;
    epochs[(now - t0) / epoch].admitted += ok;
    epochs[(now - t0) / epoch].offered++;
  }
  return epochs;
}

TEST(Sticky, SameSourcesAllOrNoneWithinAnEpoch) {
  std::vector<EpochStats> epochs = run("sticky");
  for (std::size_t i = 0; i < epochs.size(); i++) {
    const EpochStats& e = epochs[i];
    SCOPED_TRACE("epoch " + std::to_string(i));
    std::printf(
        "minute %zu: admitted %llu of %llu; source epoch %zu: all-or-none %.3f of "
        "sources\n",
        i, static_cast<unsigned long long>(e.admitted), static_cast<unsigned long long>(e.offered),
        i, e.all_or_none_share());
    EXPECT_GE(e.all_or_none_share(), 0.90);
    // About half shed, and the budget is used, not wasted.
    EXPECT_NEAR(static_cast<double>(e.admitted) / static_cast<double>(e.offered), 0.5, 0.06);
    EXPECT_GE(static_cast<double>(e.admitted), 0.93 * 1000 * 60);
  }
  // The admitted set rotates with the epoch.
  auto a = epochs[1].admitted_sources();
  auto b = epochs[2].admitted_sources();
  std::size_t both = 0;
  for (uint32_t s : a) both += b.count(s);
  EXPECT_LT(static_cast<double>(both) / static_cast<double>(a.size()), 0.75);
}

// The same demand shed in random order gives almost nobody a whole session:
// this is what sticky shedding is for (and shows the test above can fail).
TEST(Sticky, RandomOrderSpreadsFailuresOverEveryone) {
  std::vector<EpochStats> epochs = run("random");
  EXPECT_LT(epochs[1].all_or_none_share(), 0.2);
  EXPECT_NEAR(static_cast<double>(epochs[1].admitted) / 60000.0, 1.0, 0.02);
}

// When demand falls back under the rate, everyone is admitted again.
TEST(Sticky, RecoversWhenTheSurgeEnds) {
  ReferenceModel model(test::profile_from_toml(R"(
[[class]]
name = "citizen"
rate_per_sec = 1000
burst = 100
)"));
  std::mt19937_64 rng(5);
  auto f = test::syn_v4(0);
  uint64_t now = 600 * kSecond;
  auto drive = [&](double rate, uint64_t seconds) {
    uint64_t end = now + seconds * kSecond, offered = 0, admitted = 0;
    while (true) {
      now += test::poisson_gap_ns(rng, rate);
      if (now >= end) break;
      test::set_src_v4(f, test::kNet198_18 + static_cast<uint32_t>(rng() % 10000));
      offered++;
      admitted += model.decide(f.data(), static_cast<uint32_t>(f.size()), now).verdict ==
                  SL_VERDICT_ADMITTED;
    }
    return static_cast<double>(admitted) / static_cast<double>(offered);
  };
  EXPECT_LT(drive(4000, 10), 0.3);
  drive(500, 5);  // recovery period
  EXPECT_GT(drive(500, 5), 0.999);
}

// After a 100x surge on a small boundary (the surge lab's 100x row: C = 100,
// the checkpoint class first and taking all of it, citizens sticky and at the
// threshold's floor), the baseline (50 lookups/s, so a controller window
// waits up to 400 ms for enough lookups) is served again within 2 s. The lab
// saw 9 s in three of four such runs; this says the controller's climb back
// is not why (it recovers in the first second).
TEST(Sticky, RecoversQuicklyAfterA100xSurgeAtLowRates) {
  ReferenceModel model(test::profile_from_toml(R"(
[boundary]
lookups_per_sec = 100
lookups_burst = 10

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24" }
shed_order = "random"

[[class]]
name = "citizen"
priority = 5
match = { src = "198.18.0.0/15" }
rate_per_sec = 100
burst = 10
shed_order = "sticky"
)"));
  std::mt19937_64 rng(7);
  auto f = test::syn_v4(0);
  uint64_t now = 600 * kSecond;
  // Citizens from 100 addresses (198.18.20.x), scanners from 198.18.10.x.
  auto drive = [&](double citizens, double scanners, uint64_t seconds) {
    std::vector<double> ratio;
    for (uint64_t s = 0; s < seconds; s++) {
      const uint64_t end = now + kSecond;
      uint64_t next_c = now + test::poisson_gap_ns(rng, citizens);
      uint64_t next_s = now + test::poisson_gap_ns(rng, scanners);
      uint64_t offered = 0, admitted = 0;
      while (true) {
        now = std::min(next_c, next_s);
        if (now >= end) break;
        const bool citizen = now == next_c;
        if (citizen) {
          next_c += test::poisson_gap_ns(rng, citizens);
          test::set_src_v4(f,
                           test::kNet198_18 + (20 << 8) + 1 + static_cast<uint32_t>(rng() % 100));
        } else {
          next_s += test::poisson_gap_ns(rng, scanners);
          test::set_src_v4(f, test::kNet198_18 + (10 << 8) + 1 + static_cast<uint32_t>(rng() % 10));
        }
        const bool ok = model.decide(f.data(), static_cast<uint32_t>(f.size()), now).verdict ==
                        SL_VERDICT_ADMITTED;
        if (citizen) {
          offered++;
          admitted += ok;
        }
      }
      now = end;
      ratio.push_back(offered ? static_cast<double>(admitted) / static_cast<double>(offered) : 1);
    }
    return ratio;
  };
  drive(47.5, 2.5, 3);                      // baseline
  const auto surge = drive(9500, 500, 10);  // 100x
  EXPECT_LT(surge.back(), 0.01);            // the scanners take the boundary
  const auto after = drive(47.5, 2.5, 12);  // baseline again
  std::size_t recovered = after.size();
  for (std::size_t s = after.size(); s-- > 0;) {
    if (after[s] < 0.9) break;
    recovered = s;
  }
  std::string line;
  for (double r : after) line += " " + std::to_string(r).substr(0, 4);
  std::printf("after the surge, citizens admitted per second:%s; recovered in second %zu\n",
              line.c_str(), recovered);
  EXPECT_LE(recovered, 2u);
}

// A retune that lowers a class's burst must not read as lost capacity: the
// tokens the new burst cut off were never the class's to use. A window opens
// with the old, bigger bucket full; after the retune, rx bursts of lookups
// (one timestamp each, as DPDK gives them) keep the bucket just under its new
// burst when the window closes. No budget ever refused anything, so nobody
// may be shed.
TEST(Sticky, LoweringTheBurstIsNotASurge) {
  auto profile = [](uint64_t burst) {
    return test::profile_from_toml(
        "[[class]]\nname = \"steady\"\nmatch = { src = [\"198.18.0.0/15\"] }\n"
        "rate_per_sec = 10000000\nburst = " +
        std::to_string(burst) + "\n");
  };
  ReferenceModel m(profile(2000000));
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t h = 0; h < 256; h++) frames.push_back(test::udp_v4(test::kNet198_18 | h));
  uint64_t shed = 0;
  auto lookups = [&](uint32_t n, uint64_t now) {
    for (uint32_t i = 0; i < n; i++) {
      const auto& f = frames[i % frames.size()];
      shed += m.decide(f.data(), static_cast<uint32_t>(f.size()), now).verdict == SL_VERDICT_SHED;
    }
  };
  const uint64_t t0 = 100 * kSecond, ms = 1'000'000;  // sticky_window_ms = 100
  lookups(1, t0);                                     // the window opens with 2,000,000 tokens
  m.apply(profile(1000000));                          // the retune halves the burst
  // Every ms, ten rx bursts of 32 lookups 1 us apart (refill: 10 tokens per
  // us): the bucket is a few tokens under its burst when the window closes,
  // in the middle of one such train (at 100 ms).
  for (uint64_t t = 1; t <= 101; t++)
    for (uint64_t j = 0; j < 10; j++) lookups(32, t0 + t * ms + j * 1000 - 5000);
  for (uint64_t t = 102; t <= 110; t++) lookups(256, t0 + t * ms);
  EXPECT_EQ(shed, 0u);
  EXPECT_EQ(m.class_state(0).threshold, SL_RANK_ONE);
}

// The weight of a lookup not admitted (sl_sticky_thin), from the lookups per
// rank below the threshold and above the band's overflow: it stays 1 while
// both are within 3/2 of each other (the noise of a few sources' ranks),
// moves half the way down to 3/2 of their ratio (retries of the shed), an
// eighth of the way up, waits for 32 of each, never goes under 1/64, and
// adds up counts taken under different thresholds (sl_sticky_fold).
TEST(Sticky, ALookupNotAdmittedWeighsWhatItsRankAsksOnceAdmitted) {
  sl_class_state cs{};
  cs.threshold = SL_RANK_ONE / 4;
  cs.band_top = SL_RANK_ONE / 4;  // no band: the overflow's top is the threshold
  // Lookups counted below and above the current threshold, folded, then the
  // weight taken as at a window's close.
  auto thin = [&](uint32_t below, uint32_t above) {
    cs.since_below = below;
    cs.since_above = above;
    sl_sticky_fold(&cs);
    return sl_sticky_thin(&cs);
  };
  // `ratio` x as many lookups per rank above as below, 1000 below.
  auto above = [&](double ratio) {
    const double below_ranks = cs.threshold;
    const double above_ranks = SL_RANK_ONE - sl_overflow_top(cs.threshold, cs.band_top);
    return static_cast<uint32_t>(1000 * ratio * above_ranks / below_ranks);
  };
  // Open loop, and noise within 3/2: all of it.
  EXPECT_EQ(thin(1000, above(1)), 1);
  EXPECT_EQ(sl_keep(&cs), SL_KEEP_ONE);
  EXPECT_EQ(thin(1000, above(1.45)), 1);
  EXPECT_EQ(sl_keep(&cs), SL_KEEP_ONE);
  // Shed sources retrying 20 times: half the way to 3/2 x 1/21, each time.
  const double want = 1.5 / 21 * SL_KEEP_ONE;
  double expected = SL_KEEP_ONE;
  for (int i = 0; i < 14; i++) {
    ASSERT_EQ(thin(1000, above(21)), 1);
    expected -= (expected - want) / 2;
    EXPECT_NEAR(static_cast<double>(sl_keep(&cs)), expected, 2) << "step " << i;
  }
  EXPECT_NEAR(static_cast<double>(sl_keep(&cs)), want, 0.01 * want);
  // Back up by an eighth of the way only.
  const double from = static_cast<double>(sl_keep(&cs));
  ASSERT_EQ(thin(1000, above(1)), 1);
  EXPECT_NEAR(static_cast<double>(sl_keep(&cs)), from + (SL_KEEP_ONE - from) / 8, 2);
  // Counts under two thresholds add up by their own widths: half of the
  // lookups under a quarter of the ranks, half under a half, each at 21.
  const uint32_t before = cs.keep;
  cs.since_below = 500;
  cs.since_above = above(21) / 2;
  sl_sticky_fold(&cs);
  cs.threshold = cs.band_top = SL_RANK_ONE / 2;
  EXPECT_EQ(thin(500, above(21) / 2), 1);
  EXPECT_NEAR(static_cast<double>(cs.keep), before - (before - want) / 2, 2);
  cs.threshold = cs.band_top = SL_RANK_ONE / 4;
  // Too few of either: counted on over windows, nothing moves until both
  // have 32.
  const uint32_t keep = cs.keep;
  EXPECT_EQ(thin(31, 100000), 0);
  EXPECT_EQ(cs.keep, keep);
  EXPECT_EQ(thin(1, 0), 1);
  EXPECT_LT(cs.keep, keep);
  // One side empty for 2^30 lookups: start over, the weight as it is.
  const uint32_t kept = cs.keep;
  EXPECT_EQ(thin(0, 1U << 30), 1);
  EXPECT_EQ(cs.keep, kept);
  EXPECT_EQ(cs.thin_n_above, 0u);
  // At most 1/64 however many retries.
  for (int i = 0; i < 20; i++) thin(32, 4000000);
  EXPECT_EQ(sl_keep(&cs), SL_KEEP_MIN);
  // Nothing to compare without a threshold: the counts are dropped.
  cs.threshold = cs.band_top = SL_RANK_ONE;
  EXPECT_EQ(thin(1000, 21000), 0);
  EXPECT_EQ(cs.thin_n_below, 0u);
  EXPECT_EQ(sl_keep(&cs), SL_KEEP_MIN);
}

// sl_key_hash places a source's set (XDP's per-source table) and, salted
// with the profile's seed, its sticky rank. An IPv4 key takes one mix, an
// IPv6 key a chain of three; either way a block of consecutive sources
// (a NAT pool, a spoofing flood's range) must spread as random keys would:
// 65,536 sources of one /16 into 4,096 sets (16 a set on average) leave no
// set empty or above 40, and a quarter of their ranks falls below a
// quarter of the range. Fails for an IPv4 key hashed without its mix
// (the set would be the address's fixed first bytes: one set for all).
TEST(Sticky, ConsecutiveSourcesSpreadOverSetsAndRanks) {
  for (const uint8_t family : {uint8_t{SL_FAMILY_V4}, uint8_t{SL_FAMILY_V6}}) {
    for (const uint64_t salt : {0x0ULL, 0x9e3779b97f4a7c15ULL, 0xffffffffffffffffULL}) {
      std::vector<int> per_set(4096);
      int low_ranks = 0;
      for (uint32_t i = 0; i < 65536; i++) {
        sl_source_key k{};
        k.family = family;
        k.prefix_len = family == SL_FAMILY_V4 ? 32 : 128;
        k.state_index = 3;
        const int at = family == SL_FAMILY_V4 ? 0 : 12;  // IPv6: the address's last 4 bytes
        k.addr_be[at] = 198;
        k.addr_be[at + 1] = 18;
        k.addr_be[at + 2] = static_cast<uint8_t>(i >> 8);
        k.addr_be[at + 3] = static_cast<uint8_t>(i);
        const uint64_t h = sl_key_hash(&k, salt);
        per_set[h & 4095]++;
        low_ranks += sl_rank_in(h, 7) < SL_RANK_ONE / 4;
      }
      const auto [lo, hi] = std::minmax_element(per_set.begin(), per_set.end());
      EXPECT_GE(*lo, 1) << "family " << int{family} << " salt " << salt;
      EXPECT_LE(*hi, 40) << "family " << int{family} << " salt " << salt;
      EXPECT_NEAR(low_ranks, 16384, 600) << "family " << int{family} << " salt " << salt;
    }
  }
}

// sl_source_key_make masks an IPv4 source as one word; the byte loop
// (sl_mask_addr) it replaced is the oracle, at every prefix length and past
// 32, on addresses with every bit pattern at the cut.
TEST(Sticky, AnIPv4SourceKeyIsMaskedAsTheByteLoopMasksIt) {
  std::mt19937 rng(14);
  sl_meta m{};
  m.family = SL_FAMILY_V4;
  sl_class_params cp{};
  cp.state_index = 5;
  for (uint32_t len = 0; len <= 40; len++) {
    cp.src_prefix_v4 = static_cast<uint8_t>(len);
    for (int i = 0; i < 64; i++) {
      const uint32_t a = i == 0 ? 0xffffffffU : static_cast<uint32_t>(rng());
      for (int b = 0; b < 4; b++) m.src_be[b] = static_cast<uint8_t>(a >> (24 - 8 * b));
      sl_source_key k;
      sl_source_key_make(&k, &m, &cp);
      sl_source_key want{};
      std::memcpy(want.addr_be, m.src_be, 4);
      sl_mask_addr(want.addr_be, 4, len);
      want.family = SL_FAMILY_V4;
      want.state_index = 5;
      want.prefix_len = static_cast<uint8_t>(len);
      EXPECT_EQ(std::memcmp(&k, &want, sizeof(k)), 0) << "prefix /" << len << " address " << a;
    }
  }
}

}  // namespace
}  // namespace sluice
