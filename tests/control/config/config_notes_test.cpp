// SPDX-License-Identifier: Apache-2.0
// Notes on a valid config (control/config/config_notes.hpp) beyond the
// unreachable classes (class_reach_test.cpp): the limit of DPDK's
// net_af_packet ports with IPv4 fragments.
#include "control/config/config_notes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control/config/config_loader.hpp"

namespace sluice {
namespace {

std::vector<std::string> notes_for(const std::string& dataplane) {
  const std::string text = "[dataplane]\n" + dataplane +
                           "\n[[class]]\nname = \"a\"\nmatch = { src = [\"198.18.0.0/15\"] }\n";
  const LoadResult r = load_config_string(text, "<test>");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? text : r.errors[0].to_string());
  return r.ok() ? config_notes(*r.config) : std::vector<std::string>{};
}

TEST(ConfigNotes, AfPacketPortsAreNotedForTheirIpv4Fragments) {
  const std::vector<std::string> notes = notes_for(
      "mode = \"dpdk\"\noutside = \"net_af_packet0,iface=veth0\"\n"
      "inside = \"net_af_packet1,iface=veth1\"");
  ASSERT_EQ(notes.size(), 1U);
  EXPECT_EQ(notes[0].rfind("dataplane.outside: DPDK's net_af_packet ports get IPv4 fragments "
                           "reassembled by the kernel",
                           0),
            0U)
      << notes[0];
  EXPECT_EQ(
      notes_for("mode = \"auto\"\noutside = \"eth0\"\ninside = \"net_af_packet1,iface=e1\"").size(),
      1U);
  // XDP, or DPDK on other ports: nothing to say.
  EXPECT_TRUE(notes_for("mode = \"xdp\"\noutside = \"eth0\"\ninside = \"eth1\"").empty());
  EXPECT_TRUE(
      notes_for("mode = \"dpdk\"\noutside = \"net_ring0\"\ninside = \"net_ring1\"").empty());
}

}  // namespace
}  // namespace sluice
