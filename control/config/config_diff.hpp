// SPDX-License-Identifier: Apache-2.0
// Key-by-key difference of two config documents, for retune responses, the
// audit log and the restart-only check. Classes are keyed by name
// ("class.citizen.rate_per_sec"), so reordering is a change of order only
// where it matters (the "class.order" key).
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/config_loader.hpp"

namespace sluice {

struct DiffEntry {
  std::string key;
  std::optional<std::string> old_value;  // TOML value text; nullopt: not written before
  std::optional<std::string> new_value;  // nullopt: no longer written
};

// Both texts must be valid TOML (they come from the loader). Sorted by key.
std::vector<DiffEntry> config_diff(std::string_view old_text, std::string_view new_text);
// The same of two parsed documents.
std::vector<DiffEntry> config_diff(const toml::table& old_doc, const toml::table& new_doc);

// True for keys that only take effect at restart.
bool is_restart_only(const std::string& key);

// The keys of a diff that only take effect at restart, in its order: what
// a live change (a retune, a profile, a fleet change) must refuse.
std::vector<std::string> restart_only_keys(const std::vector<DiffEntry>& diff);

// Where a requested config was written, for the positions of a refusal:
// its name (a file, "<override>") and its text as the author wrote it
// ("" when there is none, as for overrides: keys are then at 1:1).
struct WrittenConfig {
  std::string name;
  std::string text;
  // Overrides (no text): the keys in the order given, so that a key's
  // refusal is at <override>:N:1 as every error in a setting is.
  std::vector<std::string> override_keys = {};
};

// The name of a running config's text that no file holds: toml++'s rewrite
// after a live `set` or `shadow` (`sluicectl get --base` prints it).
inline constexpr std::string_view kRunningSource = "<running>";

// The same keys as errors for a refusal: each at the line and column where
// `written` writes the key, or at 1:1 when it does not (a removed key, or a
// change given as overrides), with the running and the requested value,
// then `advice` ("restart sluiced to apply it"); sorted by position.
std::vector<ConfigError> restart_only_errors(const std::vector<DiffEntry>& diff,
                                             const WrittenConfig& written, std::string_view advice);

// The diff without its restart-only entries whose value did not change
// (from `running` to `requested`, both validated): a key written out at its
// default, or dropped where it held it, or spelt another way. [dataplane]
// keys are compared one by one; the tables [metrics], [control] and [fleet]
// whole, so an entry of one stays when anything else in it changed.
std::vector<DiffEntry> without_restart_spellings(const std::vector<DiffEntry>& diff,
                                                 const Config& running, const Config& requested);

// Whether a and b hold the same settings, however written (a key left to
// its default or its default written out, another order, comments): every
// field but the file each came from. A change between two such configs is
// no change (docs/control-api.md: no generation, no audit line).
bool same_settings(const Config& a, const Config& b);

}  // namespace sluice
