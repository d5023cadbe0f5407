// SPDX-License-Identifier: Apache-2.0
// The etcd client against a real etcd: keys and prefixes, compare-and-swap,
// leases that expire, a watch, and failing over to the next endpoint.
#include "control/fleet/etcd_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/control/api/control_test_env.hpp"
#include "tests/control/fleet/etcd_fixture.hpp"

namespace sluice {
namespace {

using testing::EtcdProcess;
using testing::EtcdTls;
using testing::make_pki;
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

// https: etcd's certificate is verified against the CA given (or refused
// when it does not chain to it), and an etcd that asks for client
// certificates takes the client's and refuses a client without one.
TEST(EtcdClient, SpeaksTlsVerifiesTheServerAndShowsItsClientCertificate) {
  SLUICE_REQUIRE_ETCD();
  SLUICE_REQUIRE_OPENSSL();
  test::TempDir pki;
  ASSERT_TRUE(make_pki(pki.path()));
  const std::filesystem::path d = pki.path();
  const EtcdAccessConfig access = testing::client_access(d);
  const EtcdTls tls = testing::server_tls(d);
  EtcdProcess etcd(24712, &tls, access);
  ASSERT_TRUE(etcd.ready()) << "see " << etcd.dir() / "etcd.log";
  ASSERT_EQ(etcd.url().rfind("https://", 0), 0U);

  EtcdClient c({etcd.url()}, kTimeout, access);
  std::string error;
  ASSERT_TRUE(c.put("/tls/a", "one", 0, nullptr, &error)) << error;
  std::vector<EtcdKv> kvs;
  ASSERT_TRUE(c.range("/tls/", true, &kvs, nullptr, &error)) << error;
  ASSERT_EQ(kvs.size(), 1U);
  EXPECT_EQ(kvs[0].value, "one");
  int64_t lease = 0;
  ASSERT_TRUE(c.lease_grant(5, &lease, &error)) << error;
  // A watch streams over TLS too.
  std::atomic<int64_t> seen{0};
  std::thread t([&] {
    EtcdClient w({etcd.url()}, std::chrono::milliseconds(3000), access);
    std::string e;
    w.watch(
        "/tls/a",
        [&](int64_t rev) {
          seen = rev;
          return false;
        },
        &e);
  });
  int64_t rev = 0;
  for (int i = 0; i < 100 && seen == 0; i++) {  // until the watch saw one of them
    ASSERT_TRUE(c.put("/tls/a", "again", 0, &rev, &error)) << error;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  t.join();
  EXPECT_GT(seen.load(), 0);

  // A client certificate from an intermediate CA, etcd trusting only the
  // root: the chain goes with the leaf.
  EtcdAccessConfig chained = access;
  chained.cert_file = d / "chain.pem";
  chained.key_file = d / "leaf.key";
  EtcdClient with_chain({etcd.url()}, kTimeout, chained);
  EXPECT_TRUE(with_chain.range("/tls/", true, &kvs, nullptr, &error)) << error;

  // A certificate renewed in place is read again: the files this client was
  // made with hold one etcd refuses (another CA's), then the right one.
  EtcdAccessConfig renewed = access;
  renewed.cert_file = d / "live.pem";
  renewed.key_file = d / "live.key";
  std::filesystem::copy_file(d / "foreign.pem", d / "live.pem");
  std::filesystem::copy_file(d / "foreign.key", d / "live.key");
  EtcdClient renewing({etcd.url()}, kTimeout, renewed);
  EXPECT_FALSE(renewing.range("/tls/", true, &kvs, nullptr, &error));
  std::filesystem::copy_file(d / "client.pem", d / "live.pem",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(d / "client.key", d / "live.key",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(renewing.range("/tls/", true, &kvs, nullptr, &error)) << error;

  // Without a client certificate: refused by etcd.
  EtcdAccessConfig anonymous = access;
  anonymous.cert_file.clear();
  anonymous.key_file.clear();
  EtcdClient no_cert({etcd.url()}, kTimeout, anonymous);
  EXPECT_FALSE(no_cert.range("/tls/", true, &kvs, nullptr, &error));
  // A server whose certificate does not chain to the CA given: refused here.
  EtcdAccessConfig other = access;
  other.ca_file = d / "other-ca.pem";
  EtcdClient wrong_ca({etcd.url()}, kTimeout, other);
  EXPECT_FALSE(wrong_ca.range("/tls/", true, &kvs, nullptr, &error));
  EXPECT_NE(error.find("fleet.etcd_ca_file"), std::string::npos) << error;
  // Nor does it chain to the system's CAs.
  EtcdAccessConfig system = access;
  system.ca_file.clear();
  EtcdClient system_cas({etcd.url()}, kTimeout, system);
  EXPECT_FALSE(system_cas.range("/tls/", true, &kvs, nullptr, &error));
}

// What a start checks of the TLS files and the password file: each named at
// its key.
TEST(EtcdClient, TheAccessFilesAreCheckedAsAConnectionWouldReadThem) {
  SLUICE_REQUIRE_OPENSSL();
  test::TempDir pki;
  ASSERT_TRUE(make_pki(pki.path()));
  const std::filesystem::path d = pki.path();
  const EtcdAccessConfig a = testing::client_access(d);
  std::string key, why;
  EXPECT_TRUE(check_etcd_access(a, &key, &why)) << key << ": " << why;

  EtcdAccessConfig bad = a;
  bad.key_file = d / "stray.key";
  EXPECT_FALSE(check_etcd_access(bad, &key, &why));
  EXPECT_EQ(key, "fleet.etcd_key_file");
  EXPECT_NE(why.find("is not the key of the certificate"), std::string::npos) << why;
  bad = a;
  bad.ca_file = d / "client.key";  // no certificate in it
  EXPECT_FALSE(check_etcd_access(bad, &key, &why));
  EXPECT_EQ(key, "fleet.etcd_ca_file");
  bad = a;
  bad.cert_file = d / "missing.pem";
  EXPECT_FALSE(check_etcd_access(bad, &key, &why));
  EXPECT_EQ(key, "fleet.etcd_cert_file");
  EXPECT_NE(why.find("No such file"), std::string::npos) << why;
  bad = EtcdAccessConfig{};
  bad.user = "edge";
  bad.password_file = d / "empty";
  std::ofstream(d / "empty").close();
  EXPECT_FALSE(check_etcd_access(bad, &key, &why));
  EXPECT_EQ(key, "fleet.etcd_password_file");
  EXPECT_NE(why.find("no password"), std::string::npos) << why;
}

// etcd's users: with auth enabled, a client without a user is refused; one
// with its user and password authenticates, and again when etcd no longer
// takes its token (it expired; or a change of users made it old).
TEST(EtcdClient, AuthenticatesAsItsUserAndAgainWhenItsTokenExpires) {
  SLUICE_REQUIRE_ETCD();
  SLUICE_REQUIRE_OPENSSL();
  // JWT tokens (they carry the auth revision they were made at), valid 1 s.
  test::TempDir keys;
  const std::string key = keys.path() + "/jwt.key", pub = keys.path() + "/jwt.pub";
  ASSERT_EQ(
      std::system(("openssl genrsa -out " + key + " 2048 >/dev/null 2>&1 && openssl rsa -in " +
                   key + " -pubout -out " + pub + " >/dev/null 2>&1")
                      .c_str()),
      0);
  EtcdProcess etcd(
      24714, nullptr, {},
      {"--auth-token", "jwt,pub-key=" + pub + ",priv-key=" + key + ",sign-method=RS256,ttl=1s"});
  ASSERT_TRUE(etcd.ready());
  const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints=" + etcd.url() + " ";
  const std::string log = " >>'" + (etcd.dir() / "etcdctl.log").string() + "' 2>&1";
  for (const std::string& step : {"user add root:root-password --interactive=false",
                                  "role add root", "user grant-role root root", "auth enable"})
    ASSERT_EQ(std::system((ctl + step + log).c_str()), 0) << step;

  std::string error;
  std::vector<EtcdKv> kvs;
  EtcdClient anonymous({etcd.url()}, kTimeout);
  EXPECT_FALSE(anonymous.range("/", true, &kvs, nullptr, &error));

  test::TempDir dir;
  const std::filesystem::path password = std::filesystem::path(dir.path()) / "password";
  std::ofstream(password) << "root-password\n";
  EtcdAccessConfig access;
  access.user = "root";
  access.password_file = password;
  EtcdClient c({etcd.url()}, kTimeout, access);
  ASSERT_TRUE(c.put("/auth/a", "one", 0, nullptr, &error)) << error;
  // Past the token's TTL (etcd drops it within a second or two of it).
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_TRUE(c.range("/auth/a", false, &kvs, nullptr, &error)) << "ERR " << error;
  ASSERT_EQ(kvs.size(), 1U);
  EXPECT_EQ(kvs[0].value, "one");

  // An admin changes etcd's users: the token's auth revision is old now
  // ("revision of auth store is old"), and the client takes a new one.
  ASSERT_EQ(std::system((ctl +
                         "--user root:root-password user add reader:reader-password "
                         "--interactive=false" +
                         log)
                            .c_str()),
            0);
  ASSERT_TRUE(c.range("/auth/a", false, &kvs, nullptr, &error)) << error;
  // A user that may not read the key: etcd cancels its watch, and the watch
  // fails (naming why) instead of ending as if it had run.
  for (const std::string& step : {"role add reader", "user grant-role reader reader"})
    ASSERT_EQ(std::system((ctl + "--user root:root-password " + step + log).c_str()), 0) << step;
  std::ofstream(dir.path() + "/reader") << "reader-password\n";
  EtcdAccessConfig reader;
  reader.user = "reader";
  reader.password_file = dir.path() + "/reader";
  EtcdClient denied({etcd.url()}, kTimeout, reader);
  EXPECT_FALSE(denied.watch(
      "/auth/a", [](int64_t) { return true; }, &error));
  EXPECT_NE(error.find("permission denied"), std::string::npos) << error;

  std::ofstream(password) << "wrong\n";
  EtcdClient wrong({etcd.url()}, kTimeout, access);
  EXPECT_FALSE(wrong.range("/auth/a", false, &kvs, nullptr, &error));
  EXPECT_NE(error.find("etcd user root not authenticated"), std::string::npos) << error;
}

}  // namespace
}  // namespace sluice
