// SPDX-License-Identifier: Apache-2.0
// DPDK packets/s of sluice's fast path on net_pcap `infinite_rx=1` (outside)
// and net_null (inside), the same vdevs bench/dpdk_bench.sh gives
// dpdk-testpmd's io and 5tswap forwarding. The EAL starts once per process,
// so each measured configuration is its own `run`; the script interleaves
// them with testpmd and prints the table.
//
//   build/bench/dpdk_bench capture --out /tmp/bench.pcap [--frames 4096] [--sources 4096]
//       [--first-source 0] [--kind lookups] [--order cycled]
//   build/bench/dpdk_bench run --capture /tmp/bench.pcap [/tmp/bench2.pcap] --prefixes 10 \
//       --per-source off --workers 1 --seconds 3                                 # as root
//
// The profile (bench/bench_config.hpp) admits everything with a packet
// budget set, so every packet takes the whole path: parse, LPM, classify,
// budgets (+ per-source bucket; with several workers on per-CPU credits,
// else under the state lock), flow table, counters, priority ring, paced
// scheduler, tx. `run` checks from the counters that nothing was
// shed and every classified packet was admitted, and says so; with --shed,
// a surge: most citizen lookups shed, rx pps the packets decided.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_config.hpp"
#include "bench/dpdk_floor.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "dataplane/common/labels.hpp"
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "tests/support/capture_writer.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/support/traffic.hpp"

namespace {

using sluice::test::kNet198_18;
using sluice::test::kSyn;
using sluice::test::PacketBuilder;

// Source k, spread over 198.18.0.0/15 (40503 is odd, so k -> address is a
// bijection on the /15's 2^17 addresses).
uint32_t source_v4(uint32_t k) { return kNet198_18 | ((k * 40503u + 1u) & 0x1FFFFu); }

// Source k in 2001:2::/48, written like bench_config's prefixes
// ("2001:2:<k%10>:<k%10000>::/64") so the 100k-prefix profile matches some.
std::string source_v6(uint32_t k) {
  return "2001:2:" + std::to_string(k % 10) + ":" + std::to_string(k % 10000) +
         "::" + std::to_string(k / 10000 % 9000 + 1);
}

// Frames cycle through IPv4 SYN to 443, IPv4 UDP lookup, IPv4 SYN to 8080,
// then an IPv6 SYN to 443 or (every other time) an IPv6 UDP lookup: 1/4
// IPv6, 5/8 SYNs, 3/8 UDP lookups; source k = first + frame % n_sources, or
// (random) first + a source drawn at random for each frame (fixed seed): the
// capture then visits its flows in no fixed order, as a surge does, where
// the cycled one visits them in one order every pass (and a table that lays
// its entries out in the order they came reads them almost sequentially).
std::vector<sluice::test::CapturedFrame> bench_frames(uint32_t n_frames, uint32_t n_sources,
                                                      uint32_t first, bool random) {
  std::vector<sluice::test::CapturedFrame> frames;
  uint64_t t = 1'700'000'000ULL * sluice::test::kSecond;
  std::mt19937 rng(first + 1);
  std::uniform_int_distribution<uint32_t> pick(0, n_sources - 1);
  for (uint32_t i = 0; i < n_frames; i++) {
    const uint32_t k = first + (random ? pick(rng) : i % n_sources);
    std::vector<uint8_t> f;
    switch (i % 4) {
      case 0:
        f = sluice::test::syn_v4(source_v4(k), 443);
        break;
      case 1:
        f = sluice::test::udp_v4(source_v4(k), 53);
        break;
      case 2:
        f = sluice::test::syn_v4(source_v4(k), 8080);
        break;
      default:
        f = (i % 8 == 3)
                ? PacketBuilder().ipv6(source_v6(k), "2001:2::1").tcp(40000, 443, kSyn).build()
                : PacketBuilder().ipv6(source_v6(k), "2001:2::1").udp(40000, 53).build();
    }
    t += 1000;  // 1 us apart (the benchmark runs on the TSC clock, not these stamps)
    frames.push_back({t, std::move(f)});
  }
  return frames;
}

// Continuations, for the flow table's cost: `verified` puts each source's
// SYN (443, sport 40000) first, then cycles ACKs of those flows (one SYN per
// 8 frames as the capture loops, so the flows stay alive); `spoofed` sends
// only ACKs of flows nobody opened (each a table miss, charged as a lookup).
std::vector<sluice::test::CapturedFrame> ack_frames(uint32_t n_frames, uint32_t n_sources,
                                                    uint32_t first, bool verified) {
  std::vector<sluice::test::CapturedFrame> frames;
  uint64_t t = 1'700'000'000ULL * sluice::test::kSecond;
  for (uint32_t i = 0; i < n_frames; i++) {
    const uint32_t k = first + i % n_sources;
    std::vector<uint8_t> f = sluice::test::syn_v4(source_v4(k), 443);
    const bool syn = verified && (i < n_sources ? true : i % 8 == 0);
    if (!syn) {
      f[14 + 20 + 13] = sluice::test::kAck;
      if (!verified) f[14 + 20] ^= 0x80;  // another source port: no such flow
    }
    t += 1000;
    frames.push_back({t, std::move(f)});
  }
  return frames;
}

// What the counters say at one instant.
struct Sample {
  std::chrono::steady_clock::time_point at;
  uint64_t rx = 0;         // outside port rx (the driver's count)
  uint64_t tx_inside = 0;  // inside port tx
  uint64_t admitted = 0;   // classified and admitted, every class and reason
  uint64_t shed = 0;       // classified and shed
  uint64_t shed_by_reason[SL_REASON_COUNT] = {};
  uint64_t nombuf = 0;      // outside rx_nombuf + rx_missed
  uint64_t tx_dropped = 0;  // inside tx_dropped + tx_errors
  bool healthy = false;
};

Sample sample(const sluice::DpdkDataplane& dp) {
  const sluice::DataplaneStats st = dp.stats();
  Sample s;
  s.at = std::chrono::steady_clock::now();
  s.healthy = st.healthy && st.ports.size() == 2;
  for (const sluice::ClassStats& c : st.classes)
    for (int r = 0; r < SL_REASON_COUNT; r++) {
      s.admitted += c.packets[SL_VERDICT_ADMITTED][r];
      s.shed += c.packets[SL_VERDICT_SHED][r];
      s.shed_by_reason[r] += c.packets[SL_VERDICT_SHED][r];
    }
  if (st.ports.size() == 2) {
    s.rx = st.ports[0].rx_packets;
    s.nombuf = st.ports[0].rx_nombuf + st.ports[0].rx_missed;
    s.tx_inside = st.ports[1].tx_packets;
    s.tx_dropped = st.ports[1].tx_dropped + st.ports[1].tx_errors;
  }
  return s;
}

double seconds_between(const Sample& a, const Sample& b) {
  return std::chrono::duration<double>(b.at - a.at).count();
}

int run_capture(const std::string& out, uint32_t n_frames, uint32_t n_sources, uint32_t first,
                const std::string& kind, const std::string& order) {
  if (kind != "lookups" && order != "cycled") {
    std::fprintf(stderr, "capture: --order random is for --kind lookups only\n");
    return 2;
  }
  const auto frames = kind == "lookups"
                          ? bench_frames(n_frames, n_sources, first, order == "random")
                          : ack_frames(n_frames, n_sources, first, kind == "verified");
  sluice::test::write_pcap(out, frames);
  std::printf("%s: %u frames, %u sources (IPv4 198.18.0.0/15, IPv6 2001:2::/48)\n", out.c_str(),
              n_frames, std::min(n_sources, n_frames));
  return 0;
}

struct RunOptions {
  std::vector<std::string> captures;  // rx queue w replays captures[w % size]
  int prefixes = 10;
  std::string per_source = "off";
  std::string packet_budget = "on";
  std::string flow_state = "on";
  std::string shed = "off";  // sticky / random: the citizen class limited to 1000/s
  uint32_t workers = 1;
  double warmup_s = 1.0;
  double seconds = 3.0;
  uint32_t mbufs = 65535;
  uint32_t queue_size = 1024;
  std::string mem_mb = "1024";
};

// bench_config_toml() sets a (huge) boundary packet budget, so admitted
// packets go through the priority rings and the paced scheduler. Without
// one, the DPDK path has nothing to pace to and each worker sends what it
// admits straight out: same model, no queues.
std::string run_config(const RunOptions& o) {
  std::string toml = sluice::bench::bench_config_toml(o.prefixes, o.per_source == "on");
  if (o.packet_budget == "off") {
    const std::string line = "packets_per_sec = 1000000000\n";
    const std::size_t at = toml.find(line);
    if (at != std::string::npos) toml.erase(at, line.size());
  }
  // Flow state off: unverified = "pass" keeps no flow table (flow.h,
  // sl_flows_kept), every continuation trusted, as in the first wave.
  if (o.flow_state == "off")
    toml.replace(toml.find("[admission]\n"), 12, "[admission]\nunverified = \"pass\"\n");
  // A surge: the citizen class (every source outside the checkpoint's
  // prefixes) limited to 1000 lookups/s, so nearly all of its lookups are
  // shed in that order (sticky: above the band, without the lock).
  if (o.shed != "off") {
    const std::string unlimited = "rate_per_sec = 1000000000\n";
    toml.replace(toml.rfind(unlimited), unlimited.size(),
                 "rate_per_sec = 1000\nshed_order = \"" + o.shed + "\"\n");
  }
  return toml;
}

void complain(const std::string& line) { (void)std::fprintf(stderr, "%s\n", line.c_str()); }

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

int run_sluice(const RunOptions& o) {
  sluice::LoadResult loaded = sluice::load_config_string(run_config(o), "<bench>");
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) complain(e.to_string());
    return 1;
  }
  sluice::DataplaneSettings s;
  s.mode = sluice::DataplaneKind::dpdk;
  // net_pcap opens one rx queue per rx_pcap: one capture per worker (each
  // held in mbufs of the pool). Give each its own flows, as RSS would.
  s.outside = "net_pcap_bench_out";
  for (uint32_t w = 0; w < o.workers; w++)
    s.outside += ",rx_pcap=" + o.captures[w % o.captures.size()];
  s.outside += ",infinite_rx=1";
  s.inside = "net_null_bench_in,no-rx=1";  // the inside port only sinks, as for testpmd
  s.dpdk_args = {"--no-huge", "--no-pci", "-m", o.mem_mb, "--log-level=lib.eal:warning"};
  s.dpdk_workers = o.workers;
  s.dpdk_mbufs = o.mbufs;
  s.dpdk_queue_size = o.queue_size;

  sluice::DpdkDataplane dp(s);
  std::string error;
  if (!dp.start(sluice::compile_profile(*loaded.config), 1, &error)) {
    complain(error);
    return 1;
  }
  auto sleep_s = [](double sec) {
    std::this_thread::sleep_for(std::chrono::duration<double>(sec));
  };
  sleep_s(o.warmup_s);
  std::vector<Sample> window = {sample(dp)};
  const auto end = window.front().at + std::chrono::duration<double>(o.seconds);
  while (window.back().at < end) {
    const double left =
        std::chrono::duration<double>(end - std::chrono::steady_clock::now()).count();
    sleep_s(std::clamp(left, 0.0, 1.0));
    window.push_back(sample(dp));
  }
  dp.stop();

  const Sample& first = window.front();
  const Sample& last = window.back();
  const double dt = seconds_between(first, last);
  const uint64_t rx = last.rx - first.rx;
  const uint64_t admitted = last.admitted - first.admitted;
  const uint64_t shed = last.shed - first.shed;
  const uint64_t tx = last.tx_inside - first.tx_inside;
  const double pps = static_cast<double>(rx) / dt;
  const double out_pps = static_cast<double>(tx) / dt;
  auto of_rx = [&](uint64_t n) {
    return rx ? static_cast<double>(n) / static_cast<double>(rx) : 0.0;
  };
  std::string per_second;
  for (std::size_t i = 1; i < window.size(); i++) {
    const double d = seconds_between(window[i - 1], window[i]);
    if (d < 0.2) continue;
    char b[32];
    (void)std::snprintf(b, sizeof b, " %.2f",
                        static_cast<double>(window[i].rx - window[i - 1].rx) / d / 1e6);
    per_second += b;
  }
  std::string reasons;
  for (int r = 0; r < SL_REASON_COUNT; r++)
    if (last.shed_by_reason[r] != 0)
      reasons += std::string(" ") + sluice::reason_label(static_cast<uint32_t>(r)) + "=" +
                 std::to_string(last.shed_by_reason[r]);
  // The counters are read one after the other while the workers run: a
  // burst or two in flight separates rx, classification and tx.
  const bool all_admitted = last.shed == 0 && admitted > 0;
  const bool shedding = o.shed != "off";
  std::printf(
      "sluice dpdk: %d prefixes, per-source %s, packet budget %s, flow state %s, citizens shed "
      "%s, %u worker(s): %.3f Mpps rx, "
      "%.3f Mpps out, over %.2f s (rx each second:%s)\n"
      "  window: rx %llu, classified %llu, admitted %llu (%.4f of rx), shed %llu, inside tx %llu "
      "(%.4f of rx)\n"
      "  since start: admitted %llu, shed %llu%s%s, rx nombuf+missed %llu, inside tx dropped "
      "%llu\n",
      o.prefixes, o.per_source.c_str(), o.packet_budget.c_str(), o.flow_state.c_str(),
      o.shed.c_str(), o.workers, pps / 1e6, out_pps / 1e6, dt, per_second.c_str(), ull(rx),
      ull(admitted + shed), ull(admitted), of_rx(admitted), ull(shed), ull(tx), of_rx(tx),
      ull(last.admitted), ull(last.shed), reasons.empty() ? "" : " by reason:", reasons.c_str(),
      ull(last.nombuf), ull(last.tx_dropped));
  // One line for scripts.
  std::printf("RESULT pps=%.0f out_pps=%.0f all_admitted=%d healthy=%d\n", pps, out_pps,
              all_admitted ? 1 : 0, first.healthy && last.healthy ? 1 : 0);
  if (!first.healthy || !last.healthy) {
    complain("the dataplane was not healthy during the window");
    return 1;
  }
  if (!all_admitted && !shedding) {
    complain("packets were shed: rx pps is not a full-path figure");
    return 2;
  }
  if (shedding && shed < rx / 2) {
    complain("fewer than half of the packets were shed: not a surge's figure");
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DPDK packets/s of sluice on net_pcap infinite_rx -> net_null"};
  app.require_subcommand(1);

  std::string out;
  uint32_t n_frames = 4096, n_sources = 4096, first_source = 0;
  CLI::App* cap = app.add_subcommand("capture", "write the benchmark capture (pcap)");
  cap->add_option("--out", out, "pcap file to write")->required();
  cap->add_option("--frames", n_frames, "frames in the capture")->check(CLI::Range(8, 1 << 20));
  cap->add_option("--sources", n_sources, "distinct sources, cycled over the frames")
      ->check(CLI::Range(1, 1 << 17));
  cap->add_option("--first-source", first_source,
                  "index of the first source (captures for different rx queues: disjoint ranges)")
      ->check(CLI::Range(0, (1 << 17) - 1));
  std::string kind = "lookups";
  cap->add_option("--kind", kind,
                  "lookups (SYNs and UDP), verified (ACKs of flows the capture opens) or "
                  "spoofed (ACKs of no flow)")
      ->check(CLI::IsMember({"lookups", "verified", "spoofed"}));
  std::string order = "cycled";
  cap->add_option("--order", order,
                  "cycled (sources in turn, the same order every pass) or random (a source "
                  "drawn for each frame; lookups only)")
      ->check(CLI::IsMember({"cycled", "random"}));

  RunOptions ro;
  CLI::App* run = app.add_subcommand("run", "measure sluice's DPDK dataplane (root)");
  run->add_option("--capture", ro.captures,
                  "capture replayed by net_pcap infinite_rx; several: one per rx queue in turn")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--prefixes", ro.prefixes, "source prefixes of the checkpoint class")
      ->check(CLI::Range(1, 1000000));
  run->add_option("--per-source", ro.per_source, "per-source buckets")
      ->check(CLI::IsMember({"on", "off"}));
  run->add_option("--packet-budget", ro.packet_budget,
                  "boundary packet budget (on: admitted packets go through the paced priority "
                  "rings; off: straight out)")
      ->check(CLI::IsMember({"on", "off"}));
  run->add_option("--flow-state", ro.flow_state,
                  "flow state (off: unverified = \"pass\", no flow table, every continuation "
                  "trusted)")
      ->check(CLI::IsMember({"on", "off"}));
  run->add_option("--shed", ro.shed,
                  "a surge: the citizen class limited to 1000 lookups/s, shed in this order "
                  "(rx pps is then packets decided, most of them shed)")
      ->check(CLI::IsMember({"off", "sticky", "random"}));
  run->add_option("--workers", ro.workers, "worker lcores (one rx queue each)")
      ->check(CLI::Range(1, 16));
  run->add_option("--warmup", ro.warmup_s, "seconds skipped before the window")
      ->check(CLI::Range(0.0, 60.0));
  run->add_option("--seconds", ro.seconds, "measured window, seconds")
      ->check(CLI::Range(0.5, 600.0));
  run->add_option("--mbufs", ro.mbufs, "mbufs in the pool (the capture is held once per worker)");
  run->add_option("--queue-size", ro.queue_size, "priority ring slots per worker (power of two)");
  run->add_option("--mem", ro.mem_mb, "EAL -m, MB");

  sluice::bench::FloorOptions fo;
  std::string floor_queue = "on";
  CLI::App* floor = app.add_subcommand(
      "floor", "measure the least DPDK worker that decides (a)'s lookups (root; a yardstick)");
  floor->add_option("--capture", fo.capture, "capture replayed by net_pcap infinite_rx")
      ->required()
      ->check(CLI::ExistingFile);
  floor
      ->add_option("--queue", floor_queue,
                   "admitted packets through one ring (on: the least a packet budget's queue "
                   "costs) or straight out")
      ->check(CLI::IsMember({"on", "off"}));
  floor->add_option("--warmup", fo.warmup_s, "seconds skipped before the window")
      ->check(CLI::Range(0.0, 60.0));
  floor->add_option("--seconds", fo.seconds, "measured window, seconds")
      ->check(CLI::Range(0.5, 600.0));

  CLI11_PARSE(app, argc, argv);
  if (cap->parsed()) return run_capture(out, n_frames, n_sources, first_source, kind, order);
  if (floor->parsed()) {
    fo.queue = floor_queue == "on";
    return sluice::bench::run_floor(fo);
  }
  return run_sluice(ro);
}
