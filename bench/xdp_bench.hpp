// SPDX-License-Identifier: Apache-2.0
// What xdp_bench's parts share: the per-operation costs (xdp_bench_ops.cpp)
// measure with the main file's frames and statistics.
#pragma once

#include <cstdint>
#include <vector>

namespace sluice::bench {

double median(std::vector<double> v);
double mean(const std::vector<double>& v);
// One checkpoint TCP segment per thread, each from its own source.
std::vector<std::vector<uint8_t>> tcp_per_thread(int threads, uint8_t flags);

// ns per operation of bench/bpf/ops.bpf.c (locks, atomics, clocks, map
// lookups), from one CPU and from two at once; printed. False on a failure.
bool operations(int repeat, int rounds);

}  // namespace sluice::bench
