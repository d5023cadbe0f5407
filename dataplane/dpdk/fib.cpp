// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/fib.hpp"

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_lpm6.h>
#include <rte_memory.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

#include "dataplane/dpdk/engine.hpp"
#include "dataplane/model/sticky.h"

namespace sluice::dpdk {
namespace {

using Addr = std::array<uint8_t, 16>;

// The prefix's address with the bits past its length cleared (the model's
// sl_mask_addr; all 16 bytes, so an IPv4 prefix's unused bytes are zero).
Addr masked(Addr a, uint8_t len) {
  sl_mask_addr(a.data(), 16, len);
  return a;
}

// Largest next hop a table entry of `bytes` holds (one bit marks an
// extension: rte_fib's dir24_8 and trie encodings).
uint64_t max_next_hop(unsigned bytes) { return (uint64_t{1} << (8 * bytes - 1)) - 1; }

std::string table_name(const char* kind) {
  static std::atomic<uint64_t> made{0};
  return std::string("sl_") + kind + "_" + std::to_string(made.fetch_add(1));
}

std::atomic<uint64_t> g_built{0};

uint32_t v4_host(const uint8_t* a) {
  return uint32_t{a[0]} << 24 | uint32_t{a[1]} << 16 | uint32_t{a[2]} << 8 | a[3];
}

}  // namespace

std::unique_ptr<Fib> Fib::build(const std::vector<LpmEntry>& entries, std::string* error) {
  // The same prefix twice is one prefix with both masks (LpmTable's rule).
  std::map<std::tuple<uint8_t, uint8_t, Addr>, uint32_t> prefixes;
  for (const LpmEntry& e : entries) {
    if ((e.family == 4 && e.len <= 32) || (e.family == 6 && e.len <= 128))
      prefixes[{e.family, e.len, masked(e.addr_be, e.len)}] |= e.class_mask;
  }
  std::unique_ptr<Fib> fib(new Fib());
  std::map<uint32_t, uint64_t> hop_of;  // class mask -> next hop
  fib->masks_.push_back(0);
  hop_of[0] = 0;
  int n4 = 0, n6 = 0;
  std::vector<uint32_t> v4_groups;                   // /24s under longer prefixes
  std::vector<std::pair<unsigned, Addr>> v6_groups;  // (level, leading bytes) of trie groups
  for (const auto& [k, mask] : prefixes) {
    const auto& [family, len, addr] = k;
    if (!hop_of.count(mask)) {
      hop_of[mask] = fib->masks_.size();
      fib->masks_.push_back(mask);
    }
    if (family == 4) {
      n4++;
      if (len > 24) v4_groups.push_back(v4_host(addr.data()) >> 8);
    } else if (len == 0) {
      fib->v6_default_ = hop_of[mask];  // rte_lpm6 takes /1 to /128: ::/0 is its miss
    } else {
      n6++;
      // A prefix longer than 24 bits needs a group of 256 entries at each
      // further byte down to its length, shared with prefixes that share
      // those leading bytes. (rte_fib6's trie reserves them per prefix
      // instead, unshared: 100,000 /64s under one /48 wanted 200,000
      // groups, 270 MB; rte_lpm6 counts what a prefix really adds.)
      for (unsigned level = 3; 8 * level < len; level++) {
        Addr lead{};
        std::memcpy(lead.data(), addr.data(), level);
        v6_groups.emplace_back(level, lead);
      }
    }
  }
  std::sort(v4_groups.begin(), v4_groups.end());
  v4_groups.erase(std::unique(v4_groups.begin(), v4_groups.end()), v4_groups.end());
  std::sort(v6_groups.begin(), v6_groups.end());
  v6_groups.erase(std::unique(v6_groups.begin(), v6_groups.end()), v6_groups.end());
  const uint64_t top = fib->masks_.size() - 1;
  if (top > max_next_hop(4) || v4_groups.size() >= max_next_hop(4) / 64 ||
      v6_groups.size() >= max_next_hop(4) / 64) {
    *error = "too many prefixes or distinct class sets for rte_fib";
    return nullptr;
  }

  // Groups of 256 entries, as counted above; a table that runs out all the
  // same is built again with twice as many, up to 64x.
  uint64_t groups4 = v4_groups.size() + 1, groups6 = v6_groups.size() + 1;
  for (int attempt = 0;; attempt++) {
    int rc = fib->create(n4, groups4, n6, groups6, top, error);
    if (rc != 0) return nullptr;
    int family = 0;
    for (const auto& [k, mask] : prefixes) {
      const auto& [f, len, addr] = k;
      if (f == 6 && len == 0) continue;
      rc = f == 4 ? rte_fib_add(fib->v4_, v4_host(addr.data()), len, hop_of[mask])
                  : rte_lpm6_add(fib->v6_, addr.data(), len, static_cast<uint32_t>(hop_of[mask]));
      if (rc != 0) {
        family = f;
        break;
      }
    }
    if (rc == 0) break;
    if (rc != -ENOSPC || attempt == 6) {
      *error = "cannot add a prefix to the " + std::string(family == 4 ? "IPv4" : "IPv6") +
               " prefix table: " + rte_strerror(-rc);
      return nullptr;
    }
    (family == 4 ? groups4 : groups6) *= 2;
    fib->release();
  }
  g_built.fetch_add(1, std::memory_order_relaxed);
  return fib;
}

uint64_t Fib::built() { return g_built.load(std::memory_order_relaxed); }

int Fib::create(int n4, uint64_t groups4, int n6, uint64_t groups6, uint64_t top,
                std::string* error) {
  if (n4 != 0) {
    rte_fib_conf conf{};
    conf.type = RTE_FIB_DIR24_8;
    conf.default_nh = 0;
    conf.max_routes = 2 * n4 + 1;  // RIB nodes: the routes and their branch points
    // An entry holds a next hop or the index of a group: the smallest
    // entry that holds both.
    conf.dir24_8.num_tbl8 = static_cast<uint32_t>(groups4);
    const uint64_t need = std::max(top, groups4);
    conf.dir24_8.nh_sz = need <= max_next_hop(1)   ? RTE_FIB_DIR24_8_1B
                         : need <= max_next_hop(2) ? RTE_FIB_DIR24_8_2B
                                                   : RTE_FIB_DIR24_8_4B;
    v4_ = rte_fib_create(table_name("fib4").c_str(), SOCKET_ID_ANY, &conf);
    if (v4_ == nullptr) {
      *error = "cannot create the IPv4 prefix table (rte_fib, " + std::to_string(n4) +
               " prefixes, " + std::to_string(groups4) + " groups): " + rte_strerror(rte_errno);
      return -1;
    }
  }
  if (n6 != 0) {
    rte_lpm6_config conf{};
    conf.max_rules = static_cast<uint32_t>(n6);
    conf.number_tbl8s = static_cast<uint32_t>(groups6);
    v6_ = rte_lpm6_create(table_name("lpm6").c_str(), SOCKET_ID_ANY, &conf);
    if (v6_ == nullptr) {
      *error = "cannot create the IPv6 prefix table (rte_lpm6, " + std::to_string(n6) +
               " prefixes, " + std::to_string(groups6) + " groups): " + rte_strerror(rte_errno);
      return -1;
    }
  }
  return 0;
}

void Fib::release() {
  rte_fib_free(v4_);
  rte_lpm6_free(v6_);
  v4_ = nullptr;
  v6_ = nullptr;
}

Fib::~Fib() { release(); }

uint32_t Fib::lookup(uint8_t family, const uint8_t* addr_be) const {
  uint64_t hop = 0;
  if (family == SL_FAMILY_V4 && v4_ != nullptr) {
    uint32_t ip = v4_host(addr_be);
    rte_fib_lookup_bulk(v4_, &ip, &hop, 1);
  } else if (family == SL_FAMILY_V6) {
    int32_t found = -1;
    if (v6_ != nullptr) {
      uint8_t ip[1][RTE_LPM6_IPV6_ADDR_SIZE];
      std::memcpy(ip[0], addr_be, sizeof(ip[0]));
      rte_lpm6_lookup_bulk_func(v6_, ip, &found, 1);
    }
    hop = found < 0 ? v6_default_ : static_cast<uint64_t>(found);
  }
  return hop < masks_.size() ? masks_[hop] : 0;
}

void Fib::lookup_burst(const sl_meta* meta, const bool* want, uint16_t n, bool src,
                       uint32_t* out) const {
  uint32_t ip4[kBurst];
  uint8_t ip6[kBurst][RTE_LPM6_IPV6_ADDR_SIZE];
  uint64_t hop4[kBurst];
  int32_t hop6[kBurst];  // -1: no prefix
  uint16_t at4[kBurst], at6[kBurst];
  uint16_t n4 = 0, n6 = 0;
  for (uint16_t i = 0; i < n; i++) {
    if (!want[i]) continue;
    out[i] = 0;
    const uint8_t* a = src ? meta[i].src_be : meta[i].dst_be;
    if (meta[i].family == SL_FAMILY_V4 && v4_ != nullptr) {
      at4[n4] = i;
      ip4[n4++] = v4_host(a);
    } else if (meta[i].family == SL_FAMILY_V6 && v6_ != nullptr) {
      at6[n6] = i;
      std::memcpy(ip6[n6++], a, RTE_LPM6_IPV6_ADDR_SIZE);
    } else if (meta[i].family == SL_FAMILY_V6) {
      out[i] = masks_[v6_default_];
    }
  }
  if (n4 != 0) rte_fib_lookup_bulk(v4_, ip4, hop4, n4);
  if (n6 != 0) rte_lpm6_lookup_bulk_func(v6_, ip6, hop6, n6);
  for (uint16_t k = 0; k < n4; k++) out[at4[k]] = hop4[k] < masks_.size() ? masks_[hop4[k]] : 0;
  for (uint16_t k = 0; k < n6; k++) {
    const uint64_t hop = hop6[k] < 0 ? v6_default_ : static_cast<uint64_t>(hop6[k]);
    out[at6[k]] = hop < masks_.size() ? masks_[hop] : 0;
  }
}

}  // namespace sluice::dpdk
