// SPDX-License-Identifier: Apache-2.0
// Audit log: one JSON line per applied change (time, origin, operation, diff,
// old and new generation), appended and flushed before the change is
// acknowledged. Refused changes are not written.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice {

class AuditLog {
 public:
  // Opens (creating the directory) for appending; *error when it cannot.
  bool open(const std::string& path, std::string* error);
  // Opens the path again (logrotate moved the file: SIGUSR1); on failure the
  // old file stays open and *error says why.
  bool reopen(std::string* error);
  ~AuditLog();
  bool append(const nlohmann::json& entry);
  // A start that failed before any change: the file this open created, and
  // nothing was written to it, is removed (an empty audit log says a run
  // that never was) if it is still that file and still empty.
  void discard_if_unused();

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
  std::string path_;
  bool created_ = false;  // open() made the file
  bool written_ = false;  // a line was appended
};

// "2026-11-26T09:30:00.123Z"
std::string utc_timestamp();

}  // namespace sluice
