// SPDX-License-Identifier: Apache-2.0
// sluice-backend's options: their ranges and the capacity schedule's grammar
// (shared by the CLI and the tests).
#include <sys/socket.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tools/backend/backend_server.hpp"
#include "tools/backend/listen_address.hpp"

namespace sluice {

std::string validate_backend_options(const BackendOptions& o) {
  if (o.workers < 1 || o.workers > 4096) return "--workers must be 1..4096";
  if (o.service_time_ms < 1 || o.service_time_ms > 60000)
    return "--service-time-ms must be 1..60000";
  if (o.queue > 1000000) return "--queue must be 0..1000000";
  if (o.request_timeout_ms < 1 || o.request_timeout_ms > 3600000)
    return "--request-timeout-ms must be 1..3600000";
  if (o.duration_sec < 1 || o.duration_sec > 86400) return "--duration-sec must be 1..86400";
  if (o.report_interval_sec > 3600) return "--report-interval-sec must be 0..3600";
  double last = 0;
  for (const BackendOptions::CapacityStep& step : o.capacity_schedule) {
    if (!(step.at_sec > last) || !(step.factor >= 0.01 && step.factor <= 100))
      return "--capacity-schedule: times must ascend from above 0, factors be 0.01..100";
    last = step.at_sec;
  }
  sockaddr_storage addr;
  socklen_t len;
  std::string error;
  if (!parse_listen(o.listen, &addr, &len, &error)) return error;
  return {};
}

bool parse_capacity_schedule(const std::string& text,
                             std::vector<BackendOptions::CapacityStep>* out, std::string* error) {
  std::vector<BackendOptions::CapacityStep> steps;
  std::size_t start = 0;
  double last = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string entry = text.substr(start, comma - start);
    const std::size_t colon = entry.find(':');
    BackendOptions::CapacityStep step;
    char* end = nullptr;
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < entry.size();
    if (ok) {
      const std::string at = entry.substr(0, colon), factor = entry.substr(colon + 1);
      step.at_sec = std::strtod(at.c_str(), &end);
      ok = *end == '\0';
      step.factor = std::strtod(factor.c_str(), &end);
      ok = ok && *end == '\0';
    }
    if (!ok || !(step.at_sec > last) || !(step.factor >= 0.01 && step.factor <= 100)) {
      *error = "--capacity-schedule: bad entry \"" + entry +
               "\": expected SECONDS:FACTOR (seconds ascending from above 0, factor of the "
               "capacity 0.01..100), e.g. 20:0.5,40:1";
      return false;
    }
    last = step.at_sec;
    steps.push_back(step);
    start = comma + 1;
  }
  *out = std::move(steps);
  return true;
}

}  // namespace sluice
