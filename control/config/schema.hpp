// SPDX-License-Identifier: Apache-2.0
// The config key schema: one row per key of sluice.toml (its table, name,
// type, range, unit, default, whether it changes live or needs a restart,
// and what it means). The validator takes ranges, allowed words and the
// known keys of every table from it, config_diff takes restart-only keys
// from it, and the key tables of docs/config.md are generated from it
// (sluice-config-doc; a test fails when they are stale).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class KeyChange { live, restart };

struct KeySpec {
  std::string_view table;  // "dataplane", ..., "class", "class.match", "class.per_source"
  std::string_view name;
  std::string_view type;  // as docs/config.md says it: "integer", "string", ...
  // Integers (and integer elements): the allowed range; min > max means the
  // validator checks no range from here (not an integer key).
  int64_t min = 1;
  int64_t max = 0;
  std::string_view unit;          // "lookups/s", "µs", ... (empty: none)
  std::string_view default_text;  // as the docs show it
  KeyChange change = KeyChange::live;
  // Keywords: the allowed words, '|'-separated ("auto|dpdk|xdp"); empty otherwise.
  std::string_view words;
  std::string_view doc;  // the rules beyond type, range and words
};

// Every key, in the order docs/config.md lists them.
const std::vector<KeySpec>& config_schema();

// The row of table.name; null when there is none.
const KeySpec* find_key(std::string_view table, std::string_view name);

// The row of table.name; a missing row is a programming error (aborts).
const KeySpec& key_spec(std::string_view table, std::string_view name);

// The key names of one table, in schema order.
std::vector<std::string_view> keys_of(std::string_view table);

// The allowed words of a keyword key, split.
std::vector<std::string_view> words_of(const KeySpec& spec);

// True for a dotted key ("dataplane.mode", "admission.flow_table_size") that
// only a restart can change. Class keys ("class.NAME.KEY") are all live.
bool is_restart_only_key(std::string_view dotted);

// The markdown table of one table's keys, as docs/config.md holds it
// between "<!-- schema: TABLE -->" and "<!-- end schema -->".
std::string schema_markdown(std::string_view table);

// The tables docs/config.md has a generated block for.
std::vector<std::string_view> schema_tables();

}  // namespace sluice
