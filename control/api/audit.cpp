// SPDX-License-Identifier: Apache-2.0
#include "control/api/audit.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace sluice {

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

bool AuditLog::open(const std::string& path, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  created_ = !std::filesystem::exists(path, ec);
  file_ = std::fopen(path.c_str(), "ae");  // e: O_CLOEXEC
  if (file_ == nullptr) {
    *error = "control.audit_log: cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  path_ = path;
  return true;
}

bool AuditLog::reopen(std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::FILE* fresh = std::fopen(path_.c_str(), "ae");
  if (fresh == nullptr) {
    *error = "control.audit_log: cannot reopen " + path_ + ": " + std::strerror(errno) +
             "; still writing to the file opened before";
    return false;
  }
  if (file_ != nullptr) std::fclose(file_);
  file_ = fresh;
  return true;
}

AuditLog::~AuditLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void AuditLog::discard_if_unused() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr || !created_ || written_) return;
  // Still the file this open made, and still empty: another sluiced given
  // the same path (a misconfiguration) may have written to it meanwhile.
  struct stat mine {
  }, now{};
  const bool same = ::fstat(::fileno(file_), &mine) == 0 && ::stat(path_.c_str(), &now) == 0 &&
                    mine.st_dev == now.st_dev && mine.st_ino == now.st_ino && now.st_size == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (same) ::unlink(path_.c_str());
}

bool AuditLog::append(const nlohmann::json& entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr) return false;
  const std::string line = entry.dump() + "\n";
  written_ = true;
  return std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0;
}

}  // namespace sluice
