// SPDX-License-Identifier: Apache-2.0
#include "control/log.hpp"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace sluice {
namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::info)};

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

// True when stderr is the stream systemd connected to the journal: it sets
// JOURNAL_STREAM to that stream's "device:inode" (systemd.exec(5)). Checked
// per line (lines are rare), so a redirected stderr is seen at once.
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

const char* syslog_prefix(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return SD_DEBUG;
    case LogLevel::info:
      return SD_INFO;
    case LogLevel::warn:
      return SD_WARNING;
    case LogLevel::error:
      return SD_ERR;
  }
  return SD_INFO;
}

}  // namespace

void set_log_level(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

LogLevel log_level() { return static_cast<LogLevel>(g_min_level.load()); }

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(const std::string& text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warn" || text == "warning") return LogLevel::warn;
  if (text == "error") return LogLevel::error;
  return std::nullopt;
}

void log_event(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  static std::mutex mutex;
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = std::string(stderr_is_journal() ? syslog_prefix(level) : "") + "ts=" + ts +
                     "." + std::to_string(1000 + ms.count()).substr(1) +
                     "Z level=" + log_level_name(level) + " msg=" + quoted(msg);
  for (const auto& [k, v] : fields) line += " " + k + "=" + quoted(v);
  line += "\n";
  std::lock_guard<std::mutex> lock(mutex);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace sluice
