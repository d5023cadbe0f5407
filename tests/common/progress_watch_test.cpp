// SPDX-License-Identifier: Apache-2.0
// ProgressWatch: a counter that stops moving for longer than the limit is
// stalled; one that moves again is not; a changed set of counters starts over.
#include "dataplane/common/progress_watch.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;
using Clock = ProgressWatch::Clock;

TEST(ProgressWatch, StalledOnlyAfterTheLimitWithoutMoving) {
  ProgressWatch watch(milliseconds(2000));
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(watch.stalled({10, 20}, t0).empty());  // first sight: just moved
  EXPECT_TRUE(watch.stalled({11, 21}, t0 + milliseconds(1500)).empty());
  // Worker 1 stops at 21; worker 0 keeps going.
  EXPECT_TRUE(watch.stalled({12, 21}, t0 + milliseconds(3000)).empty());  // 1.5 s still
  EXPECT_EQ(watch.stalled({13, 21}, t0 + milliseconds(3600)), std::vector<std::size_t>{1});
  EXPECT_EQ(watch.still_for(1, t0 + milliseconds(3600)), milliseconds(2100));
  // Exactly at the limit is not yet stalled.
  EXPECT_TRUE(watch.stalled({14, 22}, t0 + milliseconds(4000)).empty());  // moved again
  EXPECT_TRUE(watch.stalled({14, 22}, t0 + milliseconds(6000)).empty());  // 2.0 s: not over
  EXPECT_EQ(watch.stalled({14, 22}, t0 + milliseconds(6001)), (std::vector<std::size_t>{0, 1}));
}

TEST(ProgressWatch, ANewSetOfCountersStartsOver) {
  ProgressWatch watch(milliseconds(100));
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(watch.stalled({5}, t0).empty());
  EXPECT_EQ(watch.stalled({5}, t0 + milliseconds(500)), std::vector<std::size_t>{0});
  // Restarted with two workers: neither is stalled at first sight.
  EXPECT_TRUE(watch.stalled({5, 0}, t0 + milliseconds(600)).empty());
  EXPECT_EQ(watch.stalled({5, 1}, t0 + milliseconds(800)), std::vector<std::size_t>{0});
}

}  // namespace
}  // namespace sluice
