// SPDX-License-Identifier: Apache-2.0
// TOML -> Config: the public entry points of the loader. The steps live in
// files of one concern each:
//   loader_detail.hpp   text helpers, diagnostics and their attribution
//   grammar.cpp         value grammars that are not TOML types (prefixes,
//                       ports, listen addresses)
//   validator*.cpp      one pass over a parsed document producing a Config,
//                       ranges, words and known keys from schema.cpp
//   overrides.cpp       editing a parsed document with dotted-key settings
//                       and profiles
//
// Nothing here may throw out of the public functions: toml++ reports syntax
// errors with toml::parse_error, which becomes a ConfigError, and anything else
// (allocation failure) is caught at the entry points.
#include "control/config/config_loader.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <tuple>

#include "control/config/loader_detail.hpp"
#include "control/config/toml_parse.hpp"

namespace sluice {

std::string ConfigError::to_string() const {
  std::string out = file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

void sort_by_position(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.file, a.line, a.col) < std::tie(b.file, b.line, b.col);
  });
}

using namespace loader;

std::optional<Prefix> parse_prefix_text(std::string_view text, std::string* why) {
  return parse_prefix(text, *why);
}

ConfigError error_at_key(std::string_view text, std::string source_name, std::string key,
                         std::string message) {
  ConfigError e{std::move(source_name), 1, 1, std::move(key), std::move(message)};
  try {
    const toml::table doc = parse_toml(text);
    if (const toml::node* n = doc.at_path(e.key).node(); n != nullptr && n->source().begin) {
      e.line = static_cast<int>(n->source().begin.line);
      e.col = static_cast<int>(n->source().begin.column);
    }
  } catch (const toml::parse_error&) {  // no position to give: 1:1
  }
  return e;
}

LoadResult load_config_string(std::string_view text, std::string source_name) {
  try {
    Diagnostics diag(source_name, nullptr);
    std::optional<toml::table> doc = parse_document(text, source_name, diag);
    if (!doc) return finish(std::nullopt, diag);
    std::optional<Config> config = validate_document(*doc, source_name, diag);
    // Also with errors in the base, so that one pass names what is wrong in
    // the profiles too.
    validate_profiles(text, source_name, *doc, config ? &*config : nullptr, diag);
    LoadResult r = finish(std::move(config), diag);
    if (r.ok()) r.text = std::string(text);
    return r;
  } catch (const std::exception& e) {
    return internal_error(source_name, e.what());
  } catch (...) {
    return internal_error(source_name, "unknown exception");
  }
}

namespace {

// How long a config that is not a regular file (a pipe: `<(...)`,
// /dev/stdin) may take to arrive in full.
constexpr int kPipeTimeoutMs = 5000;

}  // namespace

bool read_config_text(const std::string& path, std::string* text, std::string* why) {
  struct stat st {};
  const bool regular = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (regular ? 0 : O_NONBLOCK));
  if (fd < 0) {
    *why = std::strerror(errno);
    return false;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kPipeTimeoutMs);
  char buf[65536];
  bool ok = true;
  for (;;) {
    if (!regular) {
      // Until there is something to read or the writer closed it (a FIFO
      // no writer opened yet reads as an empty file: waited for, too).
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      struct pollfd p {
        fd, POLLIN, 0
      };
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
        *why = "not complete within " + std::to_string(kPipeTimeoutMs / 1000) +
               " s (a pipe or device whose writer did not finish)";
        ok = false;
        break;
      }
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text->append(buf, static_cast<std::size_t>(n));
      if (text->size() > kMaxConfigFileBytes) {
        *why = "larger than " + std::to_string(kMaxConfigFileBytes) + " bytes";
        ok = false;
        break;
      }
      continue;
    }
    if (n == 0) break;  // the end (of a pipe: its writer closed it)
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    *why = std::strerror(errno);
    ok = false;
    break;
  }
  ::close(fd);
  return ok;
}

bool read_first_line(const std::string& path, std::string* line, std::string* why) {
  line->clear();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    *why = "cannot read " + path + ": not a regular file";
    return false;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  for (int c; (c = std::fgetc(f.get())) != EOF && c != '\n';) {
    line->push_back(static_cast<char>(c));
    if (line->size() > 4096) {
      *why = "cannot read " + path + ": its first line is longer than 4096 bytes";
      return false;
    }
  }
  if (std::ferror(f.get())) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!line->empty() && line->back() == '\r') line->pop_back();  // a file with CRLF lines
  return true;
}

LoadResult load_config_file(const std::string& path) {
  try {
    std::string text, why;
    if (!read_config_text(path, &text, &why)) {
      LoadResult r;
      r.errors.push_back({path, 0, 0, "", "cannot read config file: " + why});
      return r;
    }
    return load_config_string(text, path);
  } catch (const std::exception& e) {
    return internal_error(path, e.what());
  } catch (...) {
    return internal_error(path, "unknown exception");
  }
}

namespace {

// The lines of the [dataplane], [control] and [metrics] tables, found by
// their headers: what can be read of a file that is not TOML elsewhere.
std::string section_lines(const std::string& text, const std::vector<std::string_view>& tables) {
  std::string out;
  bool keep = false;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = text.substr(at, end - at);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '[') {
      const std::size_t close = line.find(']', first);
      const std::string header =
          close == std::string::npos ? "" : line.substr(first, close - first + 1);
      keep = false;
      for (std::string_view t : tables) keep = keep || header == "[" + std::string(t) + "]";
    }
    if (keep) out += line + "\n";
    at = end + 1;
  }
  return out;
}

}  // namespace

Config load_local_sections(const std::string& path, std::vector<ConfigError>* errors) {
  return load_sections(path, {kLocalTables.begin(), kLocalTables.end()}, errors);
}

Config load_sections(const std::string& path, const std::vector<std::string_view>& tables,
                     std::vector<ConfigError>* errors) {
  std::string text;
  // Defaults, and why: the whole file's errors in its local tables (their
  // lines and columns in the file), or in no table (TOML syntax).
  auto defaults = [&](std::vector<ConfigError> why) {
    if (errors == nullptr) return Config{};
    if (why.empty()) {
      for (ConfigError& e : load_config_string(text, path).errors) {
        const std::string table = e.key.substr(0, e.key.find_first_of(".["));
        if (e.key.empty() || std::find(tables.begin(), tables.end(), table) != tables.end())
          why.push_back(std::move(e));
      }
    }
    if (why.empty()) why.push_back({path, 0, 0, "", "its tables sluiced needs here are not valid"});
    *errors = std::move(why);
    return Config{};
  };
  try {
    std::string unread;
    if (!read_config_text(path, &text, &unread))
      return defaults({{path, 0, 0, "", "cannot read config file: " + unread}});
    Diagnostics diag(path, nullptr);
    std::optional<toml::table> doc = parse_document(text, path, diag);
    if (!doc) {
      // Not TOML somewhere: its local tables may still be.
      Diagnostics again(path, nullptr);
      doc = parse_document(section_lines(text, tables), path, again);
      if (!doc) return defaults({});
    }
    toml::table local;
    for (std::string_view section : tables) {
      if (const toml::node* n = doc->get(section)) local.insert(section, *n);
    }
    std::ostringstream out;
    out << local;
    LoadResult r = load_config_string(out.str(), path);
    return r.ok() ? *r.config : defaults({});
  } catch (const std::exception& e) {
    return defaults({{path, 0, 0, "", std::string("internal error: ") + e.what()}});
  }
}

namespace {

// The tables of `doc` named in `names`, as TOML text.
std::string tables_text(const toml::table& doc, const std::vector<std::string_view>& names) {
  toml::table out;
  for (std::string_view name : names) {
    if (const toml::node* n = doc.get(name)) out.insert(name, *n);
  }
  std::ostringstream text;
  text << out;
  return text.str();
}

}  // namespace

bool is_fleet_owned_key(std::string_view dotted) {
  const std::string_view table = dotted.substr(0, dotted.find('.'));
  return std::find(kFleetTables.begin(), kFleetTables.end(), table) != kFleetTables.end();
}

LoadResult compose_fleet_config(std::string_view local_text, std::string local_name,
                                std::string_view fleet_text, std::string fleet_name) {
  try {
    // The fleet's part alone, first: its errors name its own lines.
    Diagnostics fleet_diag(fleet_name, nullptr);
    std::optional<toml::table> fleet = parse_document(fleet_text, fleet_name, fleet_diag);
    if (fleet) {
      for (auto&& [k, v] : *fleet) {
        if (is_fleet_owned_key(k.str())) continue;
        fleet_diag.report(v.source(), std::string(k.str()),
                          "not a fleet table: [dataplane], [control], [metrics] and [fleet] are "
                          "each edge's own, in its local file");
      }
    }
    if (fleet_diag.count() != 0) return finish(std::nullopt, fleet_diag);
    LoadResult alone = load_config_string(fleet_text, fleet_name);
    if (!alone.ok()) return alone;

    Diagnostics local_diag(local_name, nullptr);
    std::optional<toml::table> local = parse_document(local_text, local_name, local_diag);
    if (!local) return finish(std::nullopt, local_diag);
    // The fleet's text first: a key it writes at the top level (`admission
    // = { shadow = true }`, as a change to a config without [admission]
    // writes it) stays there, instead of landing in the last local table.
    const std::string text = std::string(fleet_text) + "\n" +
                             tables_text(*local, {kLocalTables.begin(), kLocalTables.end()});
    return load_config_string(text, local_name + " + " + fleet_name);
  } catch (const std::exception& e) {
    return internal_error(fleet_name, e.what());
  } catch (...) {
    return internal_error(fleet_name, "unknown exception");
  }
}

std::string fleet_tables_text(std::string_view text) {
  try {
    Diagnostics diag("<fleet>", nullptr);
    std::optional<toml::table> doc = parse_document(text, "<fleet>", diag);
    if (!doc) return "";
    return tables_text(*doc, {kFleetTables.begin(), kFleetTables.end()});
  } catch (...) {
    return "";
  }
}

std::string local_tables_text(std::string_view text) {
  try {
    Diagnostics diag("<local>", nullptr);
    std::optional<toml::table> doc = parse_document(text, "<local>", diag);
    if (!doc) return "";
    return tables_text(*doc, {kLocalTables.begin(), kLocalTables.end()});
  } catch (...) {
    return "";
  }
}

LoadResult apply_overrides(std::string_view base_text, std::string source_name,
                           const std::vector<std::pair<std::string, std::string>>& settings) {
  try {
    std::vector<Setting> list;
    for (std::size_t i = 0; i < settings.size(); ++i) {
      const int line = i >= static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(i + 1);
      // The key as given, unless it would put control characters (a
      // terminal's escapes, a line break in a one-line error) or a
      // megabyte into the message: then quoted, escaped and shortened.
      const std::string& key = settings[i].first;
      const bool plain =
          key.size() <= kMaxQuotedChars && std::none_of(key.begin(), key.end(), is_control);
      list.push_back({key, settings[i].second, ErrorSite{std::string(kOverrideSource), line, 1},
                      plain ? key : quoted(key)});
    }
    return apply_settings(base_text, source_name, list, Attribution{});
  } catch (const std::exception& e) {
    return internal_error(source_name, e.what());
  } catch (...) {
    return internal_error(source_name, "unknown exception");
  }
}

LoadResult apply_profile(std::string_view base_text, std::string source_name,
                         const std::string& profile_name) {
  try {
    // The overlay is only meaningful on a valid base; this also reports a
    // broken base at its own lines instead of blaming the profile.
    LoadResult base = load_config_string(base_text, source_name);
    if (!base.ok()) return base;
    Diagnostics diag(source_name, nullptr);
    std::optional<toml::table> doc = parse_document(base_text, source_name, diag);
    if (!doc) return finish(std::nullopt, diag);
    const toml::table* profiles = doc->get_as<toml::table>("profiles");
    const toml::table* profile =
        profiles != nullptr ? profiles->get_as<toml::table>(profile_name) : nullptr;
    if (profile == nullptr) {
      std::string names;
      if (profiles != nullptr) {
        for (auto&& [k, v] : *profiles) names += (names.empty() ? "" : ", ") + std::string(k.str());
      }
      // A missing key is reported at its enclosing table: [profiles], or
      // the document when there is none (0:0 is for a file not read).
      int line = 1, column = 1;
      if (profiles != nullptr && profiles->source().begin.line != 0) {
        line = static_cast<int>(profiles->source().begin.line);
        column = static_cast<int>(profiles->source().begin.column);
      }
      diag.add({source_name, line, column}, join_key("profiles", profile_name),
               names.empty() ? "unknown profile; no profiles are defined"
                             : "unknown profile; profiles are: " + names);
      return finish(std::nullopt, diag);
    }
    return apply_named_profile(base_text, source_name, profile_name, *profile);
  } catch (const std::exception& e) {
    return internal_error(source_name, e.what());
  } catch (...) {
    return internal_error(source_name, "unknown exception");
  }
}

}  // namespace sluice
