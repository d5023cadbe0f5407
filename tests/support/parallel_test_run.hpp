// SPDX-License-Identifier: Apache-2.0
// BPF_PROG_TEST_RUN from one thread or from several at once, each pinned to
// its own CPU: the XDP benchmark's scaling and per-operation parts, and the
// tests of the budgets' bounds under concurrency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::test {

// ns per repetition of one test run of `frame` (the kernel's own average),
// or -1 when the run fails.
double test_run_ns(int prog_fd, const std::vector<uint8_t>& frame, int repeat);

// Runs thread i on CPU i with frames[i], all released together; returns each
// thread's ns per repetition (-1 for a failed run). Empty when a thread
// cannot be pinned (fewer CPUs than frames). overlap, when given: the share
// of the longest run during which every thread was running.
std::vector<double> test_run_parallel(int prog_fd, const std::vector<std::vector<uint8_t>>& frames,
                                      int repeat, std::string* error, double* overlap = nullptr);

// Decisions per second of a parallel run: the sum over its threads.
double per_second(const std::vector<double>& ns_per_thread);

}  // namespace sluice::test
