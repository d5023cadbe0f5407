// SPDX-License-Identifier: Apache-2.0
// The XDP program's IPv4 prefix arrays (dataplane/xdp/prefix_array.hpp):
// built from a prefix list they answer what LpmTable, the oracle, answers
// for every address; a list needing more groups than they hold stays on the
// trie; and the loaded program classifies through them exactly as the
// reference model does.
#include "dataplane/xdp/prefix_array.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "dataplane/common/lpm.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/prefix_sets.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/traffic.hpp"
#include "tests/support/xdp_harness.hpp"

namespace sluice {
namespace {

uint32_t host_v4(const uint8_t* a) {
  return uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
}

// Every IPv4 probe answered as the oracle answers it; the number that fell
// under some prefix.
size_t expect_same(const PrefixArray& array, const std::vector<LpmEntry>& entries, size_t n) {
  const LpmTable oracle(entries);
  std::mt19937_64 rng(7);
  size_t v4 = 0, hits = 0, differ = 0;
  for (const sl_meta& m : test::prefix_probes(entries, rng, n)) {
    if (m.family != SL_FAMILY_V4) continue;
    v4++;
    const uint32_t expect = oracle.lookup(4, m.src_be);
    hits += expect != 0;
    differ += array.lookup(host_v4(m.src_be)) != expect;
  }
  EXPECT_EQ(differ, 0U) << "of " << v4 << " IPv4 probes";
  return hits;
}

TEST(PrefixArray, MatchesTheReferenceTablesOnEveryLength) {
  const std::vector<LpmEntry> entries = test::every_length_prefixes();
  const PrefixArray array = build_prefix_array(entries);
  ASSERT_TRUE(array.fits);
  EXPECT_GT(array.groups, 100U) << "prefixes past /16 and /24 should have made groups";
  EXPECT_EQ(array.blocks.size(), 256 + array.groups);
  EXPECT_GT(expect_same(array, entries, 200'000), 50'000U);
}

TEST(PrefixArray, EveryAddressOfANestedListMatches) {
  // Nested prefixes in one /16, down to /32, and a /0: every address of
  // the /16 and its neighbours, one by one.
  auto p = [](const char* addr, uint8_t len, uint32_t mask) {
    std::array<uint8_t, 16> a{};
    inet_pton(AF_INET, addr, a.data());
    return test::prefix(4, len, a, mask);
  };
  const std::vector<LpmEntry> entries = {
      p("0.0.0.0", 0, 1),        p("198.18.0.0", 15, 2),   p("198.18.0.0", 16, 4),
      p("198.18.4.0", 22, 8),    p("198.18.5.0", 24, 16),  p("198.18.5.128", 25, 32),
      p("198.18.5.200", 32, 64), p("198.18.7.0", 24, 128), p("198.18.7.0", 24, 256)};
  const PrefixArray array = build_prefix_array(entries);
  ASSERT_TRUE(array.fits);
  EXPECT_EQ(array.groups, 2U);  // 198.18.x.x, then 198.18.5.x
  const LpmTable oracle(entries);
  size_t differ = 0;
  for (uint32_t a = 0xc611ff00U; a <= 0xc6130100U; a++) {
    const uint8_t be[4] = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                           static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
    differ += array.lookup(a) != oracle.lookup(4, be);
  }
  EXPECT_EQ(differ, 0U);
  // The longest prefix's own mask (a compiled list ORs the covering ones
  // in; this one does not), and a prefix listed twice answers both.
  EXPECT_EQ(array.lookup(0xc6120507U), 16U);
  EXPECT_EQ(array.lookup(0xc6120709U), 384U);
}

TEST(PrefixArray, AListNeedingMoreGroupsThanTheArraysHoldStaysOnTheTrie) {
  // One /17 in each of SL_PREFIX_GROUPS /16s: exactly full.
  std::vector<LpmEntry> entries;
  for (uint32_t i = 0; i < SL_PREFIX_GROUPS; i++) {
    const std::array<uint8_t, 16> a{static_cast<uint8_t>(10 + i / 256), static_cast<uint8_t>(i),
                                    128};
    entries.push_back(test::prefix(4, 17, a, 1U << (i % 30)));
  }
  std::set<uint32_t> sixteens;
  for (const LpmEntry& e : entries) sixteens.insert(host_v4(e.addr_be.data()) >> 16);
  ASSERT_EQ(sixteens.size(), size_t{SL_PREFIX_GROUPS}) << "one /16 each";
  const PrefixArray full = build_prefix_array(entries);
  EXPECT_TRUE(full.fits);
  EXPECT_EQ(full.groups, SL_PREFIX_GROUPS);
  expect_same(full, entries, 50'000);

  // A /25 in a fresh /16 needs two more.
  entries.push_back(test::prefix(4, 25, {9, 9, 9, 128}, 1));
  const PrefixArray over = build_prefix_array(entries);
  EXPECT_FALSE(over.fits);
  EXPECT_TRUE(over.blocks.empty());

  EXPECT_FALSE(build_prefix_array(test::hundred_thousand_prefixes()).fits);
}

// A config whose classes match IPv4 sources and destinations of every
// length: `n` prefixes for each of 8 source classes and 4 destination
// classes, under 198.18.0.0/15 and anywhere.
std::string prefix_toml(size_t n, uint8_t min_len, uint8_t max_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string toml;  // no budget: only the classes are compared
  for (int c = 0; c < 12; c++) {
    const bool dst = c >= 8;
    toml += "[[class]]\nname = \"c" + std::to_string(c) + "\"\nshed_order = \"random\"\n";
    toml += std::string("match = { ") + (dst ? "dst" : "src") + " = [";
    for (size_t i = 0; i < n; i++) {
      const uint8_t len = static_cast<uint8_t>(min_len + rng() % (max_len - min_len + 1));
      uint32_t a = static_cast<uint32_t>(rng());
      if (rng() % 4 != 0) a = 0xc6120000U | (a & 0x1ffff);  // 198.18.0.0/15
      a &= len == 0 ? 0 : ~uint32_t{0} << (32 - len);
      toml += std::string(i ? ", " : "") + "\"" + std::to_string(a >> 24) + "." +
              std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) + "." +
              std::to_string(a & 255) + "/" + std::to_string(len) + "\"";
    }
    toml += "] }\n";
  }
  return toml;
}

// UDP lookups from and to addresses near the config's prefixes (inside,
// at their edges, next door): the program's class is the model's for every
// one.
void expect_classes_match(test::XdpHarness& h, const std::string& toml, uint64_t seed, size_t n) {
  const CompiledProfile profile = test::profile_from_toml(toml);
  std::mt19937_64 rng(seed);
  const std::vector<sl_meta> srcs = test::prefix_probes(profile.src_prefixes, rng, n);
  const std::vector<sl_meta> dsts = test::prefix_probes(profile.dst_prefixes, rng, n);
  size_t differ = 0;
  std::set<int> classes;
  for (size_t i = 0; i < n; i++) {
    char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, srcs[i].src_be, src, sizeof(src));  // an IPv6 probe's first 4 bytes
    inet_ntop(AF_INET, dsts[i].dst_be, dst, sizeof(dst));
    const auto frame = test::PacketBuilder().ipv4(src, dst).udp(5353, 53).build();
    const test::BothResult r = h.run(frame, 1000 * test::kSecond + i);
    differ += r.xdp.decision.class_id != r.model.class_id;
    classes.insert(r.model.class_id);
  }
  EXPECT_EQ(differ, 0U) << "of " << n << " lookups";
  EXPECT_GE(classes.size(), 10U) << "the probes should meet most classes";
}

TEST(XdpPrefixArrays, ClassifyAsTheModelDoes) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  const std::string toml = prefix_toml(40, 8, 32, 3);
  ASSERT_TRUE(h.load(toml));
  const PrefixArrays arrays = h.program().prefix_arrays();
  EXPECT_TRUE(arrays.src);
  EXPECT_TRUE(arrays.dst);
  EXPECT_GT(arrays.src_groups, 10U);
  expect_classes_match(h, toml, 11, 30'000);
}

// Both profile slots live in one value: a retune writes the other slot's
// blocks only, and each slot answers for its own profile (a slot's blocks
// written at the other's place, or left stale, would classify by the
// wrong prefixes).
TEST(XdpPrefixArrays, EachSlotAnswersForItsOwnProfileAcrossRetunes) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  const std::string first = prefix_toml(40, 8, 32, 21), second = prefix_toml(40, 8, 32, 22);
  ASSERT_TRUE(h.load(first));
  expect_classes_match(h, first, 23, 5'000);
  ASSERT_TRUE(h.retune(second));
  ASSERT_TRUE(h.program().prefix_arrays().src);
  expect_classes_match(h, second, 24, 5'000);
  ASSERT_TRUE(h.retune(first));
  expect_classes_match(h, first, 25, 5'000);
}

// The port masks are one value of both slots too: after each retune every
// destination port classifies by the live profile's port lists.
TEST(XdpPrefixArrays, EachSlotsPortMasksAnswerForItsOwnProfile) {
  SLUICE_REQUIRE_ROOT();
  auto toml = [](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string t;
    for (int c = 0; c < 6; c++) {
      t += "[[class]]\nname = \"p" + std::to_string(c) + "\"\nshed_order = \"random\"\n";
      const uint32_t lo = static_cast<uint32_t>(rng() % 65000);
      t += "match = { dst_ports = [\"" + std::to_string(lo) + "-" +
           std::to_string(lo + rng() % 500) + "\", \"" + std::to_string(rng() % 65536) + "\"] }\n";
    }
    return t;
  };
  auto expect_ports_match = [](test::XdpHarness& h, uint64_t seed) {
    std::mt19937_64 rng(seed);
    size_t differ = 0;
    std::set<int> classes;
    const CompiledProfile& profile = h.model().profile();
    for (uint32_t i = 0; i < 3'000; i++) {
      // Half the probes on a port some class lists, half anywhere.
      uint16_t port = static_cast<uint16_t>(rng());
      if (i % 2 == 0) {
        for (uint32_t tries = 0; tries < 65536 && profile.port_mask[port] == 0; tries++) port++;
      }
      const auto frame =
          test::PacketBuilder().ipv4("198.18.0.1", "198.19.0.1").udp(5353, port).build();
      const test::BothResult r = h.run(frame, 1000 * test::kSecond + i);
      differ += r.xdp.decision.class_id != r.model.class_id;
      classes.insert(r.model.class_id);
    }
    EXPECT_EQ(differ, 0U) << "of 3000 lookups";
    EXPECT_GE(classes.size(), 4U) << "the probes should meet most classes";
  };
  test::XdpHarness h;
  ASSERT_TRUE(h.load(toml(31)));
  expect_ports_match(h, 32);
  ASSERT_TRUE(h.retune(toml(33)));
  expect_ports_match(h, 34);
  ASSERT_TRUE(h.retune(toml(31)));
  expect_ports_match(h, 35);
}

TEST(XdpPrefixArrays, TooManyGroupsClassifyThroughTheTrie) {
  SLUICE_REQUIRE_ROOT();
  test::XdpHarness h;
  // 8 x 400 source prefixes of /25 to /32, a quarter of them anywhere
  // (two groups each): more groups than the arrays hold.
  const std::string toml = prefix_toml(400, 25, 32, 5);
  ASSERT_TRUE(h.load(toml));
  const CompiledProfile profile = test::profile_from_toml(toml);
  const PrefixArrays arrays = h.program().prefix_arrays();
  EXPECT_FALSE(arrays.src);
  EXPECT_EQ(arrays.dst, build_prefix_array(profile.dst_prefixes).fits);
  expect_classes_match(h, toml, 13, 10'000);
}

}  // namespace
}  // namespace sluice
