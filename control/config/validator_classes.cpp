// SPDX-License-Identifier: Apache-2.0
#include <tuple>

#include "control/config/validator.hpp"

namespace sluice::loader {

void Validator::classes(const toml::node& n, std::vector<ClassConfig>& out) {
  const auto* a = n.as_array();
  if (a == nullptr) {
    fail(n, "class", "an array of tables ([[class]] sections)");
    return;
  }
  // Class name -> where it was first given: a line of the file, or an
  // override or profile that renamed a class (its own one-line text).
  std::map<std::string, std::string> first_at;
  std::size_t user_classes = 0;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = (*a)[i];
    const std::string fallback_key = index_key("class", i);
    const toml::table* t = table(e, fallback_key);
    if (t == nullptr) continue;
    ClassConfig c;
    std::string key = fallback_key;
    if (class_name(*t, fallback_key, c.name)) {
      key = "class." + c.name;
      const toml::node& name_node = *t->get("name");
      const toml::source_region& at = name_node.source();
      const bool changed = at.path && *at.path == kOverrideSource;
      auto [it, inserted] = first_at.emplace(
          c.name, changed ? "by the change (an override or a profile renaming a class)"
                          : "at line " + std::to_string(clamp_index(at.begin.line)));
      if (!inserted) {
        diag_.report(at, key + ".name",
                     "duplicate class name " + quoted(c.name) + ", also defined " + it->second);
      }
    }
    const bool is_default = c.name == kDefaultClassName;
    if (is_default && i + 1 != a->size()) {
      diag_.report(t->source(), key,
                   "the class named \"default\" takes whatever no other class matched, so it "
                   "must be the last [[class]]");
    }
    if (!is_default && ++user_classes == kMaxUserClasses + 1) {
      diag_.report(
          t->source(), key,
          "too many classes: at most " + std::to_string(kMaxUserClasses) + " besides \"default\"");
    }
    class_body(*t, key, is_default, c);
    out.push_back(std::move(c));
  }
}

bool Validator::class_name(const toml::table& t, const std::string& fallback_key,
                           std::string& name) {
  const toml::node* n = t.get("name");
  if (n == nullptr) {
    diag_.report(t.source(), fallback_key + ".name",
                 "missing; every [[class]] needs a name (1.." + std::to_string(kMaxClassNameLen) +
                     " characters of a-z, 0-9, _, -)");
    return false;
  }
  const auto* s = n->as_string();
  if (s == nullptr || s->get().size() > kMaxClassNameLen || !is_lower_name(s->get())) {
    fail(*n, fallback_key + ".name",
         "a name of 1.." + std::to_string(kMaxClassNameLen) + " characters of a-z, 0-9, _ and -");
    return false;
  }
  name = s->get();
  return true;
}

void Validator::class_body(const toml::table& t, const std::string& key, bool is_default,
                           ClassConfig& c) {
  reject_unknown(t, key, keys_of("class"));
  if (Field p = field(t, "class", key, "priority")) {
    if (auto v = integer(p)) {
      c.priority = static_cast<uint8_t>(*v);
    }
  }
  rate_and_burst(t, "class", key, "rate_per_sec", "burst", c.rate_per_sec, c.burst);
  shed_action(t, key, c);
  if (Field o = field(t, "class", key, "shed_order")) {
    if (auto v =
            keyword<ShedOrder>(o, {{"sticky", ShedOrder::sticky}, {"random", ShedOrder::random}})) {
      c.shed_order = *v;
    }
  }
  if (Field m = field(t, "class", key, "match")) {
    if (is_default) {
      diag_.report(m->source(), m.key,
                   "the default class takes whatever no other class matched; it must not have "
                   "a match");
    } else {
      match(*m, m.key, c.match);
    }
  }
  if (Field p = field(t, "class", key, "per_source")) per_source(*p, p.key, c);
}

// mark_dscp belongs to on_shed = "mark" alone: required with it, and an
// error elsewhere because it would be silently ignored.
void Validator::shed_action(const toml::table& t, const std::string& key, ClassConfig& c) {
  Field on = field(t, "class", key, "on_shed");
  bool on_shed_known = true;
  if (on != nullptr) {
    auto v = keyword<ShedAction>(
        on, {{"drop", ShedAction::drop}, {"reset", ShedAction::reset}, {"mark", ShedAction::mark}});
    if (v) c.on_shed = *v;
    on_shed_known = v.has_value();
  }
  const bool marks = on_shed_known && c.on_shed == ShedAction::mark;
  Field dscp = field(t, "class", key, "mark_dscp");
  if (dscp == nullptr) {
    if (marks) {
      diag_.report(t.source(), dscp.key,
                   "missing; on_shed = \"mark\" needs the DSCP value to mark with (0..63)");
    }
    return;
  }
  if (on_shed_known && !marks) {
    diag_.report(dscp->source(), dscp.key, "allowed only with on_shed = \"mark\"");
    return;
  }
  if (auto v = integer(dscp)) c.mark_dscp = static_cast<uint8_t>(*v);
}

void Validator::per_source(const toml::node& n, const std::string& key, ClassConfig& c) {
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of("class.per_source"));
  PerSourceConfig ps;
  bool ok = true;
  if (Field r = field(*t, "class.per_source", key, "rate_per_sec")) {
    auto v = integer(r);
    if (v) ps.rate_per_sec = static_cast<uint64_t>(*v);
    ok = v.has_value();
  } else {
    diag_.report(t->source(), r.key,
                 "missing; a per-source limit needs rate_per_sec (1..1000000000)");
    ok = false;
  }
  ps.burst = std::max<uint64_t>(1, ps.rate_per_sec);
  if (Field b = field(*t, "class.per_source", key, "burst")) {
    auto v = integer(b);
    if (v) ps.burst = static_cast<uint64_t>(*v);
    ok = ok && v.has_value();
  }
  if (Field p = field(*t, "class.per_source", key, "prefix_v4")) {
    auto v = integer(p);
    if (v) ps.prefix_v4 = static_cast<uint8_t>(*v);
    ok = ok && v.has_value();
  }
  if (Field p = field(*t, "class.per_source", key, "prefix_v6")) {
    auto v = integer(p);
    if (v) ps.prefix_v6 = static_cast<uint8_t>(*v);
    ok = ok && v.has_value();
  }
  if (ok) c.per_source = ps;
}

void Validator::match(const toml::node& n, const std::string& key, MatchConfig& out) {
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of("class.match"));
  if (Field s = field(*t, "class.match", key, "src")) prefixes(*s, s.key, out.src);
  if (Field d = field(*t, "class.match", key, "dst")) prefixes(*d, d.key, out.dst);
  bool protocols_ok = true;
  if (Field p = field(*t, "class.match", key, "proto")) {
    const std::size_t before = diag_.count();
    protocols(*p, p.key, out.protocols);
    protocols_ok = diag_.count() == before;
  }
  if (Field p = field(*t, "class.match", key, "dst_ports")) {
    ports(*p, p.key, out.dst_ports);
    if (protocols_ok) ports_need_tcp_or_udp(*p, p.key, out);
  }
  if (Field d = field(*t, "class.match", key, "dscp")) {
    one_or_many(*d, d.key, [&](const toml::node& e, const std::string& k) {
      if (auto v = integer(e, k, d.spec)) out.dscp.push_back(static_cast<uint8_t>(*v));
    });
  }
}

void Validator::prefixes(const toml::node& n, const std::string& key, std::vector<Prefix>& out) {
  one_or_many(n, key, [&](const toml::node& e, const std::string& k) {
    const auto* s = e.as_string();
    if (s == nullptr) {
      fail(e, k, "an IPv4 or IPv6 address or prefix string");
      return;
    }
    std::string why;
    if (auto p = parse_prefix(s->get(), why)) {
      out.push_back(std::move(*p));
    } else {
      diag_.report(e.source(), k, why + ", found " + describe(e));
    }
  });
}

void Validator::protocols(const toml::node& n, const std::string& key, std::vector<uint8_t>& out) {
  auto add = [&out](uint8_t proto) {
    if (std::find(out.begin(), out.end(), proto) == out.end()) out.push_back(proto);
  };
  one_or_many(n, key, [&](const toml::node& e, const std::string& k) {
    const KeySpec& spec = key_spec("class.match", "proto");
    if (const auto* i = e.as_integer();
        i != nullptr && i->get() >= spec.min && i->get() <= spec.max) {
      add(static_cast<uint8_t>(i->get()));
      return;
    }
    const std::string* s = e.is_string() ? &e.as_string()->get() : nullptr;
    if (s != nullptr && *s == "tcp") {
      add(SL_IPPROTO_TCP);
    } else if (s != nullptr && *s == "udp") {
      add(SL_IPPROTO_UDP);
    } else if (s != nullptr && *s == "icmp") {
      add(SL_IPPROTO_ICMP);
      add(SL_IPPROTO_ICMPV6);
    } else if (s != nullptr && *s == "icmpv6") {
      add(SL_IPPROTO_ICMPV6);
    } else {
      fail(e, k, "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or an integer in 0..255");
    }
  });
}

void Validator::ports(const toml::node& n, const std::string& key, std::vector<PortRange>& out) {
  one_or_many(n, key, [&](const toml::node& e, const std::string& k) {
    const KeySpec& spec = key_spec("class.match", "dst_ports");
    if (const auto* i = e.as_integer();
        i != nullptr && i->get() >= spec.min && i->get() <= spec.max) {
      const auto p = static_cast<uint16_t>(i->get());
      out.push_back({p, p});
      return;
    }
    const auto* s = e.as_string();
    if (s == nullptr) {
      fail(e, k, "a port in 0..65535 (integer or string) or a range string \"LO-HI\"");
      return;
    }
    std::string why;
    if (auto r = parse_port_text(s->get(), why)) {
      out.push_back(*r);
    } else {
      diag_.report(e.source(), k, why + ", found " + describe(e));
    }
  });
}

// Ports exist only in TCP and UDP headers; a port match on any other
// protocol could never match, which is surely not what was meant.
void Validator::ports_need_tcp_or_udp(const toml::node& n, const std::string& key,
                                      const MatchConfig& m) {
  for (uint8_t proto : m.protocols) {
    if (proto == SL_IPPROTO_TCP || proto == SL_IPPROTO_UDP) continue;
    std::string name = proto == SL_IPPROTO_ICMP     ? "icmp"
                       : proto == SL_IPPROTO_ICMPV6 ? "icmpv6"
                                                    : std::to_string(proto);
    diag_.report(n.source(), key,
                 "destination ports apply only to tcp and udp, but proto includes " + name);
    return;
  }
}

// ---------------------------------------------------------------------------
// 6a. Profile entries (used by the validator and by apply_profile)

// Collects the entries of a [profiles.NAME] table in source order. Quoted
// dotted keys ("class.citizen.rate_per_sec") are the documented form; an
// unquoted dotted key makes nested tables, which are flattened back to the
// same dotted key. Inline tables are values ("class.x.match" = { ... }).
bool collect_profile_entries(const toml::table& t, const std::string& prefix, int depth,
                             std::vector<ProfileEntry>& out) {
  if (depth > kMaxProfileDepth) return false;
  bool ok = true;
  for (auto&& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    const auto* sub = v.as_table();
    if (sub != nullptr && !sub->is_inline()) {
      ok = collect_profile_entries(*sub, key, depth + 1, out) && ok;
    } else {
      out.push_back({std::move(key), toml_text(v), k.source().begin});
    }
  }
  if (depth == 0) {
    std::stable_sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
      return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
    });
  }
  return ok;
}

void Validator::profiles(const toml::node& n, std::map<std::string, ProfileOverlay>& out) {
  const toml::table* t = table(n, "profiles");
  if (t == nullptr) return;
  if (t->size() > kMaxProfiles) {
    diag_.report(t->source(), "profiles",
                 "at most " + std::to_string(kMaxProfiles) + " profiles, found " +
                     std::to_string(t->size()));
    return;
  }
  for (auto&& [k, v] : *t) {
    const std::string key = join_key("profiles", k.str());
    if (!is_lower_name(k.str())) {
      diag_.report(k.source(), key, "profile names are one or more of a-z, 0-9, _ and -");
      continue;
    }
    if (k.str() == "none") {  // `sluicectl profile none` returns to the base
      diag_.report(k.source(), key,
                   "\"none\" is reserved: `sluicectl profile none` returns to the base config");
      continue;
    }
    const toml::table* pt = table(v, key);
    if (pt == nullptr) continue;
    ProfileOverlay overlay;
    overlay.name = std::string(k.str());
    std::vector<ProfileEntry> entries;
    if (!collect_profile_entries(*pt, "", 0, entries)) {
      diag_.report(pt->source(), key, "keys nested too deeply; write \"class.NAME.KEY\" = VALUE");
      continue;
    }
    for (ProfileEntry& e : entries) {
      overlay.settings.emplace_back(std::move(e.key), std::move(e.value_text));
    }
    out.emplace(overlay.name, std::move(overlay));
  }
}

}  // namespace sluice::loader
