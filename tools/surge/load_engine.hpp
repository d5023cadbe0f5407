#pragma once
// The open-loop engine of sluice-surge: one thread, non-blocking sockets and
// epoll. Arrivals follow a (non-homogeneous) Poisson process and never wait
// for completions; every latency is measured from the attempt's *scheduled*
// time, so a stalled server shows up in the percentiles instead of silently
// slowing the generator down (no coordinated omission).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/surge/latency_histogram.hpp"
#include "tools/surge/surge_config.hpp"

namespace sluice {

enum class FailureKind : uint8_t {
  reset,           // refused, reset, or closed before a status line / ICMP unreachable
  timeout,         // no answer within timeout_ms
  error,           // non-200 status, unreachable network, malformed reply, ...
  overload_local,  // no free in-flight slot (or no local fd/port): the generator's limit
};
inline constexpr size_t k_failure_kinds = 4;
const char* to_string(FailureKind k);

struct SecondCounts {
  uint64_t offered = 0;    // intents arriving in this second
  uint64_t attempts = 0;   // attempts scheduled in this second (first tries and retries)
  uint64_t successes = 0;  // completions in this second
  uint64_t failures = 0;
  uint64_t sessions_completed = 0;  // intents whose every lookup succeeded, by completion second
  uint64_t sessions_failed = 0;     // intents with a lookup that failed for good
};

struct ClassResult {
  uint64_t intents = 0;  // sessions started
  uint64_t sessions_completed = 0;
  uint64_t sessions_failed = 0;
  uint64_t sessions_unfinished = 0;  // still open when the run ended
  uint64_t attempts = 0;
  uint64_t successes = 0;
  std::array<uint64_t, k_failure_kinds> failures{};
  uint64_t retries_abandoned = 0;  // retries that fell due after the run's end
  LatencyHistogram success_latency;
  LatencyHistogram failure_latency;
  std::vector<SecondCounts> series;
};

struct SurgeResult {
  std::vector<ClassResult> classes;  // same order as SurgeConfig::classes
  std::vector<SecondCounts> series;  // all classes
  double elapsed_sec = 0;
};

// Runs the whole scenario; returns after profile.duration_sec plus at most
// timeout_ms of draining. Returns "" or a setup error (epoll/rlimit).
std::string run_surge(const SurgeConfig& config, SurgeResult& result);

}  // namespace sluice
