// SPDX-License-Identifier: Apache-2.0
// The slot book (dataplane/common/slot_book.*): a class's slot in the
// profile in force, by name, for sluicectl capture --class. A removed class
// keeps its name on its slot until the slot is given again, and a class
// added back once every slot was used gets another, lower one: looked up in
// the book's names alone, the capture filtered on the old, idle slot.
#include "dataplane/common/slot_book.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/profile_from_toml.hpp"

namespace sluice::test {
namespace {

std::string classes(int first, int count) {
  std::string toml;
  for (int c = first; c < first + count; c++)
    toml += "[[class]]\nname = \"c" + std::to_string(c) + "\"\nmatch = { dst_ports = [" +
            std::to_string(1000 + c) + "] }\n";
  return toml;
}

struct Book {
  SlotBook book;
  sl_profile live{};
  uint64_t generation = 0;
  void apply(const std::string& toml) {
    const CompiledProfile p = profile_from_toml(toml);
    SlotAssignment a;
    std::string error;
    ASSERT_TRUE(book.assign(p, live, ++generation, &a, &error)) << error;
    book.give(p, a, sl_counters{});
    live = a.prof;
  }
  int slot_in_profile(const std::string& name, const std::string& toml) const {
    const CompiledProfile p = profile_from_toml(toml);
    for (uint32_t c = 0; c < live.n_classes; c++)
      if (p.class_names[c] == name) return live.classes[c].state_index;
    return -1;
  }
};

TEST(SlotBook, AClassIsFoundOnItsSlotInTheProfileInForce) {
  Book b;
  // Every slot used once (the default class takes the last): c<i> on slot i.
  ASSERT_NO_FATAL_FAILURE(b.apply(classes(0, SL_MAX_CLASSES - 1)));
  EXPECT_EQ(b.book.slot_of(b.live, "c20"), 20);
  // c0, then c20 removed: neither is enforced, though their names stay on
  // their slots (0 and 20).
  ASSERT_NO_FATAL_FAILURE(b.apply(classes(1, SL_MAX_CLASSES - 2)));
  const std::string without = classes(1, 19) + classes(21, SL_MAX_CLASSES - 22);
  ASSERT_NO_FATAL_FAILURE(b.apply(without));
  EXPECT_EQ(b.book.slot_of(b.live, "c20"), -1);
  EXPECT_EQ(b.book.slot_of(b.live, "c0"), -1);
  EXPECT_EQ(b.book.names[20], "c20");
  // c20 added back: no slot was never used, so it takes the lowest no live
  // class uses, c0's. Its old slot still bears its name.
  const std::string back = without + classes(20, 1);
  ASSERT_NO_FATAL_FAILURE(b.apply(back));
  ASSERT_EQ(b.slot_in_profile("c20", back), 0);
  EXPECT_EQ(b.book.names[20], "c20");
  EXPECT_EQ(b.book.slot_of(b.live, "c20"), 0);
}

// DPDK's XDP standby counts only the frames it decided itself: added to
// DPDK's counts class by class (by name, whatever the order), so an edge
// whose standby took over still shows its decisions.
TEST(SlotBook, AStandbysDecisionsAddToTheClassesOfTheSameName) {
  std::vector<ClassStats> dpdk(2), standby(3);
  dpdk[0].name = "checkpoint";
  dpdk[1].name = "default";
  standby[0].name = "default";
  standby[1].name = "checkpoint";
  standby[2].name = "gone";
  dpdk[0].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 10;
  standby[1].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 5;
  standby[1].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE] = 3;
  standby[0].packets[SL_VERDICT_SHED][SL_REASON_UNVERIFIED] = 7;
  standby[2].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 100;
  dpdk[0].bucket_tokens = 4;
  standby[1].bucket_tokens = 9;
  add_class_counts(&dpdk, standby);
  EXPECT_EQ(dpdk[0].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 15u);
  EXPECT_EQ(dpdk[0].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE], 3u);
  EXPECT_EQ(dpdk[1].packets[SL_VERDICT_SHED][SL_REASON_UNVERIFIED], 7u);
  EXPECT_EQ(dpdk[1].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 0u);
  EXPECT_EQ(dpdk[0].bucket_tokens, 4u);  // DPDK's buckets, not a sum
  EXPECT_EQ(dpdk.size(), 2u);
  // Less what it had counted before this sluiced started (its pinned
  // counters outlive a restart; DPDK's start at 0), never below 0.
  std::vector<ClassStats> base(1), now = standby;
  base[0].name = "checkpoint";
  base[0].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 4;
  base[0].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE] = 9;
  subtract_class_counts(&now, base);
  EXPECT_EQ(now[1].packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP], 1u);
  EXPECT_EQ(now[1].lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE], 0u);
  EXPECT_EQ(now[0].packets[SL_VERDICT_SHED][SL_REASON_UNVERIFIED], 7u);
}

}  // namespace
}  // namespace sluice::test
