// SPDX-License-Identifier: Apache-2.0
#include "control/config/config_diff.hpp"

#include "control/config/schema.hpp"
#include "control/config/toml_parse.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <climits>
#include <map>
#include <optional>
#include <sstream>

namespace sluice {
namespace {

// A flattened document: each key's node, compared by value, formatted only
// where two documents differ (a 100,000-prefix list is compared, not
// printed). "class.order" has no node of its own: its text is made here.
struct FlatValue {
  const toml::node* node = nullptr;
  std::string text;
};
using Flat = std::map<std::string, FlatValue>;

std::string value_text(const toml::node& n) {
  std::ostringstream os;
  n.visit([&os](const auto& v) {
    if constexpr (toml::is_table<decltype(v)>) {
      os << toml::toml_formatter{v, toml::format_flags::none};
    } else {
      os << toml::toml_formatter{v};
    }
  });
  return os.str();
}

std::string text_of(const FlatValue& v) { return v.node != nullptr ? value_text(*v.node) : v.text; }

bool same(const FlatValue& a, const FlatValue& b) {
  if (a.node == nullptr || b.node == nullptr) return a.node == b.node && a.text == b.text;
  // Deep equality is by value: 16 and 0x10 are the same setting. What a
  // diff shows of the two texts would differ; the setting does not.
  return toml::node_view<const toml::node>{a.node} == toml::node_view<const toml::node>{b.node};
}

void flatten(const toml::table& t, const std::string& prefix, Flat& out) {
  for (auto&& [k, v] : t) {
    const std::string key =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    // A table's keys, also of a top-level table written inline (an override
    // of a key in a table the file lacks writes `admission = { ... }`);
    // deeper inline tables are values (a class's match).
    if (const toml::table* sub = v.as_table();
        sub != nullptr && (!sub->is_inline() || prefix.empty())) {
      flatten(*sub, key, out);
    } else if (const toml::array* arr = v.as_array();
               arr != nullptr && key == "class" && arr->is_array_of_tables()) {
      std::string order;
      for (const toml::node& entry : *arr) {
        const toml::table* c = entry.as_table();
        const toml::value<std::string>* name =
            c != nullptr ? c->get_as<std::string>("name") : nullptr;
        if (name == nullptr) continue;
        order += (order.empty() ? "" : ", ") + name->get();
        for (auto&& [ck, cv] : *c) {
          if (ck.str() == "name") continue;
          out["class." + name->get() + "." + std::string(ck.str())] = {&cv, {}};
        }
      }
      out["class.order"] = {nullptr, "[" + order + "]"};
    } else {
      out[key] = {&v, {}};
    }
  }
}

std::optional<toml::table> parsed(std::string_view text) {
  try {
    return parse_toml(text);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

}  // namespace

std::vector<DiffEntry> config_diff(const toml::table& old_doc, const toml::table& new_doc) {
  Flat a, b;
  flatten(old_doc, "", a);
  flatten(new_doc, "", b);
  std::vector<DiffEntry> out;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      out.push_back({ia->first, text_of(ia->second), std::nullopt});
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      out.push_back({ib->first, std::nullopt, text_of(ib->second)});
      ++ib;
    } else {
      if (!same(ia->second, ib->second))
        out.push_back({ia->first, text_of(ia->second), text_of(ib->second)});
      ++ia;
      ++ib;
    }
  }
  return out;
}

std::vector<DiffEntry> config_diff(std::string_view old_text, std::string_view new_text) {
  const std::optional<toml::table> a = parsed(old_text);
  const std::optional<toml::table> b = parsed(new_text);
  return config_diff(a ? *a : toml::table{}, b ? *b : toml::table{});
}

bool is_restart_only(const std::string& key) {
  // A whole table (an empty one written inline, `dataplane = {}`).
  if (key == "dataplane" || key == "metrics" || key == "control") return true;
  return is_restart_only_key(key);
}

std::vector<std::string> restart_only_keys(const std::vector<DiffEntry>& diff) {
  std::vector<std::string> keys;
  for (const DiffEntry& d : diff)
    if (is_restart_only(d.key)) keys.push_back(d.key);
  return keys;
}

std::vector<ConfigError> restart_only_errors(const std::vector<DiffEntry>& diff,
                                             const WrittenConfig& written,
                                             std::string_view advice) {
  std::vector<ConfigError> out;
  for (const DiffEntry& d : diff) {
    if (!is_restart_only(d.key)) continue;
    ConfigError e = error_at_key(
        written.text, written.name, d.key,
        "changes only at restart (running: " + d.old_value.value_or("not written") +
            ", requested: " + d.new_value.value_or("not written") + "); " + std::string(advice));
    // The last setting of the key, or of a table holding it, wins.
    for (std::size_t i = written.override_keys.size(); i-- > 0;) {
      const std::string& k = written.override_keys[i];
      if (k == d.key || d.key.rfind(k + ".", 0) == 0) {
        e.line = i + 1 > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(i + 1);
        e.col = 1;
        break;
      }
    }
    out.push_back(std::move(e));
  }
  sort_by_position(out);  // as the loader's errors (docs/config.md, "Errors")
  return out;
}

std::vector<DiffEntry> without_restart_spellings(const std::vector<DiffEntry>& diff,
                                                 const Config& running, const Config& requested) {
  auto in = [](const std::string& key, std::string_view section) {
    return key == section || (key.size() > section.size() && key.rfind(section, 0) == 0 &&
                              key[section.size()] == '.');
  };
  const DataplaneSettings& was = running.dataplane;
  const DataplaneSettings& is = requested.dataplane;
  auto unchanged = [&](const std::string& key) {
    if (key == "dataplane.mode") return was.mode == is.mode;
    if (key == "dataplane.outside") return was.outside == is.outside;
    if (key == "dataplane.inside") return was.inside == is.inside;
    if (key == "dataplane.xdp_attach") return was.xdp_attach == is.xdp_attach;
    if (key == "dataplane.pin_path") return was.pin_path == is.pin_path;
    if (key == "dataplane.when_stopped") return was.when_stopped == is.when_stopped;
    if (key == "dataplane.dpdk_workers") return was.dpdk_workers == is.dpdk_workers;
    if (key == "dataplane.dpdk_mbufs") return was.dpdk_mbufs == is.dpdk_mbufs;
    if (key == "dataplane.dpdk_queue_size") return was.dpdk_queue_size == is.dpdk_queue_size;
    if (key == "dataplane.dpdk_idle_sleep_us")
      return was.dpdk_idle_sleep_us == is.dpdk_idle_sleep_us;
    if (key == "dataplane.dpdk_clock") return was.dpdk_clock == is.dpdk_clock;
    if (key == "dataplane.dpdk_standby") return was.dpdk_standby == is.dpdk_standby;
    if (key == "dataplane.dpdk_args") return was.dpdk_args == is.dpdk_args;
    if (in(key, "dataplane")) return was == is;  // the table itself (`dataplane = {}`)
    if (key == "admission.source_table_size")
      return running.admission.source_table_size == requested.admission.source_table_size;
    if (key == "admission.flow_table_size")
      return running.admission.flow_table_size == requested.admission.flow_table_size;
    if (in(key, "metrics")) return running.metrics == requested.metrics;
    if (in(key, "control")) return running.control == requested.control;
    if (in(key, "fleet")) return running.fleet == requested.fleet;
    return false;
  };
  std::vector<DiffEntry> out;
  for (const DiffEntry& d : diff)
    if (!is_restart_only(d.key) || !unchanged(d.key)) out.push_back(d);
  return out;
}

bool same_settings(const Config& a, const Config& b) {
  // A profile's settings are kept in the order written (its keys are
  // distinct, so the order changes nothing), and a rewritten text (after a
  // live `set`) may order them otherwise.
  auto in_key_order = [](const Config& c) {
    Config out = c;
    out.source.clear();
    for (auto& [name, overlay] : out.profiles)
      std::sort(overlay.settings.begin(), overlay.settings.end());
    return out;
  };
  return in_key_order(a) == in_key_order(b);
}

}  // namespace sluice
