// SPDX-License-Identifier: Apache-2.0
// Offline replay on captures made by the test: the JSON shape and numbers,
// determinism, pcapng, and clear errors for files it cannot read.
#include <gtest/gtest.h>
#include <pcap/dlt.h>
#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "control/cli/pcapng_writer.hpp"
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

// The same packets captured as Linux cooked (tcpdump -i any: SLL, SLL2) or
// raw IP replay exactly as their Ethernet capture does.
TEST_F(Replay, CookedAndRawCapturesGiveTheSameAnswer) {
  std::vector<CapturedFrame> eth = surge(), sll, sll2, raw, eth_ip;
  for (const CapturedFrame& f : eth) {
    const std::vector<uint8_t> payload(f.bytes.begin() + 14, f.bytes.end());
    const uint8_t type_hi = f.bytes[12], type_lo = f.bytes[13];
    std::vector<uint8_t> a = {0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, type_hi, type_lo};
    a.insert(a.end(), payload.begin(), payload.end());
    sll.push_back({f.ts_ns, a});
    std::vector<uint8_t> b = {type_hi, type_lo, 0, 0, 0, 0, 0, 2, 0, 1,
                              0,       6,       2, 0, 0, 0, 0, 1, 0, 0};
    b.insert(b.end(), payload.begin(), payload.end());
    sll2.push_back({f.ts_ns, b});
    if (type_hi == 0x08 && type_lo == 0x00) {  // raw IP holds only IP (no ARP)
      raw.push_back({f.ts_ns, payload});
      eth_ip.push_back(f);
    }
  }
  CompiledProfile profile = test::profile_from_toml(kConfig);
  auto replayed = [&](const std::vector<CapturedFrame>& frames, int dlt, const char* name) {
    const std::string path = dir_ / name;
    test::write_pcap(path, frames, dlt);
    std::string error;
    auto r = replay_pcap(profile, path, &error);
    EXPECT_TRUE(r) << error;
    return r ? to_json(*r).dump() : std::string();
  };
  const std::string want = replayed(eth, DLT_EN10MB, "eth.pcap");
  EXPECT_EQ(replayed(sll, DLT_LINUX_SLL, "sll.pcap"), want);
  EXPECT_EQ(replayed(sll2, DLT_LINUX_SLL2, "sll2.pcap"), want);
  const std::string want_ip = replayed(eth_ip, DLT_EN10MB, "eth-ip.pcap");
  EXPECT_NE(want_ip, want);  // the ARP frame is missing here
  EXPECT_EQ(replayed(raw, DLT_RAW, "raw.pcap"), want_ip);
  // A cooked packet cut inside its own header is malformed, not a crash.
  const std::string cut = dir_ / "cut-sll2.pcap";
  test::write_pcap(cut, {{1, {0x08, 0x00, 0, 0, 0, 0}}}, DLT_LINUX_SLL2);
  std::string error;
  auto r = replay_pcap(profile, cut, &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(to_json(*r)["classes"]["default"]["shed_by_reason"]["malformed"], 1);
}

// The classes and totals of a replay (without what it skipped or restored).
std::string decided(const ReplayResult& r) {
  const nlohmann::json j = to_json(r);
  return j["classes"].dump() + j["totals"].dump();
}

// A frame of a Linux cooked capture v2 (tcpdump -i any) with its packet
// type (0 arrived for this host, 4 sent by it) and its interface's ARPHRD
// type (1 Ethernet, 772 loopback).
std::vector<uint8_t> sll2_frame(const std::vector<uint8_t>& eth, uint8_t packet_type,
                                uint16_t hatype = 1) {
  std::vector<uint8_t> b = {eth[12],
                            eth[13],
                            0,
                            0,
                            0,
                            0,
                            0,
                            2,
                            static_cast<uint8_t>(hatype >> 8),
                            static_cast<uint8_t>(hatype),
                            packet_type,
                            6,
                            2,
                            0,
                            0,
                            0,
                            0,
                            1,
                            0,
                            0};
  b.insert(b.end(), eth.begin() + 14, eth.end());
  return b;
}

// A capture cut by its snap length replays as the packets on the wire
// (`sluicectl capture` keeps 256 bytes, tcpdump -s 96 fewer), unless the
// snap cut a header the decision reads: those count as malformed.
TEST_F(Replay, SnappedCapturesAreDecidedAsTheWirePackets) {
  const CompiledProfile profile = test::profile_from_toml(kConfig);
  const std::vector<CapturedFrame> frames = surge();
  auto replayed = [&](uint32_t snaplen) {
    const std::string path = dir_ / ("snap" + std::to_string(snaplen) + ".pcap");
    test::write_pcap(path, frames, DLT_EN10MB, snaplen);
    std::string error;
    auto r = replay_pcap(profile, path, &error);
    EXPECT_TRUE(r) << error;
    return r.value_or(ReplayResult{});
  };
  const ReplayResult whole = replayed(65535);
  EXPECT_EQ(whole.snapped, 0u);
  const ReplayResult snapped = replayed(60);  // the 100 ACKs with data are longer
  EXPECT_EQ(snapped.snapped, 100u);
  EXPECT_EQ(snapped.headers_cut, 0u);
  EXPECT_EQ(decided(snapped), decided(whole));
  EXPECT_EQ(snapped.totals.admitted_by_reason.count("malformed"), 0u);

  // 40 bytes end inside every TCP header: 1,200 frames cut there; the ARP
  // frame (42 bytes) loses only its body, the 30-byte malformed one nothing.
  const ReplayResult cut = replayed(40);
  EXPECT_EQ(cut.snapped, 1201u);
  EXPECT_EQ(cut.headers_cut, 1200u);
  EXPECT_EQ(cut.totals.shed_by_reason.at("malformed"), 1201u);
  EXPECT_EQ(cut.totals.admitted_by_reason.at("non_ip"), 1u);
  EXPECT_NE(to_table(cut).find("except 1200 whose headers it cut"), std::string::npos)
      << to_table(cut);
  // 10 bytes: every Ethernet header cut, every frame counted as cut (a
  // record of fewer bytes than Ethernet's header was malformed unsaid).
  const ReplayResult ten = replayed(10);
  EXPECT_EQ(ten.snapped, frames.size());
  EXPECT_EQ(ten.headers_cut, frames.size());
  EXPECT_EQ(ten.totals.shed_by_reason.at("malformed"), frames.size());
}

// A record whose original length claims more than any frame (a crafted or
// corrupt capture: 0xF0000000 here) is decided at the longest frame's
// length, not padded to gigabytes.
TEST_F(Replay, ARecordClaimingGigabytesIsDecidedAtTheLongestFrame) {
  const CompiledProfile profile = test::profile_from_toml(kConfig);
  const std::vector<CapturedFrame> frames = surge();
  const std::string path = dir_ / "oversized.pcap";
  test::write_pcap(path, frames, DLT_EN10MB, 60);
  // Every record's orig_len (pcap: 24-byte file header, then per record
  // ts_sec, ts_frac, incl_len, orig_len, the bytes).
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::size_t records = 0;
  for (std::size_t at = 24; at + 16 <= bytes.size(); records++) {
    uint32_t incl = 0;
    std::memcpy(&incl, bytes.data() + at + 8, 4);
    const uint32_t huge = 0xF0000000u;
    std::memcpy(bytes.data() + at + 12, &huge, 4);
    at += 16 + incl;
  }
  ASSERT_EQ(records, frames.size());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  std::string error;
  const auto r = replay_pcap(profile, path, &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->oversized, records);
  EXPECT_EQ(r->snapped, records);
  EXPECT_EQ(r->totals.packets, records);
  EXPECT_NE(to_table(*r).find("records claimed a wire length over 65557 bytes"), std::string::npos)
      << to_table(*r);
}

// tcpdump -i any records what the host sends too: those frames never
// arrived at an edge and are not decided, but a server's answers still feed
// the flow state when --return-src names the servers.
TEST_F(Replay, FramesTheCapturingHostSentAreNotDecided) {
  const CompiledProfile profile = test::profile_from_toml(kConfig);
  std::vector<CapturedFrame> in, both;
  for (const CapturedFrame& f : surge()) {
    in.push_back({f.ts_ns, sll2_frame(f.bytes, 0)});
    both.push_back(in.back());
    if (f.bytes.size() >= 14) both.push_back({f.ts_ns, sll2_frame(f.bytes, 4)});  // an echo
  }
  // The host's loopback, both ways (a Prometheus scrape of sluiced itself):
  // never at an edge either.
  for (uint64_t i = 0; i < 3; i++) {
    const auto lo = PacketBuilder().ipv4("127.0.0.1", "127.0.0.1").tcp(40000, 9109, 0x02).build();
    both.push_back({i, sll2_frame(lo, 4, 772)});
    both.push_back({i, sll2_frame(lo, 0, 772)});
  }
  const std::string in_path = dir_ / "in.pcap", both_path = dir_ / "both.pcap";
  test::write_pcap(in_path, in, DLT_LINUX_SLL2);
  test::write_pcap(both_path, both, DLT_LINUX_SLL2);
  std::string error;
  auto a = replay_pcap(profile, in_path, &error);
  ASSERT_TRUE(a) << error;
  auto b = replay_pcap(profile, both_path, &error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(a->outgoing, 0u);
  EXPECT_EQ(b->outgoing, 1208u);
  EXPECT_EQ(decided(*b), decided(*a));
  EXPECT_EQ(b->totals.packets, 1202u);
  EXPECT_NE(to_table(*b).find("1208 frames sent by the capturing host or on its loopback"),
            std::string::npos);
}

// The pcapng `sluicectl capture` writes: libpcap reads every packet back
// with its nanosecond time, captured and wire lengths and bytes (the
// comments it skips; the live capture test reads them with tshark), and
// replay reads the file like any other.
TEST_F(Replay, CaptureFilesReadBack) {
  const std::string path = dir_ / "capture.pcapng";
  cli::PcapngWriter w;
  std::string error;
  ASSERT_TRUE(w.open(path, 64, "test", &error)) << error;
  const auto frames = surge();
  for (const CapturedFrame& f : frames) {
    const std::vector<uint8_t> cut(f.bytes.begin(),
                                   f.bytes.begin() + std::min<std::size_t>(f.bytes.size(), 64));
    ASSERT_TRUE(w.write(f.ts_ns, static_cast<uint32_t>(f.bytes.size()), cut,
                        "class=citizen verdict=shed reason=class_rate"));
  }
  ASSERT_TRUE(w.close());
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  ASSERT_NE(p, nullptr) << errbuf;
  EXPECT_EQ(pcap_datalink(p), DLT_EN10MB);
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  std::size_t i = 0;
  while (pcap_next_ex(p, &hdr, &data) == 1 && i < frames.size()) {
    const CapturedFrame& f = frames[i++];
    EXPECT_EQ(static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ULL +
                  static_cast<uint64_t>(hdr->ts.tv_usec),
              f.ts_ns);
    EXPECT_EQ(hdr->len, f.bytes.size());
    ASSERT_EQ(hdr->caplen, std::min<std::size_t>(f.bytes.size(), 64));
    EXPECT_EQ(std::memcmp(data, f.bytes.data(), hdr->caplen), 0);
  }
  pcap_close(p);
  EXPECT_EQ(i, frames.size());
  auto r = replay_pcap(test::profile_from_toml(kConfig), path, &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(to_json(*r)["totals"]["packets"], frames.size());
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

  const std::string wifi = dir_ / "wifi.pcap";
  test::write_pcap(wifi, {{1, std::vector<uint8_t>(40, 0)}}, DLT_IEEE802_11);
  EXPECT_FALSE(replay_pcap(profile, wifi, &error));
  EXPECT_NE(error.find("wifi.pcap: link type 105 (IEEE802_11) is not supported"), std::string::npos)
      << error;
  EXPECT_NE(error.find("LINUX_SLL2"), std::string::npos) << error;

  const std::string cut = dir_ / "cut.pcap";
  test::write_pcap(cut, surge());
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 7);
  EXPECT_FALSE(replay_pcap(profile, cut, &error));
  EXPECT_NE(error.find("cut.pcap: cannot read the capture to its end: "), std::string::npos)
      << error;
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
    auto client = [&](uint8_t flags) {  // acknowledging the SYN-ACK's 1000 once it has one
      return PacketBuilder()
          .ipv4("198.18.10.5", "198.19.0.1")
          .tcp(port, 443, flags)
          .ack_number(flags & test::kAck ? 1001 : 0)
          .build();
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
  // Cut by a snap length inside the TCP header (tcpdump -s 40): the
  // servers' frames are still told by their IP source and not decided
  // (before: 20 more packets, every one malformed).
  const std::string snapped = (dir_ / "both-s40.pcap").string();
  test::write_pcap(snapped, frames, DLT_EN10MB, 40);
  auto cut = replay_pcap(profile, snapped, &error, {servers});
  ASSERT_TRUE(cut) << error;
  EXPECT_EQ(cut->totals.packets, 81u);
  EXPECT_EQ(cut->headers_cut, 101u);
  auto without = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(without) << error;
  EXPECT_EQ(without->totals.packets, 101u);
  EXPECT_EQ(without->totals.admitted_by_reason["unverified"], 41u);  // SYN-ACKs too
  // Captured with tcpdump -i any on the server: its answers are outgoing
  // frames, and still the return path.
  std::vector<CapturedFrame> cooked;
  for (const CapturedFrame& f : frames)
    cooked.push_back(
        {f.ts_ns, sll2_frame(f.bytes, f.bytes[26] == 198 && f.bytes[27] == 19 ? 4 : 0)});
  const std::string cooked_path = (dir_ / "both-sll2.pcap").string();
  test::write_pcap(cooked_path, cooked, DLT_LINUX_SLL2);
  auto on_server = replay_pcap(profile, cooked_path, &error, {servers});
  ASSERT_TRUE(on_server) << error;
  EXPECT_EQ(on_server->outgoing, 0u);
  EXPECT_EQ(decided(*on_server), decided(*with));
  // With the return path replay is an inline edge: clients that acknowledge
  // another number than the SYN-ACK's (never having received it) verify
  // nothing; without it, a host-mode edge, which cannot ask.
  std::vector<CapturedFrame> blind = frames;
  for (CapturedFrame& f : blind)
    if (f.bytes[26] == 198 && f.bytes[27] == 18 && (f.bytes[47] & test::kAck)) f.bytes[42] ^= 0x55;
  const std::string blind_path = (dir_ / "blind.pcap").string();
  test::write_pcap(blind_path, blind);
  auto inline_edge = replay_pcap(profile, blind_path, &error, {servers});
  ASSERT_TRUE(inline_edge) << error;
  EXPECT_EQ(inline_edge->totals.admitted_by_reason["continuation"], 0u);
  auto host_edge = replay_pcap(profile, blind_path, &error);
  ASSERT_TRUE(host_edge) << error;
  EXPECT_EQ(host_edge->totals.admitted_by_reason["continuation"], 40u);
}

// A capture that starts with an ACK flood: replay, like an edge's fresh
// start, trusts unknown TCP flows for flow_learn_sec, and says so; without
// the learning window (an edge already running) they are charged.
TEST_F(Replay, TheLearningWindowIsSaidAndCanBeLeftOut) {
  const std::string pcap = (dir_ / "acks.pcap").string();
  std::vector<CapturedFrame> frames;
  const uint64_t t = 1'700'000'000ULL * kSecond;
  // 40 ACKs of checkpoint flows no SYN began, in 40 ms.
  for (uint16_t i = 0; i < 40; i++)
    frames.push_back(
        {t + i * kSecond / 1000, PacketBuilder()
                                     .ipv4("198.18.10.77", "198.19.0.1")
                                     .tcp(static_cast<uint16_t>(30000 + i), 443, test::kAck)
                                     .build()});
  test::write_pcap(pcap, frames);
  CompiledProfile profile =
      test::profile_from_toml(std::string(kConfig) + "[admission]\nflow_learn_sec = 10\n");
  std::string error;
  auto fresh = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(fresh) << error;
  EXPECT_EQ(fresh->learned, 40u);
  EXPECT_EQ(fresh->learn_sec, 10u);
  EXPECT_EQ(fresh->totals.packets_admitted, 40u);
  EXPECT_EQ(fresh->totals.lookups, 0u);
  EXPECT_NE(to_table(*fresh).find("40 unknown TCP flows were trusted as learned"),
            std::string::npos)
      << to_table(*fresh);
  EXPECT_EQ(to_json(*fresh)["learned_flows"], 40);

  profile.prof.flow_learn_ns = 0;  // sluicectl replay --no-learning
  auto running = replay_pcap(profile, pcap, &error);
  ASSERT_TRUE(running) << error;
  EXPECT_EQ(running->learned, 0u);
  // Charged as the checkpoint's lookups: its burst admitted, the rest shed.
  EXPECT_EQ(running->totals.lookups, 40u);
  EXPECT_EQ(running->totals.admitted_by_reason["unverified"] +
                running->totals.shed_by_reason["unverified"],
            40u);
  EXPECT_GE(running->totals.shed_by_reason["unverified"], 25u);
  EXPECT_EQ(to_table(*running).find("learned"), std::string::npos) << to_table(*running);
}

}  // namespace
}  // namespace sluice
