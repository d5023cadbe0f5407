// SPDX-License-Identifier: Apache-2.0
#include "control/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace sluice {
namespace {

std::string quoted(const std::string& v) {
  bool plain = !v.empty();
  for (char c : v) plain = plain && c > ' ' && c != '"' && c != '=' && c != '\\';
  if (plain) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

void log_event(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields) {
  static std::mutex mutex;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = std::string("ts=") + ts + "." + std::to_string(1000 + ms.count()).substr(1) +
                     "Z level=" +
                     (level == LogLevel::info   ? "info"
                      : level == LogLevel::warn ? "warn"
                                                : "error") +
                     " msg=" + quoted(msg);
  for (const auto& [k, v] : fields) line += " " + k + "=" + quoted(v);
  line += "\n";
  std::lock_guard<std::mutex> lock(mutex);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace sluice
