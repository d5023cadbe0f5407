// SPDX-License-Identifier: Apache-2.0
// What sluiced's run (daemon.cpp) and its wait while not in charge
// (not_in_charge.cpp) share.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string>

#include "control/daemon.hpp"
#include "control/instance_lock.hpp"

namespace sluice {

// How a run ended: an exit code, or "start again" (SIGHUP or the retry timer
// while not in charge).
inline constexpr int kStartAgain = -1;

// systemd (Type=notify): a no-op unless NOTIFY_SOCKET is set.
void notify(const std::string& state);

// Starts that failed, by reason, for sluice_start_failures_total.
struct StartFailures {
  uint64_t config = 0;
  uint64_t dataplane = 0;
};

// Not in charge: serves why on the control socket and /metrics (at the
// addresses the file's own [control] and [metrics] give, or the defaults),
// until SIGTERM (exit) or SIGHUP / the retry timer (start again).
// `unjoined`: a fleet member that could not join (etcd, not the file).
int wait_not_in_charge(const DaemonOptions& options, const std::string& why, bool config_error,
                       bool unjoined, const sigset_t& signals, unsigned retry_sec,
                       StartFailures* failures, InstanceLocks* locks);

}  // namespace sluice
