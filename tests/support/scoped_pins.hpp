// SPDX-License-Identifier: Apache-2.0
// A bpffs directory of a test's own pins (its name and the process id),
// removed with everything in it when the test ends, also on failure.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace sluice::test {

struct ScopedPins {
  explicit ScopedPins(const std::string& name)
      : path("/sys/fs/bpf/sluice-test-" + name + "-" + std::to_string(::getpid())) {}
  ~ScopedPins() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScopedPins(const ScopedPins&) = delete;
  ScopedPins& operator=(const ScopedPins&) = delete;
  const std::string path;
};

}  // namespace sluice::test
