// SPDX-License-Identifier: Apache-2.0
// Loading and validating sluice's TOML configuration.
//
// One validator serves every way a Config comes to be: the file at startup,
// `--check-config`, a retune through dotted-key overrides and a named profile.
// Each of them parses TOML into a document, optionally edits the document and
// then runs the same validation over the whole result, so an override can
// never produce a Config that the same text in a file would not.
//
// Error contract: nothing here throws or aborts, whatever the input. Every
// rule violation found is reported (not only the first), each with the
// position of the offending TOML node, or of the enclosing table when a
// required key is missing. A LoadResult holds either a Config or errors,
// never both: overrides and profiles are all-or-nothing.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/config/config.hpp"

namespace sluice {

struct ConfigError {
  std::string file;     // source name; "<override>" for a setting given outside any file
  int line = 0;         // 1-based; 0 when there is no position (unreadable file, unknown profile)
  int col = 0;          // 1-based
  std::string key;      // dotted path: "boundary.lookups_per_sec", "class.citizen.match.src[1]",
                        // "class[2].name" while a class has no valid name yet
  std::string message;  // what was expected and what was found

  // "FILE:LINE:COL: key: message", the format editors and CI logs understand.
  std::string to_string() const;
};

// Sorts errors by file, line and column, keeping the order of those at one
// place: every list of errors sluice prints is in this order.
void sort_by_position(std::vector<ConfigError>& errors);

struct LoadResult {
  std::optional<Config> config;     // set exactly when errors is empty
  std::vector<ConfigError> errors;  // sorted by file, line, column
  std::string text;                 // with config: the document as TOML text (after any
                                    // overrides or profile; comments are not kept by those)

  bool ok() const { return config.has_value() && errors.empty(); }
};

// A file that cannot be read gives one error naming the file (line 0).
// Profiles defined in the file are validated by applying each of them.
LoadResult load_config_file(const std::string& path);

// A config file's text, or false with *why (strerror's words, or what
// limit it passed). A regular file is read as it is; anything else (a pipe,
// a FIFO, a device) without blocking, for at most 5 s: a FIFO nobody writes
// to would otherwise hold the reader (and a reload the control lock) for
// good. At most 16 MiB.
bool read_config_text(const std::string& path, std::string* text, std::string* why);

// The first line of a file a config names for a secret (the HTTP token, the
// etcd password), without its line end (\n or \r\n). Only a regular file: a FIFO
// would block the start. False + *why ("cannot read PATH: REASON").
bool read_first_line(const std::string& path, std::string* line, std::string* why);

// A fleet member's tables (docs/fleet.md): its own, from its local file, and
// the fleet's, from etcd.
inline constexpr std::array<std::string_view, 4> kLocalTables = {"dataplane", "control", "metrics",
                                                                 "fleet"};
inline constexpr std::array<std::string_view, 4> kFleetTables = {"boundary", "admission", "class",
                                                                 "profiles"};

// True for a dotted key ("class.x.rate_per_sec", "boundary") of a fleet table.
bool is_fleet_owned_key(std::string_view dotted);

// A fleet member's config: the local tables of `local_text` and the fleet
// config `fleet_text` (which may hold fleet tables only), validated as one
// document. Errors of the fleet part name `fleet_name` and its lines.
LoadResult compose_fleet_config(std::string_view local_text, std::string local_name,
                                std::string_view fleet_text, std::string fleet_name);

// The fleet tables of a document as TOML text ("" when it is not TOML).
std::string fleet_tables_text(std::string_view text);
// The local tables of a document as TOML text ("" when it is not TOML).
std::string local_tables_text(std::string_view text);

// The [dataplane], [control], [metrics] and [fleet] sections of a file that may be
// invalid elsewhere, each as load_config_file would read it; defaults when
// those sections are broken too (or the file cannot be read), and then, in
// *errors, why (the file's errors in those sections, at their lines). What a
// sluiced whose config is rejected at start needs to report itself and to
// tell whose edge it is.
Config load_local_sections(const std::string& path, std::vector<ConfigError>* errors = nullptr);
// The same for the tables named (e.g. {"dataplane"}): defaults elsewhere.
Config load_sections(const std::string& path, const std::vector<std::string_view>& tables,
                     std::vector<ConfigError>* errors);

// `source_name` is used in errors and as Config::source.
LoadResult load_config_string(std::string_view text, std::string source_name);

// An error about `key` found outside the loader (a file the config names,
// such as control.http_token_file; a change only a restart makes), at the
// line and column where `text`, the config as its author wrote it, writes
// the key's value: 1:1 when it does not (a removed key, a default).
ConfigError error_at_key(std::string_view text, std::string source_name, std::string key,
                         std::string message);

// A prefix as the config writes it ("198.18.10.0/24", "2001:2::/48", or an
// address alone), for command lines that take prefixes too. nullopt + *why.
std::optional<Prefix> parse_prefix_text(std::string_view text, std::string* why);

// Applies dotted-key settings such as {"class.citizen.rate_per_sec", "20000"} or
// {"class.x.match.src", "[\"198.18.0.0/16\"]"} to the document `base_text`, in
// order, then validates the whole result. Values are TOML value text. A key
// names a [[class]] entry by its name ("class.NAME.FIELD...", where
// "class.default" also reaches the implied default class); other keys are
// table paths ("admission.shadow"). Unknown keys or class names, values that
// are not TOML and values that break any rule are errors naming the key.
// Errors inside a setting are reported as file "<override>", line = the
// setting's 1-based position in `settings`, column 1.
LoadResult apply_overrides(std::string_view base_text, std::string source_name,
                           const std::vector<std::pair<std::string, std::string>>& settings);

// Applies the overlay [profiles.NAME] defined in `base_text` (as apply_overrides
// does). Errors are located at the profile's entries; an unknown profile is an
// error naming the profiles that exist.
LoadResult apply_profile(std::string_view base_text, std::string source_name,
                         const std::string& profile_name);

}  // namespace sluice
