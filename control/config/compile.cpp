// SPDX-License-Identifier: Apache-2.0
#include "control/config/compile.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <tuple>

#include "dataplane/model/bucket.h"
#include "dataplane/model/gcra.h"

namespace sluice {
namespace {

// Keeps only the bits of addr inside the prefix.
std::array<uint8_t, 16> masked(const Prefix& p) {
  std::array<uint8_t, 16> a = p.addr;
  const unsigned bytes = p.family == 4 ? 4 : 16;
  for (unsigned i = 0; i < 16; i++) {
    unsigned bit = i * 8;
    if (i >= bytes || bit >= p.len) {
      a[i] = 0;
    } else if (p.len - bit < 8) {
      a[i] &= static_cast<uint8_t>(0xff << (8 - (p.len - bit)));
    }
  }
  return a;
}

// One LPM table for a field: a prefix's value is the OR of the class masks of
// every configured prefix covering it, so that the longest match alone tells
// every class that accepts the address.
std::vector<LpmEntry> build_lpm(const std::vector<std::pair<const Prefix*, uint32_t>>& items) {
  std::map<std::tuple<uint8_t, uint8_t, std::array<uint8_t, 16>>, uint32_t> unique;
  for (const auto& [prefix, class_bit] : items)
    unique[{prefix->family, prefix->len, masked(*prefix)}] |= class_bit;

  std::vector<LpmEntry> entries;
  entries.reserve(unique.size());
  for (const auto& [key, mask] : unique) {
    LpmEntry e;
    e.family = std::get<0>(key);
    e.len = std::get<1>(key);
    e.addr_be = std::get<2>(key);
    e.class_mask = mask;
    entries.push_back(e);
  }
  // Push covering masks down. Probe each shorter length in use with the
  // entry's own address masked to it: O(entries * lengths in use).
  std::map<std::tuple<uint8_t, uint8_t, std::array<uint8_t, 16>>, uint32_t> by_key = unique;
  std::vector<std::pair<uint8_t, uint8_t>> lens;  // family, len
  for (const auto& [key, mask] : unique) lens.emplace_back(std::get<0>(key), std::get<1>(key));
  std::sort(lens.begin(), lens.end());
  lens.erase(std::unique(lens.begin(), lens.end()), lens.end());
  for (LpmEntry& e : entries) {
    for (const auto& [family, len] : lens) {
      if (family != e.family || len >= e.len) continue;
      Prefix p;
      p.family = e.family;
      p.addr = e.addr_be;
      p.len = len;
      auto it = by_key.find({family, len, masked(p)});
      if (it != by_key.end()) e.class_mask |= it->second;
    }
  }
  return entries;
}

// At least kMinReserveTokens when pct is not 0. A reserve never reaches the
// whole burst: a lookup needs one token above it, and a class whose reserve
// left no room would be shed forever (a burst of 1 with any reserve, say).
uint64_t reserve_nt(uint64_t burst, uint32_t pct) {
  const uint64_t reserve =
      pct == 0 ? 0 : std::max(burst * SL_TOKEN / 100 * pct, kMinReserveTokens * SL_TOKEN);
  const uint64_t room = burst * SL_TOKEN;
  return room >= SL_TOKEN && reserve > room - SL_TOKEN ? room - SL_TOKEN : reserve;
}

}  // namespace

namespace {
std::atomic<uint64_t> g_default_seed{kBuiltinSeed};
}  // namespace

void set_default_seed(uint64_t seed) { g_default_seed.store(seed); }
uint64_t default_seed() { return g_default_seed.load(); }

void compile_boundary_lookups(const BoundaryConfig& b, sl_profile* p) {
  p->boundary_lookups = b.lookups_per_sec
                            ? sl_bucket_params_make(*b.lookups_per_sec, b.lookups_burst)
                            : sl_bucket_params{};
  for (int prio = 0; prio < SL_PRIORITIES; prio++)
    p->lookups_reserve_nt[prio] = reserve_nt(b.lookups_burst, b.lookups_reserve_pct[prio]);
}

CompiledProfile compile_profile(const Config& cfg) {
  CompiledProfile out;
  sl_profile& p = out.prof;
  p.n_classes = static_cast<uint32_t>(cfg.classes.size());
  p.flags = (cfg.admission.shadow ? SL_PROFILE_SHADOW : 0) |
            (cfg.admission.malformed == MalformedAction::pass ? SL_PROFILE_MALFORMED_PASS : 0);
  p.seed = cfg.admission.seed.value_or(default_seed());
  p.boundary_epoch = 1;
  p.sticky_epoch_ns = cfg.admission.sticky_epoch_sec * SL_NS_PER_SEC;
  p.sticky_window_ns = cfg.admission.sticky_window_ms * 1000000ULL;
  const AdmissionConfig& a = cfg.admission;
  p.unverified = a.unverified == UnverifiedAction::drop   ? SL_UNVERIFIED_DROP
                 : a.unverified == UnverifiedAction::pass ? SL_UNVERIFIED_PASS
                                                          : SL_UNVERIFIED_CHARGE;
  p.flow_idle_ns = a.flow_idle_tcp_sec * SL_NS_PER_SEC;
  p.flow_learn_ns = a.flow_learn_sec * SL_NS_PER_SEC;
  // Half of a partition may be learned flows: a flood during the window
  // cannot recycle every flow of its priority.
  p.flow_learn_max = static_cast<uint32_t>(a.flow_table_size / SL_PRIORITIES / 2);
  // The rate's packets in one meter window (flow.h, sl_flow_meter), rounded
  // up; 200000/s (the most the schema takes) is 3356.
  p.flow_window_packets = static_cast<uint32_t>(
      (a.flow_packets_per_sec * (1ULL << SL_FLOW_METER_SHIFT) + SL_NS_PER_SEC - 1) / SL_NS_PER_SEC);
  if (p.flow_window_packets > SL_FLOW_METER_MAX) p.flow_window_packets = SL_FLOW_METER_MAX;

  const BoundaryConfig& b = cfg.boundary;
  compile_boundary_lookups(b, &p);
  if (b.adaptive) p.flags |= SL_PROFILE_ADAPTIVE;
  // Inline mode sees the inside's SYN-ACKs: a half-open flow is verified by
  // its client's proof (flow.h, sl_flow_outside_verifies).
  if (!cfg.dataplane.inside.empty()) p.flags |= SL_PROFILE_INLINE;
  if (b.packets_per_sec)
    p.boundary_packets = sl_bucket_params_make(*b.packets_per_sec, b.packets_burst);
  for (int prio = 0; prio < SL_PRIORITIES; prio++)
    p.packets_reserve_nt[prio] = reserve_nt(b.packets_burst, b.packets_reserve_pct[prio]);

  out.port_mask.assign(65536, 0);
  std::vector<std::pair<const Prefix*, uint32_t>> src_items;
  std::vector<std::pair<const Prefix*, uint32_t>> dst_items;
  for (uint32_t id = 0; id < cfg.classes.size(); id++) {
    const ClassConfig& c = cfg.classes[id];
    const uint32_t bit = 1U << id;
    out.class_names.push_back(c.name);

    sl_class_params& cp = p.classes[id];
    cp.priority = c.priority;
    cp.on_shed = c.on_shed == ShedAction::reset  ? SL_ACTION_RESET
                 : c.on_shed == ShedAction::mark ? SL_ACTION_MARK
                                                 : SL_ACTION_DROP;
    cp.shed_order = c.shed_order == ShedOrder::random ? SL_SHED_RANDOM : SL_SHED_STICKY;
    cp.mark_dscp = c.mark_dscp;
    cp.state_index = static_cast<uint8_t>(id);  // dataplanes may remap to keep state by name
    cp.flow_parts = static_cast<uint8_t>(1U << (c.priority & (SL_PRIORITIES - 1)));
    cp.state_epoch = 1;  // zeroed state (epoch 0) is initialised by the class's first packet
    if (c.rate_per_sec) {
      cp.bucket = sl_bucket_params_make(*c.rate_per_sec, c.burst);
      // A packet charged as a lookup (unverified) leaves the class's real
      // lookups the lowest priority's share of its burst, in whole tokens
      // (decide.h, sl_class_reserve_nt).
      const uint64_t charged_nt = reserve_nt(c.burst, b.lookups_reserve_pct[SL_PRIORITIES - 1]);
      cp.charged_reserve = static_cast<uint32_t>((charged_nt + SL_TOKEN - 1) / SL_TOKEN);
    }
    cp.src_prefix_v4 = 32;
    cp.src_prefix_v6 = 64;
    if (c.per_source) {
      cp.src_bucket = sl_gcra_params_make(c.per_source->rate_per_sec, c.per_source->burst);
      cp.src_prefix_v4 = c.per_source->prefix_v4;
      cp.src_prefix_v6 = c.per_source->prefix_v6;
    }

    const MatchConfig& m = c.match;
    if (m.src.empty()) p.any_src_mask |= bit;
    for (const Prefix& pr : m.src) src_items.emplace_back(&pr, bit);
    if (m.dst.empty()) p.any_dst_mask |= bit;
    for (const Prefix& pr : m.dst) dst_items.emplace_back(&pr, bit);
    if (m.protocols.empty()) p.any_proto_mask |= bit;
    for (uint8_t proto : m.protocols) p.proto_mask[proto] |= bit;
    if (m.dst_ports.empty()) p.any_port_mask |= bit;
    for (const PortRange& r : m.dst_ports)
      for (uint32_t port = r.lo; port <= r.hi; port++) out.port_mask[port] |= bit;
    if (m.dscp.empty()) p.any_dscp_mask |= bit;
    for (uint8_t d : m.dscp) p.dscp_mask[d & 63] |= bit;
  }
  if (!src_items.empty()) p.flags |= SL_PROFILE_USES_SRC;
  if (!dst_items.empty()) p.flags |= SL_PROFILE_USES_DST;
  if (p.any_port_mask != (p.n_classes >= 32 ? 0xffffffffU : (1U << p.n_classes) - 1))
    p.flags |= SL_PROFILE_USES_PORTS;
  out.src_prefixes = build_lpm(src_items);
  out.dst_prefixes = build_lpm(dst_items);
  out.source_table_size = cfg.admission.source_table_size;
  out.flow_table_size = cfg.admission.flow_table_size;
  out.max_queue_delay_ns = b.max_queue_delay_us * 1000ULL;
  return out;
}

}  // namespace sluice
