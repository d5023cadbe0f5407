// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>

#include "control/config/config_diff.hpp"
#include "control/config/toml_parse.hpp"
#include "control/config/validator.hpp"

namespace sluice::loader {

// ---------------------------------------------------------------------------
// 5. Overrides

namespace {

// toml++ 3.3 garbles a quoted key when it names one defined twice
// ('"boboundary.lookups_per_sec" ' for "boundary.lookups_per_sec",
// 'profiles."x.x.y"' for [profiles."x.y"]): the key is taken from the line
// as written instead, a table header's name or what precedes the '='.
std::string redefinition_named(std::string description, std::string_view text, std::size_t line) {
  const std::size_t quote = description.find('\'');
  if (description.find("cannot redefine existing") == std::string::npos ||
      quote == std::string::npos || description.back() != '\'' || line == 0)
    return description;
  std::size_t at = 0;
  for (std::size_t l = 1; l < line && at != std::string_view::npos; l++) {
    at = text.find('\n', at);
    if (at != std::string_view::npos) at++;
  }
  if (at == std::string_view::npos) return description;
  std::string_view row = text.substr(at, text.find('\n', at) - at);
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
      v.remove_suffix(1);
    return v;
  };
  row = trim(row);
  std::string_view key;
  if (row.substr(0, 2) == "[[" && row.find("]]") != std::string_view::npos) {
    key = trim(row.substr(2, row.find("]]") - 2));
  } else if (row.substr(0, 1) == "[" && row.find(']') != std::string_view::npos) {
    key = trim(row.substr(1, row.find(']') - 1));
  } else if (row.find('=') != std::string_view::npos) {
    key = trim(row.substr(0, row.find('=')));
  }
  // Only a quoted key is garbled; an unquoted one's message names its whole
  // path (a.x for x in [a]), which the line alone would not.
  if (key.empty() || key.size() > 200 || key.find_first_of("\"'") == std::string_view::npos)
    return description;
  return description.substr(0, quote) + "'" + std::string(key) + "'";
}

}  // namespace

std::optional<toml::table> parse_document(std::string_view text, const std::string& source,
                                          Diagnostics& diag) {
  try {
    return parse_toml(text, source);
  } catch (const toml::parse_error& e) {
    const toml::source_region& where = e.source();
    diag.add(
        {where.path ? *where.path : source, clamp_index(where.begin.line),
         clamp_index(where.begin.column)},
        "",
        "TOML syntax: " + redefinition_named(std::string(e.description()), text, where.begin.line));
  }
  return std::nullopt;
}

std::vector<std::string> split_key(std::string_view key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// Edits a parsed document. Every node it creates is parsed from TOML text under
// the source name kOverrideSource and registered with the attribution, so that
// any error the validator finds in it is reported against the setting.
class DocumentEditor {
 public:
  DocumentEditor(toml::table& doc, Attribution& attribution, Diagnostics& diag)
      : doc_(doc), attribution_(attribution), diag_(diag) {}

  void apply(std::size_t origin, const Setting& s) {
    std::vector<std::string> path = split_key(s.key);
    if (path.size() > kMaxKeyParts) {
      diag_.report_setting(origin, "key nested too deep: more than " +
                                       std::to_string(kMaxKeyParts) + " dotted parts");
      return;
    }
    if (!std::all_of(path.begin(), path.end(),
                     [](const std::string& p) { return is_bare_key(p); })) {
      diag_.report_setting(origin,
                           "malformed key; expected dotted names such as "
                           "class.NAME.rate_per_sec or boundary.lookups_per_sec");
      return;
    }
    // Every top-level name is a table (or the [[class]] list): a value for it
    // would replace it whole, silently dropping the keys it does not name.
    const auto& tables = Validator::kTopLevelTables;
    if (path.size() == 1 && std::find(tables.begin(), tables.end(), path[0]) == tables.end()) {
      std::string names;
      for (std::string_view t : tables) names += (names.empty() ? "" : ", ") + std::string(t);
      diag_.report_setting(origin, "unknown key; expected one of: " + names);
      return;
    }
    if (path.size() == 1) {
      diag_.report_setting(origin, path[0] + " is a table: set its keys one by one (" + path[0] +
                                       ".KEY = VALUE); a whole table would drop every key it "
                                       "does not name");
      return;
    }
    std::string why;
    std::optional<toml::table> holder = parse_value(origin, s.value_text, why);
    if (!holder) {
      diag_.report_setting(origin, why);
      return;
    }
    toml::table* parent = container(origin, path);
    if (parent == nullptr) return;
    toml::node& value = *holder->get("v");
    toml::key leaf(path.back(), value.source());
    value.visit([&](auto& v) { parent->insert_or_assign(std::move(leaf), std::move(v)); });
  }

 private:
  // Parses `v = <text>`, the value being anything TOML allows on the right.
  std::optional<toml::table> parse_value(std::size_t origin, std::string_view text,
                                         std::string& why) {
    try {
      std::string line = "v = ";
      line.append(text);
      toml::table holder = parse_toml(line, kOverrideSource);
      if (holder.size() != 1 || holder.get("v") == nullptr) {
        why = "expected a single TOML value, found " + quoted(text);
        return std::nullopt;
      }
      const toml::source_region& where = holder.get("v")->source();
      if (where.path) attribution_.origin_by_source[where.path.get()] = origin;
      return holder;
    } catch (const toml::parse_error& e) {
      why = "expected a TOML value (strings in double quotes), found " + quoted(text) + ": " +
            std::string(e.description());
    }
    return std::nullopt;
  }

  // A node made by the edit itself: an empty table or the implied default class.
  std::optional<toml::table> made_table(std::size_t origin, std::string_view text) {
    std::string ignored;
    auto holder = parse_value(origin, text, ignored);
    if (!holder || !holder->get("v")->is_table()) return std::nullopt;
    return std::move(*holder->get("v")->as_table());
  }

  // The table that will hold the last key of `path`, created as needed.
  toml::table* container(std::size_t origin, const std::vector<std::string>& path) {
    if (path.front() == "profiles") {
      diag_.report_setting(origin, "profiles cannot be changed by an override or a profile");
      return nullptr;
    }
    toml::table* parent = &doc_;
    std::size_t next = 0;
    if (path.front() == "class") {
      if (path.size() < 3) {
        diag_.report_setting(origin, "expected class.NAME.KEY, naming a [[class]] and its key");
        return nullptr;
      }
      parent = find_class(origin, path[1]);
      next = 2;
    }
    for (; parent != nullptr && next + 1 < path.size(); ++next) {
      toml::node* child = parent->get(path[next]);
      if (child == nullptr) {
        auto made = made_table(origin, "{}");
        if (!made) return nullptr;
        toml::key k(path[next], made->source());
        child = parent->insert_or_assign(std::move(k), std::move(*made)).first->second.as_table();
      }
      if (!child->is_table()) {
        std::string where;
        for (std::size_t i = 0; i <= next; ++i) where += (i > 0 ? "." : "") + path[i];
        diag_.report_setting(origin, where + " is " + describe(*child) + ", not a table");
        return nullptr;
      }
      parent = child->as_table();
    }
    return parent;
  }

  // The [[class]] named `name`. "default" reaches the implied default class,
  // which is materialized (priority 7, nothing else) to receive the setting.
  toml::table* find_class(std::size_t origin, const std::string& name) {
    toml::node* node = doc_.get("class");
    if (node == nullptr) node = doc_.insert("class", toml::array{}).first->second.as_array();
    toml::array* classes = node->as_array();
    if (classes == nullptr) {
      diag_.report_setting(origin, "the document's class is not an array of [[class]] tables");
      return nullptr;
    }
    std::string names;
    bool has_default = false;
    for (toml::node& e : *classes) {
      const auto* n = e.is_table() ? e.as_table()->get_as<std::string>("name") : nullptr;
      if (n == nullptr) continue;
      if (n->get() == name) return e.as_table();
      names += (names.empty() ? "" : ", ") + n->get();
      has_default = has_default || n->get() == kDefaultClassName;
    }
    if (name == kDefaultClassName) {
      auto made = made_table(origin, "{ name = \"default\", priority = 7 }");
      if (!made) return nullptr;
      classes->push_back(std::move(*made));
      return classes->back().as_table();
    }
    if (!has_default) names += (names.empty() ? "" : ", ") + std::string(kDefaultClassName);
    diag_.report_setting(origin, "unknown class " + quoted(name) + "; classes are: " + names);
    return nullptr;
  }

  toml::table& doc_;
  Attribution& attribution_;
  Diagnostics& diag_;
};

// ---------------------------------------------------------------------------
// 6b. Entry points

LoadResult finish(std::optional<Config> config, Diagnostics& diag) {
  LoadResult r;
  r.errors = diag.take();
  sort_by_position(r.errors);
  if (r.errors.empty()) r.config = std::move(config);
  return r;
}

namespace {

// Applies the settings in order to `doc` and validates the whole result.
LoadResult apply_settings_on(std::optional<toml::table> doc, Diagnostics& diag,
                             const std::string& source, const std::vector<Setting>& settings,
                             Attribution& attribution, std::optional<toml::table>* edited) {
  if (!doc) return finish(std::nullopt, diag);
  // A setting that cannot be applied is reported and skipped; the others are
  // still validated so that one pass reports everything wrong with the list.
  DocumentEditor editor(*doc, attribution, diag);
  for (std::size_t i = 0; i < settings.size(); ++i) editor.apply(i, settings[i]);
  LoadResult r = finish(validate_document(*doc, source, diag), diag);
  if (r.ok() && edited != nullptr) {
    *edited = std::move(doc);
  } else if (r.ok()) {
    std::ostringstream os;
    os << toml::toml_formatter{*doc};
    r.text = os.str() + "\n";
  }
  return r;
}

}  // namespace

// Re-parses the base text (so that every node keeps its source position),
// applies the settings in order and validates the whole result. Given the
// base already parsed, works on a copy instead, whose nodes have no
// positions: for a result that is valid (its errors would be at 0:0).
LoadResult apply_settings(std::string_view base_text, const std::string& source,
                          const std::vector<Setting>& settings, Attribution attribution,
                          std::optional<toml::table>* edited, const toml::table* parsed_base) {
  for (const Setting& s : settings) {
    attribution.origins.push_back({s.reported_key, s.key, s.site});
  }
  Diagnostics diag(source, &attribution);
  std::optional<toml::table> doc = parsed_base != nullptr ? std::optional<toml::table>(*parsed_base)
                                                          : parse_document(base_text, source, diag);
  return apply_settings_on(std::move(doc), diag, source, settings, attribution, edited);
}

std::vector<Setting> profile_settings(const std::string& name, const toml::table& profile,
                                      const std::string& source) {
  std::vector<ProfileEntry> entries;
  collect_profile_entries(profile, "", 0, entries);
  std::vector<Setting> settings;
  for (ProfileEntry& e : entries) {
    ErrorSite site{source, clamp_index(e.at.line), clamp_index(e.at.column)};
    std::string reported = join_key(join_key("profiles", name), e.key);
    settings.push_back({std::move(e.key), std::move(e.value_text), site, std::move(reported)});
  }
  return settings;
}

LoadResult apply_named_profile(std::string_view text, const std::string& source,
                               const std::string& name, const toml::table& profile,
                               std::optional<toml::table>* edited, const toml::table* parsed_base) {
  Attribution attribution;
  attribution.document_site = ErrorSite{source, clamp_index(profile.source().begin.line),
                                        clamp_index(profile.source().begin.column)};
  attribution.document_key = join_key("profiles", name);
  return apply_settings(text, source, profile_settings(name, profile, source),
                        std::move(attribution), edited, parsed_base);
}

// Every profile is applied once at load time, so that a profile that would be
// rejected at retune time is already an error at startup: one that does not
// apply, or one that changes a key only a restart changes (a profile switch
// is a live change), at the entry responsible. While the base has errors,
// each profile's check meets them again, reported at the profile's table
// (the attribution's document site): only its entries' own are kept, and
// the restart-only check, a diff of two valid configs, waits for a valid
// base.
void validate_profiles(std::string_view text, const std::string& source, const toml::table& doc,
                       const Config* base, Diagnostics& diag) {
  const bool base_valid = base != nullptr;
  const toml::table* profiles = doc.get_as<toml::table>("profiles");
  if (profiles == nullptr || profiles->size() > kMaxProfiles) return;  // the validator says so
  for (auto&& [k, v] : *profiles) {
    const toml::table* profile = v.as_table();
    if (profile == nullptr) continue;
    const std::string name(k.str());
    // On a copy of the parsed base, and the edited document compared with
    // it: no text parsed, formatted or parsed again per profile (with a
    // large base or many profiles, that was most of the load). A profile
    // with errors is applied again to the text, for their positions.
    std::optional<toml::table> edited;
    LoadResult r = apply_named_profile(text, source, name, *profile, &edited, &doc);
    if (!r.ok()) r = apply_named_profile(text, source, name, *profile, &edited);
    const int line = clamp_index(profile->source().begin.line);
    const int col = clamp_index(profile->source().begin.column);
    for (ConfigError& e : r.errors) {
      if (base_valid || e.line != line || e.col != col)
        diag.add({e.file, e.line, e.col}, e.key, e.message);
    }
    if (!r.ok()) continue;
    std::vector<ProfileEntry> entries;
    collect_profile_entries(*profile, "", 0, entries);
    // As a live switch judges it (ControlState::change): a restart-only key
    // restated at the value it has, or spelt another way, changes nothing.
    std::vector<DiffEntry> diff = config_diff(doc, *edited);
    if (base != nullptr && r.config) diff = without_restart_spellings(diff, *base, *r.config);
    for (const std::string& changed : restart_only_keys(diff)) {
      ErrorSite at{source, clamp_index(profile->source().begin.line),
                   clamp_index(profile->source().begin.column)};
      std::string key = join_key("profiles", name);
      for (const ProfileEntry& e : entries) {
        if (e.key == changed || changed.rfind(e.key + ".", 0) == 0 ||
            e.key.rfind(changed + ".", 0) == 0) {
          at = {source, clamp_index(e.at.line), clamp_index(e.at.column)};
          key = join_key(key, e.key);
          break;
        }
      }
      diag.add(at, key,
               changed + " changes only at restart: a profile, switched live, cannot change it");
    }
  }
}

LoadResult internal_error(const std::string& source, const char* what) {
  LoadResult r;
  r.errors.push_back({source, 0, 0, "", std::string("internal error while loading: ") + what});
  return r;
}

}  // namespace sluice::loader
