// SPDX-License-Identifier: Apache-2.0
// Structured logs to stderr, one logfmt line per event:
//   ts=2026-11-26T08:00:00.123Z level=info msg="applied config" generation=3
// Never called per packet: per-packet events are counters.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace sluice {

enum class LogLevel { info, warn, error };

using LogField = std::pair<std::string, std::string>;

void log_event(LogLevel level, const std::string& msg, std::initializer_list<LogField> fields = {});

}  // namespace sluice
