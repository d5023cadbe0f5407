// SPDX-License-Identifier: Apache-2.0
// The DPDK environment (EAL) of this process: started once, with the
// operator's dpdk_args plus the lcores the workers need, and cleaned up at
// the end. rte_eal_init() can run only once per process, so a second start
// with the EAL already up succeeds without re-initialising it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::dpdk {

// Starts the EAL. Unless args choose lcores themselves (-l, -c, --lcores),
// lcore 0 (this thread) may run on any allowed CPU and worker lcore i is
// pinned to one CPU each, highest first. Unless args set --file-prefix,
// --in-memory or --no-shconf, the EAL runs --no-shconf (no shared config to
// collide with another DPDK process; --in-memory cannot go with --no-huge). False + *error naming
// the EAL's complaint.
bool eal_start(const std::vector<std::string>& args, uint32_t workers, std::string* error);

// Whether the EAL takes args (with what eal_start adds for `workers`), as
// far as parsing them tells, without starting it: a child process parses
// them and stops before any device. False + *error with the EAL's words.
bool eal_check(const std::vector<std::string>& args, uint32_t workers, std::string* error);

bool eal_running();

// Releases what the EAL holds. The EAL cannot start again in this process.
void eal_stop();

// True once the EAL was started (or failed to start) and is not running: a
// DPDK dataplane needs a new process (a restart of sluiced) to start again.
bool eal_spent();

// The mbuf field where a queued packet carries its arrival time and what the
// model decided for it (registered by eal_start).
struct QueueTag {
  uint64_t arrival_tsc;
  uint8_t state_index;   // class state slot, for counters
  uint8_t is_start;      // counted as a lookup
  uint8_t reason;        // reason it was admitted for
  uint8_t priority;      // queue it waits in
  uint32_t state_epoch;  // its class's in that slot: a retune may give the slot to another
};
int queue_tag_offset();

}  // namespace sluice::dpdk
