// SPDX-License-Identifier: Apache-2.0
// A fleet member for the fleet tests: the control tests' config with a
// [fleet] on a test etcd, and a bounded wait.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "tests/control/api/control_test_env.hpp"

namespace sluice::test {

// kControlTestConfig as node edge-a of the fleet /sluice/agent-test, on the
// etcd at 127.0.0.1:port.
inline std::string member_config(int port) {
  return std::string(test::kControlTestConfig) + R"(
[fleet]
etcd = ["http://127.0.0.1:)" +
         std::to_string(port) + R"("]
prefix = "/sluice/agent-test"
node = "edge-a"
static_sec = 1
sync_ms = 50
)";
}

// Waits up to 10 s for `done` (fleet syncs, etcd restarts).
inline bool within_10s(const std::function<bool()>& done) {
  return eventually(done, std::chrono::seconds(10));
}

}  // namespace sluice::test
