// SPDX-License-Identifier: Apache-2.0
// Structured logs to stderr, one logfmt line per event:
//   ts=2026-11-26T08:00:00.123Z level=info msg="applied config" generation=3
// When stderr is the systemd journal (JOURNAL_STREAM names it), each line
// starts with its syslog priority (<3> error, <4> warning, <6> info, <7>
// debug), so `journalctl -p err` shows just the errors. Events below the
// runtime level (info by default; `sluicectl log-level`) are not written.
// Never called per packet: per-packet events are counters.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

namespace sluice {

enum class LogLevel { debug, info, warn, error };

using LogField = std::pair<std::string, std::string>;

void log_event(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields = {});

// The lowest level written; thread-safe.
void set_log_level(LogLevel level);
LogLevel log_level();
const char* log_level_name(LogLevel level);
// "debug", "info", "warn" (or "warning"), "error"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(const std::string& text);

}  // namespace sluice
