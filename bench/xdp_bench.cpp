// SPDX-License-Identifier: Apache-2.0
// XDP cost per packet by BPF_PROG_TEST_RUN (repeat >= 1e6), side by side in
// one run on the same SYN and UDP frames: an empty XDP_PASS program,
// xdp-filter's allow-all object from Debian's xdp-tools, and sluice with
// (a) 10 prefixes, (b) 100k prefixes, (c) per-source buckets on. Rounds are
// interleaved and the median kept, so a noisy neighbour hits all alike.
// Flow state: an ACK of a flow whose SYN each program admitted before the
// rounds (a flow table hit, verified) and a spoofed ACK (a miss, charged).
// Failure states: the pass-through (bpf/passthrough.bpf.c, forwarding) and
// sluice (a) loaded as a DPDK standby whose heartbeat is fresh (what every
// frame costs on the kernel side while DPDK runs). The return path: the
// inside program on an answer from the backend, without and with
// boundary.adaptive (which looks the answer's flow up). A surge's cheap
// paths: citizen lookups shed (sticky, with and without per-source buckets,
// and random) and a source over its own budget, from one CPU and from two.
// The floor with tables of our own (bench/bpf/floor.bpf.c): the least any
// program that decides (c)'s lookups costs, with arrays for every table.
//
//   sudo build/bench/xdp_bench [--repeat N] [--rounds R]
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_config.hpp"
#include "bench/xdp_bench.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "dataplane/model/parse.h"
#include "dataplane/model/sticky.h"
#include "dataplane/xdp/xdp_program.hpp"
#include "sluice_bench_floor.skel.h"
#include "sluice_passthrough.skel.h"
#include "tests/support/packet_builder.hpp"
#include "tests/support/parallel_test_run.hpp"

namespace sluice::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// One TCP segment per thread (flags: a SYN, or the ACK of that SYN's flow),
// each from its own checkpoint source (RSS would give each CPU its own
// flows): admitted by every program.
std::vector<std::vector<uint8_t>> tcp_per_thread(int threads, uint8_t flags) {
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < threads; i++)
    frames.push_back(test::PacketBuilder()
                         .ipv4("198.18.10." + std::to_string(7 + i), "198.19.0.1")
                         .tcp(40000, 443, flags)
                         .build());
  return frames;
}

}  // namespace sluice::bench

namespace {

using sluice::bench::mean;
using sluice::bench::median;
using sluice::bench::tcp_per_thread;

using sluice::test::PacketBuilder;

// A plain BPF object (not sluice): opened, pins cleared, loaded; the first
// XDP program is measured.
struct ForeignXdp {
  bpf_object* obj = nullptr;
  int fd = -1;
  explicit ForeignXdp(const std::string& path) {
    obj = bpf_object__open_file(path.c_str(), nullptr);
    if (obj == nullptr) return;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, nullptr);
    if (bpf_object__load(obj) != 0) return;
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, obj) {
      fd = bpf_program__fd(p);
      break;
    }
  }
  ~ForeignXdp() {
    if (obj != nullptr) bpf_object__close(obj);
  }
};

// The pass-through, forwarding to loopback (a redirect the test run reports).
struct Passthrough {
  sluice_passthrough* skel = sluice_passthrough__open_and_load();
  int fd = -1;
  Passthrough() {
    if (skel == nullptr) return;
    const uint32_t lo = 1;
    for (uint32_t k = 0; k < 2; k++)
      bpf_map_update_elem(bpf_map__fd(skel->maps.sl_pass_tx), &k, &lo, BPF_ANY);
    fd = bpf_program__fd(skel->progs.sl_pass_outside);
  }
  ~Passthrough() { sluice_passthrough__destroy(skel); }
};

// The benchmark config; with `shed_order`, the citizen class is limited to
// 1000 lookups/s with that order, so that the repeated citizen lookup is
// shed: by rank (sticky: the controller's tick, the source key, two hashes
// and the filter on every lookup) or by its budget (random). flows = false:
// unverified = "pass", which keeps no flow state (every continuation
// trusted, no entry written: the first wave's behaviour). source_rate
// (with per_source): the citizen class's per-source budget, per second and
// burst, so that a repeated citizen lookup is over it.
std::string program_toml(int n_prefixes, bool per_source, const std::string& shed_order,
                         bool adaptive, bool flows, int source_rate) {
  std::string toml = sluice::bench::bench_config_toml(n_prefixes, per_source);
  if (source_rate != 0) {
    const std::string huge = "per_source = { rate_per_sec = 1000000000, burst = 1000000000 }";
    toml.replace(toml.rfind(huge), huge.size(),
                 "per_source = { rate_per_sec = " + std::to_string(source_rate) +
                     ", burst = " + std::to_string(source_rate) + " }");
  }
  if (adaptive) toml.replace(toml.find("[boundary]\n"), 11, "[boundary]\nadaptive = true\n");
  if (!flows) toml.replace(toml.find("[admission]\n"), 12, "[admission]\nunverified = \"pass\"\n");
  if (!shed_order.empty()) {
    const std::string unlimited = "rate_per_sec = 1000000000\n";
    toml.replace(toml.rfind(unlimited), unlimited.size(),
                 "rate_per_sec = 1000\nshed_order = \"" + shed_order + "\"\n");
  }
  return toml;
}

std::optional<sluice::CompiledProfile> compile(const std::string& toml) {
  sluice::LoadResult r = sluice::load_config_string(toml, "<bench>");
  if (!r.ok()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return std::nullopt;
  }
  return sluice::compile_profile(*r.config);
}

std::unique_ptr<sluice::XdpProgram> sluice_program(
    int n_prefixes, bool per_source, bool standby = false, const std::string& shed_order = "",
    bool adaptive = false, bool credits = true, bool flows = true,
    sluice::CompiledProfile* compiled = nullptr, int source_rate = 0) {
  const auto profile =
      compile(program_toml(n_prefixes, per_source, shed_order, adaptive, flows, source_rate));
  if (!profile) return nullptr;
  std::string error;
  sluice::XdpProgramOptions o;
  o.standby = standby;
  o.credits = credits;
  auto p = sluice::XdpProgram::load(o, &error);
  if (compiled != nullptr) *compiled = *profile;
  if (!p || !p->write_profile(*profile, 1, &error) ||
      (standby && !p->beat(3600ULL * 1000000000ULL, &error))) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return nullptr;
  }
  return p;
}

// Decisions per second from one CPU and from two at once (threads pinned to
// CPUs 0 and 1, released together), interleaved rounds, medians. flags: the
// TCP segment each thread sends (an ACK's flow is opened by its SYN first).
// title: what each thread sends; one, two: the frames of 1 and of 2 threads.
bool scaling(const std::vector<std::pair<std::string, int>>& progs, int repeat, int rounds,
             const std::string& title, const std::vector<std::vector<uint8_t>>& one,
             const std::vector<std::vector<uint8_t>>& two) {
  std::vector<std::vector<double>> ns1(progs.size()), per_s2(progs.size()), ns2(progs.size());
  for (int r = 0; r < rounds; r++)
    for (std::size_t i = 0; i < progs.size(); i++) {
      std::string error;
      auto a = sluice::test::test_run_parallel(progs[i].second, one, repeat, &error);
      auto b = sluice::test::test_run_parallel(progs[i].second, two, repeat, &error);
      if (a.empty() || b.empty() || a[0] < 0 || b[0] < 0 || b[1] < 0) {
        std::fprintf(stderr, "%s: %s\n", progs[i].first.c_str(),
                     error.empty() ? "test run failed" : error.c_str());
        return false;
      }
      ns1[i].push_back(a[0]);
      ns2[i].push_back(mean(b));
      per_s2[i].push_back(sluice::test::per_second(b));
    }
  std::printf(
      "Scaling: %s, 1 CPU vs 2 CPUs at once, repeat %d, "
      "median of %d interleaved rounds (scaling: of the rounds' own ratios)\n\n",
      title.c_str(), repeat, rounds);
  std::printf("  %-26s %9s %9s %12s %12s %8s %12s\n", "program", "1 CPU ns", "2 CPU ns", "1 CPU /s",
              "2 CPUs /s", "scaling", "vs filter");
  // Scaling per round (2 CPUs' decisions/s over 1 CPU's, measured back to
  // back), against xdp-filter's of the same round: medians of those ratios,
  // steadier on a noisy machine than ratios of medians.
  std::size_t filter = progs.size();
  for (std::size_t i = 0; i < progs.size(); i++)
    if (progs[i].first == "xdp-filter allow-all") filter = i;
  for (std::size_t i = 0; i < progs.size(); i++) {
    std::vector<double> scale, vs_filter;
    for (int r = 0; r < rounds; r++) {
      scale.push_back(per_s2[i][r] * ns1[i][r] / 1e9);
      if (filter < progs.size())
        vs_filter.push_back(scale.back() / (per_s2[filter][r] * ns1[filter][r] / 1e9));
    }
    const double t1 = median(ns1[i]);
    std::printf("  %-26s %9.1f %9.1f %12.0f %12.0f %7.2fx %11.2fx\n", progs[i].first.c_str(), t1,
                median(ns2[i]), 1e9 / t1, median(per_s2[i]), median(scale),
                vs_filter.empty() ? 0.0 : median(vs_filter));
  }
  std::printf("\n");
  return true;
}

// Checkpoint TCP segments with these flags, one source per CPU (an ACK's
// flow is opened by its SYN first).
bool scaling(const std::vector<std::pair<std::string, int>>& progs, int repeat, int rounds,
             uint8_t flags) {
  for (const auto& syn : tcp_per_thread(2, sluice::test::kSyn))
    for (const auto& [name, fd] : progs) sluice::test::test_run_ns(fd, syn, 1);
  return scaling(progs, repeat, rounds,
                 flags == sluice::test::kSyn ? "TCP SYN (checkpoint, one source per CPU)"
                                             : "TCP ACK of its SYN's flow (checkpoint, one "
                                               "source per CPU)",
                 tcp_per_thread(1, flags), tcp_per_thread(2, flags));
}

// n citizen UDP lookups from sources whose sticky rank under `prof` is in
// [lo, hi) in this sticky epoch and the next (so an epoch's turn during the
// run keeps them there).
std::vector<std::vector<uint8_t>> sticky_sources(const sluice::CompiledProfile& compiled, int n,
                                                 uint32_t lo, uint32_t hi) {
  const sl_profile& prof = compiled.prof;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  const uint64_t epoch = sl_sticky_epoch(
      &prof, static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec));
  const sl_class_params& cp = prof.classes[1];  // citizen (bench_config.hpp)
  std::vector<std::vector<uint8_t>> out;
  for (uint32_t i = 0; i < 65536 && static_cast<int>(out.size()) < n; i++) {
    auto f = PacketBuilder()
                 .ipv4("198.18." + std::to_string(100 + i / 256) + "." + std::to_string(i % 256),
                       "198.19.0.1")
                 .udp(40000, 53)
                 .build();
    sl_meta m;
    if (sl_parse(f.data(), f.data() + f.size(), &m) != SL_PARSE_OK) continue;
    sl_source_key k;
    sl_source_key_make(&k, &m, &cp);
    const uint64_t h = sl_source_hash(&prof, &k);
    const uint32_t now = sl_rank_in(h, epoch), next = sl_rank_in(h, epoch + 1);
    if (now >= lo && now < hi && next >= lo && next < hi) out.push_back(f);
  }
  if (static_cast<int>(out.size()) < n) std::fprintf(stderr, "no sources ranked %u..%u\n", lo, hi);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"XDP cost per packet: empty program vs xdp-filter allow-all vs sluice"};
  int repeat = 1000000;
  int rounds = 5;
  std::string pass_obj = "build/tests/bpf/xdp_pass.bpf.o";
  std::string filter_obj = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o";
  app.add_option("--repeat", repeat, "BPF_PROG_TEST_RUN repetitions per measurement")
      ->check(CLI::Range(1000, 100000000));
  app.add_option("--rounds", rounds, "interleaved rounds; the median is reported")
      ->check(CLI::Range(1, 50));
  app.add_option("--pass-object", pass_obj,
                 "empty XDP_PASS object (tests/integration/xdp_pass.bpf.c)");
  app.add_option("--filter-object", filter_obj, "xdp-filter's allow-all object");
  std::string part = "all";
  app.add_option("--part", part,
                 "single: one CPU, every frame and configuration; scaling: 1 vs 2 CPUs; ops: "
                 "per-operation costs; all")
      ->check(CLI::IsMember({"all", "single", "scaling", "ops"}));
  // For a profile (perf record while one row repeats): the single part's
  // frames and configurations whose names contain these.
  std::string only_frame, only_config;
  app.add_option("--frame", only_frame, "single part: only frames whose name contains this");
  app.add_option("--config", only_config,
                 "single part: only configurations whose name contains this (the empty program "
                 "and xdp-filter always run)");
  CLI11_PARSE(app, argc, argv);

  libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });
  ForeignXdp pass(pass_obj);
  ForeignXdp filter(filter_obj);
  if (pass.fd < 0 || filter.fd < 0) {
    std::fprintf(stderr, "cannot load %s\n", pass.fd < 0 ? pass_obj.c_str() : filter_obj.c_str());
    return 1;
  }
  auto s10 = sluice_program(10, false);
  auto s100k = sluice_program(100000, false);
  auto s_src = sluice_program(10, true);
  auto s_standby = sluice_program(10, false, true);
  sluice::CompiledProfile sticky_profile;
  auto s_sticky = sluice_program(10, false, false, "sticky", false, true, true, &sticky_profile);
  // config/sluice.toml's citizens: sticky, with per-source buckets (a shed
  // takes its source's token and gives it back).
  auto s_sticky_src = sluice_program(10, true, false, "sticky");
  auto s_random = sluice_program(10, false, false, "random");
  auto s_random_locked = sluice_program(10, false, false, "random", false, false);
  auto s_adaptive = sluice_program(10, false, false, "", true);
  auto s_locked = sluice_program(10, false, false, "", false, false);
  auto s10_off = sluice_program(10, false, false, "", false, true, false);
  auto s100k_off = sluice_program(100000, false, false, "", false, true, false);
  auto s_src_off = sluice_program(10, true, false, "", false, true, false);
  auto s_src_over = sluice_program(10, true, false, "", false, true, true, nullptr, 1000);
  Passthrough passthrough;
  std::unique_ptr<sluice_bench_floor, void (*)(sluice_bench_floor*)> floor(
      sluice_bench_floor__open_and_load(), sluice_bench_floor__destroy);
  if (!floor) {
    std::fprintf(stderr, "cannot load bench/bpf/floor.bpf.c\n");
    return 1;
  }
  if (!s10 || !s100k || !s_src || !s_standby || !s_sticky || !s_sticky_src || !s_random ||
      !s_random_locked || !s_adaptive || !s_locked || !s10_off || !s100k_off || !s_src_off ||
      !s_src_over || passthrough.fd < 0)
    return 1;

  const std::string kVerifiedAck = "TCP ACK, verified (flow hit)";
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> frames = {
      {"TCP SYN (checkpoint)", PacketBuilder()
                                   .ipv4("198.18.10.7", "198.19.0.1")
                                   .tcp(40000, 443, sluice::test::kSyn)
                                   .build()},
      {"UDP lookup (citizen)",
       PacketBuilder().ipv4("198.18.77.7", "198.19.0.1").udp(40000, 53).build()},
      {"UDP lookup, 802.1Q-tagged",
       PacketBuilder().vlan(10).ipv4("198.18.77.7", "198.19.0.1").udp(40000, 53).build()},
      {"IPv6 TCP SYN (citizen)", PacketBuilder()
                                     .ipv6("2001:2:9:9999::7", "2001:2::1")
                                     .tcp(40000, 443, sluice::test::kSyn)
                                     .build()},
      {kVerifiedAck, PacketBuilder()
                         .ipv4("198.18.10.7", "198.19.0.1")
                         .tcp(40001, 443, sluice::test::kAck)
                         .payload(100)
                         .build()},
      {"TCP ACK, spoofed (miss, charged)", PacketBuilder()
                                               .ipv4("198.18.77.7", "198.19.0.1")
                                               .tcp(40002, 443, sluice::test::kAck)
                                               .payload(100)
                                               .build()},
  };
  // The verified ACK's flow: its SYN goes through every sluice program once.
  const auto flow_syn =
      PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(40001, 443, sluice::test::kSyn).build();
  for (auto* p : {s10.get(), s100k.get(), s_src.get()})
    sluice::test::test_run_ns(p->outside_prog_fd(), flow_syn, 1);
  const int floor_fd = bpf_program__fd(floor->progs.floor_c);
  sluice::test::test_run_ns(floor_fd, flow_syn, 1);
  if (part != "single") {
    if (part != "ops" && !scaling({{"xdp_pass (empty)", pass.fd},
                                   {"xdp-filter allow-all", filter.fd},
                                   {"sluice (a) 10 prefixes", s10->outside_prog_fd()},
                                   {"sluice (b) 100k prefixes", s100k->outside_prog_fd()},
                                   {"sluice (c) per-source on", s_src->outside_prog_fd()},
                                   {"(a), flow state off", s10_off->outside_prog_fd()},
                                   {"(b), flow state off", s100k_off->outside_prog_fd()},
                                   {"(c), flow state off", s_src_off->outside_prog_fd()},
                                   {"(a), one lock (no credits)", s_locked->outside_prog_fd()},
                                   {"floor: (c) on own arrays", floor_fd}},
                                  repeat, rounds, sluice::test::kSyn))
      return 1;
    // Continuations: under the benchmark's packet budget a verified ACK
    // spends the CPU's packet credit (dataplane/model/credit.h).
    if (part != "ops" && !scaling({{"xdp_pass (empty)", pass.fd},
                                   {"xdp-filter allow-all", filter.fd},
                                   {"sluice (a) 10 prefixes", s10->outside_prog_fd()},
                                   {"(a), flow state off", s10_off->outside_prog_fd()}},
                                  repeat, rounds, sluice::test::kAck))
      return 1;
    // Shedding: citizen lookups over their class's 1000/s, each CPU its own
    // source. Sticky: sources ranked far above the band, where most of a
    // surge's sources are, after an anchor source low in rank has put the
    // band under them (a surge spreads its demand over every rank; here each
    // CPU repeats one frame, and the controller would otherwise place the
    // band around the one source it sees).
    const auto citizens = sticky_sources(sticky_profile, 2, 40000, SL_RANK_ONE);
    const auto anchor = sticky_sources(sticky_profile, 1, 0, 4000);
    if (citizens.size() < 2 || anchor.empty()) return 1;
    // The anchor and the citizens in turns, over many controller windows,
    // then a window of 59 s (less than the epoch): the controller holds the
    // band under both citizens for the runs (with 100-ms windows it would
    // place it around the lower of the two, the only demand it then sees,
    // and that one's lookups would be decided in the band, under the lock).
    for (int turn = 0; turn < 20; turn++) {
      for (auto* p : {s_sticky.get(), s_sticky_src.get()}) {
        sluice::test::test_run_ns(p->outside_prog_fd(), anchor[0], 100000);
        for (const auto& f : citizens) sluice::test::test_run_ns(p->outside_prog_fd(), f, 100000);
      }
    }
    for (bool per_source : {false, true}) {
      std::string toml = program_toml(10, per_source, "sticky", false, true, 0);
      toml.replace(toml.find("[admission]\n"), 12, "[admission]\nsticky_window_ms = 59000\n");
      const auto still = compile(toml);
      std::string error;
      if (!still || !(per_source ? s_sticky_src : s_sticky)->write_profile(*still, 2, &error)) {
        std::fprintf(stderr, "cannot hold the sticky controller: %s\n", error.c_str());
        return 1;
      }
    }
    for (const auto& f : citizens)
      sluice::test::test_run_ns(s_random->outside_prog_fd(), f, 2000000);
    if (part != "ops" && !scaling({{"xdp_pass (empty)", pass.fd},
                                   {"xdp-filter allow-all", filter.fd},
                                   {"(a), citizen sheds: sticky", s_sticky->outside_prog_fd()},
                                   {"(c), citizen sheds: sticky", s_sticky_src->outside_prog_fd()},
                                   {"(a), citizen sheds: random", s_random->outside_prog_fd()},
                                   {"(a) sheds, one lock", s_random_locked->outside_prog_fd()}},
                                  repeat, rounds, "UDP lookup shed (citizen, one source per CPU)",
                                  {citizens[0]}, citizens))
      return 1;
    // One host's flood: the same citizen source's lookups on both CPUs,
    // over its own budget of 1000/s (refused by it, never by the class);
    // then its ACKs of no flow (unverified, charged as its lookups), refused
    // by its budget as its lookups are.
    const std::pair<const char*, std::vector<uint8_t>> floods[] = {
        {"UDP lookup refused by its source's budget (citizen, one source on both CPUs)",
         PacketBuilder().ipv4("198.18.77.8", "198.19.0.1").udp(40000, 53).build()},
        {"TCP ACK of no flow refused by its source's budget (citizen, one source on both CPUs)",
         PacketBuilder()
             .ipv4("198.18.77.8", "198.19.0.1")
             .tcp(40000, 53, sluice::test::kAck)
             .build()},
    };
    for (const auto& [title, flood] : floods) {
      sluice::test::test_run_ns(s_src_over->outside_prog_fd(), flood, 100000);
      if (part != "ops" &&
          !scaling({{"xdp_pass (empty)", pass.fd},
                    {"xdp-filter allow-all", filter.fd},
                    {"(c), source over its budget", s_src_over->outside_prog_fd()}},
                   repeat, rounds, title, {flood}, {flood, flood}))
        return 1;
    }
    // A busy source under its budget (a carrier NAT's address): the same
    // citizen source's lookups on both CPUs, each taking a token from its
    // one word by compare-and-swap, the CPUs' tries racing for its line.
    {
      const std::vector<uint8_t> busy =
          PacketBuilder().ipv4("198.18.77.9", "198.19.0.1").udp(40000, 53).build();
      sluice::test::test_run_ns(s_src->outside_prog_fd(), busy, 100000);
      if (part != "ops" &&
          !scaling({{"xdp_pass (empty)", pass.fd},
                    {"xdp-filter allow-all", filter.fd},
                    {"sluice (c) per-source on", s_src->outside_prog_fd()}},
                   repeat, rounds,
                   "UDP lookup admitted by its source's budget (citizen, one source on both CPUs)",
                   {busy}, {busy, busy}))
        return 1;
    }
    // Frames that do not parse touch no budget, and are decided without
    // the state lock (the same frame on both CPUs).
    const std::pair<const char*, std::vector<uint8_t>> unparsed[] = {
        {"non-IP frame (LLDP, both CPUs)", PacketBuilder().non_ip(0x88cc, 46).build()},
        {"malformed frame (a TCP header of 8 bytes, both CPUs)",
         PacketBuilder().ipv4("198.18.77.8", "198.19.0.1").l4_raw(6, 8).build()},
    };
    for (const auto& [title, frame] : unparsed) {
      if (part != "ops" && !scaling({{"xdp_pass (empty)", pass.fd},
                                     {"xdp-filter allow-all", filter.fd},
                                     {"sluice (a) 10 prefixes", s10->outside_prog_fd()},
                                     {"(a), default class sticky", s_sticky->outside_prog_fd()}},
                                    repeat, rounds, title, {frame}, {frame, frame}))
        return 1;
    }
    if (part != "scaling" && !sluice::bench::operations(repeat, rounds)) return 1;
    if (part != "all") return 0;
  }
  const std::vector<std::pair<std::string, int>> progs = {
      {"xdp_pass (empty)", pass.fd},
      {"xdp-filter allow-all", filter.fd},
      {"sluice (a) 10 prefixes", s10->outside_prog_fd()},
      {"sluice (b) 100k prefixes", s100k->outside_prog_fd()},
      {"sluice (c) per-source on", s_src->outside_prog_fd()},
      {"(a), flow state off", s10_off->outside_prog_fd()},
      {"(b), flow state off", s100k_off->outside_prog_fd()},
      {"(c), flow state off", s_src_off->outside_prog_fd()},
      {"pass-through (forward)", passthrough.fd},
      {"sluice (a), DPDK standby", s_standby->outside_prog_fd()},
      {"(a), citizen sheds: sticky", s_sticky->outside_prog_fd()},
      {"(c), citizen sheds: sticky", s_sticky_src->outside_prog_fd()},
      {"(a), citizen sheds: random", s_random->outside_prog_fd()},
      {"(c), source over its budget", s_src_over->outside_prog_fd()},
      {"floor: (c) on own arrays", floor_fd},
  };
  std::printf("BPF_PROG_TEST_RUN, repeat %d, median of %d interleaved rounds, ns per packet\n\n",
              repeat, rounds);
  const auto chosen = [&](std::size_t i) {
    return i < 2 || progs[i].first.find(only_config) != std::string::npos;
  };
  for (const auto& [fname, frame] : frames) {
    if (fname.find(only_frame) == std::string::npos) continue;
    std::vector<std::vector<double>> samples(progs.size(), std::vector<double>(rounds, 0.0));
    for (int r = 0; r < rounds; r++)
      for (std::size_t i = 0; i < progs.size(); i++) {
        if (!chosen(i)) continue;
        // The shedding rows first run a controller window (100 ms) or more,
        // so that the class sheds throughout the measurement, not only after
        // the first window of a run that found it idle; the source over its
        // budget spends its burst.
        if (progs[i].second == s_sticky->outside_prog_fd() ||
            progs[i].second == s_sticky_src->outside_prog_fd() ||
            progs[i].second == s_random->outside_prog_fd() ||
            progs[i].second == s_src_over->outside_prog_fd())
          sluice::test::test_run_ns(progs[i].second, frame, 2000000);
        // The verified ACK's flow is opened again right before: an admitted
        // SYN's entry lives 10 s (SL_FLOW_SYN_NS), less than the sections
        // before this one take, and the shedding rows never saw it.
        if (fname == kVerifiedAck) sluice::test::test_run_ns(progs[i].second, flow_syn, 1);
        samples[i][r] = sluice::test::test_run_ns(progs[i].second, frame, repeat);
      }
    std::printf("%s\n", fname.c_str());
    std::vector<double> med;
    for (auto& s : samples) {
      std::sort(s.begin(), s.end());
      med.push_back(s[s.size() / 2]);
    }
    for (std::size_t i = 0; i < progs.size(); i++)
      if (chosen(i))
        std::printf("  %-26s %7.1f ns   %5.2fx xdp-filter\n", progs[i].first.c_str(), med[i],
                    med[i] / med[1]);
    std::printf("\n");
  }

  if (!only_frame.empty() || !only_config.empty()) return 0;

  // The return path (inline mode's inside program) on an answer from the
  // backend (TCP data of a flow the edge admitted): without boundary.adaptive
  // it passes without a lookup; with it, it looks its flow up (the flow's
  // sample is taken once, so the repetitions measure the lookup).
  const auto syn =
      PacketBuilder().ipv4("198.18.10.7", "198.19.0.1").tcp(40003, 443, sluice::test::kSyn).build();
  const auto request = PacketBuilder()
                           .ipv4("198.18.10.7", "198.19.0.1")
                           .tcp(40003, 443, sluice::test::kAck)
                           .payload(100)
                           .build();
  const auto answer = PacketBuilder()
                          .ipv4("198.19.0.1", "198.18.10.7")
                          .tcp(443, 40003, sluice::test::kAck)
                          .payload(1400)
                          .build();
  for (auto* p : {s10.get(), s_adaptive.get()}) {
    sluice::test::test_run_ns(p->outside_prog_fd(), syn, 1);
    sluice::test::test_run_ns(p->outside_prog_fd(), request, 1);
    sluice::test::test_run_ns(p->inside_prog_fd(), answer, 1);
  }
  const std::vector<std::pair<std::string, int>> inside = {
      {"xdp_pass (empty)", pass.fd},
      {"xdp-filter allow-all", filter.fd},
      {"sluice (a) inside", s10->inside_prog_fd()},
      {"(a) inside, adaptive", s_adaptive->inside_prog_fd()}};
  std::vector<std::vector<double>> samples(inside.size());
  for (int r = 0; r < rounds; r++)
    for (std::size_t i = 0; i < inside.size(); i++)
      samples[i].push_back(sluice::test::test_run_ns(inside[i].second, answer, repeat));
  std::printf("TCP answer from the backend (inside program)\n");
  for (auto& s : samples) std::sort(s.begin(), s.end());
  for (std::size_t i = 0; i < inside.size(); i++) {
    const double med = samples[i][samples[i].size() / 2];
    const double filter_med = samples[1][samples[1].size() / 2];
    std::printf("  %-26s %7.1f ns   %5.2fx xdp-filter\n", inside[i].first.c_str(), med,
                med / filter_med);
  }
  std::printf("\n");
  return 0;
}
