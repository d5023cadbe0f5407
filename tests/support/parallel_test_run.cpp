// SPDX-License-Identifier: Apache-2.0
#include "tests/support/parallel_test_run.hpp"

#include <bpf/bpf.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace sluice::test {

double test_run_ns(int prog_fd, const std::vector<uint8_t>& frame, int repeat) {
  std::vector<uint8_t> in = frame;
  std::vector<uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(in.size()),
              .data_size_out = static_cast<__u32>(out.size()), .repeat = repeat);
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return -1;
  return static_cast<double>(opts.duration);  // kernel reports ns per repetition
}

std::vector<double> test_run_parallel(int prog_fd, const std::vector<std::vector<uint8_t>>& frames,
                                      int repeat, std::string* error, double* overlap) {
  const std::size_t n = frames.size();
  std::vector<double> ns(n, -1);
  std::vector<int> pin_error(n, 0);
  std::vector<std::chrono::steady_clock::time_point> start(n), end(n);
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(static_cast<int>(i), &set);
      pin_error[i] = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      ready.fetch_add(1);
      // Released together, so the runs overlap (each lasts >= 10 ms, the
      // release takes microseconds).
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      start[i] = std::chrono::steady_clock::now();
      if (pin_error[i] == 0) ns[i] = test_run_ns(prog_fd, frames[i], repeat);
      end[i] = std::chrono::steady_clock::now();
    });
  }
  while (ready.load() < n) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < n; i++) {
    if (pin_error[i] != 0) {
      if (error)
        *error =
            "cannot pin a thread to CPU " + std::to_string(i) + ": " + std::strerror(pin_error[i]);
      return {};
    }
  }
  if (overlap) {
    const auto all_start = *std::max_element(start.begin(), start.end());
    const auto all_end = *std::min_element(end.begin(), end.end());
    std::chrono::steady_clock::duration longest{0};
    for (std::size_t i = 0; i < n; i++) longest = std::max(longest, end[i] - start[i]);
    *overlap = all_end > all_start && longest.count() > 0
                   ? std::chrono::duration<double>(all_end - all_start).count() /
                         std::chrono::duration<double>(longest).count()
                   : 0;
  }
  return ns;
}

double per_second(const std::vector<double>& ns_per_thread) {
  double sum = 0;
  for (double ns : ns_per_thread)
    if (ns > 0) sum += 1e9 / ns;
  return sum;
}

}  // namespace sluice::test
