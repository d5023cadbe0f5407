// SPDX-License-Identifier: Apache-2.0
// sluiced's run mode: load the config, start the dataplane it selects, then
// serve signals until told to stop: SIGHUP reloads the file (a bad file is
// logged and the last good config stays), SIGTERM/SIGINT detach and exit.
// Per-class counters are logged every log_interval_sec.
#pragma once

#include <string>

#include "control/config.hpp"
#include "dataplane/dataplane.hpp"

namespace sluice {

struct DaemonOptions {
  std::string config_path;
  unsigned log_interval_sec = 5;
};

// Restart-only dataplane settings of a config.
DataplaneSettings dataplane_settings(const Config& cfg);

// Returns the process exit code.
int run_daemon(const DaemonOptions& options);

// sluiced --detach: removes what an earlier sluiced attached and pinned.
int detach(const std::string& config_path);

}  // namespace sluice
