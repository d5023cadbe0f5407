#include "tools/surge/surge_report.hpp"

namespace sluice {
namespace {

nlohmann::json latency_json(const LatencyHistogram& h) {
  return {{"count", h.count()},
          {"p50", h.percentile_us(0.50) / 1000.0},
          {"p99", h.percentile_us(0.99) / 1000.0},
          {"p999", h.percentile_us(0.999) / 1000.0}};
}

nlohmann::json stats_json(const ClassResult& c) {
  uint64_t failures = 0;
  nlohmann::json by_kind = nlohmann::json::object();
  for (size_t k = 0; k < k_failure_kinds; ++k) {
    failures += c.failures[k];
    by_kind[to_string(static_cast<FailureKind>(k))] = c.failures[k];
  }
  return {{"intents", c.intents},
          {"sessions",
           {{"completed", c.sessions_completed},
            {"failed", c.sessions_failed},
            {"unfinished", c.sessions_unfinished}}},
          {"attempts", c.attempts},
          {"amplification",
           c.intents ? static_cast<double>(c.attempts) / static_cast<double>(c.intents) : 0.0},
          {"successes", c.successes},
          {"failures", failures},
          {"failures_by_kind", by_kind},
          {"retries_abandoned", c.retries_abandoned},
          {"latency_ms",
           {{"success", latency_json(c.success_latency)},
            {"failure", latency_json(c.failure_latency)}}}};
}

// Trailing empty seconds (the drain headroom) are trimmed.
nlohmann::json series_json(const std::vector<SecondCounts>& s) {
  size_t n = s.size();
  while (n > 0 && s[n - 1].offered == 0 && s[n - 1].attempts == 0 && s[n - 1].successes == 0 &&
         s[n - 1].failures == 0) {
    --n;
  }
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) {
    out.push_back({{"t", i},
                   {"offered", s[i].offered},
                   {"attempts", s[i].attempts},
                   {"successes", s[i].successes},
                   {"failures", s[i].failures},
                   {"sessions_completed", s[i].sessions_completed},
                   {"sessions_failed", s[i].sessions_failed}});
  }
  return out;
}

}  // namespace

nlohmann::json surge_report_json(const SurgeConfig& config, const SurgeResult& result) {
  nlohmann::json j;
  j["tool"] = "sluice-surge";
  j["elapsed_s"] = result.elapsed_sec;
  const RateProfile& p = config.profile;
  j["config"] = {
      {"baseline", p.baseline_per_sec},
      {"step_to", p.target_per_sec ? nlohmann::json(*p.target_per_sec) : nlohmann::json()},
      {"step_at", p.step_at_sec},
      {"ramp", p.ramp_sec},
      {"back_at", p.back_at_sec ? nlohmann::json(*p.back_at_sec) : nlohmann::json()},
      {"duration", p.duration_sec},
      {"timeout_ms", config.timeout_ms},
      {"max_inflight", config.max_inflight},
      {"seed", config.seed}};
  nlohmann::json classes = nlohmann::json::object();
  nlohmann::json by_class = nlohmann::json::object();
  ClassResult overall;
  for (size_t i = 0; i < config.classes.size() && i < result.classes.size(); ++i) {
    const SurgeClass& sc = config.classes[i];
    const ClassResult& c = result.classes[i];
    nlohmann::json cj = stats_json(c);
    nlohmann::json srcs = nlohmann::json::array();
    if (sc.sources.size() <= 16) {
      for (const auto& s : sc.sources) srcs.push_back(s.text);
    } else {  // a population: its first address and size
      srcs.push_back(sc.sources.front().text + "+" + std::to_string(sc.sources.size()));
    }
    cj["setup"] = {{"dst", sc.destination.text},    {"src", srcs},
                   {"proto", to_string(sc.proto)},  {"share", sc.share},
                   {"retry", to_string(sc.retry)},  {"max_retries", sc.max_retries},
                   {"session", sc.session_lookups}, {"session_gap_ms", sc.session_gap_ms}};
    classes[sc.name] = cj;
    by_class[sc.name] = series_json(c.series);
    overall.intents += c.intents;
    overall.sessions_completed += c.sessions_completed;
    overall.sessions_failed += c.sessions_failed;
    overall.sessions_unfinished += c.sessions_unfinished;
    overall.attempts += c.attempts;
    overall.successes += c.successes;
    overall.retries_abandoned += c.retries_abandoned;
    for (size_t k = 0; k < k_failure_kinds; ++k) overall.failures[k] += c.failures[k];
  }
  nlohmann::json oj = stats_json(overall);
  oj.erase("latency_ms");  // histograms are per class; merging would hide the classes' difference
  j["overall"] = oj;
  j["classes"] = classes;
  j["series"] = series_json(result.series);
  j["series_by_class"] = by_class;
  return j;
}

}  // namespace sluice
