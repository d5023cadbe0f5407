// SPDX-License-Identifier: Apache-2.0
// The config loader as a specification: what loads (with which typed values
// and defaults), what is rejected (where, under which key, saying what) and
// how overrides and profiles apply all-or-nothing.
#include "control/config/config_loader.hpp"
#include "control/config/config_diff.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef SLUICE_SOURCE_DIR
#error "tests/CMakeLists.txt must define SLUICE_SOURCE_DIR"
#endif

namespace sluice {
namespace {

// Inline TOML starts on the line after R"( so that line 1 is the first line
// written; error positions in the tests read off the text directly.
std::string doc(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

std::string all_errors(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors) out += "  " + e.to_string() + "\n";
  return out;
}

LoadResult load(std::string_view text) { return load_config_string(doc(text), "<test>"); }

Config load_ok(std::string_view text) {
  LoadResult r = load(text);
  EXPECT_TRUE(r.ok()) << all_errors(r);
  EXPECT_TRUE(r.errors.empty());
  return r.config.value_or(Config{});
}

bool has_error(const LoadResult& r, std::string_view expected) {
  for (const ConfigError& e : r.errors) {
    if (e.to_string().find(expected) != std::string::npos) return true;
  }
  return false;
}

std::string repeated(std::string_view part, int times) {
  std::string out;
  for (int i = 0; i < times; i++) out += part;
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const ClassConfig* find_class(const Config& c, std::string_view name) {
  for (const ClassConfig& k : c.classes) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Valid configurations

TEST(ConfigLoader, EmptyDocumentIsAllDefaults) {
  Config c = load_ok("");
  EXPECT_EQ(c.source, "<test>");
  EXPECT_EQ(c.dataplane.mode, DataplaneKind::automatic);
  EXPECT_EQ(c.dataplane.xdp_attach, XdpAttach::native);
  EXPECT_EQ(c.dataplane.dpdk_args,
            (std::vector<std::string>{"--no-huge", "--no-pci", "-m", "512"}));
  EXPECT_EQ(c.dataplane.dpdk_workers, 1u);
  EXPECT_EQ(c.dataplane.dpdk_mbufs, 16383u);
  EXPECT_EQ(c.dataplane.dpdk_queue_size, 1024u);
  EXPECT_EQ(c.dataplane.dpdk_idle_sleep_us, 0u);
  EXPECT_EQ(c.dataplane.dpdk_clock, DpdkClock::tsc);
  EXPECT_FALSE(c.boundary.lookups_per_sec.has_value());
  EXPECT_FALSE(c.boundary.packets_per_sec.has_value());
  EXPECT_EQ(c.boundary.max_queue_delay_us, 5000u);
  EXPECT_EQ(c.boundary.lookups_reserve_pct, kDefaultLookupsReservePct);
  EXPECT_EQ(c.boundary.packets_reserve_pct, kDefaultPacketsReservePct);
  EXPECT_FALSE(c.admission.shadow);
  EXPECT_EQ(c.admission.malformed, MalformedAction::drop);
  EXPECT_EQ(c.admission.sticky_epoch_sec, 60u);
  EXPECT_EQ(c.admission.sticky_window_ms, 100u);
  EXPECT_EQ(c.admission.source_table_size, 65536u);
  EXPECT_FALSE(c.admission.seed);  // sluiced's own kept random seed
  EXPECT_EQ(c.admission.unverified, UnverifiedAction::charge);
  EXPECT_EQ(c.admission.flow_table_size, 262144u);
  EXPECT_EQ(c.admission.flow_idle_tcp_sec, 300u);
  EXPECT_EQ(c.admission.flow_learn_sec, 10u);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9109");
  EXPECT_EQ(c.control.socket, "/run/sluice/control.sock");
  EXPECT_TRUE(c.profiles.empty());

  // The implied default class.
  ASSERT_EQ(c.classes.size(), 1u);
  const ClassConfig& d = c.classes.back();
  EXPECT_EQ(d.name, "default");
  EXPECT_EQ(d.priority, 7);
  EXPECT_FALSE(d.rate_per_sec.has_value());
  EXPECT_EQ(d.on_shed, ShedAction::drop);
  EXPECT_EQ(d.shed_order, ShedOrder::sticky);
  EXPECT_TRUE(d.match.src.empty() && d.match.dst.empty() && d.match.protocols.empty() &&
              d.match.dst_ports.empty() && d.match.dscp.empty());
  EXPECT_FALSE(d.per_source.has_value());
}

TEST(ConfigLoader, BriefSketchLoadsWithTypedValues) {
  Config c = load_ok(R"(
[dataplane]
mode = "dpdk"
outside = "eth0"
inside = "eth1"
xdp_attach = "generic"
dpdk_args = ["--no-huge", "-m", "256"]

[boundary]
lookups_per_sec = 40000
lookups_burst = 4000
packets_per_sec = 2000000
packets_burst = 200000
max_queue_delay_us = 5000
lookups_reserve_pct = [0, 0, 10, 10, 20, 20, 30, 99]

[admission]
shadow = true
malformed = "pass"
sticky_epoch_sec = 30
sticky_window_ms = 250
source_table_size = 1024
seed = 0
unverified = "drop"
flow_table_size = 1048576
flow_idle_tcp_sec = 120
flow_learn_sec = 0

[metrics]
listen = "198.18.0.9:9109"

[control]
socket = "/tmp/sluice.sock"

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"], proto = "tcp", dst_ports = ["443", "8000-8100"] }
rate_per_sec = 20000
burst = 2000
on_shed = "reset"
shed_order = "sticky"
per_source = { rate_per_sec = 5, burst = 10, prefix_v4 = 32, prefix_v6 = 64 }

[profiles.surge-1]
"class.checkpoint.rate_per_sec" = 5000
)");
  EXPECT_EQ(c.dataplane.mode, DataplaneKind::dpdk);
  EXPECT_EQ(c.dataplane.outside, "eth0");
  EXPECT_EQ(c.dataplane.inside, "eth1");
  EXPECT_EQ(c.dataplane.xdp_attach, XdpAttach::generic);
  EXPECT_EQ(c.dataplane.dpdk_args, (std::vector<std::string>{"--no-huge", "-m", "256"}));
  EXPECT_EQ(c.boundary.lookups_per_sec, 40000u);
  EXPECT_EQ(c.boundary.lookups_burst, 4000u);
  EXPECT_EQ(c.boundary.packets_per_sec, 2000000u);
  EXPECT_EQ(c.boundary.packets_burst, 200000u);
  EXPECT_EQ(c.boundary.lookups_reserve_pct,
            (std::array<uint32_t, SL_PRIORITIES>{0, 0, 10, 10, 20, 20, 30, 99}));
  EXPECT_TRUE(c.admission.shadow);
  EXPECT_EQ(c.admission.malformed, MalformedAction::pass);
  EXPECT_EQ(c.admission.sticky_epoch_sec, 30u);
  EXPECT_EQ(c.admission.sticky_window_ms, 250u);
  EXPECT_EQ(c.admission.source_table_size, 1024u);
  EXPECT_EQ(c.admission.seed, 0u);
  EXPECT_EQ(c.admission.unverified, UnverifiedAction::drop);
  EXPECT_EQ(c.admission.flow_table_size, 1048576u);
  EXPECT_EQ(c.admission.flow_idle_tcp_sec, 120u);
  EXPECT_EQ(c.admission.flow_learn_sec, 0u);
  EXPECT_EQ(c.metrics.listen, "198.18.0.9:9109");
  EXPECT_EQ(c.control.socket, "/tmp/sluice.sock");

  ASSERT_EQ(c.classes.size(), 2u);
  const ClassConfig& k = c.classes[0];
  EXPECT_EQ(k.name, "checkpoint");
  EXPECT_EQ(k.priority, 0);
  EXPECT_EQ(k.rate_per_sec, 20000u);
  EXPECT_EQ(k.burst, 2000u);
  EXPECT_EQ(k.on_shed, ShedAction::reset);
  EXPECT_EQ(k.shed_order, ShedOrder::sticky);
  ASSERT_EQ(k.match.src.size(), 2u);
  EXPECT_EQ(k.match.src[0].family, 4);
  EXPECT_EQ(k.match.src[0].len, 24);
  EXPECT_EQ(k.match.src[0].addr[0], 198);
  EXPECT_EQ(k.match.src[0].addr[1], 18);
  EXPECT_EQ(k.match.src[0].addr[2], 10);
  EXPECT_EQ(k.match.src[0].text, "198.18.10.0/24");
  EXPECT_EQ(k.match.src[1].family, 6);
  EXPECT_EQ(k.match.src[1].len, 64);
  EXPECT_EQ(k.match.src[1].addr[0], 0x20);
  EXPECT_EQ(k.match.src[1].addr[7], 0x10);
  EXPECT_EQ(k.match.protocols, (std::vector<uint8_t>{6}));
  ASSERT_EQ(k.match.dst_ports.size(), 2u);
  EXPECT_EQ(k.match.dst_ports[0].lo, 443);
  EXPECT_EQ(k.match.dst_ports[0].hi, 443);
  EXPECT_EQ(k.match.dst_ports[1].lo, 8000);
  EXPECT_EQ(k.match.dst_ports[1].hi, 8100);
  ASSERT_TRUE(k.per_source.has_value());
  EXPECT_EQ(k.per_source->rate_per_sec, 5u);
  EXPECT_EQ(k.per_source->burst, 10u);
  EXPECT_EQ(k.per_source->prefix_v4, 32);
  EXPECT_EQ(k.per_source->prefix_v6, 64);
  EXPECT_EQ(c.classes[1].name, "default");

  ASSERT_EQ(c.profiles.count("surge-1"), 1u);
  const ProfileOverlay& p = c.profiles.at("surge-1");
  EXPECT_EQ(p.name, "surge-1");
  ASSERT_EQ(p.settings.size(), 1u);
  EXPECT_EQ(p.settings[0].first, "class.checkpoint.rate_per_sec");
  EXPECT_EQ(p.settings[0].second, "5000");
}

TEST(ConfigLoader, DefaultsDerivedFromRates) {
  Config c = load_ok(R"(
[boundary]
lookups_per_sec = 5
packets_per_sec = 12345

[[class]]
name = "a"
rate_per_sec = 7
per_source = { rate_per_sec = 3 }

[[class]]
name = "b"
rate_per_sec = 1000
)");
  EXPECT_EQ(c.boundary.lookups_burst, 1u);  // max(1, 5 / 10)
  EXPECT_EQ(c.boundary.packets_burst, 1234u);
  EXPECT_EQ(c.boundary.packets_reserve_pct, kDefaultPacketsReservePct);
  const ClassConfig* a = find_class(c, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->priority, 4);
  EXPECT_EQ(a->burst, 1u);
  EXPECT_EQ(a->on_shed, ShedAction::drop);
  ASSERT_TRUE(a->per_source.has_value());
  EXPECT_EQ(a->per_source->burst, 3u);  // default = rate
  EXPECT_EQ(a->per_source->prefix_v4, 32);
  EXPECT_EQ(a->per_source->prefix_v6, 64);
  EXPECT_EQ(find_class(c, "b")->burst, 100u);
  ASSERT_EQ(c.classes.size(), 3u);
  EXPECT_EQ(c.classes[2].name, "default");
}

// A pin path has one spelling (the instance lock is named after it): "//"
// and a trailing "/" name the same directory, so they load as it.
TEST(ConfigLoader, APinPathHasOneSpelling) {
  for (const char* spelled :
       {"/sys/fs/bpf/sluice/", "/sys/fs/bpf//sluice", "//sys/fs/bpf/sluice//"}) {
    const LoadResult r =
        load_config_string(std::string("[dataplane]\npin_path = \"") + spelled + "\"\n", "<test>");
    ASSERT_TRUE(r.ok()) << spelled;
    EXPECT_EQ(r.config->dataplane.pin_path, "/sys/fs/bpf/sluice") << spelled;
  }
  EXPECT_FALSE(load_config_string("[dataplane]\npin_path = \"//\"\n", "<test>").ok());
}

TEST(ConfigLoader, MatchForms) {
  Config c = load_ok(R"(
[[class]]
name = "one"
match = { src = "198.18.0.1", dst = ["2001:2::1", "0.0.0.0/0"], proto = ["icmp", 47], dscp = 46 }

[[class]]
name = "two"
match = { proto = ["tcp", "udp"], dst_ports = [53, "80", "1024-65535", 0], dscp = [0, 63] }
on_shed = "mark"
mark_dscp = 8

[[class]]
name = "all"
match = {}
)");
  const ClassConfig& one = c.classes[0];
  ASSERT_EQ(one.match.src.size(), 1u);
  EXPECT_EQ(one.match.src[0].len, 32);
  ASSERT_EQ(one.match.dst.size(), 2u);
  EXPECT_EQ(one.match.dst[0].family, 6);
  EXPECT_EQ(one.match.dst[0].len, 128);
  EXPECT_EQ(one.match.dst[1].len, 0);
  EXPECT_EQ(one.match.protocols, (std::vector<uint8_t>{1, 58, 47}));
  EXPECT_EQ(one.match.dscp, (std::vector<uint8_t>{46}));

  const ClassConfig& two = c.classes[1];
  EXPECT_EQ(two.match.protocols, (std::vector<uint8_t>{6, 17}));
  ASSERT_EQ(two.match.dst_ports.size(), 4u);
  EXPECT_EQ(two.match.dst_ports[2].lo, 1024);
  EXPECT_EQ(two.match.dst_ports[2].hi, 65535);
  EXPECT_EQ(two.match.dst_ports[3].hi, 0);
  EXPECT_EQ(two.match.dscp, (std::vector<uint8_t>{0, 63}));
  EXPECT_EQ(two.on_shed, ShedAction::mark);
  EXPECT_EQ(two.mark_dscp, 8);

  EXPECT_TRUE(c.classes[2].match.src.empty());
  EXPECT_EQ(c.classes.back().name, "default");
}

TEST(ConfigLoader, ExplicitDefaultLastIsKept) {
  Config c = load_ok(R"(
[[class]]
name = "a"

[[class]]
name = "default"
rate_per_sec = 100
)");
  ASSERT_EQ(c.classes.size(), 2u);
  EXPECT_EQ(c.classes[1].name, "default");
  EXPECT_EQ(c.classes[1].rate_per_sec, 100u);
  EXPECT_EQ(c.classes[1].priority, 4);  // written classes get the ordinary default priority
}

TEST(ConfigLoader, ThirtyOneClassesPlusDefaultAreAllowed) {
  std::string text;
  for (int i = 0; i < 31; ++i) text += "[[class]]\nname = \"c" + std::to_string(i) + "\"\n";
  LoadResult r = load_config_string(text, "<test>");
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r.config->classes.size(), SL_MAX_CLASSES);

  text += "[[class]]\nname = \"c31\"\n";  // line 63
  r = load_config_string(text, "<test>");
  EXPECT_TRUE(has_error(r, "<test>:63:1: class.c31: too many classes: at most 31"))
      << all_errors(r);
}

// The DPDK sizing keys at their bounds and in between: each row sets one key
// and reads it back.
struct DpdkSizeCase {
  const char* toml;
  uint32_t DataplaneConfig::*field;
  uint32_t expected;
};

TEST(ConfigLoader, DpdkSettingsAcceptTheirRange) {
  const DpdkSizeCase cases[] = {
      {"dpdk_workers = 1", &DataplaneConfig::dpdk_workers, 1},
      {"dpdk_workers = 64", &DataplaneConfig::dpdk_workers, 64},
      {"dpdk_mbufs = 1023", &DataplaneConfig::dpdk_mbufs, 1023},
      {"dpdk_mbufs = 65535", &DataplaneConfig::dpdk_mbufs, 65535},
      {"dpdk_mbufs = 16777215", &DataplaneConfig::dpdk_mbufs, 16777215},
      {"dpdk_queue_size = 64", &DataplaneConfig::dpdk_queue_size, 64},
      {"dpdk_queue_size = 4096", &DataplaneConfig::dpdk_queue_size, 4096},
      {"dpdk_queue_size = 65536", &DataplaneConfig::dpdk_queue_size, 65536},
      {"dpdk_idle_sleep_us = 0", &DataplaneConfig::dpdk_idle_sleep_us, 0},
      {"dpdk_idle_sleep_us = 50", &DataplaneConfig::dpdk_idle_sleep_us, 50},
      {"dpdk_idle_sleep_us = 10000", &DataplaneConfig::dpdk_idle_sleep_us, 10000},
  };
  for (const DpdkSizeCase& row : cases) {
    SCOPED_TRACE(row.toml);
    const Config c = load_ok(std::string("[dataplane]\n") + row.toml + "\n");
    EXPECT_EQ(c.dataplane.*row.field, row.expected);
  }

  EXPECT_EQ(load_ok("[dataplane]\ndpdk_clock = \"capture\"\n").dataplane.dpdk_clock,
            DpdkClock::capture);
  EXPECT_EQ(load_ok("[dataplane]\ndpdk_clock = \"tsc\"\n").dataplane.dpdk_clock, DpdkClock::tsc);
}

// A fleet reached over TLS, with a client certificate and an etcd user.
TEST(ConfigLoader, AFleetOverTlsWithAUser) {
  const Config c = load_ok(R"(
[fleet]
etcd = ["https://etcd-1.example:2379", "https://198.18.0.2:2379"]
node = "edge-a"
etcd_ca_file = "/etc/sluice/etcd-ca.pem"
etcd_cert_file = "/etc/sluice/edge.pem"
etcd_key_file = "/etc/sluice/edge.key"
etcd_user = "edge-a"
etcd_password_file = "/etc/sluice/etcd-password"
)");
  ASSERT_TRUE(c.fleet.has_value());
  EXPECT_EQ(c.fleet->etcd.size(), 2U);
  EXPECT_EQ(c.fleet->access.ca_file, "/etc/sluice/etcd-ca.pem");
  EXPECT_EQ(c.fleet->access.cert_file, "/etc/sluice/edge.pem");
  EXPECT_EQ(c.fleet->access.key_file, "/etc/sluice/edge.key");
  EXPECT_EQ(c.fleet->access.user, "edge-a");
  EXPECT_EQ(c.fleet->access.password_file, "/etc/sluice/etcd-password");
}

// An etcd password over plain http crosses loopback only.
TEST(ConfigLoader, AnEtcdUserOverHttpOnlyToLoopback) {
  auto with = [](const std::string& url) {
    return load("[fleet]\netcd = [\"" + url +
                "\"]\nnode = \"a\"\netcd_user = \"edge\"\netcd_password_file = \"/etc/p\"\n");
  };
  for (const char* url : {"http://127.0.0.1:2379", "http://127.3.4.5:2379", "http://LocalHost:2379",
                          "https://etcd.example:2379"})
    EXPECT_TRUE(with(url).ok()) << url << ": " << all_errors(with(url));
  for (const char* url : {"http://127.corp.example:2379", "http://198.18.0.1:2379"})
    EXPECT_TRUE(has_error(with(url), "crosses the network in clear")) << url;
}

// Mode auto takes DPDK devices of every form (a PCI address has ':'), and
// the interfaces an XDP fallback would attach to.
TEST(ConfigLoader, ModeAutoTakesDpdkDevicesAndInterfaces) {
  for (const char* name :
       {"0000:03:00.0", "net_af_packet0,iface=eth1", "net_ring0", "eth1", "outside-iface15"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(load_ok(std::string("[dataplane]\noutside = \"") + name + "\"\n").dataplane.outside,
              name);
  }
}

TEST(ConfigLoader, ShippedConfigsLoad) {
  for (const char* name : {"config/sluice.toml", "config/minimal.toml"}) {
    LoadResult r = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/" + name);
    EXPECT_TRUE(r.ok()) << name << "\n" << all_errors(r);
  }
  LoadResult full = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.toml");
  ASSERT_TRUE(full.ok());
  const Config& c = *full.config;
  ASSERT_GE(c.classes.size(), 3u);
  EXPECT_EQ(c.classes.front().name, "checkpoint");
  EXPECT_EQ(c.classes.front().priority, 0);
  EXPECT_EQ(c.classes.front().on_shed, ShedAction::reset);
  EXPECT_TRUE(c.classes.front().per_source.has_value());
  ASSERT_NE(find_class(c, "citizen"), nullptr);
  EXPECT_EQ(find_class(c, "citizen")->priority, 5);
  EXPECT_EQ(c.classes.back().name, "default");
  EXPECT_EQ(c.profiles.count("surge-1"), 1u);
  EXPECT_EQ(c.profiles.count("surge-2"), 1u);
}

// Each profile is checked on a copy of the parsed file (no text parsed per
// profile); one with an error is checked again on the text, so its error is
// still at its entry's line. More than 64 profiles are refused at once.
TEST(ConfigLoader, ManyProfilesAreCheckedAndTheirErrorsKeepTheirLines) {
  std::string text = "[[class]]\nname = \"citizen\"\nrate_per_sec = 100\n";
  for (int i = 0; i < 62; i++)
    text += "[profiles.p" + std::to_string(i) +
            "]\n\"class.citizen.rate_per_sec\" = " + std::to_string(200 + i) + "\n";
  LoadResult r = load_config_string(text, "<test>");
  ASSERT_TRUE(r.ok()) << all_errors(r);
  ASSERT_EQ(r.config->profiles.size(), 62u);
  EXPECT_EQ(
      r.config->profiles.at("p61").settings,
      (std::vector<std::pair<std::string, std::string>>{{"class.citizen.rate_per_sec", "261"}}));

  // Two more, wrong in two ways (lines 128-129 and 130-131): both named at their entries.
  const std::string wrong = text +
                            "[profiles.unknown-class]\n\"class.nope.rate_per_sec\" = 1\n"
                            "[profiles.restart]\n\"dataplane.mode\" = \"xdp\"\n";
  r = load_config_string(wrong, "<test>");
  EXPECT_EQ(r.errors.size(), 2u) << all_errors(r);
  EXPECT_TRUE(has_error(
      r,
      "<test>:129:1: profiles.unknown-class.\"class.nope.rate_per_sec\": unknown class \"nope\""))
      << all_errors(r);
  EXPECT_TRUE(has_error(
      r,
      "<test>:131:1: profiles.restart.\"dataplane.mode\": dataplane.mode changes only at restart"))
      << all_errors(r);

  // 65: refused before any is checked.
  for (int i = 62; i < 65; i++)
    text += "[profiles.p" + std::to_string(i) + "]\n\"class.citizen.rate_per_sec\" = 1\n";
  r = load_config_string(text, "<test>");
  ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
  EXPECT_EQ(r.errors[0].to_string(), "<test>:4:1: profiles: at most 64 profiles, found 65");
}

TEST(ConfigLoader, UnreadableFileIsOneErrorNamingIt) {
  LoadResult r = load_config_file("/nonexistent/sluice.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, "/nonexistent/sluice.toml");
  EXPECT_NE(r.errors[0].to_string().find("/nonexistent/sluice.toml"), std::string::npos);

  r = load_config_file(SLUICE_SOURCE_DIR);  // a directory
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].message, "cannot read config file: Is a directory");
}

// A config from a pipe (`--check-config <(...)`, /dev/stdin) is read to its
// end; one whose writer does not finish is refused after 5 s, never waited
// on for good (a reload holds the control lock while it reads).
TEST(ConfigLoader, APipeIsReadToItsEndAndNeverWaitedOnForGood) {
  const std::string fifo = ::testing::TempDir() + "/sluice-config-fifo";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // after the reader opened it
    std::FILE* f = std::fopen(fifo.c_str(), "w");
    if (f == nullptr) return;
    std::fputs("[boundary]\nlookups_per_sec = 1234\n", f);
    std::fclose(f);
  });
  LoadResult r = load_config_file(fifo);
  writer.join();
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(r.config->boundary.lookups_per_sec, 1234u);

  // No writer: refused within the bound.
  const auto start = std::chrono::steady_clock::now();
  r = load_config_file(fifo);
  const auto took = std::chrono::steady_clock::now() - start;
  ::unlink(fifo.c_str());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            fifo +
                ":0:0: cannot read config file: not complete within 5 s (a pipe or device whose "
                "writer did not finish)");
  EXPECT_LT(took, std::chrono::seconds(8));
}

// ---------------------------------------------------------------------------
// Rejected configurations: each case names the FILE:LINE:COL: key: message
// prefix that must appear among the errors.

struct ErrorCase {
  const char* name;
  const char* toml;
  const char* expected;
};

// Test listings show the case name, not the struct's bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

const ErrorCase kErrorCases[] = {
    {"syntax error", R"(
[boundary]
lookups_per_sec = = 3
)",
     "<test>:2:19: TOML syntax:"},
    // toml++ garbled a quoted key defined twice ('"boboundary.lookups_per_sec" ').
    {"a quoted key defined twice", R"(
[profiles.p]
"boundary.lookups_per_sec" = 1
"boundary.lookups_per_sec" = 2
)",
     "<test>:3:30: TOML syntax: Error while parsing key-value pair: cannot redefine existing "
     "integer '\"boundary.lookups_per_sec\"'"},
    {"a quoted table defined twice", R"(
[profiles."x.y"]
a = 1
[profiles."x.y"]
)",
     "<test>:3:1: TOML syntax: Error while parsing table header: cannot redefine existing table "
     "'profiles.\"x.y\"'"},
    {"unknown top-level key", R"(
[boundry]
lookups_per_sec = 3
)",
     "<test>:1:2: boundry: unknown key; expected one of: dataplane, boundary"},
    {"unknown key in a section", R"(
[admission]
shadow = true
sticky_epoc_sec = 5
)",
     "<test>:3:1: admission.sticky_epoc_sec: unknown key"},
    {"unknown key inside an inline match", R"(
[[class]]
name = "a"
match = { src = "198.18.0.0/16", port = 80 }
)",
     "<test>:3:34: class.a.match.port: unknown key; expected one of: src, dst, proto, "
     "dst_ports, dscp"},
    {"unknown key inside per_source", R"(
[[class]]
name = "a"
per_source = { rate_per_sec = 5, prefix = 24 }
)",
     "<test>:3:34: class.a.per_source.prefix: unknown key"},
    {"wrong type", R"(
[[class]]
name = "citizen"
rate_per_sec = "fast"
)",
     "<test>:3:16: class.citizen.rate_per_sec: expected an integer in 1..1000000000, found "
     "string \"fast\""},
    {"float where an integer is expected", R"(
[boundary]
lookups_per_sec = 1e9
)",
     "<test>:2:19: boundary.lookups_per_sec: expected an integer in 1..1000000000, found float"},
    {"section of the wrong type", R"(
boundary = 5
)",
     "<test>:1:12: boundary: expected a table, found integer 5"},
    {"class written as a table", R"(
[class]
name = "a"
)",
     "<test>:1:1: class: expected an array of tables ([[class]] sections)"},
    {"out of range priority", R"(
[[class]]
name = "a"
priority = 8
)",
     "<test>:3:12: class.a.priority: expected an integer in 0..7, found integer 8"},
    {"out of range queue delay", R"(
[boundary]
max_queue_delay_us = 0
)",
     "<test>:2:22: boundary.max_queue_delay_us: expected an integer in 1..10000000, found "
     "integer 0"},
    {"bad keyword", R"(
[dataplane]
mode = "ebpf"
)",
     "<test>:2:8: dataplane.mode: expected \"auto\", \"dpdk\" or \"xdp\", found string \"ebpf\""},
    {"dpdk_args element not a string", R"(
[dataplane]
dpdk_args = ["-m", 512]
)",
     "<test>:2:20: dataplane.dpdk_args[1]: expected a string, found integer 512"},
    {"http_listen without a token file", R"(
[control]
http_listen = "127.0.0.1:9555"
)",
     "<test>:2:15: control.http_token_file: missing: http_listen needs a token file (its first "
     "line is the bearer token HTTP clients send)"},
    {"dpdk_args --help", R"(
[dataplane]
dpdk_args = ["--no-huge", "--help"]
)",
     "<test>:2:27: dataplane.dpdk_args[1]: expected an EAL option sluiced can pass on (it would "
     "print the EAL's usage and exit the daemon), found string \"--help\""},
    {"dpdk_workers zero", R"(
[dataplane]
dpdk_workers = 0
)",
     "<test>:2:16: dataplane.dpdk_workers: expected an integer in 1..64, found integer 0"},
    {"dpdk_workers above 64", R"(
[dataplane]
dpdk_workers = 65
)",
     "<test>:2:16: dataplane.dpdk_workers: expected an integer in 1..64, found integer 65"},
    {"dpdk_workers as a string", R"(
[dataplane]
dpdk_workers = "4"
)",
     "<test>:2:16: dataplane.dpdk_workers: expected an integer in 1..64, found string \"4\""},
    {"dpdk_mbufs too few", R"(
[dataplane]
dpdk_mbufs = 1022
)",
     "<test>:2:14: dataplane.dpdk_mbufs: expected an integer in 1023..16777215, found integer "
     "1022"},
    {"dpdk_mbufs too many", R"(
[dataplane]
dpdk_mbufs = 16777216
)",
     "<test>:2:14: dataplane.dpdk_mbufs: expected an integer in 1023..16777215, found integer "
     "16777216"},
    {"dpdk_queue_size not a power of two", R"(
[dataplane]
dpdk_queue_size = 1000
)",
     "<test>:2:19: dataplane.dpdk_queue_size: must be a power of two (64, 128, ..., 65536), found "
     "1000"},
    {"dpdk_queue_size below 64", R"(
[dataplane]
dpdk_queue_size = 32
)",
     "<test>:2:19: dataplane.dpdk_queue_size: expected an integer in 64..65536, found integer 32"},
    {"dpdk_queue_size above 65536", R"(
[dataplane]
dpdk_queue_size = 131072
)",
     "<test>:2:19: dataplane.dpdk_queue_size: expected an integer in 64..65536, found integer "
     "131072"},
    {"dpdk_idle_sleep_us negative", R"(
[dataplane]
dpdk_idle_sleep_us = -1
)",
     "<test>:2:22: dataplane.dpdk_idle_sleep_us: expected an integer in 0..10000, found integer "
     "-1"},
    {"dpdk_idle_sleep_us above 10 ms", R"(
[dataplane]
dpdk_idle_sleep_us = 10001
)",
     "<test>:2:22: dataplane.dpdk_idle_sleep_us: expected an integer in 0..10000, found integer "
     "10001"},
    {"dpdk_clock unknown", R"(
[dataplane]
dpdk_clock = "wall"
)",
     "<test>:2:14: dataplane.dpdk_clock: expected \"tsc\" or \"capture\", found string \"wall\""},
    {"unknown dataplane key lists the dpdk keys", R"(
[dataplane]
dpdk_lcores = 2
)",
     "<test>:2:1: dataplane.dpdk_lcores: unknown key; expected one of: mode, outside, inside, "
     "xdp_attach, dpdk_args, pin_path, when_stopped, dpdk_workers, dpdk_mbufs, dpdk_queue_size, "
     "dpdk_idle_sleep_us, dpdk_clock, dpdk_standby"},
    {"when_stopped is a keyword", R"(
[dataplane]
when_stopped = "drop"
)",
     "<test>:2:16: dataplane.when_stopped: expected \"forward\" or \"block\", found string "
     "\"drop\""},
    {"source table too small", R"(
[admission]
source_table_size = 1000
)",
     "<test>:2:21: admission.source_table_size: expected an integer in 1024..16777216"},
    {"unknown unverified policy", R"(
[admission]
unverified = "trust"
)",
     "<test>:2:14: admission.unverified: expected \"charge\", \"drop\" or \"pass\", found string "
     "\"trust\""},
    {"flow table too small", R"(
[admission]
flow_table_size = 1024
)",
     "<test>:2:19: admission.flow_table_size: expected an integer in 8192..134217728"},
    {"flow idle time too short", R"(
[admission]
flow_idle_tcp_sec = 5
)",
     "<test>:2:21: admission.flow_idle_tcp_sec: expected an integer in 10..604800"},
    {"negative seed", R"(
[admission]
seed = -1
)",
     "<test>:2:8: admission.seed: expected an integer >= 0, found integer -1"},
    {"sticky window not below the epoch", R"(
[admission]
sticky_epoch_sec = 1
sticky_window_ms = 1000
)",
     "<test>:3:20: admission.sticky_window_ms: must be less than sticky_epoch_sec (1 s = 1000 "
     "ms), found 1000"},
    {"listen without a port", R"(
[metrics]
listen = "127.0.0.1"
)",
     "<test>:2:10: metrics.listen: expected \"IPV4:PORT\" or \"[IPV6]:PORT\""},
    {"listen with an unbracketed IPv6 address", R"(
[metrics]
listen = "2001:2::1:9109"
)",
     "<test>:2:10: metrics.listen: expected \"IPV4:PORT\" or \"[IPV6]:PORT\""},
    {"listen port 0", R"(
[metrics]
listen = "[::1]:0"
)",
     "<test>:2:10: metrics.listen:"},
    {"relative socket path", R"(
[control]
socket = "run/sluice.sock"
)",
     "<test>:2:10: control.socket: expected an absolute path"},
    {"duplicate class names name both lines", R"(
[[class]]
name = "citizen"

[[class]]
name = "citizen"
)",
     "<test>:5:8: class.citizen.name: duplicate class name \"citizen\", also defined at line 2"},
    {"class without a name points at its table", R"(
[[class]]
priority = 1
)",
     "<test>:1:1: class[0].name: missing"},
    {"bad class name", R"(
[[class]]
name = "Citizen"
rate_per_sec = "x"
)",
     "<test>:2:8: class[0].name: expected a name of 1..32 characters"},
    {"errors of an unnamed class use its index", R"(
[[class]]
name = "Citizen"
rate_per_sec = "x"
)",
     "<test>:3:16: class[0].rate_per_sec: expected an integer"},
    // 33 characters: one more than SL_CLASS_NAME_MAX, which every dataplane
    // stores whole (XdpApply / DpdkApply.LongestClassNameKeepsStateAcrossRetunes).
    {"class name too long", R"(
[[class]]
name = "abcdefghijklmnopqrstuvwxyz0123456"
)",
     "<test>:2:8: class[0].name: expected a name of 1..32 characters"},
    {"overlapping lookup reserves name the index", R"(
[boundary]
lookups_reserve_pct = [0, 5, 10, 8, 20, 30, 40, 50]
)",
     "<test>:2:34: boundary.lookups_reserve_pct[3]: overlapping reserves: priority 3 reserves 8% "
     "but priority 2 reserves 10%"},
    {"reserves of the wrong length", R"(
[boundary]
packets_reserve_pct = [1, 2, 3]
)",
     "<test>:2:23: boundary.packets_reserve_pct: expected an array of exactly 8 integers in "
     "0..99"},
    {"reserve of 100 percent", R"(
[boundary]
packets_reserve_pct = [0, 0, 0, 0, 0, 0, 0, 100]
)",
     "<test>:2:45: boundary.packets_reserve_pct[7]: expected an integer in 0..99, found integer "
     "100"},
    {"prefix with host bits set", R"(
[[class]]
name = "a"
match = { src = ["198.18.10.0/24", "198.18.10.1/24"] }
)",
     "<test>:3:36: class.a.match.src[1]: host bits are set beyond /24; the prefix is "
     "\"198.18.10.0/24\", found string \"198.18.10.1/24\""},
    {"IPv6 prefix with host bits set", R"(
[[class]]
name = "a"
match = { dst = "2001:2:0:10::1/64" }
)",
     "<test>:3:17: class.a.match.dst: host bits are set beyond /64; the prefix is "
     "\"2001:2:0:10::/64\""},
    {"not an address", R"(
[[class]]
name = "a"
match = { src = "198.18.300.0/24" }
)",
     "<test>:3:17: class.a.match.src: expected an IPv4 or IPv6 address or prefix"},
    {"prefix too long", R"(
[[class]]
name = "a"
match = { src = "198.18.0.0/33" }
)",
     "<test>:3:17: class.a.match.src: expected a prefix length in 0..32"},
    {"interface name the kernel would refuse", R"(
[dataplane]
mode = "xdp"
outside = "outside-interface-0"
)",
     "<test>:3:11: dataplane.outside: expected a Linux interface name (mode xdp): at most 15 "
     "bytes"},
    {"interface name the XDP fallback would be refused (mode auto)", R"(
[dataplane]
outside = "outside-interface-0"
)",
     "<test>:2:11: dataplane.outside: expected a DPDK device, or an interface name for the XDP "
     "fallback (mode auto; a vdev spec's iface= too): at most 15 bytes"},
    {"etcd endpoints of two schemes", R"(
[fleet]
etcd = ["https://198.18.0.1:2379", "http://198.18.0.2:2379"]
node = "a"
)",
     "<test>:2:36: fleet.etcd[1]: expected the scheme of the first endpoint (https): every "
     "endpoint of a cluster is reached alike"},
    {"an etcd client certificate without its key", R"(
[fleet]
etcd = ["https://198.18.0.1:2379"]
node = "a"
etcd_cert_file = "/etc/sluice/edge.pem"
)",
     "<test>:4:18: fleet.etcd_cert_file: a client certificate needs its key: etcd_key_file"},
    {"TLS files for plain http endpoints", R"(
[fleet]
etcd = ["http://198.18.0.1:2379"]
node = "a"
etcd_ca_file = "/etc/sluice/etcd-ca.pem"
)",
     "<test>:4:16: fleet.etcd_ca_file: TLS needs https:// etcd endpoints, found "
     "http://198.18.0.1:2379"},
    {"an etcd user without a password", R"(
[fleet]
etcd = ["https://198.18.0.1:2379"]
node = "a"
etcd_user = "edge"
)",
     "<test>:4:13: fleet.etcd_user: an etcd user needs its password: etcd_password_file"},
    {"an etcd password in clear over the network", R"(
[fleet]
etcd = ["http://198.18.0.1:2379"]
node = "a"
etcd_user = "edge"
etcd_password_file = "/etc/sluice/etcd-password"
)",
     "<test>:4:13: fleet.etcd_user: a password over plain http:// to http://198.18.0.1:2379 "
     "crosses the network in clear: use https:// endpoints"},
    {"a relative etcd password file", R"(
[fleet]
etcd = ["https://198.18.0.1:2379"]
node = "a"
etcd_user = "edge"
etcd_password_file = "secret"
)",
     "<test>:5:22: fleet.etcd_password_file: expected an absolute file path"},
    {"a vdev spec's iface= the XDP fallback would be refused (mode auto)", R"(
[dataplane]
mode = "auto"
inside = "net_af_packet1,iface=inside-interface-0"
)",
     "<test>:3:10: dataplane.inside: expected a DPDK device, or an interface name for the XDP "
     "fallback"},
    {"prefix length with a leading zero", R"(
[[class]]
name = "a"
match = { src = "198.18.0.0/024" }
)",
     "<test>:3:17: class.a.match.src: expected a prefix length in 0..32 after '/' (decimal, no "
     "leading zero)"},
    {"empty list", R"(
[[class]]
name = "a"
match = { src = [] }
)",
     "<test>:3:17: class.a.match.src: empty list"},
    {"reversed port range", R"(
[[class]]
name = "a"
match = { dst_ports = ["8100-8000"] }
)",
     "<test>:3:24: class.a.match.dst_ports[0]: port range is reversed; expected LO <= HI, found "
     "string \"8100-8000\""},
    {"port out of range", R"(
[[class]]
name = "a"
match = { dst_ports = 70000 }
)",
     "<test>:3:23: class.a.match.dst_ports: expected a port in 0..65535"},
    {"port text out of range", R"(
[[class]]
name = "a"
match = { dst_ports = "80-65536" }
)",
     "<test>:3:23: class.a.match.dst_ports: expected a port in 0..65535 or a range \"LO-HI\""},
    {"ports with a protocol that has none", R"(
[[class]]
name = "a"
match = { proto = ["tcp", "icmp"], dst_ports = 443 }
)",
     "<test>:3:48: class.a.match.dst_ports: destination ports apply only to tcp and udp, but "
     "proto includes icmp"},
    {"unknown protocol", R"(
[[class]]
name = "a"
match = { proto = "sctp" }
)",
     "<test>:3:19: class.a.match.proto: expected \"tcp\", \"udp\", \"icmp\", \"icmpv6\" or an "
     "integer in 0..255, found string \"sctp\""},
    {"dscp out of range", R"(
[[class]]
name = "a"
match = { dscp = [10, 64] }
)",
     "<test>:3:23: class.a.match.dscp[1]: expected an integer in 0..63, found integer 64"},
    {"class burst without rate", R"(
[[class]]
name = "a"
burst = 100
)",
     "<test>:3:9: class.a.burst: a burst needs its rate: set rate_per_sec too"},
    {"boundary burst without rate", R"(
[boundary]
packets_per_sec = 10
lookups_burst = 100
)",
     "<test>:3:17: boundary.lookups_burst: a burst needs its rate: set lookups_per_sec too"},
    {"default not last", R"(
[[class]]
name = "default"

[[class]]
name = "a"
)",
     "<test>:1:1: class.default: the class named \"default\" takes whatever no other class "
     "matched, so it must be the last [[class]]"},
    {"default with a match", R"(
[[class]]
name = "default"
match = { proto = "tcp" }
)",
     "<test>:3:9: class.default.match: the default class takes whatever no other class matched; "
     "it must not have a match"},
    {"mark_dscp without mark", R"(
[[class]]
name = "a"
on_shed = "drop"
mark_dscp = 8
)",
     "<test>:4:13: class.a.mark_dscp: allowed only with on_shed = \"mark\""},
    {"mark without mark_dscp points at the class", R"(
[[class]]
name = "a"
on_shed = "mark"
)",
     "<test>:1:1: class.a.mark_dscp: missing; on_shed = \"mark\" needs the DSCP value"},
    {"per_source without rate points at its table", R"(
[[class]]
name = "a"
per_source = { burst = 5 }
)",
     "<test>:3:14: class.a.per_source.rate_per_sec: missing"},
    {"per_source prefix out of range", R"(
[[class]]
name = "a"
per_source = { rate_per_sec = 5, prefix_v6 = 129 }
)",
     "<test>:3:46: class.a.per_source.prefix_v6: expected an integer in 1..128"},
    {"bad profile name", R"(
[profiles.Surge]
"boundary.lookups_per_sec" = 5
)",
     "<test>:1:11: profiles.Surge: profile names are one or more of a-z, 0-9, _ and -"},
    {"profile named none", R"(
[profiles.none]
"boundary.lookups_per_sec" = 5
)",
     "<test>:1:11: profiles.none: \"none\" is reserved: `sluicectl profile none` returns to the "
     "base config"},
    {"profile value of the wrong type is reported at its entry", R"(
[[class]]
name = "citizen"

[profiles.surge-1]
"class.citizen.rate_per_sec" = "fast"
)",
     "<test>:5:1: profiles.surge-1.\"class.citizen.rate_per_sec\": expected an integer in "
     "1..1000000000, found string \"fast\""},
    {"profile naming an unknown class", R"(
[[class]]
name = "citizen"

[profiles.surge-1]
"boundary.lookups_per_sec" = 100
"class.citizens.rate_per_sec" = 5
)",
     "<test>:6:1: profiles.surge-1.\"class.citizens.rate_per_sec\": unknown class \"citizens\"; "
     "classes are: citizen, default"},
    {"profile with an unknown key", R"(
[profiles.surge-1]
"boundary.lookups_per_second" = 100
)",
     "<test>:2:1: profiles.surge-1.\"boundary.lookups_per_second\": unknown key; expected one "
     "of: lookups_per_sec,"},
    {"an empty interface name", R"(
[dataplane]
outside = ""
)",
     "<test>:2:11: dataplane.outside: expected an interface or device name (empty names none)"},
    {"one interface for both sides", R"(
[dataplane]
outside = "eth1"
inside = "eth1"
)",
     "<test>:3:10: dataplane.inside: \"eth1\" is dataplane.outside too: an inline edge has two "
     "sides"},
    {"one interface for both sides through a vdev", R"(
[dataplane]
outside = "eth1"
inside = "net_af_packet1,iface=eth1"
)",
     "<test>:3:10: dataplane.inside: \"net_af_packet1,iface=eth1\" is on eth1, as "
     "dataplane.outside is: an inline edge has two sides"},
    {"one interface for both sides through two vdevs", R"(
[dataplane]
outside = "net_af_packet0,iface=eth1,qpairs=1"
inside = "net_af_xdp1,iface=eth1"
)",
     "<test>:3:10: dataplane.inside: \"net_af_xdp1,iface=eth1\" is on eth1, as "
     "dataplane.outside is: an inline edge has two sides"},
    {"the DPDK fast path without its inside", R"(
[dataplane]
mode = "dpdk"
outside = "net_af_packet0,iface=eth1"
)",
     "<test>:2:8: dataplane.mode: \"dpdk\" is inline only: set dataplane.inside (the server "
     "side) too, or use mode \"xdp\" for host mode"},
    {"a pin path through ..", R"(
[dataplane]
pin_path = "/sys/fs/bpf/a/../b"
)",
     "<test>:2:12: dataplane.pin_path: expected an absolute directory path on a bpffs without . "
     "or .. steps"},
    {"a profile renaming a class to another's name", R"(
[[class]]
name = "a"

[[class]]
name = "b"

[profiles.p]
"class.a.name" = "b"
)",
     "<test>:7:1: profiles.p: class.b.name: duplicate class name \"b\", also defined by the "
     "change (an override or a profile renaming a class)"},
    {"a fleet sync slower than half its lease", R"(
[fleet]
etcd = ["http://127.0.0.1:2379"]
node = "a"
sync_ms = 2000
)",
     "<test>:4:11: fleet.sync_ms: must be at most half of lease_ttl_sec (1500 ms): each sync keeps "
     "the edge's lease alive, found 2000"},
    {"an etcd endpoint by IPv6 literal", R"(
[fleet]
etcd = ["http://[2001:2::fe]:2379"]
node = "a"
)",
     "<test>:2:9: fleet.etcd[0]: expected an etcd client URL \"http://HOST:PORT\" or "
     "\"https://HOST:PORT\" with a name or an IPv4 address (IPv6 literals are not supported)"},
    {"an IPv4-mapped prefix", R"(
[[class]]
name = "v4"
match = { src = "::ffff:198.18.10.0/120" }
)",
     "<test>:3:17: class.v4.match.src: expected IPv4 addresses as an IPv4 prefix, "
     "\"198.18.10.0/24\" (an IPv4-mapped IPv6 prefix never matches: IPv4 packets are IPv4 on the "
     "wire), found string \"::ffff:198.18.10.0/120\""},
    {"the control API on the metrics socket, its port spelt with a leading zero", R"(
[metrics]
listen = "127.0.0.1:09110"

[control]
http_listen = "127.0.0.1:9110"
http_token_file = "/etc/sluice/token"
)",
     "<test>:5:15: control.http_listen: the same socket as metrics.listen (127.0.0.1:09110)"},
    {"the control API on the metrics socket, its IPv6 address spelt out", R"(
[metrics]
listen = "[0:0::1]:9110"

[control]
http_listen = "[::1]:9110"
http_token_file = "/etc/sluice/token"
)",
     "<test>:5:15: control.http_listen: the same socket as metrics.listen ([0:0::1]:9110)"},
    {"the control API on the metrics socket", R"(
[metrics]
listen = "0.0.0.0:9109"

[control]
http_listen = "127.0.0.1:9109"
http_token_file = "/etc/sluice/token"
)",
     "<test>:5:15: control.http_listen: the same socket as metrics.listen (0.0.0.0:9109): the "
     "metrics endpoint and the control API each need their own port"},
    {"a socket group with a NUL inside", R"(
[control]
socket_group = "root\u0000evil"
)",
     "<test>:2:16: control.socket_group: expected a group name"},
    {"a socket mode with a blank before it", R"(
[control]
socket_mode = " 660"
)",
     "<test>:2:15: control.socket_mode: expected an octal mode string such as \"0660\" that gives "
     "the owner rw and others nothing"},
    {"a socket mode with a sign", R"(
[control]
socket_mode = "+660"
)",
     "<test>:2:15: control.socket_mode: expected an octal mode string such as \"0660\" that gives "
     "the owner rw and others nothing"},
    {"profile that breaks a rule elsewhere is reported at the profile", R"(
[admission]
sticky_window_ms = 5000

[profiles.short]
"admission.sticky_epoch_sec" = 2
)",
     "<test>:4:1: profiles.short: admission.sticky_window_ms: must be less than sticky_epoch_sec"},
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, AreReportedWithPositionAndKey) {
  const ErrorCase& c = GetParam();
  LoadResult r = load(c.toml);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_TRUE(has_error(r, c.expected)) << "expected: " << c.expected << "\ngot:\n"
                                        << all_errors(r);
}

// gtest names: the case name with every non-alphanumeric character as '_'.
std::string error_case_name(const ::testing::TestParamInfo<ErrorCase>& param) {
  std::string n = param.param.name;
  for (char& ch : n) {
    const bool alnum =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Table, ConfigErrors, ::testing::ValuesIn(kErrorCases), error_case_name);

TEST(ConfigLoader, AllErrorsAreReportedInSourceOrder) {
  LoadResult r = load(R"(
[boundary]
lookups_per_sec = 0
bogus = 1

[[class]]
name = "a"
priority = "high"
match = { src = "198.18.0.1/8" }

[[class]]
name = "a"
)");
  ASSERT_EQ(r.errors.size(), 5u) << all_errors(r);
  EXPECT_EQ(r.errors[0].to_string(),
            "<test>:2:19: boundary.lookups_per_sec: expected an integer in 1..1000000000, found "
            "integer 0");
  EXPECT_EQ(r.errors[1].key, "boundary.bogus");
  EXPECT_EQ(r.errors[1].line, 3);
  EXPECT_EQ(r.errors[2].key, "class.a.priority");
  EXPECT_EQ(r.errors[2].line, 7);
  EXPECT_EQ(r.errors[3].key, "class.a.match.src");
  EXPECT_EQ(r.errors[3].line, 8);
  EXPECT_EQ(r.errors[4].key, "class.a.name");
  EXPECT_EQ(r.errors[4].line, 11);
  EXPECT_EQ(r.errors[4].col, 8);
}

TEST(ConfigLoader, ErrorFormat) {
  ConfigError e{"sluice.toml", 12, 5, "class.citizen.burst", "expected X, found Y"};
  EXPECT_EQ(e.to_string(), "sluice.toml:12:5: class.citizen.burst: expected X, found Y");
  e.key.clear();
  EXPECT_EQ(e.to_string(), "sluice.toml:12:5: expected X, found Y");
}

TEST(ConfigLoader, HostileInputNeverCrashes) {
  const std::string inputs[] = {
      std::string("\0\xff\xfe", 3),
      "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
      "[profiles.x]\na.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p = 1\n",
      "[[class]]\nname = \"a\"\nmatch = { src = \"1.2.3.4\\u0000/8\" }\n",
      "[metrics]\nlisten = \"[::1\"\n",
      "[metrics]\nlisten = \"[]:\"\n",
      "[profiles.x]\n\"class.a\" = 1\n\"\" = 2\n\".\" = 3\n",
  };
  for (const std::string& in : inputs) {
    LoadResult r = load_config_string(in, "<fuzz>");
    EXPECT_FALSE(r.ok()) << in;
    EXPECT_FALSE(r.errors.empty()) << in;
  }
}

// An unknown key of a megabyte (a bare one: letters only) is named
// shortened, as a value is: the error line was a megabyte long.
TEST(ConfigLoader, AnUnknownKeyTooLongToPrintIsShortened) {
  const LoadResult r =
      load_config_string("[boundary]\n" + repeated("k", 1 << 20) + " = 1\n", "<t>");
  ASSERT_EQ(r.errors.size(), 1U);
  const std::string line = r.errors[0].to_string();
  EXPECT_LT(line.size(), 400U) << line.substr(0, 400);
  EXPECT_EQ(line.rfind("<t>:2:1: boundary.\"" + repeated("k", 64) + "\"...: unknown key", 0), 0U)
      << line.substr(0, 400);
}

// toml++ nests one table per dot and frees them by recursion: 60,000 parts
// overflowed the stack. Keys of more than 32 parts are refused before
// parsing, wherever the key is (a line, a table header, an inline table,
// quoted parts); dots in strings, comments and floats are not key parts.
TEST(ConfigLoader, KeysNestedTooDeepAreRefusedAtTheKey) {
  const std::string deep = repeated("a.", 60000) + "b";
  const std::string quoted_parts = repeated("\"a\" . ", 33) + "b";
  const std::pair<std::string, std::string> cases[] = {
      {"[boundary]\n" + deep + " = 1\n", "<test>:2:1: TOML syntax: key nested too deep"},
      {"[admission]\nshadow = true\n[" + deep + "]\n", "<test>:3:2: TOML syntax: key nested"},
      {"[admission]\nx = { " + quoted_parts + " = 1 }\n", "<test>:2:7: TOML syntax: key nested"},
      // A multi-line string ending in quotes of its own ("q\"") does not
      // hide the key after it.
      {"[admission]\nx = { s = \"\"\"q\"\"\"\", " + deep + " = 1 }\n",
       "<test>:2:21: TOML syntax: key nested too deep"},
      {"[admission]\nx = [ '''q'''', { " + deep + " = 1 } ]\n",
       "<test>:2:19: TOML syntax: key nested too deep"},
      // Arrays and inline tables one inside another, each under a key of 32
      // parts: at most 64 levels.
      {"[admission]\nx = " + repeated("[", 65) + repeated("]", 65) + "\n",
       "<test>:2:69: TOML syntax: nested too deep: more than 64 levels of arrays and inline "
       "tables"},
  };
  for (const auto& [text, expected] : cases) {
    LoadResult r = load(text);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(has_error(r, expected)) << "expected: " << expected << "\ngot:\n" << all_errors(r);
  }
  // 32 parts is a key toml++ can hold: refused for what it is, not its depth.
  const std::string k32 = "a" + repeated(".a", 31);
  LoadResult r = load("[admission]\n" + k32 + " = 1\n");
  EXPECT_TRUE(has_error(r, "<test>:2:1: admission.a: unknown key")) << all_errors(r);
  // Dots that are not key parts.
  std::string dots(200, '.');
  r = load("# " + dots + "\n[admission]\nseed = 7 # " + dots + "\n[control]\naudit_log = \"/tmp/" +
           dots + "\"\n");
  EXPECT_TRUE(r.ok()) << all_errors(r);
}

// ---------------------------------------------------------------------------
// Overrides and profiles

const char* const kBase = R"(
[boundary]
lookups_per_sec = 40000

[admission]
sticky_window_ms = 100

[[class]]
name = "checkpoint"
priority = 0
per_source = { rate_per_sec = 5 }

[[class]]
name = "citizen"
priority = 5
rate_per_sec = 10000

[profiles.surge-1]
"class.citizen.rate_per_sec" = 5000
"boundary.lookups_per_sec" = 30000
)";

TEST(ConfigOverrides, ApplyTypedValues) {
  LoadResult r = apply_overrides(doc(kBase), "base.toml",
                                 {{"class.citizen.rate_per_sec", "20000"},
                                  {"boundary.lookups_per_sec", "50000"},
                                  {"boundary.packets_per_sec", "1_000_000"},
                                  {"admission.shadow", "true"},
                                  {"class.checkpoint.on_shed", "\"reset\""},
                                  {"class.checkpoint.per_source.rate_per_sec", "2"},
                                  {"class.citizen.match.src", "[\"198.18.0.0/16\"]"},
                                  {"dataplane.mode", "\"xdp\""}});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.source, "base.toml");
  EXPECT_EQ(find_class(c, "citizen")->rate_per_sec, 20000u);
  EXPECT_EQ(find_class(c, "citizen")->burst, 2000u);  // default follows the new rate
  EXPECT_EQ(c.boundary.lookups_per_sec, 50000u);
  EXPECT_EQ(c.boundary.packets_per_sec, 1000000u);
  EXPECT_TRUE(c.admission.shadow);
  EXPECT_EQ(find_class(c, "checkpoint")->on_shed, ShedAction::reset);
  EXPECT_EQ(find_class(c, "checkpoint")->per_source->rate_per_sec, 2u);
  ASSERT_EQ(find_class(c, "citizen")->match.src.size(), 1u);
  EXPECT_EQ(find_class(c, "citizen")->match.src[0].text, "198.18.0.0/16");
  EXPECT_EQ(c.dataplane.mode, DataplaneKind::xdp);
}

TEST(ConfigOverrides, ReachTheImpliedDefaultClass) {
  LoadResult r = apply_overrides(doc(kBase), "base.toml", {{"class.default.rate_per_sec", "10"}});
  ASSERT_TRUE(r.ok()) << all_errors(r);
  const ClassConfig& d = r.config->classes.back();
  EXPECT_EQ(d.name, "default");
  EXPECT_EQ(d.priority, 7);
  EXPECT_EQ(d.rate_per_sec, 10u);
  EXPECT_EQ(r.config->classes.size(), 3u);
}

struct OverrideErrorCase {
  const char* name;
  std::vector<std::pair<std::string, std::string>> settings;
  const char* expected;
};

TEST(ConfigOverrides, RejectAllOrNothing) {
  const OverrideErrorCase cases[] = {
      {"unknown class",
       {{"class.citizens.rate_per_sec", "5"}},
       "<override>:1:1: class.citizens.rate_per_sec: unknown class \"citizens\"; classes are: "
       "checkpoint, citizen, default"},
      {"wrong type",
       {{"class.citizen.rate_per_sec", "\"fast\""}},
       "<override>:1:1: class.citizen.rate_per_sec: expected an integer in 1..1000000000, found "
       "string \"fast\""},
      {"one bad setting rejects the good ones",
       {{"boundary.lookups_per_sec", "1"}, {"admission.shadow", "1"}},
       "<override>:2:1: admission.shadow: expected a boolean"},
      {"unknown key", {{"boundary.lookups", "5"}}, "<override>:1:1: boundary.lookups: unknown key"},
      {"unknown section", {{"bogus.x", "5"}}, "<override>:1:1: bogus.x: bogus: unknown key"},
      {"not TOML",
       {{"class.citizen.rate_per_sec", "fast"}},
       "<override>:1:1: class.citizen.rate_per_sec: expected a TOML value"},
      {"more than one value",
       {{"admission.shadow", "true\nseed = 1"}},
       "<override>:1:1: admission.shadow: expected a single TOML value"},
      {"a whole table, which would drop the keys it does not name",
       {{"boundary", "{ lookups_per_sec = 30000 }"}},
       "<override>:1:1: boundary: boundary is a table: set its keys one by one"},
      {"the whole class list",
       {{"class", "[]"}},
       "<override>:1:1: class: class is a table: set its keys one by one"},
      {"an unknown top-level key (it was called a table)",
       {{"bogus", "1"}},
       "<override>:1:1: bogus: unknown key; expected one of: dataplane, boundary, admission, "
       "metrics, control, fleet, class, profiles"},
      {"class without a key",
       {{"class.citizen", "{}"}},
       "<override>:1:1: class.citizen: expected class.NAME.KEY"},
      {"key nested too deep",
       {{"boundary" + repeated(".a", 15000), "1"}},
       "key nested too deep: more than 32 dotted parts"},
      {"value nested too deep",
       {{"admission.x", "{" + repeated("a.", 60000) + "b = 1}"}},
       "<override>:1:1: admission.x: expected a TOML value (strings in double quotes), found"},
      {"control characters in a key are escaped",
       {{"class.cit\x1b[31mizen.rate_per_sec", "5"}},
       "<override>:1:1: \"class.cit\\x1b[31mizen.rate_per_sec\": "},
      {"malformed key",
       {{"boundary..lookups_per_sec", "5"}},
       "<override>:1:1: boundary..lookups_per_sec: malformed key"},
      {"through a value",
       {{"boundary.lookups_per_sec.x", "5"}},
       "<override>:1:1: boundary.lookups_per_sec.x: boundary.lookups_per_sec is integer 40000, "
       "not a table"},
      {"profiles are not overridable",
       {{"profiles.surge-1", "{}"}},
       "<override>:1:1: profiles.surge-1: profiles cannot be changed"},
      {"bad element inside an array value",
       {{"class.citizen.match.src", "[\"198.18.0.0/15\", \"x\"]"}},
       "<override>:1:1: class.citizen.match.src: class.citizen.match.src[1]: expected an IPv4"},
      {"rule broken in the file's own node",
       {{"admission.sticky_epoch_sec", "1"}, {"admission.sticky_window_ms", "1000"}},
       "<override>:2:1: admission.sticky_window_ms: must be less than sticky_epoch_sec"},
      {"default must not get a match",
       {{"class.default.match.proto", "\"tcp\""}},
       "<override>:1:1: class.default.match.proto: class.default.match: the default class"},
      {"burst without rate in a new per_source",
       {{"class.citizen.per_source.burst", "5"}},
       "<override>:1:1: class.citizen.per_source.burst: class.citizen.per_source.rate_per_sec: "
       "missing"},
  };
  for (const OverrideErrorCase& c : cases) {
    LoadResult r = apply_overrides(doc(kBase), "base.toml", c.settings);
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_FALSE(r.config.has_value()) << c.name;
    EXPECT_TRUE(has_error(r, c.expected)) << c.name << "\nexpected: " << c.expected << "\ngot:\n"
                                          << all_errors(r);
  }
}

TEST(ConfigOverrides, BaseErrorsKeepTheirPosition) {
  LoadResult r = apply_overrides("[boundary]\nlookups_per_sec = 0\n", "base.toml",
                                 {{"admission.shadow", "true"}});
  EXPECT_TRUE(has_error(r, "base.toml:2:19: boundary.lookups_per_sec: expected")) << all_errors(r);
  r = apply_overrides("[boundary\n", "base.toml", {});
  EXPECT_TRUE(has_error(r, "base.toml:1:")) << all_errors(r);
}

const char* const kProfiles = R"(
[boundary]
lookups_per_sec = 40000

[[class]]
name = "citizen"
priority = 5
rate_per_sec = 10000

[profiles.surge-1]
"class.citizen.rate_per_sec" = 5000
"boundary.lookups_per_sec" = 30000

[profiles.surge-2]
class.citizen.shed_order = "random"
"class.citizen.match" = { src = ["198.18.0.0/15", "2001:2::/48"] }
)";

TEST(ConfigProfiles, AreKeptAsTomlTextInSourceOrder) {
  Config c = load_ok(kProfiles);
  ASSERT_EQ(c.profiles.size(), 2u);
  const auto& s1 = c.profiles.at("surge-1").settings;
  ASSERT_EQ(s1.size(), 2u);
  EXPECT_EQ(s1[0], (std::pair<std::string, std::string>{"class.citizen.rate_per_sec", "5000"}));
  EXPECT_EQ(s1[1], (std::pair<std::string, std::string>{"boundary.lookups_per_sec", "30000"}));
  const auto& s2 = c.profiles.at("surge-2").settings;
  ASSERT_EQ(s2.size(), 2u);
  EXPECT_EQ(s2[0].first, "class.citizen.shed_order");  // unquoted dotted key, flattened
  EXPECT_EQ(s2[1].first, "class.citizen.match");
  // The kept text is TOML that applies like the original.
  LoadResult r = apply_overrides(doc(kProfiles), "p.toml", s2);
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(find_class(*r.config, "citizen")->match.src.size(), 2u);
}

TEST(ConfigProfiles, ApplyByName) {
  LoadResult r = apply_profile(doc(kProfiles), "p.toml", "surge-1");
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(find_class(*r.config, "citizen")->rate_per_sec, 5000u);
  EXPECT_EQ(r.config->boundary.lookups_per_sec, 30000u);
  EXPECT_EQ(r.config->profiles.size(), 2u);  // still available for the next switch

  r = apply_profile(doc(kProfiles), "p.toml", "surge-2");
  ASSERT_TRUE(r.ok()) << all_errors(r);
  EXPECT_EQ(find_class(*r.config, "citizen")->shed_order, ShedOrder::random);
  EXPECT_EQ(find_class(*r.config, "citizen")->rate_per_sec, 10000u);  // not stacked on surge-1
}

TEST(ConfigProfiles, UnknownProfileIsAnError) {
  LoadResult r = apply_profile(doc(kProfiles), "p.toml", "surge-3");
  EXPECT_FALSE(r.ok());
  // At the enclosing table (the first [profiles.NAME]), not 0:0, which is a
  // file that could not be read.
  EXPECT_TRUE(has_error(r,
                        "p.toml:9:1: profiles.surge-3: unknown profile; profiles are: surge-1, "
                        "surge-2"))
      << all_errors(r);
  r = apply_profile("", "p.toml", "surge-1");
  EXPECT_TRUE(
      has_error(r, "p.toml:1:1: profiles.surge-1: unknown profile; no profiles are defined"))
      << all_errors(r);
}

// A profile is switched live: one that changes a key only a restart changes
// would be refused at every switch, so the file is invalid, at the entry
// responsible; also when the file lacks the key's table (the profile writes
// it whole, `admission = { ... }`, which diffs key by key).
TEST(ConfigProfiles, ARestartOnlyKeyInAProfileIsAnError) {
  LoadResult r = load(R"(
[[class]]
name = "citizen"

[profiles.bigger]
"class.citizen.rate_per_sec" = 50
"admission.flow_table_size" = 16384

[profiles.mode]
"dataplane.mode" = "dpdk"
)");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r,
                        "<test>:6:1: profiles.bigger.\"admission.flow_table_size\": "
                        "admission.flow_table_size changes only at restart"))
      << all_errors(r);
  EXPECT_TRUE(has_error(r,
                        "<test>:9:1: profiles.mode.\"dataplane.mode\": dataplane.mode changes "
                        "only at restart"))
      << all_errors(r);
  EXPECT_EQ(r.errors.size(), 2u) << all_errors(r);
  const std::vector<DiffEntry> d =
      config_diff("[[class]]\nname = \"c\"\n",
                  "admission = { flow_table_size = 16384 }\n[[class]]\nname = \"c\"\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "admission.flow_table_size");
}

// A profile that restates a restart-only key at the value the base runs (its
// default, or the base's own, spelt another way) changes nothing a restart
// would: the file loads, as a live switch to that profile is taken. Before,
// the load refused what the switch accepted.
TEST(ConfigProfiles, ARestartOnlyKeyRestatedAtItsValueIsNoError) {
  LoadResult r = load(R"(
[dataplane]
mode = "xdp"

[[class]]
name = "citizen"

[profiles.same]
"class.citizen.rate_per_sec" = 50
"admission.flow_table_size" = 262144
"dataplane.mode" = "xdp"
)");
  EXPECT_TRUE(r.ok()) << all_errors(r);
}

// A profile that writes a whole table (its keys quoted as one) is an error
// at that entry: applied, it would drop every key of the table it does not
// name (here the boundary's packet budget).
TEST(ConfigProfiles, AProfileWritingAWholeTableIsAnError) {
  LoadResult r = load(R"(
[boundary]
lookups_per_sec = 40000
packets_per_sec = 2000000

[profiles.surge]
"boundary" = { lookups_per_sec = 30000 }
)");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "boundary is a table: set its keys one by one")) << all_errors(r);
  EXPECT_TRUE(has_error(r, "<test>:6:1: profiles.surge")) << all_errors(r);
}

// One pass names everything wrong: a profile's errors are reported while
// the base has errors too, and the base's own (which every profile's check
// meets again) once each.
TEST(ConfigProfiles, ErrorsAreReportedAlongWithTheBasesOnce) {
  LoadResult r = load(R"(
[boundary]
lookups_per_sec = "many"

[[class]]
name = "citizen"

[profiles.surge-1]
"class.citizen.rate_per_sec" = "fast"

[profiles.surge-2]
"class.citizens.rate_per_sec" = 5
)");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "<test>:2:19: boundary.lookups_per_sec: expected an integer"))
      << all_errors(r);
  EXPECT_TRUE(has_error(r,
                        "<test>:8:1: profiles.surge-1.\"class.citizen.rate_per_sec\": expected an "
                        "integer in 1..1000000000, found string \"fast\""))
      << all_errors(r);
  EXPECT_TRUE(has_error(r,
                        "<test>:11:1: profiles.surge-2.\"class.citizens.rate_per_sec\": unknown "
                        "class \"citizens\""))
      << all_errors(r);
  EXPECT_EQ(r.errors.size(), 3u) << all_errors(r);
}

TEST(ConfigProfiles, ShippedProfilesApply) {
  const std::string path = std::string(SLUICE_SOURCE_DIR) + "/config/sluice.toml";
  LoadResult base = load_config_file(path);
  ASSERT_TRUE(base.ok()) << all_errors(base);
  const std::string text = read_file(path);
  ASSERT_FALSE(text.empty());
  for (const auto& [name, overlay] : base.config->profiles) {
    LoadResult r = apply_profile(text, path, name);
    EXPECT_TRUE(r.ok()) << name << "\n" << all_errors(r);
  }
  LoadResult r = apply_profile(text, path, "surge-2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(find_class(*r.config, "citizen")->rate_per_sec, 2000u);
  EXPECT_EQ(find_class(*r.config, "checkpoint")->per_source->rate_per_sec, 2u);
}

}  // namespace
}  // namespace sluice
