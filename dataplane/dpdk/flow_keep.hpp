// SPDX-License-Identifier: Apache-2.0
// What a DPDK stop keeps of its flow table for the next start.
//
// DPDK's flow table lives in the process, so every stop emptied it: a
// connection that sent nothing within the next start's learning window
// (flow_learn_sec) was charged as forged for the rest of its life, where
// XDP adopts its pinned table and loses none (docs/runbook.md). A clean stop
// (SIGTERM, a restart) now writes the live flows to a file in sluiced's
// state directory, and the next start takes them back before its workers
// run, their lives counted on across the gap. A kill -9 or a crash writes
// nothing: the learning window is what covers those, as before.
//
// The file is this boot's only (the kernel's boot_id): the workers' clock
// is the TSC's, and it is translated through CLOCK_MONOTONIC, which a
// reboot restarts. Not with the capture clock (a replay's time is the
// capture's, not the host's).
//
// The file, in the host's byte order: "SLFLOWS\n", the version and a
// record's size (4 bytes each), the boot_id (36 ASCII bytes), 4 bytes of 0,
// CLOCK_MONOTONIC and the workers' clock at the stop, the records' count
// (8 bytes each); then per flow its shard and partition (4 bytes each), its
// sl_flow_key and its sl_flow.
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/dpdk/flow_shards.hpp"

namespace sluice::dpdk {

// Writes every live flow of `flows` (now_ns: the workers' clock) to path,
// whole or not at all (path.new, fsync, rename). No worker may run.
// *kept: the flows written.
bool keep_flows(const FlowShards& flows, uint64_t now_ns, const std::string& path, uint64_t* kept,
                std::string* error);

struct TakenFlows {
  bool found = false;  // a kept table was there
  uint64_t taken = 0;  // put back, with their lives counted on
  uint64_t ended = 0;  // their lives ended while no sluiced ran
};

// Puts the flows keep_flows wrote to path back into `flows` (now_ns: this
// run's clock) and removes the file: a kept table is taken once. No file:
// true, nothing taken. A file of another boot, or one that is damaged:
// false with *error naming why, the table untouched (and the file removed:
// it can never be taken); a directory or other non-file there: the same,
// left where it is. No worker may run.
bool take_kept_flows(const std::string& path, FlowShards& flows, uint64_t now_ns, TakenFlows* taken,
                     std::string* error);

}  // namespace sluice::dpdk
