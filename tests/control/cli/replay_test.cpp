// SPDX-License-Identifier: Apache-2.0
// Offline replay on captures made by the test: the JSON shape and numbers,
// determinism, pcapng, and clear errors for files it cannot read.
#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "control/cli/replay.hpp"
#include "tests/support/capture_writer.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/traffic.hpp"

namespace sluice {
namespace {

using test::CapturedFrame;
using test::kSecond;
using test::PacketBuilder;

constexpr const char* kConfig = R"(
[boundary]
lookups_per_sec = 150
lookups_burst = 15

[[class]]
name = "checkpoint"
priority = 0
match = { src = "198.18.10.0/24", proto = "tcp", dst_ports = "443" }
rate_per_sec = 100
burst = 10
on_shed = "reset"

[[class]]
name = "citizen"
priority = 5
match = { src = "198.18.0.0/15" }
rate_per_sec = 1000
shed_order = "random"
)";

class Replay : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-replay-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // 2 s of traffic: checkpoint SYNs at 50/s (under its rate), citizen SYNs at
  // 500/s (over the boundary), continuations, an ARP and a malformed frame.
  std::vector<CapturedFrame> surge() {
    std::vector<CapturedFrame> frames;
    std::mt19937_64 rng(11);
    uint64_t t0 = 1700000000ULL * kSecond;
    for (int i = 0; i < 100; i++) {
      auto f = test::syn_v4(test::kNet198_18 | 10 << 8 | static_cast<uint32_t>(i % 50 + 1));
      frames.push_back({t0 + static_cast<uint64_t>(i) * kSecond / 50 + 1, f});
      auto ack = PacketBuilder()
                     .ipv4("198.18.10.9", "198.19.0.1")
                     .tcp(40000, 443, test::kAck)
                     .payload(100)
                     .build();
      frames.push_back({t0 + static_cast<uint64_t>(i) * kSecond / 50 + 2, ack});
    }
    for (int i = 0; i < 1000; i++) {
      auto f =
          test::syn_v4(test::kNet198_18 + 0x10000 + static_cast<uint32_t>(rng() % 60000 + 0x100));
      frames.push_back({t0 + static_cast<uint64_t>(i) * kSecond / 500 + 3, f});
    }
    frames.push_back({t0 + 5, PacketBuilder().non_ip(0x0806).build()});
    auto bad = test::syn_v4(test::kNet198_18 | 0x0a01);
    bad.resize(30);
    frames.push_back({t0 + 6, bad});
    std::stable_sort(frames.begin(), frames.end(),
                     [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
    return frames;
  }

  std::filesystem::path dir_;
};

TEST_F(Replay, JsonPerClassAndTotals) {
  const std::string pcap = dir_ / "surge.pcap";
  test::write_pcap(pcap, surge());
  CompiledProfile profile = test::profile_from_toml(kConfig);
  std::string error;
  auto result = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(result) << error;
  nlohmann::json j = to_json(*result);

  const auto& cp = j["classes"]["checkpoint"];
  EXPECT_EQ(cp["packets"], 200);
  EXPECT_EQ(cp["lookups"], 100);
  EXPECT_EQ(cp["admitted"], 100);  // under its rate and priority 0: nothing lost
  EXPECT_EQ(cp["shed"], 0);
  EXPECT_EQ(cp["packets_admitted"], 200);

  const auto& ci = j["classes"]["citizen"];
  EXPECT_EQ(ci["lookups"], 1000);
  EXPECT_EQ(ci["packets"], 1000);
  // 2 s at 150/s + 15 burst for everyone, priority 5 keeps 31% of the burst back.
  const int citizen_admitted = ci["admitted"];
  EXPECT_GE(citizen_admitted, 150 * 2 + 15 - 100 - 15);
  EXPECT_LE(citizen_admitted, 150 * 2 + 15 - 100);
  EXPECT_EQ(ci["admitted"].get<int>() + ci["shed"].get<int>(), 1000);
  EXPECT_EQ(ci["shed_by_reason"]["boundary_lookups"], ci["shed"]);
  EXPECT_EQ(ci["lookups_shed_by_reason"]["boundary_lookups"], ci["shed"]);

  const auto& def = j["classes"]["default"];
  EXPECT_EQ(def["packets"], 2);
  EXPECT_EQ(def["shed_by_reason"]["malformed"], 1);
  EXPECT_EQ(def["admitted_by_reason"]["non_ip"], 1);

  const auto& t = j["totals"];
  EXPECT_EQ(t["packets"], 1202);
  EXPECT_EQ(t["lookups"], 1100);
  EXPECT_EQ(t["packets_admitted"].get<int>() + t["packets_shed"].get<int>(), 1202);
  EXPECT_EQ(t["admitted"], 100 + citizen_admitted);
}

TEST_F(Replay, SameCaptureSameNumbers) {
  const std::string pcap = dir_ / "surge.pcap";
  test::write_pcap(pcap, surge());
  CompiledProfile profile = test::profile_from_toml(kConfig);
  std::string error;
  auto a = replay_pcap(profile, pcap, &error);
  auto b = replay_pcap(test::profile_from_toml(kConfig), pcap, &error);
  ASSERT_TRUE(a && b) << error;
  EXPECT_EQ(to_json(*a).dump(), to_json(*b).dump());
}

TEST_F(Replay, PcapngGivesTheSameAnswer) {
  const std::string pcap = dir_ / "surge.pcap";
  const std::string pcapng = dir_ / "surge.pcapng";
  auto frames = surge();
  for (auto& f : frames) f.ts_ns -= f.ts_ns % 1000;  // pcapng here is microseconds
  test::write_pcap(pcap, frames);
  test::write_pcapng(pcapng, frames);
  CompiledProfile profile = test::profile_from_toml(kConfig);
  std::string error;
  auto a = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(a) << error;
  auto b = replay_pcap(profile, pcapng, &error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(to_json(*a).dump(), to_json(*b).dump());
  EXPECT_EQ(to_json(*b)["totals"]["packets"], 1202);
}

TEST_F(Replay, ClearErrors) {
  CompiledProfile profile = test::profile_from_toml(kConfig);
  std::string error;
  EXPECT_FALSE(replay_pcap(profile, (dir_ / "missing.pcap").string(), &error));
  EXPECT_NE(error.find("missing.pcap"), std::string::npos) << error;

  const std::string text = dir_ / "notes.txt";
  std::ofstream(text) << "this is not a capture\n";
  EXPECT_FALSE(replay_pcap(profile, text, &error));
  EXPECT_NE(error.find("notes.txt: cannot read capture"), std::string::npos) << error;

  const std::string raw = dir_ / "raw.pcap";
  test::write_pcap(raw, {{1, {0x45, 0, 0, 20}}}, DLT_RAW);
  EXPECT_FALSE(replay_pcap(profile, raw, &error));
  EXPECT_NE(error.find("expected Ethernet"), std::string::npos) << error;

  const std::string cut = dir_ / "cut.pcap";
  test::write_pcap(cut, surge());
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 7);
  EXPECT_FALSE(replay_pcap(profile, cut, &error));
  EXPECT_NE(error.find("cut.pcap"), std::string::npos) << error;
}

// A capture of both directions at the perimeter: with --return-src the
// servers' frames are the return path (they open flows and are not decided),
// so the clients' continuations of admitted SYNs are verified and spoofed
// ones are charged; without it, the servers' frames are decided as well.
TEST_F(Replay, ReturnPathFramesFeedTheFlowTable) {
  const std::string pcap = (dir_ / "both.pcap").string();
  std::vector<CapturedFrame> frames;
  uint64_t t = 1'700'000'000ULL * kSecond;
  for (uint16_t i = 0; i < 20; i++) {  // 20 connections of 3 client segments each
    const uint16_t port = static_cast<uint16_t>(40000 + i);
    auto client = [&](uint8_t flags) {
      return PacketBuilder().ipv4("198.18.10.5", "198.19.0.1").tcp(port, 443, flags).build();
    };
    frames.push_back({t += 100'000'000, client(test::kSyn)});  // 10 connections/s
    frames.push_back({t += 1000, PacketBuilder()
                                     .ipv4("198.19.0.1", "198.18.10.5")
                                     .tcp(443, port, test::kSyn | test::kAck)
                                     .build()});
    frames.push_back({t += 1000, client(test::kAck)});
    frames.push_back({t += 1000, client(test::kFin | test::kAck)});
    frames.push_back(  // spoofed
        {t += 1000,
         PacketBuilder().ipv4("198.18.77.1", "198.19.0.1").tcp(port, 443, test::kAck).build()});
  }
  t += 20 * kSecond;  // past the learning window
  frames.push_back(
      {t, PacketBuilder().ipv4("198.18.77.1", "198.19.0.1").tcp(1, 443, test::kAck).build()});
  test::write_pcap(pcap, frames);
  const CompiledProfile profile =
      test::profile_from_toml(std::string(kConfig) + "[admission]\nflow_learn_sec = 0\n");
  LpmEntry servers;
  servers.family = 4;
  servers.len = 16;
  servers.addr_be = {198, 19};
  servers.class_mask = 1;
  std::string error;
  auto with = replay_pcap(profile, pcap, &error, {servers});
  ASSERT_TRUE(with) << error;
  EXPECT_EQ(with->totals.packets, 81u);  // the servers' 20 frames are not decided
  EXPECT_EQ(with->totals.admitted_by_reason["continuation"], 40u);
  EXPECT_EQ(with->totals.admitted_by_reason["unverified"], 21u);
  auto without = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(without) << error;
  EXPECT_EQ(without->totals.packets, 101u);
  EXPECT_EQ(without->totals.admitted_by_reason["unverified"], 41u);  // SYN-ACKs too
}

}  // namespace
}  // namespace sluice
