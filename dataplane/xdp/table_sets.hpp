// SPDX-License-Identifier: Apache-2.0
// The shape and salt of the XDP program's tables in sets of our own
// (bpf/shared_state.h: struct sl_source_set, struct sl_flow_set), decided
// when the program is loaded.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::xdp_sets {

// Sets of the per-source table: a power of two, at least half of
// source_table_size, so that there are 2-4 ways per entry.
uint32_t source_sets(uint64_t source_table_size);

// The ways those sets hold: the table's capacity.
uint64_t source_ways(uint64_t source_table_size);

// Sets of each priority partition of the flow table: a power of two,
// holding 2-4 ways per entry of the partition's share of flow_table_size.
uint32_t flow_sets(uint64_t flow_table_size);

// The ways of every partition: the flow table's capacity.
uint64_t flow_ways(uint64_t flow_table_size);

// The salt of both tables' set indexes: the one kept in pin_dir's
// sl_table_salt by an earlier load (the entries in the pinned tables stay in
// their sets), else a new random one (pin_dir empty, or new pins). False,
// with error, when neither can be had.
bool salt(const std::string& pin_dir, uint64_t* out, std::string* error);

// Keeps salt in the loaded program's sl_table_salt map (fd) for the next
// load that adopts these pins.
bool keep_salt(int fd, uint64_t salt, std::string* error);

}  // namespace sluice::xdp_sets
