// SPDX-License-Identifier: Apache-2.0
// Pcap in, pcap out: a capture with known timestamps goes through the DPDK
// dataplane on net_pcap vdevs with the capture clock; what leaves on the
// inside port is exactly what the reference model (the engine of `sluicectl
// replay`) admits, in the same order, and the resets it sheds with leave on
// the outside port. Root only (DPDK).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "control/cli/replay.hpp"
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "dataplane/reference/reference.hpp"
#include "tests/dpdk/dpdk_test_env.hpp"
#include "tests/support/capture_writer.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice::test {
namespace {

constexpr const char* kConfig = R"(
[admission]
flow_learn_sec = 1  # learning in the first second, verified or charged after

[boundary]
lookups_per_sec = 300
lookups_burst = 30

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"] }
rate_per_sec = 100
burst = 10
on_shed = "reset"

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
rate_per_sec = 80
burst = 8
on_shed = "reset"
shed_order = "random"
per_source = { rate_per_sec = 2, burst = 2 }

[[class]]
name = "bulk"
priority = 7
match = { proto = "udp" }
rate_per_sec = 50
burst = 5
on_shed = "mark"
mark_dscp = 8
)";

// A surge: SYNs and UDP lookups from many sources (IPv4 and IPv6),
// continuations of earlier SYNs and spoofed ones, ARP, and a few malformed
// frames, `seconds` long at about `rate` frames/s.
std::vector<CapturedFrame> surge_capture(uint64_t seconds = 3, double rate = 1500) {
  std::mt19937_64 rng(7);
  std::vector<CapturedFrame> frames;
  std::vector<uint32_t> syn_sources;  // IPv4 SYNs sent (sport 40000, dport 443)
  uint64_t t = 1'700'000'000ULL * kSecond;
  const uint64_t end = t + seconds * kSecond;
  for (uint32_t i = 0; t < end; i++) {
    t += poisson_gap_ns(rng, rate) / 1000 * 1000 + 1000;  // net_pcap stamps in microseconds
    std::vector<uint8_t> f;
    const uint32_t pick = static_cast<uint32_t>(rng() % 100);
    const uint32_t host = static_cast<uint32_t>(rng() % 250) + 1;
    if (pick < 10) {
      syn_sources.push_back(kNet198_18 | (10u << 8) | host);
      f = syn_v4(syn_sources.back());  // checkpoint
    } else if (pick < 55) {
      syn_sources.push_back(kNet198_18 | ((20u + host % 40) << 8) | host);
      f = syn_v4(syn_sources.back());  // citizens
    } else if (pick < 65) {
      const std::string src =
          "2001:2:0:" + std::to_string(pick < 58 ? 10 : 20) + "::" + std::to_string(host);
      f = PacketBuilder().ipv6(src, "2001:2:ff::1").tcp(40000, 443, kSyn).build();
    } else if (pick < 80) {
      f = udp_v4(kNet198_18 | (30u << 8) | host);
    } else if (pick < 88 && !syn_sources.empty()) {
      // A continuation of an earlier SYN: verified when that SYN was admitted.
      f = syn_v4(syn_sources[rng() % syn_sources.size()]);
      f[14 + 20 + 13] = kAck;
    } else if (pick < 95) {
      f = PacketBuilder()
              .ipv4("198.18.20." + std::to_string(host), "198.19.0.1")
              .tcp(static_cast<uint16_t>(rng()), 443, kAck)
              .payload(100)
              .build();  // spoofed continuation
    } else if (pick < 98) {
      f = PacketBuilder().non_ip(0x0806).build();  // ARP
    } else {
      f = syn_v4(kNet198_18 | host);
      f.resize(14 + 10);  // truncated IPv4 header: malformed
    }
    frames.push_back({t, std::move(f)});
  }
  return frames;
}

// Runs `frames` through DPDK on net_pcap with the capture clock and checks
// the inside and outside captures against the reference model's decisions.
// config: kConfig, or it with a packet budget (paced: frames leave the
// priority rings in priority order, so the inside is compared as a set).
void expect_dpdk_matches_model(const std::vector<CapturedFrame>& frames,
                               const std::string& config = kConfig, bool paced = false) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("sluice-dpdk-pcap-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = dir / "in.pcap", empty = dir / "empty.pcap";
  const std::string inside = dir / "inside.pcap", outside = dir / "outside.pcap";
  write_pcap(in, frames);
  write_pcap(empty, {});
  const CompiledProfile profile = profile_from_toml(config);

  // The oracle: the reference model over the same frames and timestamps,
  // with the one worker's credits (dataplane/model/credit.h).
  ReferenceModel model(profile);
  model.use_credits(1);
  std::vector<std::vector<uint8_t>> want_inside, want_outside;
  uint64_t verified = 0, unverified = 0;
  for (const CapturedFrame& f : frames) {
    std::vector<uint8_t> bytes = f.bytes;
    uint32_t len = static_cast<uint32_t>(bytes.size());
    const sl_decision d = model.process(bytes.data(), len, f.ts_ns);
    verified += d.reason == SL_REASON_CONTINUATION;
    unverified += d.reason == SL_REASON_UNVERIFIED;
    bytes.resize(len);
    if (d.action == SL_ACTION_PASS || d.action == SL_ACTION_MARK) want_inside.push_back(bytes);
    if (d.action == SL_ACTION_RESET) want_outside.push_back(bytes);
  }
  std::string error;
  const auto replayed = replay_pcap(profile, in, &error);
  ASSERT_TRUE(replayed) << error;
  ASSERT_GT(replayed->totals.packets_shed, 100u) << "the capture must make the model shed";
  ASSERT_GT(want_outside.size(), 50u) << "and answer some sheds with resets";
  ASSERT_GT(verified, frames.size() / 50) << "and verify continuations";
  ASSERT_GT(unverified, frames.size() / 50) << "and charge spoofed ones";

  DataplaneSettings s = dpdk_settings("net_pcap_out,rx_pcap=" + in + ",tx_pcap=" + outside,
                                      "net_pcap_in,rx_pcap=" + empty + ",tx_pcap=" + inside);
  s.dpdk_clock = DpdkClock::capture;
  {
    DpdkDataplane dp(s);
    ASSERT_TRUE(dp.start(profile, 1, &error)) << error;
    ASSERT_TRUE(await([&] { return total_packets(dp.stats()) >= frames.size(); }))
        << "processed " << total_packets(dp.stats()) << " of " << frames.size();
    const DataplaneStats st = dp.stats();
    ASSERT_EQ(st.ports.size(), 2u);
    EXPECT_EQ(st.ports[0].rx_packets, frames.size());
    ASSERT_TRUE(await([&] {
      const DataplaneStats now = dp.stats();
      return now.ports[1].tx_packets + now.ports[1].tx_dropped >= want_inside.size() &&
             now.ports[0].tx_packets >= want_outside.size();
    })) << "inside tx "
        << dp.stats().ports[1].tx_packets << " (want " << want_inside.size() << "), outside tx "
        << dp.stats().ports[0].tx_packets << " (want " << want_outside.size() << ")";
    // Counters agree with the replay, class by class.
    const ReplayResult got = summarize(profile, [&] {
      sl_counters c{};
      for (uint32_t k = 0; k < st.classes.size(); k++) {
        std::memcpy(c.packets[k], st.classes[k].packets, sizeof(c.packets[k]));
        std::memcpy(c.lookups[k], st.classes[k].lookups, sizeof(c.lookups[k]));
      }
      for (uint32_t p = 0; p < SL_PRIORITIES; p++)  // replay's learned flows
        for (uint32_t e = 0; e < SL_FLOW_EV_COUNT; e++) c.flow_events[p][e] = st.flow_events[p][e];
      return c;
    }());
    EXPECT_EQ(to_json(got), to_json(*replayed));
    // And the flow table: the same entries and events as the model's.
    for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
      EXPECT_EQ(st.flow_entries[p], model.flows().size(p)) << "priority " << p;
      for (uint32_t e = 0; e < SL_FLOW_EV_COUNT; e++)
        EXPECT_EQ(st.flow_events[p][e], model.counters().flow_events[p][e])
            << "priority " << p << " event " << e;
    }
    dp.stop();  // closes the pcap writers
  }
  auto got_inside = read_frames(inside);
  const auto got_outside = read_frames(outside);
  if (paced) {
    std::sort(got_inside.begin(), got_inside.end());
    std::sort(want_inside.begin(), want_inside.end());
  }
  EXPECT_EQ(got_inside.size(), want_inside.size());
  EXPECT_TRUE(got_inside == want_inside) << "inside frames differ from the model's admits";
  EXPECT_EQ(got_outside.size(), want_outside.size());
  EXPECT_TRUE(got_outside == want_outside) << "outside frames differ from the model's resets";
  std::printf("dpdk vs model: %zu frames, %llu verified, %llu unverified, %zu admitted\n",
              frames.size(), static_cast<unsigned long long>(verified),
              static_cast<unsigned long long>(unverified), got_inside.size());
  std::filesystem::remove_all(dir);
}

TEST(DpdkPcap, InsideCarriesExactlyWhatTheModelAdmits) {
  SLUICE_REQUIRE_ROOT();
  expect_dpdk_matches_model(surge_capture());
}

// With a packet budget (one that never binds: 1 M/s against 1,500 frames/s)
// admitted frames wait in the priority rings; a shed passed marked does not,
// and counts as a shed (it was counted admitted when it went through them).
TEST(DpdkPcap, PacedMarkedShedsAreCountedAsTheModelCountsThem) {
  SLUICE_REQUIRE_ROOT();
  std::string config = kConfig;
  const std::string at = "lookups_burst = 30\n";
  config.replace(config.find(at), at.size(),
                 at + "packets_per_sec = 1000000\npackets_burst = 100000\n");
  // The citizens' sheds marked (most of the capture's sheds).
  const std::string reset = "on_shed = \"reset\"\nshed_order";
  config.replace(config.find(reset), reset.size(),
                 "on_shed = \"mark\"\nmark_dscp = 10\nshed_order");
  expect_dpdk_matches_model(surge_capture(), config, true);
}

// The randomized differential trace at 100k frames: spoofed continuations
// and continuations of admitted SYNs, frame for frame as the model decides.
TEST(DpdkPcap, HundredThousandFramesMatchTheModel) {
  SLUICE_REQUIRE_ROOT();
  const auto frames = surge_capture(5, 20000);
  ASSERT_GT(frames.size(), 95'000u);
  expect_dpdk_matches_model(frames);
}

}  // namespace
}  // namespace sluice::test
