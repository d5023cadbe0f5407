// SPDX-License-Identifier: Apache-2.0
// What sluicectl's commands share: exit codes and readers of status JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace sluice::cli {

using json = nlohmann::json;

constexpr int kOk = 0;
constexpr int kRejected = 1;
constexpr int kUnreachable = 2;

inline std::string fmt_rate(const json& v) {
  return v.is_null() ? "unlimited" : std::to_string(v.get<uint64_t>()) + "/s";
}

inline unsigned long long count_of(const json& o, const char* key) {
  return static_cast<unsigned long long>(o.value(key, uint64_t{0}));
}

// A list only a dataplane that queues and owns its ports (DPDK) fills: empty
// for XDP, absent from an older sluiced.
inline const json& list_of(const json& status, const char* key) {
  static const json empty = json::array();
  return status.contains(key) && status[key].is_array() ? status[key] : empty;
}

}  // namespace sluice::cli
