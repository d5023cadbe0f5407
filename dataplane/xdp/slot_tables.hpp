// SPDX-License-Identifier: Apache-2.0
// Writers of one profile slot's match tables in the XDP program's maps
// (internal to dataplane/xdp/): the LPM tries, the IPv4 prefix arrays and
// the port masks. XdpProgram::write_profile fills the inactive slot with
// them before it flips the live one; each takes the map's fd, so none
// depends on the program's skeleton.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/xdp/prefix_array.hpp"

namespace sluice::xdp_tables {

// Removes every entry of `slot` from an LPM trie (sl_lpm_src / sl_lpm_dst).
bool clear_lpm_slot(int trie_fd, uint32_t slot, std::string* error);

// Adds a slot's prefixes to an LPM trie; ENOSPC says how many fit.
bool write_lpm_slot(int trie_fd, uint32_t slot, const std::vector<LpmEntry>& entries,
                    std::string* error);

// Writes a slot's blocks of a prefix array (sl_prefix_src / sl_prefix_dst,
// through a mapping of its one value): the top blocks and the groups in
// use; groups past them are never reached.
bool write_prefix_array(int blocks_fd, uint32_t slot, const PrefixArray& array, std::string* error);

// Writes a slot's 65,536 port masks (sl_ports, through a mapping of its
// one value).
bool write_port_masks(int ports_fd, uint32_t slot, const std::vector<uint32_t>& port_mask,
                      std::string* error);

}  // namespace sluice::xdp_tables
