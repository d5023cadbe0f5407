// SPDX-License-Identifier: Apache-2.0
// One sluiced per pinned state: a second one on the same dataplane.pin_path
// (a mistake, or a restart racing the old process) must not adopt and then
// tear down the first's. An exclusive flock(2) on a file in /run/sluice
// named after the pin path, held until exit (or until the config names
// another pin path) and removed then.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace sluice {

// The lock file of a pin path: /run/sluice/instance + the path with '/' as
// '-' ('-' and '%' escaped as %2d and %25, so two paths never share a file),
// e.g. /run/sluice/instance-sys-fs-bpf-sluice.lock.
std::string instance_lock_path(const std::string& pin_path);

// Whether a process holds pin_path's lock now, read from /proc/locks
// without taking it (a sluiced starting at that instant is not refused):
// nullopt when there is no lock file to judge by (removed at a clean exit,
// never made, or another mount namespace's /run) or /proc/locks cannot be
// read. A sluiced killed (-9, a crash) holds it no more, even while its
// process is a zombie its parent has not reaped.
std::optional<bool> instance_lock_held(const std::string& pin_path);

class InstanceLocks {
 public:
  InstanceLocks() = default;
  InstanceLocks(const InstanceLocks&) = delete;
  InstanceLocks& operator=(const InstanceLocks&) = delete;
  // Removed while still held (the next sluiced's take() then retries on a
  // new file), so /run/sluice keeps no file of a stopped one.
  ~InstanceLocks();

  // True when this process holds pin_path's lock (taken now or before);
  // false + *error naming the lock when another process holds it. A new
  // pin path's lock, once taken, releases the one held before (a config's
  // pin_path edited while sluiced waited, not in charge).
  bool take(const std::string& pin_path, std::string* error);

 private:
  void release_all();                       // each lock file removed while held, then closed
  std::map<std::string, int> by_pin_path_;  // the lock files' fds
};

}  // namespace sluice
