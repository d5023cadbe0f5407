// sluice-surge: open-loop load generator for the surge lab. See
// tools/surge/README.md for the CLI, the scenario format and the report.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "tools/surge/load_engine.hpp"
#include "tools/surge/surge_config.hpp"
#include "tools/surge/surge_report.hpp"

namespace {

int run_main(int argc, char** argv) {
  using namespace sluice;
  CLI::App app{"sluice-surge: open-loop Poisson load generator (lab addresses only)"};
  // Values are kept as text: flags, --class specs and the scenario file all go
  // through one validator (build_surge_config).
  struct Flag {
    const char* key;
    const char* name;
    const char* help;
    std::string value;
    CLI::Option* opt = nullptr;
  };
  std::vector<Flag> flags = {
      {"baseline", "--baseline", "baseline rate, intents/s (default 100)", ""},
      {"step_to", "--step-to", "rate to step or ramp to, intents/s", ""},
      {"step_at", "--step-at", "when the step/ramp starts, s (default 0)", ""},
      {"ramp", "--ramp", "ramp length to --step-to, s (default 0 = step)", ""},
      {"hold", "--hold", "time at --step-to after the ramp before going back, s", ""},
      {"back_at", "--back-at", "when the rate goes back to baseline, s", ""},
      {"duration", "--duration", "hard bound on the run, s (default 10)", ""},
      {"dst", "--dst", "default destination addr:port or [v6]:port", ""},
      {"proto", "--proto", "default protocol tcp|udp (default tcp)", ""},
      {"retry", "--retry", "default client model none|immediate|backoff|refresh", ""},
      {"max_retries", "--max-retries", "retries per intent (default 3)", ""},
      {"backoff_base_ms", "--backoff-base-ms", "backoff base, ms (default 50)", ""},
      {"backoff_cap_ms", "--backoff-cap-ms", "backoff cap, ms (default 2000)", ""},
      {"refresh_s", "--refresh-s", "refresh period, s (default 5)", ""},
      {"timeout_ms", "--timeout-ms", "per-attempt timeout, ms (default 1000)", ""},
      {"max_inflight", "--max-inflight", "bound on open attempts (default 4096)", ""},
      {"seed", "--seed", "random seed (default 1)", ""},
  };
  for (auto& f : flags) f.opt = app.add_option(f.name, f.value, f.help);
  std::vector<std::string> class_specs;
  app.add_option("--class", class_specs,
                 "name=N,src=A[|B],dst=A:P,proto=tcp|udp,share=F,retry=M,max_retries=N,"
                 "base_ms=N,cap_ms=N,refresh_s=F (repeatable)");
  std::string scenario, report_path;
  bool no_progress = false, json_stdout = false;
  app.add_option("--scenario", scenario, "JSON scenario file (flags override it)");
  app.add_option("--report-json", report_path, "write the final JSON report here");
  app.add_flag("--stdout", json_stdout,
               "also print the report on stdout (default if no --report-json)");
  app.add_flag("--no-progress", no_progress, "no per-second progress line on stderr");
  CLI11_PARSE(app, argc, argv);

  SurgeRawInput raw;
  for (const auto& f : flags) {
    if (f.opt->count() > 0) raw.globals[f.key] = f.value;
  }
  for (const auto& s : class_specs) raw.classes.push_back(parse_class_spec(s));
  if (!scenario.empty()) {
    std::string err = load_scenario_file(scenario, raw);
    if (!err.empty()) {
      (void)std::fprintf(stderr, "sluice-surge: %s\n", err.c_str());
      return 1;
    }
  }
  if (no_progress) raw.globals["progress"] = "false";
  SurgeConfig cfg;
  if (std::string err = build_surge_config(raw, cfg); !err.empty()) {
    (void)std::fprintf(stderr, "sluice-surge: %s\n", err.c_str());
    return 1;
  }
  SurgeResult result;
  if (std::string err = run_surge(cfg, result); !err.empty()) {
    (void)std::fprintf(stderr, "sluice-surge: %s\n", err.c_str());
    return 1;
  }
  nlohmann::json report = surge_report_json(cfg, result);
  if (!report_path.empty()) {
    std::ofstream out(report_path);
    out << report.dump(2) << "\n";
    if (!out) {
      (void)std::fprintf(stderr, "sluice-surge: cannot write %s\n", report_path.c_str());
      return 1;
    }
  }
  if (report_path.empty() || json_stdout) std::cout << report.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Only allocation failure or a bug can throw past run_main; say so and fail.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "sluice-surge: %s\n", e.what());
    return 1;
  }
}
