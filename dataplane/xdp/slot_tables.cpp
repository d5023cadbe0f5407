// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/slot_tables.hpp"

#include <bpf/bpf.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "bpf/shared_state.h"

namespace sluice::xdp_tables {
namespace {

std::string errno_text() { return std::strerror(errno); }

void lpm_key(sl_lpm_key* k, uint32_t slot, const LpmEntry& e) {
  std::memset(k, 0, sizeof(*k));
  k->prefixlen = SL_LPM_KEY_BITS(e.len);
  k->slot = static_cast<__u8>(slot);
  k->family = e.family == 4 ? SL_FAMILY_V4 : SL_FAMILY_V6;
  std::memcpy(k->addr_be, e.addr_be.data(), 16);
}

}  // namespace

bool clear_lpm_slot(int trie_fd, uint32_t slot, std::string* error) {
  std::vector<sl_lpm_key> doomed;
  sl_lpm_key key{};
  sl_lpm_key next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(trie_fd, prev, &next) == 0) {
    if (next.slot == slot) doomed.push_back(next);
    key = next;
    prev = &key;
  }
  for (const sl_lpm_key& k : doomed) {
    if (bpf_map_delete_elem(trie_fd, &k) != 0 && errno != ENOENT) {
      *error = "cannot clear prefixes of the inactive slot: " + errno_text();
      return false;
    }
  }
  return true;
}

bool write_lpm_slot(int trie_fd, uint32_t slot, const std::vector<LpmEntry>& entries,
                    std::string* error) {
  for (const LpmEntry& e : entries) {
    sl_lpm_key k;
    lpm_key(&k, slot, e);
    if (bpf_map_update_elem(trie_fd, &k, &e.class_mask, BPF_ANY) != 0) {
      const bool full = errno == ENOSPC;
      *error = "cannot write prefix table: " + errno_text() +
               (full ? " (more than " + std::to_string(SL_LPM_MAX_ENTRIES / 2) + " prefixes)" : "");
      return false;
    }
  }
  return true;
}

bool write_prefix_array(int blocks_fd, uint32_t slot, const PrefixArray& array,
                        std::string* error) {
  if (slot >= SL_PROFILE_SLOTS || array.blocks.size() > SL_PREFIX_SLOT_BLOCKS) {
    *error = "an IPv4 prefix array of " + std::to_string(array.blocks.size()) +
             " blocks does not fit slot " + std::to_string(slot);
    return false;
  }
  if (array.blocks.empty()) return true;
  // The value of both slots, mapped: this slot's blocks written in place,
  // the live slot's untouched (the program reads it meanwhile).
  void* value =
      mmap(nullptr, sizeof(sl_prefix_blocks), PROT_READ | PROT_WRITE, MAP_SHARED, blocks_fd, 0);
  if (value == MAP_FAILED) {
    *error = "cannot map the IPv4 prefix array: " + errno_text();
    return false;
  }
  auto* all = static_cast<sl_prefix_blocks*>(value);
  std::copy(array.blocks.begin(), array.blocks.end(), &all->b[slot * SL_PREFIX_SLOT_BLOCKS]);
  // Before the caller makes the slot live (a map update: another CPU's
  // program must see these blocks once it sees the flip).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  munmap(value, sizeof(sl_prefix_blocks));
  return true;
}

bool write_port_masks(int ports_fd, uint32_t slot, const std::vector<uint32_t>& port_mask,
                      std::string* error) {
  std::vector<__u32> keys(65536);
  for (uint32_t port = 0; port < 65536; port++) keys[port] = slot * 65536 + port;
  __u32 count = 65536;
  LIBBPF_OPTS(bpf_map_batch_opts, batch);
  if (bpf_map_update_batch(ports_fd, keys.data(), port_mask.data(), &count, &batch) != 0) {
    *error = "cannot write the port table: " + errno_text();
    return false;
  }
  return true;
}

}  // namespace sluice::xdp_tables
