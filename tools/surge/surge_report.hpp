#pragma once
// The final JSON report of sluice-surge. Schema (every latency in ms, from the
// attempt's scheduled time; percentiles from LatencyHistogram, <0.8 % error):
//   { "tool", "elapsed_s", "config": {...},
//     "overall": <stats>, "classes": { "<name>": <stats> },
//     "series": [{t, offered, attempts, successes, failures}],
//     "series_by_class": { "<name>": [...] } }
//   <stats> = { intents, attempts, amplification (attempts/intents), successes,
//               failures, failures_by_kind {reset, timeout, error, overload_local},
//               retries_abandoned,
//               latency_ms { success {count,p50,p99,p999}, failure {count,p50,p99,p999} } }

#include <nlohmann/json.hpp>

#include "tools/surge/load_engine.hpp"
#include "tools/surge/surge_config.hpp"

namespace sluice {

nlohmann::json surge_report_json(const SurgeConfig& config, const SurgeResult& result);

}  // namespace sluice
