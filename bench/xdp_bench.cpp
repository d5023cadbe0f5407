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
// boundary.adaptive (which looks the answer's flow up).
//
//   sudo build/bench/xdp_bench [--repeat N] [--rounds R]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_config.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "dataplane/xdp/xdp_program.hpp"
#include "sluice_passthrough.skel.h"
#include "tests/support/packet_builder.hpp"

namespace {

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

double run_ns(int fd, const std::vector<uint8_t>& frame, int repeat) {
  std::vector<uint8_t> in = frame;
  std::vector<uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(in.size()),
              .data_size_out = static_cast<__u32>(out.size()), .repeat = repeat);
  if (bpf_prog_test_run_opts(fd, &opts) != 0) return -1;
  return static_cast<double>(opts.duration);  // kernel reports ns per repetition
}

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
// and the filter on every lookup) or by its budget (random).
std::unique_ptr<sluice::XdpProgram> sluice_program(int n_prefixes, bool per_source,
                                                   bool standby = false,
                                                   const std::string& shed_order = "",
                                                   bool adaptive = false) {
  std::string toml = sluice::bench::bench_config_toml(n_prefixes, per_source);
  if (adaptive) toml.replace(toml.find("[boundary]\n"), 11, "[boundary]\nadaptive = true\n");
  if (!shed_order.empty()) {
    const std::string unlimited = "rate_per_sec = 1000000000\n";
    toml.replace(toml.rfind(unlimited), unlimited.size(),
                 "rate_per_sec = 1000\nshed_order = \"" + shed_order + "\"\n");
  }
  sluice::LoadResult r = sluice::load_config_string(toml, "<bench>");
  if (!r.ok()) {
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return nullptr;
  }
  std::string error;
  sluice::XdpProgramOptions o;
  o.standby = standby;
  auto p = sluice::XdpProgram::load(o, &error);
  if (!p || !p->write_profile(sluice::compile_profile(*r.config), 1, &error) ||
      (standby && !p->beat(3600ULL * 1000000000ULL, &error))) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return nullptr;
  }
  return p;
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
  auto s_sticky = sluice_program(10, false, false, "sticky");
  auto s_random = sluice_program(10, false, false, "random");
  auto s_adaptive = sluice_program(10, false, false, "", true);
  Passthrough passthrough;
  if (!s10 || !s100k || !s_src || !s_standby || !s_sticky || !s_random || !s_adaptive ||
      passthrough.fd < 0)
    return 1;

  const std::vector<std::pair<std::string, std::vector<uint8_t>>> frames = {
      {"TCP SYN (checkpoint)", PacketBuilder()
                                   .ipv4("198.18.10.7", "198.19.0.1")
                                   .tcp(40000, 443, sluice::test::kSyn)
                                   .build()},
      {"UDP lookup (citizen)",
       PacketBuilder().ipv4("198.18.77.7", "198.19.0.1").udp(40000, 53).build()},
      {"IPv6 TCP SYN (citizen)", PacketBuilder()
                                     .ipv6("2001:2:9:9999::7", "2001:2::1")
                                     .tcp(40000, 443, sluice::test::kSyn)
                                     .build()},
      {"TCP ACK, verified (flow hit)", PacketBuilder()
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
  for (auto* p : {s10.get(), s100k.get(), s_src.get()}) run_ns(p->outside_prog_fd(), flow_syn, 1);
  const std::vector<std::pair<std::string, int>> progs = {
      {"xdp_pass (empty)", pass.fd},
      {"xdp-filter allow-all", filter.fd},
      {"sluice (a) 10 prefixes", s10->outside_prog_fd()},
      {"sluice (b) 100k prefixes", s100k->outside_prog_fd()},
      {"sluice (c) per-source on", s_src->outside_prog_fd()},
      {"pass-through (forward)", passthrough.fd},
      {"sluice (a), DPDK standby", s_standby->outside_prog_fd()},
      {"(a), citizen sheds: sticky", s_sticky->outside_prog_fd()},
      {"(a), citizen sheds: random", s_random->outside_prog_fd()},
  };
  std::printf("BPF_PROG_TEST_RUN, repeat %d, median of %d interleaved rounds, ns per packet\n\n",
              repeat, rounds);
  for (const auto& [fname, frame] : frames) {
    std::vector<std::vector<double>> samples(progs.size());
    for (int r = 0; r < rounds; r++)
      for (std::size_t i = 0; i < progs.size(); i++) {
        // The shedding rows first run a controller window (100 ms) or more,
        // so that the class sheds throughout the measurement, not only after
        // the first window of a run that found it idle.
        if (progs[i].second == s_sticky->outside_prog_fd() ||
            progs[i].second == s_random->outside_prog_fd())
          run_ns(progs[i].second, frame, 2000000);
        samples[i].push_back(run_ns(progs[i].second, frame, repeat));
      }
    std::printf("%s\n", fname.c_str());
    std::vector<double> med;
    for (auto& s : samples) {
      std::sort(s.begin(), s.end());
      med.push_back(s[s.size() / 2]);
    }
    for (std::size_t i = 0; i < progs.size(); i++)
      std::printf("  %-26s %7.1f ns   %5.2fx xdp-filter\n", progs[i].first.c_str(), med[i],
                  med[i] / med[1]);
    std::printf("\n");
  }

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
    run_ns(p->outside_prog_fd(), syn, 1);
    run_ns(p->outside_prog_fd(), request, 1);
    run_ns(p->inside_prog_fd(), answer, 1);
  }
  const std::vector<std::pair<std::string, int>> inside = {
      {"xdp_pass (empty)", pass.fd},
      {"xdp-filter allow-all", filter.fd},
      {"sluice (a) inside", s10->inside_prog_fd()},
      {"(a) inside, adaptive", s_adaptive->inside_prog_fd()}};
  std::vector<std::vector<double>> samples(inside.size());
  for (int r = 0; r < rounds; r++)
    for (std::size_t i = 0; i < inside.size(); i++)
      samples[i].push_back(run_ns(inside[i].second, answer, repeat));
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
