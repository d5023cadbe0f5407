// SPDX-License-Identifier: Apache-2.0
// Privileged tests (BPF, netns, DPDK) run in CI, which is root. Outside CI
// (CI unset) they may skip, saying why; in CI a test that would skip fails.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#define SLUICE_REQUIRE_ROOT()                                                          \
  do {                                                                                 \
    if (::geteuid() != 0) {                                                            \
      if (std::getenv("CI") != nullptr) {                                              \
        FAIL() << "this test needs root (BPF, network namespaces); CI runs as root";   \
      }                                                                                \
      GTEST_SKIP() << "needs root for BPF and network namespaces; skipped outside CI"; \
    }                                                                                  \
  } while (0)

// A test of several CPUs at once: on fewer it may skip outside CI; in CI it fails.
#define SLUICE_REQUIRE_CPUS(n, have)                                                 \
  do {                                                                               \
    if ((have) < (n)) {                                                              \
      if (std::getenv("CI") != nullptr) {                                            \
        FAIL() << "this test needs " << (n) << " CPUs, this machine has " << (have); \
      }                                                                              \
      GTEST_SKIP() << "needs " << (n) << " CPUs, this machine has " << (have)        \
                   << "; skipped outside CI";                                        \
    }                                                                                \
  } while (0)
