// SPDX-License-Identifier: Apache-2.0
// The XDP per-source table's shape and salt (bpf/shared_state.h,
// struct sl_source_set), decided when the program is loaded.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::xdp_sources {

// Sets of the table: a power of two, at least half of source_table_size,
// so that there are 2-4 ways per entry.
uint32_t sets(uint64_t source_table_size);

// The ways those sets hold: the table's capacity.
uint64_t ways(uint64_t source_table_size);

// The salt of a set's index: the one kept in pin_dir's sl_source_salt by an
// earlier load (the sources in the pinned table stay in their sets), else a
// new random one (pin_dir empty, or new pins). False, with error, when
// neither can be had.
bool salt(const std::string& pin_dir, uint64_t* out, std::string* error);

// Keeps salt in the loaded program's sl_source_salt map (fd) for the next
// load that adopts these pins.
bool keep_salt(int fd, uint64_t salt, std::string* error);

}  // namespace sluice::xdp_sources
