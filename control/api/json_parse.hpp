// SPDX-License-Identifier: Apache-2.0
// Every JSON text sluice reads from outside (control requests, etcd's
// answers and the fleet's records, its own state files) goes through
// parse_json: nlohmann parses without recursion, but copies, compares and
// dumps a value by recursion, so `[[[[...` 30,000 deep (60 KB, in a request
// or in etcd) overflowed the stack of the thread that then used it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Deeper than any request, record or state file sluice writes (4 levels).
inline constexpr int kMaxJsonDepth = 32;

// The longest control request (one line) sluiced takes: a whole config file
// at the loader's limit (16 MiB, config_loader.cpp) as a JSON string,
// escapes included. The HTTP listener takes the same.
inline constexpr std::size_t kMaxRequestBytes = std::size_t{32} << 20;

// nlohmann::json::parse without exceptions: a discarded value when the text
// is not JSON, nests deeper than kMaxJsonDepth or gives one object a key
// twice (nlohmann keeps the last: {"op":"status","op":"set",...} ran a set),
// and *why (if given) says which. A NUL byte is no JSON (in a string it is
// written \u0000), but nlohmann's lexer takes it for the end of the input:
// `{"op":"status"}` NUL `garbage` would parse as the object.
inline nlohmann::json parse_json(std::string_view text, std::string* why = nullptr) {
  const auto refuse = [why](std::string reason) {
    if (why != nullptr) *why = std::move(reason);
    return nlohmann::json(nlohmann::json::value_t::discarded);
  };
  if (text.find('\0') != std::string_view::npos) return refuse("not JSON (a NUL byte)");
  std::string problem;
  std::vector<std::set<std::string>> keys;  // of each object open, innermost last
  nlohmann::json j = nlohmann::json::parse(
      text,
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (!problem.empty()) return false;
        if (depth > kMaxJsonDepth) {
          problem = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        } else if (event == E::object_start) {
          keys.emplace_back();
        } else if (event == E::object_end && !keys.empty()) {
          keys.pop_back();
        } else if (event == E::key && !keys.empty() &&
                   !keys.back().insert(parsed.get<std::string>()).second) {
          problem = "the key \"" + parsed.get<std::string>().substr(0, 64) +
                    "\" is given twice in one object";
        }
        return problem.empty();
      },
      false);
  if (!problem.empty()) return refuse(problem);
  if (j.is_discarded()) return refuse("not JSON");
  return j;
}

// j[key] as T, or fallback when j is not an object, lacks the key or holds
// another type there (nlohmann's value() throws then: an answer from etcd
// or a file of the wrong shape must not end sluiced).
template <typename T>
T json_field(const nlohmann::json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception&) {
    return fallback;
  }
}

}  // namespace sluice
