// SPDX-License-Identifier: Apache-2.0
// xdp_bench --part ops: what each operation a per-packet path may use costs
// in BPF (bench/bpf/ops.bpf.c), for the scaling model of
// docs/performance.md.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "bench/xdp_bench.hpp"
#include "sluice_bench_ops.skel.h"
#include "tests/support/packet_builder.hpp"
#include "tests/support/parallel_test_run.hpp"

namespace sluice::bench {
namespace {

// The keys the lookup operations find (bench/bpf/ops.bpf.c): 8 sources in
// the hash maps, 10 /24 prefixes in the trie.
bool fill_lookup_maps(sluice_bench_ops* skel) {
  struct {
    uint8_t addr[16];
    uint32_t rest;
  } key{};
  const uint64_t value = 1;
  for (uint8_t i = 0; i < 8; i++) {
    key.addr[0] = 198, key.addr[1] = 18, key.addr[3] = i;
    for (bpf_map* map : {skel->maps.ops_lru, skel->maps.ops_hash})
      if (bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY) != 0) {
        std::fprintf(stderr, "cannot fill %s: %s\n", bpf_map__name(map), std::strerror(errno));
        return false;
      }
  }
  for (uint32_t i = 0; i < 10; i++) {
    struct {
      uint32_t prefixlen;
      uint32_t addr;
    } prefix{24, htonl(0xc6120000U | (i << 8))};
    if (bpf_map__update_elem(skel->maps.ops_lpm, &prefix, sizeof(prefix), &value, sizeof(value),
                             BPF_ANY) != 0) {
      std::fprintf(stderr, "cannot fill ops_lpm: %s\n", std::strerror(errno));
      return false;
    }
  }
  return true;
}

// ns per operation (bench/bpf/ops.bpf.c), from one CPU and from each of two
// at once on the same shared value: the program less the empty one, / 8.
}  // namespace

bool operations(int repeat, int rounds) {
  sluice_bench_ops* skel = sluice_bench_ops__open_and_load();
  if (skel == nullptr) {
    std::fprintf(stderr, "cannot load bench/bpf/ops.bpf.c\n");
    return false;
  }
  const std::vector<std::pair<std::string, bpf_program*>> ops = {
      {"(empty program)", skel->progs.op_empty},
      {"spin lock section", skel->progs.op_spin_lock},
      {"atomic add (shared)", skel->progs.op_atomic_add},
      {"compare-and-swap (shared)", skel->progs.op_cmpxchg},
      {"GCRA take (shared, CAS)", skel->progs.op_gcra},
      {"per-CPU decrement", skel->progs.op_percpu},
      {"bpf_ktime_get_ns", skel->progs.op_ktime},
      {"bpf_ktime_get_boot_ns", skel->progs.op_ktime_boot},
      {"bpf_ktime_get_coarse_ns", skel->progs.op_ktime_coarse},
      {"LRU hash lookup (hit)", skel->progs.op_lru_lookup},
      {"hash lookup (hit)", skel->progs.op_hash_lookup},
      {"LPM trie lookup (IPv4)", skel->progs.op_lpm_lookup},
  };
  if (!fill_lookup_maps(skel)) {
    sluice_bench_ops__destroy(skel);
    return false;
  }
  const auto one = tcp_per_thread(1, sluice::test::kSyn),
             two = tcp_per_thread(2, sluice::test::kSyn);
  std::vector<std::vector<double>> ns1(ops.size()), ns2(ops.size());
  bool ok = true;
  for (int r = 0; r < rounds && ok; r++)
    for (std::size_t i = 0; i < ops.size() && ok; i++) {
      const int fd = bpf_program__fd(ops[i].second);
      std::string error;
      auto a = sluice::test::test_run_parallel(fd, one, repeat, &error);
      auto b = sluice::test::test_run_parallel(fd, two, repeat, &error);
      ok = !a.empty() && !b.empty() && a[0] >= 0 && b[0] >= 0 && b[1] >= 0;
      if (!ok) {
        std::fprintf(stderr, "%s: %s\n", ops[i].first.c_str(),
                     error.empty() ? "test run failed" : error.c_str());
        break;
      }
      ns1[i].push_back(a[0]);
      ns2[i].push_back(mean(b));
    }
  if (ok) {
    std::printf(
        "Operations (8 per run, empty program subtracted), ns each, median of %d rounds\n\n",
        rounds);
    std::printf("  %-26s %10s %16s\n", "operation", "1 CPU", "2 CPUs at once");
    const double e1 = median(ns1[0]), e2 = median(ns2[0]);
    std::printf("  %-26s %10.1f %16.1f   (ns per run)\n", ops[0].first.c_str(), e1, e2);
    for (std::size_t i = 1; i < ops.size(); i++)
      std::printf("  %-26s %10.2f %16.2f\n", ops[i].first.c_str(), (median(ns1[i]) - e1) / 8,
                  (median(ns2[i]) - e2) / 8);
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    std::printf("  (CLOCK_MONOTONIC_COARSE resolution here: %.3f ms)\n\n",
                static_cast<double>(res.tv_sec) * 1e3 + static_cast<double>(res.tv_nsec) / 1e6);
  }
  sluice_bench_ops__destroy(skel);
  return ok;
}

}  // namespace sluice::bench
