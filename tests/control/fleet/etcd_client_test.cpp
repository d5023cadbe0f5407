// SPDX-License-Identifier: Apache-2.0
// The etcd client against a real etcd: keys and prefixes, compare-and-swap,
// leases that expire, a watch, and failing over to the next endpoint.
#include "control/fleet/etcd_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/control/fleet/etcd_fixture.hpp"

namespace sluice {
namespace {

using testing::EtcdProcess;
constexpr auto kTimeout = std::chrono::milliseconds(2000);

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; i++) {
    std::string back;
    ASSERT_TRUE(base64_decode(base64_encode(bytes), &back)) << i;
    EXPECT_EQ(back, bytes) << i;
    bytes.push_back(static_cast<char>(i * 7));
  }
  std::string out;
  EXPECT_FALSE(base64_decode("abc", &out));   // not a multiple of 4
  EXPECT_FALSE(base64_decode("ab$=", &out));  // not the alphabet
}

TEST(EtcdClient, PutsRangesAndSwaps) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24710);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, kTimeout);
  std::string error;
  int64_t rev = 0;
  ASSERT_TRUE(c.put("/t/a", "one", 0, &rev, &error)) << error;
  ASSERT_TRUE(c.put("/t/b", std::string("\0\xff", 2), 0, nullptr, &error)) << error;
  ASSERT_TRUE(c.put("/u", "other", 0, nullptr, &error)) << error;
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/t/", true, &kvs, nullptr, &error)) << error;
  ASSERT_EQ(kvs.size(), 2U);
  EXPECT_EQ(kvs[0].key, "/t/a");
  EXPECT_EQ(kvs[0].value, "one");
  EXPECT_EQ(kvs[0].mod_revision, rev);
  EXPECT_EQ(kvs[1].value, std::string("\0\xff", 2));

  bool swapped = true;
  ASSERT_TRUE(c.put_if("/t/a", "two", rev + 100, &swapped, nullptr, &error)) << error;
  EXPECT_FALSE(swapped);  // not the revision it has
  ASSERT_TRUE(c.put_if("/t/a", "two", rev, &swapped, nullptr, &error)) << error;
  EXPECT_TRUE(swapped);
  ASSERT_TRUE(c.put_if("/t/new", "x", 0, &swapped, nullptr, &error)) << error;
  EXPECT_TRUE(swapped);  // created
  ASSERT_TRUE(c.put_if("/t/new", "y", 0, &swapped, nullptr, &error)) << error;
  EXPECT_FALSE(swapped);  // exists already
  ASSERT_TRUE(c.range("/t/a", false, &kvs, nullptr, &error));
  EXPECT_EQ(kvs.at(0).value, "two");
  ASSERT_TRUE(c.remove("/t/", true, &error)) << error;
  ASSERT_TRUE(c.range("/t/", true, &kvs, nullptr, &error));
  EXPECT_TRUE(kvs.empty());
}

TEST(EtcdClient, AKeyUnderALeaseGoesWhenTheLeaseExpires) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24720);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, kTimeout);
  std::string error;
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(1, &lease, &error)) << error;
  ASSERT_TRUE(c.put("/edge", "x", lease, nullptr, &error)) << error;
  int64_t ttl = 0;
  ASSERT_TRUE(c.lease_keepalive(lease, &ttl, &error)) << error;
  EXPECT_GE(ttl, 1);
  std::vector<EtcdKv> kvs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    ASSERT_TRUE(c.range("/edge", false, &kvs, nullptr, &error));
    if (kvs.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(kvs.empty()) << "the key outlived its lease";
  ASSERT_TRUE(c.lease_keepalive(lease, &ttl, &error)) << error;
  EXPECT_EQ(ttl, 0) << "an expired lease reads as TTL 0";
}

TEST(EtcdClient, APutOnALeaseWritesOnlyAKeyThatLeaseHolds) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24725);
  ASSERT_TRUE(etcd.ready());
  EtcdClient c({etcd.url()}, kTimeout);
  std::string error;
  int64_t mine = 0, theirs = 0;
  ASSERT_TRUE(c.lease_grant(30, &mine, &error)) << error;
  ASSERT_TRUE(c.lease_grant(30, &theirs, &error)) << error;
  bool swapped = true;
  ASSERT_TRUE(c.put_on_lease("/edge", "a", mine, &swapped, &error)) << error;
  EXPECT_FALSE(swapped) << "no key yet: nothing to hold";
  ASSERT_TRUE(c.put_if("/edge", "a", 0, &swapped, nullptr, &error, mine)) << error;
  EXPECT_TRUE(swapped);
  ASSERT_TRUE(c.put_on_lease("/edge", "b", mine, &swapped, &error)) << error;
  EXPECT_TRUE(swapped);
  ASSERT_TRUE(c.put_on_lease("/edge", "c", theirs, &swapped, &error)) << error;
  EXPECT_FALSE(swapped) << "another lease holds the key";
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/edge", false, &kvs, nullptr, &error));
  ASSERT_EQ(kvs.size(), 1U);
  EXPECT_EQ(kvs[0].value, "b");
  EXPECT_EQ(kvs[0].lease, mine);
}

TEST(EtcdClient, AWatchSeesEveryChangeOfItsKey) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24730);
  ASSERT_TRUE(etcd.ready());
  EtcdClient watcher({etcd.url()}, std::chrono::seconds(10));
  std::atomic<int> seen{0};
  std::atomic<int64_t> last{0};
  std::thread t([&] {
    std::string error;
    watcher.watch(
        "/cfg",
        [&](int64_t rev) {
          last = rev;
          return ++seen < 3;
        },
        &error);
  });
  EtcdClient c({etcd.url()}, kTimeout);
  std::string error;
  int64_t rev = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // Writes until the watch has seen three (it may start after the first).
  while (seen < 3 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(c.put("/cfg", "v", 0, &rev, &error)) << error;
    ASSERT_TRUE(c.put("/other", "v", 0, nullptr, &error)) << error;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  t.join();
  EXPECT_EQ(seen, 3);
  EXPECT_GT(last, 0);
  EXPECT_LE(last, rev);
}

TEST(EtcdClient, StopEndsAnIdleWatch) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24740);
  ASSERT_TRUE(etcd.ready());
  EtcdClient watcher({etcd.url()}, std::chrono::seconds(30));
  std::atomic<bool> done{false};
  std::thread t([&] {
    std::string error;
    watcher.watch(
        "/quiet", [](int64_t) { return true; }, &error);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done);
  const auto start = std::chrono::steady_clock::now();
  watcher.stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(EtcdClient, FailsOverToTheNextEndpointAndSaysWhyWhenNoneAnswers) {
  SLUICE_REQUIRE_ETCD();
  EtcdProcess etcd(24750);
  ASSERT_TRUE(etcd.ready());
  // Port 24759: nothing listens there.
  EtcdClient c({"http://127.0.0.1:24759", etcd.url()}, kTimeout);
  std::string error;
  ASSERT_TRUE(c.put("/k", "v", 0, nullptr, &error)) << error;
  EXPECT_EQ(c.endpoint(), etcd.url());
  EtcdClient none({"http://127.0.0.1:24759"}, std::chrono::milliseconds(200));
  std::vector<EtcdKv> kvs;
  EXPECT_FALSE(none.range("/k", false, &kvs, nullptr, &error));
  EXPECT_NE(error.find("http://127.0.0.1:24759"), std::string::npos) << error;
}

}  // namespace
}  // namespace sluice
