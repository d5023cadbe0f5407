// SPDX-License-Identifier: Apache-2.0
// Classes no packet can reach (control/config/class_reach.hpp): a class is
// unreachable exactly when one class before it accepts, in every field of
// its match, every value it accepts.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "control/config/class_reach.hpp"
#include "control/config/config_loader.hpp"

namespace sluice {
namespace {

// Two classes, "a" then "b", with these matches (inline-table bodies).
std::vector<std::string> notes_for(const std::string& a, const std::string& b) {
  const std::string text = "[[class]]\nname = \"a\"\nmatch = { " + a +
                           " }\nrate_per_sec = 10\n[[class]]\nname = \"b\"\nmatch = { " + b +
                           " }\nrate_per_sec = 10\n";
  const LoadResult r = load_config_string(text, "<test>");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? text : r.errors[0].to_string());
  return r.ok() ? unreachable_class_notes(*r.config) : std::vector<std::string>{};
}

const std::string kBNeverMatches =
    "class \"b\" never matches: class \"a\" before it matches every packet it would";

struct Case {
  const char* name;
  const char* a;
  const char* b;
  bool unreachable;
};

class ClassReach : public ::testing::TestWithParam<Case> {};

TEST_P(ClassReach, ANoteExactlyWhenAnEarlierClassTakesEveryPacket) {
  const Case& c = GetParam();
  const std::vector<std::string> notes = notes_for(c.a, c.b);
  if (c.unreachable) {
    ASSERT_EQ(notes.size(), 1u);
    EXPECT_EQ(notes[0], kBNeverMatches);
  } else {
    EXPECT_TRUE(notes.empty()) << notes[0];
  }
}

const Case kCases[] = {
    {"a shorter prefix", R"(src = "198.18.0.0/15")", R"(src = "198.18.4.0/24")", true},
    {"the same prefix twice in a list", R"(src = ["198.18.0.0/16", "198.18.0.0/16"])",
     R"(src = "198.18.0.0/16")", true},
    {"a longer prefix", R"(src = "198.18.4.0/24")", R"(src = "198.18.0.0/15")", false},
    {"a prefix beside", R"(src = "198.18.4.0/24")", R"(src = "198.18.5.0/24")", false},
    {"a prefix at a length not on a byte", R"(src = "198.18.0.0/23")", R"(src = "198.18.1.0/24")",
     true},
    {"one bit past it", R"(src = "198.18.0.0/23")", R"(src = "198.18.2.0/24")", false},
    {"one of b's prefixes not held", R"(src = "198.18.0.0/16")",
     R"(src = ["198.18.1.0/24", "198.19.1.0/24"])", false},
    {"b's prefixes held by two of a's", R"(src = ["198.18.0.0/16", "198.19.0.0/16"])",
     R"(src = ["198.18.1.0/24", "198.19.1.0/24"])", true},
    {"IPv4 does not hold IPv6", R"(src = "0.0.0.0/0")", R"(src = "2001:2::/48")", false},
    {"IPv6 in IPv6", R"(src = "2001:2::/48")", R"(src = "2001:2:0:10::/64")", true},
    {"b matches any source, a some", R"(src = "0.0.0.0/0")", R"(dst_ports = 443)", false},
    {"a matches any source", R"(dst_ports = 443)", R"(src = "198.18.0.0/16", dst_ports = 443)",
     true},
    {"destinations too", R"(dst = "198.18.0.0/16")", R"(dst = "198.19.0.0/16")", false},
    {"a port range holds a port", R"(dst_ports = "400-500")", R"(dst_ports = 443)", true},
    {"a range b's overlaps", R"(dst_ports = "400-500")", R"(dst_ports = "450-550")", false},
    {"a protocol more", R"(proto = ["tcp", "udp"])", R"(proto = "udp")", true},
    {"another protocol", R"(proto = "tcp")", R"(proto = "udp")", false},
    {"icmp holds icmpv6", R"(proto = "icmp")", R"(proto = "icmpv6")", true},
    {"a DSCP b does not have", R"(dscp = [10, 12])", R"(dscp = [10, 46])", false},
    {"every field held", R"(src = "198.18.0.0/15", proto = "tcp", dst_ports = "1-1024", dscp = 46)",
     R"(src = "198.18.9.0/24", proto = "tcp", dst_ports = 443, dscp = 46)", true},
    {"every field but one", R"(src = "198.18.0.0/15", proto = "tcp", dst_ports = "1-1024")",
     R"(src = "198.18.9.0/24", proto = "tcp", dst_ports = 8443)", false},
};

INSTANTIATE_TEST_SUITE_P(Table, ClassReach, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.name;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// A class with no match before others takes every packet: each later class
// is named once, with the first class that covers it. The shipped example
// has none.
TEST(ClassReachNotes, EveryLaterClassIsNamedOnceWithTheFirstThatCoversIt) {
  const LoadResult r = load_config_string(
      "[[class]]\nname = \"all\"\n[[class]]\nname = \"x\"\nmatch = { src = \"198.18.0.0/16\" "
      "}\n[[class]]\nname = \"y\"\nmatch = { proto = \"udp\" }\n",
      "<test>");
  ASSERT_TRUE(r.ok()) << r.errors[0].to_string();
  const std::vector<std::string> notes = unreachable_class_notes(*r.config);
  ASSERT_EQ(notes.size(), 3u);  // x, y and the implied default
  EXPECT_NE(notes[0].find("class \"x\" never matches: class \"all\""), std::string::npos)
      << notes[0];
  EXPECT_NE(notes[1].find("class \"y\" never matches: class \"all\""), std::string::npos)
      << notes[1];
  EXPECT_NE(notes[2].find("never matches: class \"all\""), std::string::npos) << notes[2];

  const LoadResult shipped = load_config_file(SLUICE_SOURCE_DIR "/config/sluice.toml");
  ASSERT_TRUE(shipped.ok());
  EXPECT_TRUE(unreachable_class_notes(*shipped.config).empty());
}

// Classes of tens of thousands of prefixes (blocklists): one set lookup
// per prefix length, not a compare of every pair (50,000 x 50,000 of them
// here would take minutes at every --check-config and retune).
TEST(ClassReachNotes, LargePrefixListsAreCheckedByLookup) {
  Config config;
  auto host = [](uint32_t i) {
    Prefix p;
    p.family = 4;
    p.len = 32;
    p.addr[0] = 198;
    p.addr[1] = static_cast<uint8_t>(18 + (i >> 16));
    p.addr[2] = static_cast<uint8_t>(i >> 8);
    p.addr[3] = static_cast<uint8_t>(i);
    return p;
  };
  ClassConfig a, b, c;
  a.name = "a";
  b.name = "b";
  c.name = "c";
  for (uint32_t i = 0; i < 50000; i++) {
    a.match.src.push_back(host(i * 2));
    b.match.src.push_back(host(i * 2));
    c.match.src.push_back(host(i * 2 + (i == 49999 ? 1 : 0)));  // its last one a's neighbour
  }
  config.classes = {a, c, b};
  const std::vector<std::string> notes = unreachable_class_notes(config);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0],
            "class \"b\" never matches: class \"a\" before it matches every packet it "
            "would");
}

}  // namespace
}  // namespace sluice
