// SPDX-License-Identifier: Apache-2.0
// Sticky shedding is work-conserving: whatever the number of sources in the
// class (4 to 1,000,000) and the demand (2x to 100x its budget), every second
// after the first admits what the limiting budget allows, within
// max(3%, 3 sigma of the arrival noise), epoch turnovers included; with
// 100 sources or more, >= 90% of the sources are still all-or-none within
// each epoch (with 4 or 10, the source at the threshold alone is a quarter or
// a tenth of them). The same holds, second by second, for a boundary
// retuned every second by up to a third (all-or-none aside: the threshold
// moves with it).
//
// Sources of uneven rates (Zipf: the i-th busiest asks 1/i of the busiest)
// are tested for the budget every second; all-or-none is asked of them
// only with 10,000 sources (see UnevenSources below).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "dataplane/model/sticky.h"
#include "dataplane/reference/reference.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::kSecond;

constexpr uint64_t kRate = 5000;  // the limiting budget, lookups/s
constexpr uint64_t kSeconds = 10;
constexpr uint64_t kEpochSec = 4;  // the epoch turns over twice in the run
constexpr std::size_t kIpv6SrcOffset = 14 + 8;

// Sources are IPv6 addresses 2001:2::i, keyed per address, so that a class
// can hold a million of them.
void set_source(std::vector<uint8_t>& f, uint64_t i) {
  for (int b = 0; b < 8; b++) f[kIpv6SrcOffset + 15 - b] = static_cast<uint8_t>(i >> (8 * b));
}

// Which source a new lookup (or request) comes from: uniformly, or with
// `zipf` > 0, source i at a rate proportional to 1 / (i + 1)^zipf. Ranks are
// a hash of the address, so the busy sources fall anywhere in rank.
class SourcePicker {
 public:
  SourcePicker(uint64_t sources, double zipf) : sources_(sources) {
    if (zipf <= 0) return;
    std::vector<double> w(sources);
    for (uint64_t i = 0; i < sources; i++) w[i] = 1 / std::pow(static_cast<double>(i + 1), zipf);
    uneven_ = std::make_unique<std::discrete_distribution<uint64_t>>(w.begin(), w.end());
  }
  uint64_t operator()(std::mt19937_64& rng) { return uneven_ ? (*uneven_)(rng) : rng() % sources_; }

 private:
  uint64_t sources_;
  std::unique_ptr<std::discrete_distribution<uint64_t>> uneven_;
};

double tolerance(double allowed) { return std::max(0.03 * allowed, 3 * std::sqrt(allowed)); }

// A source's lookups (and, closed loop, requests) within one sticky epoch.
struct SourceEpoch {
  uint32_t admitted = 0, offered = 0;  // lookups
  uint32_t served = 0, failed = 0;     // requests (closed loop)
  uint64_t epoch = 0;                  // the sticky epoch
};

// Counts a lookup of a source in `epoch`, after close(e) of what it counted
// in the epoch before.
template <typename Close>
SourceEpoch& count_lookup(SourceEpoch& e, uint64_t epoch, bool ok, Close&& close) {
  if (e.offered > 0 && e.epoch != epoch) close(e);
  e.epoch = epoch;
  e.admitted += ok;
  e.offered++;
  return e;
}

struct Run {
  std::vector<uint64_t> admitted_by_second;
  std::vector<uint64_t> allowed_by_second;  // what the limiting budget allows in that second
  double all_or_none = 1;                   // share of sources all-or-none within each epoch
  uint64_t counted_sources = 0;
};

// The boundary rate of each second when it moves: +-30% around kRate, up
// and down, as a retune or the adaptive agent moves it.
const std::vector<uint64_t> kMovingRates = {5000, 6500, 4000, 6000, 3500,
                                            5500, 7000, 4500, 6500, 5000};

// One class of `sources` sources offering `mult` x its budget, Poisson; when
// `boundary` is set, the class has no budget of its own and shares a boundary
// of kRate with a priority-0 class offering 30% of it (which always wins).
// With `moving`, the boundary is retuned at the start of every second to
// kMovingRates (the class's demand stays mult x kRate). `zipf`: SourcePicker.
Run run(uint64_t sources, double mult, bool boundary, bool moving, double zipf) {
  const uint32_t citizen = boundary ? 1 : 0;
  auto profile = [&](uint64_t rate) {
    std::string toml = "[admission]\nsticky_epoch_sec = " + std::to_string(kEpochSec) + "\n";
    if (boundary) {
      toml += "[boundary]\nlookups_per_sec = " + std::to_string(rate) +
              "\nlookups_burst = " + std::to_string(rate / 10) +
              "\n[[class]]\nname = \"checkpoint\"\npriority = 0\n"
              "match = { src = \"198.18.10.0/24\" }\nshed_order = \"random\"\n";
    }
    toml += "[[class]]\nname = \"citizen\"\npriority = 5\nmatch = { src = \"2001:2::/48\" }\n";
    if (!boundary)
      toml += "rate_per_sec = " + std::to_string(rate) + "\nburst = " + std::to_string(rate / 10) +
              "\n";
    CompiledProfile cp = test::profile_from_toml(toml);
    cp.prof.classes[citizen].src_prefix_v6 = 128;  // a source per address
    return cp;
  };
  ReferenceModel model(profile(moving ? kMovingRates[0] : kRate));

  std::vector<uint8_t> f =
      test::PacketBuilder().ipv6("2001:2::1", "2001:2::ffff").tcp(1234, 443, 0x02).build();
  std::vector<uint8_t> scanner = test::syn_v4(test::kNet198_18 + (10 << 8) + 2);
  std::mt19937_64 rng(sources * 1000 + static_cast<uint64_t>(mult));
  SourcePicker pick(sources, zipf);
  const uint64_t t0 = 120 * kSecond;  // epoch-aligned
  const uint64_t end = t0 + kSeconds * kSecond;

  Run r;
  r.admitted_by_second.assign(kSeconds, 0);
  r.allowed_by_second.assign(kSeconds, kRate);
  std::size_t applied = 0;  // the second whose rate is in force
  auto boundary_tokens = [&] {
    const uint64_t cap = static_cast<uint64_t>(model.profile().prof.boundary_lookups.cap_nt);
    return std::min<uint64_t>(model.boundary_state().lookups.tokens_nt, cap) / SL_TOKEN;
  };
  if (moving) {
    r.allowed_by_second = kMovingRates;
    r.allowed_by_second[0] += boundary_tokens();
  }
  std::vector<SourceEpoch> per_source(sources);
  uint64_t consistent = 0;
  auto close = [&](SourceEpoch& e) {
    if (e.offered >= 2) {  // one lookup is trivially all-or-none
      r.counted_sources++;
      consistent += e.admitted == 0 || e.admitted == e.offered;
    }
    e = SourceEpoch{};
  };
  uint64_t next_citizen = t0 + test::poisson_gap_ns(rng, mult * kRate);
  uint64_t next_scanner = boundary ? t0 + test::poisson_gap_ns(rng, 0.3 * kRate) : end;
  while (true) {
    const uint64_t now = std::min(next_citizen, next_scanner);
    if (now >= end) break;
    const std::size_t second = (now - t0) / kSecond;
    if (moving && second != applied) {
      // What a second allows is its rate plus the tokens the boundary's
      // bucket carried into it less those it carried out (up to a burst,
      // which moves with the rate).
      r.allowed_by_second[applied] -= boundary_tokens();
      model.apply(profile(kMovingRates[second]));
      applied = second;
      r.allowed_by_second[second] += boundary_tokens();
    }
    if (now == next_scanner) {
      next_scanner += test::poisson_gap_ns(rng, 0.3 * kRate);
      if (model.decide(scanner.data(), static_cast<uint32_t>(scanner.size()), now).verdict ==
          SL_VERDICT_ADMITTED)
        r.allowed_by_second[second]--;  // the boundary's share it took first
      continue;
    }
    next_citizen += test::poisson_gap_ns(rng, mult * kRate);
    const uint64_t i = pick(rng);
    set_source(f, i);
    const sl_decision d = model.decide(f.data(), static_cast<uint32_t>(f.size()), now);
    const bool ok = d.verdict == SL_VERDICT_ADMITTED;
    r.admitted_by_second[second] += ok;
    if (second == 0) continue;  // the surge's first window admits everyone
    count_lookup(per_source[i], sl_sticky_epoch(&model.profile().prof, now), ok, close);
  }
  if (moving) r.allowed_by_second[applied] -= boundary_tokens();
  for (SourceEpoch& e : per_source) close(e);
  r.all_or_none = r.counted_sources
                      ? static_cast<double>(consistent) / static_cast<double>(r.counted_sources)
                      : 1;
  return r;
}

void check(uint64_t sources, bool boundary, bool moving = false, double zipf = 0) {
  for (double mult : {2.0, 3.0, 10.0, 100.0}) {
    SCOPED_TRACE(std::to_string(sources) + " sources at " + std::to_string(mult) + "x, zipf " +
                 std::to_string(zipf));
    Run r = run(sources, mult, boundary, moving, zipf);
    std::string line;
    double worst = 0, worst_tolerance = 0;
    for (std::size_t s = 1; s < kSeconds; s++) {
      const double allowed = static_cast<double>(r.allowed_by_second[s]);
      const double got = static_cast<double>(r.admitted_by_second[s]);
      if (std::fabs(got - allowed) / allowed >= worst) {
        worst = std::fabs(got - allowed) / allowed;
        worst_tolerance = tolerance(allowed) / allowed;
      }
      line += " " + std::to_string(r.admitted_by_second[s]);
      EXPECT_NEAR(got, allowed, tolerance(allowed)) << "second " << s;
    }
    std::printf(
        "%s%s %7llu sources %5.0fx: worst second %.2f%% off (tolerance %.2f%%), all-or-none "
        "%.3f of %llu; admitted/s:%s\n",
        moving     ? "moving  "
        : boundary ? "boundary"
                   : "class   ",
        zipf > 0 ? " uneven" : "", static_cast<unsigned long long>(sources), mult, 100 * worst,
        100 * worst_tolerance, r.all_or_none, static_cast<unsigned long long>(r.counted_sources),
        line.c_str());
    // A boundary that moves by a third every second moves the threshold
    // with it: sources flip by design, so all-or-none is not asked there.
    if (sources >= (zipf > 0 ? 10000 : 100) && !moving) EXPECT_GE(r.all_or_none, 0.90);
  }
}

class StickyFill : public ::testing::TestWithParam<uint64_t> {};

TEST_P(StickyFill, ClassBudgetUsedEverySecond) { check(GetParam(), false); }
TEST_P(StickyFill, BoundaryLeftByAHigherPriorityUsedEverySecond) { check(GetParam(), true); }
// The boundary retuned every second (+-30%, as the adaptive agent moves it):
// each second admits what that second's boundary leaves, moved up or down.
TEST_P(StickyFill, BoundaryThatMovesEverySecondUsedEverySecond) { check(GetParam(), true, true); }
// Sources of uneven rates (Zipf 1: with 100 sources the busiest is 19% of
// the demand) behind a higher priority: each second admits what the boundary
// leaves. With 100 sources a few busy ones weigh the ranks unevenly, as
// retries do, and lower the weight of the lookups shed (sticky_settle.h,
// sl_sticky_thin): all-or-none falls to 0.76-0.95 there (0.96-0.99 with the
// weight held at 1), so it is asked with 10,000 sources only.
TEST_P(StickyFill, UnevenSourcesUseTheBoundaryEverySecond) { check(GetParam(), true, false, 1.0); }

// Closed loop, as the surge's clients: each source makes requests (Poisson,
// `mult` x the boundary's rate in all); a request's lookup that is shed is
// retried after kRetryNs (a round trip), up to kRetries times, then the
// request is given up. The class is alone on a boundary of `rate` (burst
// rate/10). The shed sources' retries multiply their lookups up to
// kRetries + 1 times; counted as demand in full, they placed the threshold
// far too low, and most of the budget went to whichever retry came when the
// bucket was full (sticky_settle.h, sl_sticky_thin). From kSettleSeconds on (the
// threshold settles on a surge that starts):
//  - every second admits what the boundary allows;
//  - >= 85% of the requests served go to sources served all epoch (>= 90%
//    of their requests; the band's and its overflow's sources take what is
//    left over, and with 100 sources each is 1% of them); >= 65% with an
//    epoch of 4 s, where the threshold settles again on new ranks at each
//    turn (before lookups not admitted were weighed: 16-77%, and 40-68% in
//    one epoch);
//  - with 10,000 sources, >= 90% of them are all-or-none lookup by lookup.
constexpr uint64_t kRetryNs = 500000;  // 0.5 ms
constexpr uint32_t kRetries = 20;
constexpr uint64_t kClosedSeconds = 10;
constexpr uint64_t kSettleSeconds = 3;

struct ClosedRun {
  std::vector<uint64_t> admitted_by_second;
  std::vector<int64_t> allowed_by_second;  // the rate, and what the bucket carried in less out
  uint64_t lookups = 0;                    // retries included
  double all_or_none = 1;   // share of the sources all-or-none within each epoch, by lookup
  double sticky_share = 1;  // share of the requests served that went to sources served all epoch
};

ClosedRun run_closed(uint64_t sources, uint64_t rate, double mult, uint64_t epoch_sec,
                     double zipf) {
  std::string toml = "[admission]\nsticky_epoch_sec = " + std::to_string(epoch_sec) +
                     "\n[boundary]\nlookups_per_sec = " + std::to_string(rate) +
                     "\nlookups_burst = " + std::to_string(rate / 10) +
                     "\n[[class]]\nname = \"citizen\"\npriority = 5\n"
                     "match = { src = \"2001:2::/48\" }\n";
  CompiledProfile cp = test::profile_from_toml(toml);
  cp.prof.classes[0].src_prefix_v6 = 128;
  ReferenceModel model(std::move(cp));

  std::vector<uint8_t> f =
      test::PacketBuilder().ipv6("2001:2::1", "2001:2::ffff").tcp(1234, 443, 0x02).build();
  std::mt19937_64 rng(sources * 7919 + rate + epoch_sec);
  SourcePicker pick(sources, zipf);
  const uint64_t t0 = 120 * kSecond;  // an epoch's start for 4 s; mid-epoch for longer ones
  const uint64_t end = t0 + kClosedSeconds * kSecond;
  const double natural = mult * static_cast<double>(rate);

  struct Retry {
    uint64_t at;
    uint64_t source;
    uint32_t attempt;
    bool operator>(const Retry& o) const { return at > o.at; }
  };
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retries;
  std::vector<SourceEpoch> per_source(sources);
  ClosedRun r;
  r.admitted_by_second.assign(kClosedSeconds, 0);
  r.allowed_by_second.assign(kClosedSeconds, static_cast<int64_t>(rate));
  auto tokens = [&] {
    return static_cast<int64_t>(model.boundary_state().lookups.tokens_nt / SL_TOKEN);
  };
  std::size_t last_second = 0;
  uint64_t counted = 0, consistent = 0, served = 0, served_sticky = 0;
  auto close = [&](SourceEpoch& e) {
    if (e.offered >= 2) {
      counted++;
      consistent += e.admitted == 0 || e.admitted == e.offered;
    }
    served += e.served;
    if (e.served >= 9 * e.failed) served_sticky += e.served;
    e = SourceEpoch{};
  };
  uint64_t next_request = t0 + test::poisson_gap_ns(rng, natural);
  while (true) {
    uint64_t now, i;
    uint32_t attempt = 0;
    if (!retries.empty() && retries.top().at < next_request) {
      now = retries.top().at;
      i = retries.top().source;
      attempt = retries.top().attempt;
      retries.pop();
    } else {
      now = next_request;
      next_request += test::poisson_gap_ns(rng, natural);
      i = pick(rng);
    }
    if (now >= end) break;
    const std::size_t second = (now - t0) / kSecond;
    if (second != last_second) {
      // The tokens a second leaves in the bucket are the next one's.
      r.allowed_by_second[last_second] -= tokens();
      r.allowed_by_second[second] += tokens();
      last_second = second;
    }
    set_source(f, i);
    const bool ok =
        model.decide(f.data(), static_cast<uint32_t>(f.size()), now).verdict == SL_VERDICT_ADMITTED;
    r.lookups++;
    r.admitted_by_second[second] += ok;
    if (!ok && attempt < kRetries) retries.push(Retry{now + kRetryNs, i, attempt + 1});
    if (second < kSettleSeconds) continue;
    SourceEpoch& e =
        count_lookup(per_source[i], sl_sticky_epoch(&model.profile().prof, now), ok, close);
    e.served += ok;
    e.failed += !ok && attempt == kRetries;
  }
  for (SourceEpoch& e : per_source) close(e);
  r.all_or_none = counted ? static_cast<double>(consistent) / static_cast<double>(counted) : 1;
  r.sticky_share = served ? static_cast<double>(served_sticky) / static_cast<double>(served) : 1;
  return r;
}

void check_closed(uint64_t sources, uint64_t rate, uint64_t epoch_sec, double zipf = 0) {
  for (double mult : {3.0, 10.0}) {
    SCOPED_TRACE(std::to_string(sources) + " sources at " + std::to_string(mult) + "x of " +
                 std::to_string(rate) + "/s, epoch " + std::to_string(epoch_sec) + " s, zipf " +
                 std::to_string(zipf));
    const ClosedRun r = run_closed(sources, rate, mult, epoch_sec, zipf);
    std::string line;
    double worst = 0;
    for (std::size_t s = kSettleSeconds; s + 1 < kClosedSeconds; s++) {
      const double got = static_cast<double>(r.admitted_by_second[s]);
      const double allowed = static_cast<double>(r.allowed_by_second[s]);
      line += " " + std::to_string(r.admitted_by_second[s]);
      worst = std::max(worst, std::fabs(got - allowed) / allowed);
      EXPECT_NEAR(got, allowed, tolerance(allowed)) << "second " << s;
    }
    const double allowed = static_cast<double>(rate);
    std::printf(
        "closed%s %6llu sources %3.0fx of %4llu/s, epoch %4llu s: worst second %.2f%% off "
        "(tolerance %.2f%%), sticky share %.3f, all-or-none %.3f, %.0f lookups/s; "
        "admitted/s:%s\n",
        zipf > 0 ? " uneven" : "", static_cast<unsigned long long>(sources), mult,
        static_cast<unsigned long long>(rate), static_cast<unsigned long long>(epoch_sec),
        100 * worst, 100 * tolerance(allowed) / allowed, r.sticky_share, r.all_or_none,
        static_cast<double>(r.lookups) / kClosedSeconds, line.c_str());
    if (zipf > 0 && (sources < 10000 || epoch_sec <= kClosedSeconds)) continue;
    EXPECT_GE(r.sticky_share, epoch_sec > kClosedSeconds ? 0.85 : 0.65);
    if (sources >= 10000) EXPECT_GE(r.all_or_none, 0.90);
  }
}

INSTANTIATE_TEST_SUITE_P(Sources, StickyFill, ::testing::Values(4, 10, 100, 10000, 1000000),
                         [](const ::testing::TestParamInfo<uint64_t>& i) {
                           return std::to_string(i.param);
                         });

class StickyRetries : public ::testing::TestWithParam<uint64_t> {};

TEST_P(StickyRetries, ServeTheSameSourcesUnderImmediateRetries) {
  for (uint64_t rate : {500, 5000})
    for (uint64_t epoch_sec : {3600, 4}) check_closed(GetParam(), rate, epoch_sec);
}

// Sources of uneven rates (Zipf 1) that retry: every second admits what the
// boundary allows. With 10,000 sources and one epoch, >= 85% of the requests
// served go to sources served all epoch and >= 90% of the sources are
// all-or-none; with 100 sources, or 4-s epochs, busy sources weigh the ranks
// unevenly and the weight of a lookup shed errs (UnevenSources above): the
// share is 0.61-0.98 and is only printed.
TEST_P(StickyRetries, UnevenSourcesUseTheBoundaryEverySecond) {
  for (uint64_t rate : {500, 5000})
    for (uint64_t epoch_sec : {3600, 4}) check_closed(GetParam(), rate, epoch_sec, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Sources, StickyRetries, ::testing::Values(100, 10000),
                         [](const ::testing::TestParamInfo<uint64_t>& i) {
                           return std::to_string(i.param);
                         });

}  // namespace
}  // namespace sluice
