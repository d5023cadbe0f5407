// SPDX-License-Identifier: Apache-2.0
// Offline replay: every frame of a capture through the reference model, with
// the capture's timestamps as the clock. What-if analysis for engineers and
// the oracle the dataplanes are compared with.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/common/labels.hpp"
#include "dataplane/common/profile.hpp"
#include "dataplane/model/abi.h"

namespace sluice {

struct ReplayStats {
  uint64_t packets = 0;
  uint64_t packets_admitted = 0;
  uint64_t packets_shed = 0;
  uint64_t lookups = 0;
  uint64_t admitted = 0;                                   // lookups
  uint64_t shed = 0;                                       // lookups
  std::map<std::string, uint64_t> shed_by_reason;          // packets
  std::map<std::string, uint64_t> lookups_shed_by_reason;  // lookups
  std::map<std::string, uint64_t> admitted_by_reason;      // packets

  void add(const ReplayStats& other);
};

struct ReplayResult {
  std::vector<std::pair<std::string, ReplayStats>> classes;  // in class order
  ReplayStats totals;
  // Frames a Linux cooked capture (tcpdump -i any) marks as sent by the
  // capturing host, other than the servers' answers (return_src): they
  // never arrived at an edge, so none is decided.
  uint64_t outgoing = 0;
  // Frames the capture's snap length shortened: decided as the packets on
  // the wire (the bytes past the snap read as zeros), and of them those
  // whose headers the snap cut, which no edge would have seen cut: decided
  // as captured, so malformed.
  uint64_t snapped = 0;
  uint64_t headers_cut = 0;
  // Of the snapped, records claiming a wire length longer than any frame
  // (kMaxWireFrame: a corrupt or crafted capture): decided at that length.
  uint64_t oversized = 0;
  // The learning window: replay starts with an empty flow table, as an edge
  // does at a fresh start, so for flow_learn_sec (learn_sec) from the first
  // packet it trusts unknown TCP flows (learned: how many). A capture of an
  // ACK flood then looks harmless; replay without the window (an edge
  // already running) charges them (sluicectl replay --no-learning).
  uint64_t learned = 0;
  uint64_t learn_sec = 0;
};

// The longest frame a wire carries: an IP packet of 65,535 bytes behind an
// Ethernet header and two VLAN tags.
inline constexpr uint32_t kMaxWireFrame = 65535 + 14 + 2 * 4;

// Summarises model counters per class (by the profile's class names).
ReplayResult summarize(const CompiledProfile& profile, const sl_counters& counters);

// Replays a pcap or pcapng capture with Ethernet link type. Frames whose
// source lies in one of return_src (the protected servers, for a capture
// that holds both directions) are the return path: they are not decided
// but feed the flow state, as inline mode's inside interface does. On
// failure returns nullopt and sets *error to a message naming the file and
// the cause.
std::optional<ReplayResult> replay_pcap(const CompiledProfile& profile, const std::string& path,
                                        std::string* error,
                                        const std::vector<LpmEntry>& return_src = {});

nlohmann::json to_json(const ReplayResult& result);
std::string to_table(const ReplayResult& result);

}  // namespace sluice
