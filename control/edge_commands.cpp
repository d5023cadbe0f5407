// SPDX-License-Identifier: Apache-2.0
// sluiced's one-shot edge commands (docs/runbook.md): --detach [--all] and
// --install-passthrough, which act on the pinned edge and exit.
#include <optional>
#include <string>
#include <vector>

#include "control/config/config_loader.hpp"
#include "control/daemon.hpp"
#include "control/log.hpp"

namespace sluice {

namespace {

// The config --detach and --install-passthrough act on: its [dataplane] is
// enough (they must work with a config whose classes, or metrics listener,
// are broken: that is when an operator reaches for them), but not defaults
// in its place: a mistyped path would act on the default pin path, another
// edge's maybe.
std::optional<Config> local_config(const std::string& config_path) {
  LoadResult loaded = load_config_file(config_path);
  if (loaded.ok()) return *loaded.config;
  std::vector<ConfigError> errors;
  Config cfg = load_sections(config_path, {"dataplane"}, &errors);
  if (errors.empty()) return cfg;
  for (const ConfigError& e : errors)
    log_event(LogLevel::error, "config not usable", {{"error", e.to_string()}});
  return std::nullopt;
}

}  // namespace

int detach(const std::string& config_path, bool all) {
  const std::optional<Config> cfg = local_config(config_path);
  if (!cfg) return 1;
  std::string report;
  const bool ok = detach_dataplane(dataplane_settings(*cfg), all, &report);
  log_event(ok ? LogLevel::info : LogLevel::error, ok ? "detached" : "detach incomplete",
            {{"detail", report}});
  return ok ? 0 : 1;
}

int install_passthrough(const std::string& config_path) {
  const std::optional<Config> cfg = local_config(config_path);
  if (!cfg) return 1;
  std::string report;
  const bool ok = install_passthrough_dataplane(dataplane_settings(*cfg), &report);
  log_event(ok ? LogLevel::info : LogLevel::error,
            ok ? "pass-through in place" : "pass-through not installed", {{"detail", report}});
  return ok ? 0 : 1;
}

}  // namespace sluice
