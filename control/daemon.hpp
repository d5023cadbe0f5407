// SPDX-License-Identifier: Apache-2.0
// sluiced's run mode: load the config, start the dataplane it selects, then
// serve signals until told to stop: SIGHUP reloads the file (a bad file is
// logged and the last good config stays), SIGTERM/SIGINT exit and leave the
// XDP program enforcing (the next sluiced adopts it). Per-class counters are
// logged every log_interval_sec.
//
// A start that fails (a config the validator rejects, a dataplane that does
// not start) does not exit: sluiced stays up, not in charge, answers the
// control socket and /metrics with why and what the edge runs meanwhile
// (the program an earlier sluiced left, or the when_stopped pass-through),
// and tries again on SIGHUP and on a backoff timer.
#pragma once

#include <string>

#include "control/config/config.hpp"
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

// sluiced --detach [--all]: an inline edge goes to the when_stopped
// pass-through; host mode or --all removes everything sluice attached and
// pinned.
int detach(const std::string& config_path, bool all);

// sluiced --install-passthrough: the when_stopped program on an inline edge
// where no sluice program enforces yet (a oneshot unit before the network).
int install_passthrough(const std::string& config_path);

}  // namespace sluice
