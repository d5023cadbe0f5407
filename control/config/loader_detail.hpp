// SPDX-License-Identifier: Apache-2.0
// Internals of the config loader shared by its files (config_loader.cpp,
// grammar.cpp, validator*.cpp, overrides.cpp): text helpers, diagnostics
// with their attribution to overrides and profiles, value grammars, and the
// steps every way of loading goes through. Not part of the public API.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <climits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/config_loader.hpp"
#include "control/config/schema.hpp"
#include "dataplane/model/parse.h"  // limits (abi.h) and protocol numbers

namespace sluice::loader {

using Names = std::vector<std::string_view>;

// Ranges of config keys are in schema.cpp; these are the loader's own.
constexpr std::size_t kMaxClassNameLen = SL_CLASS_NAME_MAX;  // what the dataplanes store whole
constexpr std::size_t kMaxUserClasses = SL_MAX_CLASSES - 1;  // the default class takes one slot
constexpr std::size_t kMaxSocketPathLen = 107;               // sun_path minus its terminating NUL
constexpr std::size_t kMaxConfigFileBytes = 16u << 20;       // a config is kilobytes; refuse junk
constexpr std::size_t kMaxQuotedChars = 64;                  // of a found string, in messages
constexpr int kMaxProfileDepth = 8;                          // nesting of unquoted dotted keys
// Profiles are surge levels, a handful; each is validated in full with
// every load and every change, so their number multiplies those.
constexpr std::size_t kMaxProfiles = 64;

// The source name toml++ records for nodes parsed from an override value;
// attribution goes by the identity of that string, never by its text.
constexpr std::string_view kOverrideSource = "<override>";

// ---------------------------------------------------------------------------
// 1. Text helpers

inline bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

inline bool is_lower_name(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A control character: a terminal's escapes, a line break in a one-line
// message.
inline bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// A string as it appears in a message: double-quoted, escaped, shortened.
inline std::string quoted(std::string_view s) {
  std::size_t n = std::min(s.size(), kMaxQuotedChars);
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  std::string out = "\"";
  for (char c : s.substr(0, n)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (is_control(c)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (n < s.size()) out += "...";
  return out;
}

// A key path as messages name it: a bare key as written, any other (and
// one too long to print: a megabyte of letters is a bare key) quoted.
inline std::string join_key(std::string_view prefix, std::string_view k) {
  std::string part = is_bare_key(k) && k.size() <= kMaxQuotedChars ? std::string(k) : quoted(k);
  if (prefix.empty()) return part;
  return std::string(prefix) + "." + part;
}

inline std::string index_key(const std::string& key, std::size_t i) {
  return key + "[" + std::to_string(i) + "]";
}

inline std::string list_names(Names names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

inline std::string range_text(int64_t lo, int64_t hi) {
  if (hi == INT64_MAX) return ">= " + std::to_string(lo);
  return "in " + std::to_string(lo) + ".." + std::to_string(hi);
}

template <typename T>
inline std::string streamed(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// What the user wrote, for "expected X, found Y".
inline std::string describe(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string " + quoted(n.as_string()->get());
    case toml::node_type::integer:
      return "integer " + std::to_string(n.as_integer()->get());
    case toml::node_type::floating_point:
      return "float " + streamed(*n.as_floating_point());
    case toml::node_type::boolean:
      return n.as_boolean()->get() ? "boolean true" : "boolean false";
    case toml::node_type::date:
      return "date " + streamed(*n.as_date());
    case toml::node_type::time:
      return "time " + streamed(*n.as_time());
    case toml::node_type::date_time:
      return "date-time " + streamed(*n.as_date_time());
    case toml::node_type::array:
      return "an array of " + std::to_string(n.as_array()->size());
    case toml::node_type::table:
      return "a table";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// The TOML text of a value, re-parseable as `v = <text>`.
inline std::string toml_text(const toml::node& n) {
  std::ostringstream os;
  n.visit([&os](const auto& v) { os << toml::toml_formatter{v}; });
  return os.str();
}

inline int clamp_index(uint32_t v) { return v > INT_MAX ? INT_MAX : static_cast<int>(v); }

// ---------------------------------------------------------------------------
// 2. Diagnostics

struct ErrorSite {
  std::string file;
  int line = 0;
  int col = 0;
};

// An override or profile entry that was applied to a document: errors in the
// nodes parsed from its value are reported at `site` under `key`.
struct SettingOrigin {
  std::string key;  // reported key: the override key, or profiles.NAME."KEY"
  std::string setting_key;
  ErrorSite site;
};

// How errors found in an edited document are attributed. Empty for a file.
struct Attribution {
  std::vector<SettingOrigin> origins;
  std::map<const std::string*, std::size_t> origin_by_source;  // toml++ source name -> origin
  // For a profile: the file's own nodes were valid before the profile, so an
  // error there is the profile's doing and is reported at the profile.
  std::optional<ErrorSite> document_site;
  std::string document_key;
};

class Diagnostics {
 public:
  Diagnostics(std::string file, const Attribution* attribution)
      : file_(std::move(file)), attribution_(attribution) {}

  void report(const toml::source_region& where, const std::string& key, std::string message) {
    if (attribution_ != nullptr && report_attributed(where, key, message)) return;
    ErrorSite site{where.path ? *where.path : file_, clamp_index(where.begin.line),
                   clamp_index(where.begin.column)};
    add(site, key, std::move(message));
  }

  // A problem with the override or profile entry itself (bad key, bad value text).
  void report_setting(std::size_t origin, std::string message) {
    const SettingOrigin& o = attribution_->origins.at(origin);
    add(o.site, o.key, std::move(message));
  }

  void add(const ErrorSite& site, std::string key, std::string message) {
    errors_.push_back({site.file, site.line, site.col, std::move(key), std::move(message)});
  }

  std::size_t count() const { return errors_.size(); }
  std::vector<ConfigError> take() { return std::move(errors_); }

 private:
  bool report_attributed(const toml::source_region& where, const std::string& key,
                         const std::string& message) {
    const Attribution& a = *attribution_;
    if (where.path) {
      auto it = a.origin_by_source.find(where.path.get());
      if (it != a.origin_by_source.end()) {
        const SettingOrigin& o = a.origins[it->second];
        add(o.site, o.key, key == o.setting_key ? message : key + ": " + message);
        return true;
      }
    }
    if (a.document_site) {
      add(*a.document_site, a.document_key, key + ": " + message);
      return true;
    }
    return false;
  }

  std::string file_;
  const Attribution* attribution_;
  std::vector<ConfigError> errors_;
};

// One key of a table as the validator reads it: its node (null when the key
// is absent), the dotted key its errors name, and its schema row. The key's
// name is written once, where the field is taken.
struct Field {
  const toml::node* node;
  std::string key;
  const KeySpec& spec;
  explicit operator bool() const { return node != nullptr; }
  const toml::node& operator*() const { return *node; }
  const toml::node* operator->() const { return node; }
  bool operator==(std::nullptr_t) const { return node == nullptr; }
  bool operator!=(std::nullptr_t) const { return node != nullptr; }
};

// `name` of the schema table `table`, read from `t` whose errors are
// reported under `prefix` ("class.citizen" for a class's keys).
inline Field field(const toml::table& t, std::string_view table, const std::string& prefix,
                   std::string_view name) {
  return {t.get(name), join_key(prefix, name), key_spec(table, name)};
}

// ---------------------------------------------------------------------------
// 3. Value grammars inside TOML strings (grammar.cpp)

// "198.18.10.0/24", "2001:2:0:10::/64", or an address alone (a host prefix).
// On failure returns nullopt and says why in `why`.
std::optional<Prefix> parse_prefix(std::string_view text, std::string& why);
// Decimal digits only (no sign, no spaces), value 0..65535.
std::optional<uint16_t> parse_port_number(std::string_view s);
// "443" or "8000-8100".
std::optional<PortRange> parse_port_text(std::string_view s, std::string& why);
// "HOST:PORT" with an IPv4 literal or a bracketed IPv6 literal, port 1..65535.
struct ListenAddress {
  int family = 0;                        // AF_INET or AF_INET6
  std::array<unsigned char, 16> addr{};  // network order; IPv4 in the first 4
  uint16_t port = 0;
  bool any() const;  // 0.0.0.0 or [::]
};
std::optional<ListenAddress> parse_listen_address(std::string_view s);
inline bool is_listen_address(std::string_view s) { return parse_listen_address(s).has_value(); }

// ---------------------------------------------------------------------------
// Profile entries (validator_classes.cpp)

struct ProfileEntry {
  std::string key;         // dotted override key
  std::string value_text;  // TOML text of the value
  toml::source_position at{};
};
bool collect_profile_entries(const toml::table& t, const std::string& prefix, int depth,
                             std::vector<ProfileEntry>& out);

// ---------------------------------------------------------------------------
// The steps of loading (overrides.cpp, validator.cpp)

// One dotted-key setting to apply, with where to report problems with it.
struct Setting {
  std::string key;
  std::string value_text;
  ErrorSite site;
  std::string reported_key;  // key used in its errors
};

std::optional<toml::table> parse_document(std::string_view text, const std::string& source,
                                          Diagnostics& diag);
// The shared validation path for files, overrides and profiles.
std::optional<Config> validate_document(const toml::table& doc, const std::string& source,
                                        Diagnostics& diag);
LoadResult finish(std::optional<Config> config, Diagnostics& diag);
// Re-parses the base text (so that every node keeps its source position),
// applies the settings in order and validates the whole result. Its text
// is the edited document formatted, unless `edited` takes the document.
// With `parsed_base` (the text parsed), a copy of it is edited instead:
// faster, but errors in its nodes have no position (0:0), so only for a
// check whose errors are looked for again without it.
LoadResult apply_settings(std::string_view base_text, const std::string& source,
                          const std::vector<Setting>& settings, Attribution attribution,
                          std::optional<toml::table>* edited = nullptr,
                          const toml::table* parsed_base = nullptr);
LoadResult apply_named_profile(std::string_view text, const std::string& source,
                               const std::string& name, const toml::table& profile,
                               std::optional<toml::table>* edited = nullptr,
                               const toml::table* parsed_base = nullptr);
// Every profile is applied once at load time, so that a profile that would be
// rejected at retune time is already an error at startup. `base`: the
// document's validated config; nullptr when it has errors (then only the
// errors at a profile's own entries).
void validate_profiles(std::string_view text, const std::string& source, const toml::table& doc,
                       const Config* base, Diagnostics& diag);
LoadResult internal_error(const std::string& source, const char* what);

}  // namespace sluice::loader
