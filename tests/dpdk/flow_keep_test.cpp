// SPDX-License-Identifier: Apache-2.0
// What a DPDK stop keeps of its flow table for the next start
// (dataplane/dpdk/flow_keep.hpp): the live flows come back with their lives
// counted on across the gap, on the next run's clock; a file of another
// boot, or a damaged one, is refused whole. No EAL: the table needs none.
#include "dataplane/dpdk/flow_keep.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dataplane/model/flow.h"

namespace sluice::dpdk {
namespace {

constexpr uint64_t kMs = 1'000'000ULL;
constexpr uint64_t kStopNow = 5'000'000 * kMs;  // the first run's clock at its stop
constexpr uint64_t kStartNow = 9 * kMs;         // the next run's, at its start (another base)

sl_flow_key key_of(uint32_t k) {
  sl_flow_key key{};
  key.family = SL_FAMILY_V4;
  key.kind = SL_FLOW_KIND_TCP;
  key.proto = SL_IPPROTO_TCP;
  key.outer_be[0] = 198;
  key.outer_be[1] = 18;
  std::memcpy(&key.outer_be[12], &k, sizeof(k));
  key.inner_be[0] = 198;
  key.inner_be[1] = 19;
  key.outer_port = static_cast<uint16_t>(40000 + k % 1000);
  key.inner_port = 443;
  return key;
}

// An open flow with a minute left at the stop.
sl_flow open_flow() {
  sl_flow f{};
  f.state = SL_FLOW_OPEN;
  f.expires_ns = kStopNow + 60'000 * kMs;
  return f;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

const sl_flow* find(FlowShards& t, uint32_t worker, uint32_t p, uint32_t k, uint64_t now) {
  FlowEvents events{};
  FlowShards::Guard g = t.of(worker).holder(key_of(k));
  return g.find(1U << p, key_of(k), now, events);
}

struct KeepFile : ::testing::Test {
  std::string path =
      (std::filesystem::temp_directory_path() / ("sluice-flow-keep-" + std::to_string(::getpid())))
          .string();
  void TearDown() override { std::filesystem::remove(path); }

  std::vector<char> bytes() const {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void write(const std::vector<char>& b) const {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(b.data(), std::streamsize(b.size()));
  }
};

// 300 flows over two workers' shards and every partition, lives of 1 s to
// 300 s left at the stop, each state and backend phase; 20 whose lives
// ended before it (not kept) and one with 1 ns left (ends in the gap).
TEST_F(KeepFile, AStopsFlowsComeBackWithTheirLivesCountedOn) {
  FlowShards before(8192, 2);
  for (uint32_t k = 0; k < 321; k++) {
    sl_flow f{};
    f.state = static_cast<uint8_t>(SL_FLOW_SYN + k % 6);
    f.rt_phase = k % 7;
    f.meter = 0x3005;
    f.rt_req_us = 1000 + k;
    f.expires_ns = k < 300   ? kStopNow + (k + 1) * kMs * 1000
                   : k < 320 ? kStopNow - k  // over before the stop
                             : kStopNow + 1;
    before.put_stopped(k % 2, k % SL_PRIORITIES, key_of(k), f, kStopNow);
  }
  const uint64_t kept_at = monotonic_ns();
  uint64_t kept = 0;
  std::string error;
  ASSERT_TRUE(keep_flows(before, kStopNow, path, &kept, &error)) << error;
  EXPECT_EQ(kept, 301U);

  FlowShards after(8192, 2);
  TakenFlows taken;
  ASSERT_TRUE(take_kept_flows(path, after, kStartNow, &taken, &error)) << error;
  const uint64_t gap_max = monotonic_ns() - kept_at;
  EXPECT_EQ(taken.taken, 300U);
  EXPECT_EQ(taken.ended, 1U);
  EXPECT_FALSE(std::filesystem::exists(path)) << "a kept table is taken once";
  for (uint32_t k = 0; k < 321; k++) {
    const uint32_t p = k % SL_PRIORITIES;
    const sl_flow* f = find(after, k % 2, p, k, kStartNow);
    if (k >= 300) {
      EXPECT_EQ(f, nullptr) << "flow " << k << " ended before the start";
      continue;
    }
    ASSERT_NE(f, nullptr) << "flow " << k;
    const uint64_t left = (k + 1) * kMs * 1000;
    EXPECT_LE(f->expires_ns, kStartNow + left) << "flow " << k;
    EXPECT_GE(f->expires_ns, kStartNow + left - gap_max) << "flow " << k;
    EXPECT_EQ(f->state, SL_FLOW_SYN + k % 6);
    EXPECT_EQ(f->meter, 0) << "a meter window of the other run's clock";
    // A sample in flight spans the gap: not taken; other phases kept.
    EXPECT_EQ(f->rt_phase, k % 7 == SL_RT_WAITING ? SL_RT_DONE : k % 7) << "flow " << k;
    EXPECT_EQ(f->rt_req_us, 1000 + k);
  }
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    EXPECT_EQ(after.size(p), 300U / SL_PRIORITIES + (p < 300 % SL_PRIORITIES));

  // Nothing kept: nothing to take.
  FlowShards empty(8192, 1);
  ASSERT_TRUE(take_kept_flows(path, empty, kStartNow, &taken, &error)) << error;
  EXPECT_FALSE(taken.found);
  EXPECT_EQ(taken.taken + taken.ended, 0U);
}

// Fewer workers at the next start: every flow is still found (a worker
// looks in the other shards after its own).
TEST_F(KeepFile, FlowsKeptByTwoWorkersAreFoundByOne) {
  FlowShards before(4096, 2);
  for (uint32_t k = 0; k < 100; k++) before.put_stopped(k % 2, 0, key_of(k), open_flow(), kStopNow);
  uint64_t kept = 0;
  std::string error;
  ASSERT_TRUE(keep_flows(before, kStopNow, path, &kept, &error)) << error;
  FlowShards after(4096, 1);
  TakenFlows taken;
  ASSERT_TRUE(take_kept_flows(path, after, kStartNow, &taken, &error)) << error;
  EXPECT_EQ(taken.taken, 100U);
  for (uint32_t k = 0; k < 100; k++) EXPECT_NE(find(after, 0, 0, k, kStartNow), nullptr) << k;
}

// A file that is not whole, of another boot, or damaged: refused with why,
// nothing taken, and removed (it could never be taken); a directory in its
// place is refused too.
TEST_F(KeepFile, AFileOfAnotherBootOrDamagedIsRefusedWhole) {
  FlowShards before(4096, 1);
  for (uint32_t k = 0; k < 10; k++)
    before.put_stopped(0, k % SL_PRIORITIES, key_of(k), open_flow(), kStopNow);
  uint64_t kept = 0;
  std::string error;
  ASSERT_TRUE(keep_flows(before, kStopNow, path, &kept, &error)) << error;
  const std::vector<char> good = bytes();
  ASSERT_EQ(good.size(), 80U + 10 * 72U);

  struct Case {
    const char* what;
    std::vector<char> file;
    const char* error;
  };
  std::vector<Case> cases;
  cases.push_back(
      {"cut short", std::vector<char>(good.begin(), good.end() - 1), "truncated or damaged"});
  cases.push_back({"one record more", good, "truncated or damaged"});
  cases.back().file.insert(cases.back().file.end(), good.end() - 72, good.end());
  cases.push_back(
      {"no header", std::vector<char>(good.begin(), good.begin() + 40), "not a flow table"});
  cases.push_back({"another format", good, "not a flow table"});
  cases.back().file[0] = 'X';
  cases.push_back({"another version", good, "another version"});
  cases.back().file[8] = 2;
  cases.push_back({"another boot", good, "kept before the host last booted"});
  cases.back().file[16] = cases.back().file[16] == 'f' ? 'e' : 'f';  // boot_id's first hex digit
  cases.push_back({"a partition past the last", good, "damaged (a flow of partition 9)"});
  cases.back().file[80 + 5 * 72 + 4] = 9;  // the sixth record's partition
  for (const Case& c : cases) {
    write(c.file);
    FlowShards after(4096, 1);
    TakenFlows taken;
    EXPECT_FALSE(take_kept_flows(path, after, kStartNow, &taken, &error)) << c.what;
    EXPECT_NE(error.find(c.error), std::string::npos) << c.what << ": " << error;
    EXPECT_NE(error.find(path), std::string::npos) << c.what << ": " << error;
    EXPECT_EQ(taken.taken, 0U) << c.what;
    for (uint32_t p = 0; p < SL_PRIORITIES; p++) EXPECT_EQ(after.size(p), 0U) << c.what;
    EXPECT_FALSE(std::filesystem::exists(path)) << c.what;
  }
  // A directory where the file would be (a live check's start aborted on
  // it): refused, and left for the operator.
  std::filesystem::create_directory(path);
  {
    FlowShards after(4096, 1);
    TakenFlows taken;
    EXPECT_FALSE(take_kept_flows(path, after, kStartNow, &taken, &error));
    EXPECT_NE(error.find("not a file"), std::string::npos) << error;
    EXPECT_EQ(taken.taken, 0U);
  }
  std::filesystem::remove(path);
  // The good file, for contrast: all of it.
  write(good);
  FlowShards after(4096, 1);
  TakenFlows taken;
  ASSERT_TRUE(take_kept_flows(path, after, kStartNow, &taken, &error)) << error;
  EXPECT_EQ(taken.taken, 10U);
}

}  // namespace
}  // namespace sluice::dpdk
