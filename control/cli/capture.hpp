// SPDX-License-Identifier: Apache-2.0
// `sluicectl capture`: sampled frames a running sluiced decides, written as
// pcapng with each packet's class, verdict and reason in its comment.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::cli {

struct CaptureArgs {
  std::string class_name;  // empty: every class
  std::string verdict = "any";
  std::string reason;  // empty: any
  uint64_t count = 100;
  uint64_t seconds = 60;
  uint64_t sample = 1;
  uint64_t snaplen = 256;
  std::string file;
};

// Returns the exit code: kOk once COUNT frames or the time limit came (the
// file then holds what was captured), kRejected for a refused request or a
// file that cannot be written, kUnreachable when sluiced cannot be reached.
int capture(const std::string& socket, const CaptureArgs& args);

}  // namespace sluice::cli
