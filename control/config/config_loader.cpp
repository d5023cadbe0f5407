// SPDX-License-Identifier: Apache-2.0
// TOML -> Config: parsing, validation, overrides and profiles.
//
// Layout of this file:
//   1. text helpers (key paths, quoting, describing what was found)
//   2. Diagnostics: collects errors and attributes them to their source
//   3. value grammars that are not TOML types (prefixes, ports, listen address)
//   4. Validator: one pass over a parsed document producing a Config
//   5. overrides: editing a parsed document with dotted-key settings
//   6. profiles and the public entry points
//
// Nothing here may throw out of the public functions: toml++ reports syntax
// errors with toml::parse_error, which becomes a ConfigError, and anything else
// (allocation failure) is caught at the entry points.
#include "control/config/config_loader.hpp"

#include "dataplane/model/abi.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>

namespace sluice {

std::string ConfigError::to_string() const {
  std::string out = file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

namespace {

using Names = std::initializer_list<std::string_view>;

// Limits of the rules in docs/config.md; rates are per second, bursts in tokens.
constexpr int64_t kMaxRate = 1'000'000'000;
constexpr int64_t kMaxQueueDelayUs = 10'000'000;
constexpr int64_t kMaxStickyEpochSec = 86'400;
constexpr int64_t kMaxStickyWindowMs = 60'000;
constexpr int64_t kMinSourceTableSize = 1024;
constexpr int64_t kMaxSourceTableSize = 16'777'216;
constexpr int64_t kMinFlowTableSize = 8 * 1024;  // 1024 per priority partition
constexpr int64_t kMaxFlowTableSize = 134'217'728;
constexpr int64_t kMaxFlowIdleTcpSec = 7 * 86'400;
constexpr int64_t kMaxFlowLearnSec = 3'600;
constexpr int64_t kMaxReservePct = 99;
constexpr int64_t kMaxDpdkWorkers = 64;
constexpr int64_t kMinDpdkMbufs = 1023;
constexpr int64_t kMaxDpdkMbufs = 16'777'215;
constexpr int64_t kMinDpdkQueueSize = 64;  // ring slots; rte_ring wants a power of two
constexpr int64_t kMaxDpdkQueueSize = 65'536;
constexpr int64_t kMaxDpdkIdleSleepUs = 10'000;
constexpr std::size_t kMaxClassNameLen = SL_CLASS_NAME_MAX;  // what the dataplanes store whole
constexpr std::size_t kMaxUserClasses = kMaxClasses - 1;     // the default class takes one slot
constexpr std::size_t kMaxSocketPathLen = 107;               // sun_path minus its terminating NUL
constexpr std::size_t kMaxConfigFileBytes = 16u << 20;       // a config is kilobytes; refuse junk
constexpr std::size_t kMaxQuotedChars = 64;                  // of a found string, in messages
constexpr int kMaxProfileDepth = 8;                          // nesting of unquoted dotted keys
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmpv6 = 58;

// The source name toml++ records for nodes parsed from an override value;
// attribution goes by the identity of that string, never by its text.
constexpr std::string_view kOverrideSource = "<override>";

// ---------------------------------------------------------------------------
// 1. Text helpers

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool is_lower_name(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A string as it appears in a message: double-quoted, escaped, shortened.
std::string quoted(std::string_view s) {
  std::size_t n = std::min(s.size(), kMaxQuotedChars);
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  std::string out = "\"";
  for (char c : s.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (n < s.size()) out += "...";
  return out;
}

std::string join_key(std::string_view prefix, std::string_view k) {
  std::string part = is_bare_key(k) ? std::string(k) : quoted(k);
  if (prefix.empty()) return part;
  return std::string(prefix) + "." + part;
}

std::string index_key(const std::string& key, std::size_t i) {
  return key + "[" + std::to_string(i) + "]";
}

std::string list_names(Names names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string range_text(int64_t lo, int64_t hi) {
  if (hi == INT64_MAX) return ">= " + std::to_string(lo);
  return "in " + std::to_string(lo) + ".." + std::to_string(hi);
}

template <typename T>
std::string streamed(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// What the user wrote, for "expected X, found Y".
std::string describe(const toml::node& n) {
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
std::string toml_text(const toml::node& n) {
  std::ostringstream os;
  n.visit([&os](const auto& v) { os << toml::toml_formatter{v}; });
  return os.str();
}

int clamp_index(uint32_t v) { return v > INT_MAX ? INT_MAX : static_cast<int>(v); }

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

// ---------------------------------------------------------------------------
// 3. Value grammars inside TOML strings

// "198.18.10.0/24", "2001:2:0:10::/64", or an address alone (a host prefix).
// On failure returns nullopt and says why in `why`.
std::optional<Prefix> parse_prefix(std::string_view text, std::string& why) {
  const std::size_t slash = text.find('/');
  const std::string addr_text(text.substr(0, slash));
  Prefix p;
  p.text = std::string(text);
  if (addr_text.find('\0') == std::string::npos &&
      inet_pton(AF_INET, addr_text.c_str(), p.addr.data()) == 1) {
    p.family = 4;
  } else if (addr_text.find('\0') == std::string::npos &&
             inet_pton(AF_INET6, addr_text.c_str(), p.addr.data()) == 1) {
    p.family = 6;
  } else {
    why =
        "expected an IPv4 or IPv6 address or prefix such as \"198.18.10.0/24\" or "
        "\"2001:2:0:10::/64\"";
    return std::nullopt;
  }
  const unsigned max_len = p.family == 4 ? 32 : 128;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    bool ok =
        !digits.empty() && digits.size() <= 3 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    len = 0;
    for (char c : digits) len = len * 10 + static_cast<unsigned>(c - '0');
    if (!ok || len > max_len) {
      why = "expected a prefix length in 0.." + std::to_string(max_len) + " after '/'";
      return std::nullopt;
    }
  }
  p.len = static_cast<uint8_t>(len);

  Prefix canonical = p;
  const unsigned bytes = max_len / 8;
  for (unsigned i = 0; i < bytes; ++i) {
    const unsigned first_bit = i * 8;
    uint8_t keep = 0;
    if (first_bit + 8 <= len) {
      keep = 0xff;
    } else if (first_bit < len) {
      keep = static_cast<uint8_t>(0xff << (8 - (len - first_bit)));
    }
    canonical.addr[i] = static_cast<uint8_t>(p.addr[i] & keep);
  }
  if (canonical.addr != p.addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(p.family == 4 ? AF_INET : AF_INET6, canonical.addr.data(), buf, sizeof buf);
    why = "host bits are set beyond /" + std::to_string(len) + "; the prefix is \"" + buf + "/" +
          std::to_string(len) + "\"";
    return std::nullopt;
  }
  return p;
}

// Decimal digits only (no sign, no spaces), value 0..65535.
std::optional<uint16_t> parse_port_number(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

// "443" or "8000-8100".
std::optional<PortRange> parse_port_text(std::string_view s, std::string& why) {
  const std::size_t dash = s.find('-');
  const auto lo = parse_port_number(s.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : parse_port_number(s.substr(dash + 1));
  if (!lo || !hi) {
    why = "expected a port in 0..65535 or a range \"LO-HI\"";
    return std::nullopt;
  }
  if (*lo > *hi) {
    why = "port range is reversed; expected LO <= HI";
    return std::nullopt;
  }
  return PortRange{*lo, *hi};
}

// "HOST:PORT" with an IPv4 literal or a bracketed IPv6 literal, port 1..65535.
bool is_listen_address(std::string_view s) {
  std::string host;
  std::string_view port;
  int family = AF_INET;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return false;
    host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    family = AF_INET6;
  } else {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  if (host.find('\0') != std::string::npos) return false;
  unsigned char addr[16];
  if (inet_pton(family, host.c_str(), addr) != 1) return false;
  const auto p = parse_port_number(port);
  return p && *p >= 1;
}

// ---------------------------------------------------------------------------
// 4. Validator

// Walks one parsed document. Every reader reports its own errors and returns
// nullopt/nullptr on failure, so callers only decide what to do without a value.
class Validator {
 public:
  explicit Validator(Diagnostics& diag) : diag_(diag) {}

  void document(const toml::table& doc, Config& out) {
    reject_unknown(
        doc, "", {"dataplane", "boundary", "admission", "metrics", "control", "class", "profiles"});
    if (const toml::node* n = doc.get("dataplane")) dataplane(*n, out.dataplane);
    if (const toml::node* n = doc.get("boundary")) boundary(*n, out.boundary);
    if (const toml::node* n = doc.get("admission")) admission(*n, out.admission);
    if (const toml::node* n = doc.get("metrics")) metrics(*n, out.metrics);
    if (const toml::node* n = doc.get("control")) control(*n, out.control);
    if (const toml::node* n = doc.get("class")) classes(*n, out.classes);
    if (out.classes.empty() || out.classes.back().name != kDefaultClassName) {
      out.classes.push_back(implied_default_class());
    }
    if (const toml::node* n = doc.get("profiles")) profiles(*n, out.profiles);
  }

  static ClassConfig implied_default_class() {
    ClassConfig c;
    c.name = kDefaultClassName;
    c.priority = kPriorities - 1;
    return c;
  }

 private:
  // --- generic readers ---

  void fail(const toml::node& n, const std::string& key, const std::string& expected) {
    diag_.report(n.source(), key, "expected " + expected + ", found " + describe(n));
  }

  std::optional<int64_t> integer(const toml::node& n, const std::string& key, int64_t lo,
                                 int64_t hi) {
    const auto* v = n.as_integer();
    if (v != nullptr && v->get() >= lo && v->get() <= hi) return v->get();
    fail(n, key, "an integer " + range_text(lo, hi));
    return std::nullopt;
  }

  std::optional<bool> boolean(const toml::node& n, const std::string& key) {
    if (const auto* v = n.as_boolean()) return v->get();
    fail(n, key, "a boolean (true or false)");
    return std::nullopt;
  }

  const std::string* string(const toml::node& n, const std::string& key) {
    if (const auto* v = n.as_string()) return &v->get();
    fail(n, key, "a string");
    return nullptr;
  }

  template <typename E>
  std::optional<E> keyword(const toml::node& n, const std::string& key,
                           std::initializer_list<std::pair<std::string_view, E>> choices) {
    if (const auto* s = n.as_string()) {
      for (const auto& [word, value] : choices) {
        if (s->get() == word) return value;
      }
    }
    std::string words;
    std::size_t i = 0;
    for (const auto& choice : choices) {
      if (i > 0) words += (i + 1 == choices.size()) ? " or " : ", ";
      words += quoted(choice.first);
      ++i;
    }
    fail(n, key, words);
    return std::nullopt;
  }

  const toml::table* table(const toml::node& n, const std::string& key) {
    if (const auto* t = n.as_table()) return t;
    fail(n, key, "a table");
    return nullptr;
  }

  void reject_unknown(const toml::table& t, const std::string& prefix, Names known) {
    for (auto&& [k, v] : t) {
      if (std::find(known.begin(), known.end(), k.str()) != known.end()) continue;
      const toml::source_region& where = k.source().path ? k.source() : v.source();
      diag_.report(where, join_key(prefix, k.str()),
                   "unknown key; expected one of: " + list_names(known));
    }
  }

  // Applies `each(element, element_key)` to a value or to every element of an
  // array of values. An empty array is an error: it would silently mean "any".
  template <typename F>
  void one_or_many(const toml::node& n, const std::string& key, F&& each) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      each(n, key);
      return;
    }
    if (a->empty()) {
      diag_.report(n.source(), key, "empty list; remove the key to match anything");
      return;
    }
    for (std::size_t i = 0; i < a->size(); ++i) each((*a)[i], index_key(key, i));
  }

  // A token bucket: rate in 1..1e9 per second and a burst in 1..1e9 tokens
  // defaulting to max(1, rate / 10). A burst without a rate would be a bucket
  // that never refills, so it is an error rather than silently ignored.
  void rate_and_burst(const toml::table& t, const std::string& prefix, std::string_view rate_name,
                      std::string_view burst_name, std::optional<uint64_t>& rate, uint64_t& burst) {
    const toml::node* rn = t.get(rate_name);
    const toml::node* bn = t.get(burst_name);
    if (rn != nullptr) {
      if (auto v = integer(*rn, join_key(prefix, rate_name), 1, kMaxRate)) rate = *v;
    }
    if (bn == nullptr) {
      if (rate) burst = std::max<uint64_t>(1, *rate / 10);
      return;
    }
    if (rn == nullptr) {
      diag_.report(
          bn->source(), join_key(prefix, burst_name),
          "a burst needs its rate: set " + std::string(rate_name) + " too, or remove the burst");
      return;
    }
    if (auto v = integer(*bn, join_key(prefix, burst_name), 1, kMaxRate)) burst = *v;
  }

  // --- sections ---

  void dataplane(const toml::node& n, DataplaneConfig& out) {
    const std::string key = "dataplane";
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key,
                   {"mode", "outside", "inside", "xdp_attach", "dpdk_args", "pin_path",
                    "when_stopped", "dpdk_workers", "dpdk_mbufs", "dpdk_queue_size",
                    "dpdk_idle_sleep_us", "dpdk_clock", "dpdk_standby"});
    if (const toml::node* m = t->get("mode")) {
      if (auto v = keyword<DataplaneMode>(*m, key + ".mode",
                                          {{"auto", DataplaneMode::automatic},
                                           {"dpdk", DataplaneMode::dpdk},
                                           {"xdp", DataplaneMode::xdp}})) {
        out.mode = *v;
      }
    }
    if (const toml::node* s = t->get("outside")) {
      if (const auto* v = string(*s, key + ".outside")) out.outside = *v;
    }
    if (const toml::node* s = t->get("inside")) {
      if (const auto* v = string(*s, key + ".inside")) out.inside = *v;
    }
    if (const toml::node* a = t->get("xdp_attach")) {
      if (auto v = keyword<XdpAttach>(
              *a, key + ".xdp_attach",
              {{"native", XdpAttach::native}, {"generic", XdpAttach::generic}})) {
        out.xdp_attach = *v;
      }
    }
    if (const toml::node* a = t->get("dpdk_args")) dpdk_args(*a, key + ".dpdk_args", out);
    if (const toml::node* p = t->get("pin_path")) {
      const auto* s = p->as_string();
      if (s != nullptr && s->get().size() > 1 && s->get().front() == '/' &&
          s->get().find('\0') == std::string::npos) {
        out.pin_path = s->get();
      } else {
        fail(*p, key + ".pin_path",
             "an absolute directory path on a bpffs (e.g. /sys/fs/bpf/sluice)");
      }
    }
    if (const toml::node* w = t->get("when_stopped")) {
      if (auto v = keyword<WhenStopped>(
              *w, key + ".when_stopped",
              {{"forward", WhenStopped::forward}, {"block", WhenStopped::block}})) {
        out.when_stopped = *v;
      }
    }
    if (const toml::node* w = t->get("dpdk_workers")) {
      if (auto v = integer(*w, key + ".dpdk_workers", 1, kMaxDpdkWorkers)) {
        out.dpdk_workers = static_cast<uint32_t>(*v);
      }
    }
    if (const toml::node* m = t->get("dpdk_mbufs")) {
      if (auto v = integer(*m, key + ".dpdk_mbufs", kMinDpdkMbufs, kMaxDpdkMbufs)) {
        out.dpdk_mbufs = static_cast<uint32_t>(*v);
      }
    }
    if (const toml::node* q = t->get("dpdk_queue_size")) {
      if (auto v = integer(*q, key + ".dpdk_queue_size", kMinDpdkQueueSize, kMaxDpdkQueueSize)) {
        if ((*v & (*v - 1)) == 0) {
          out.dpdk_queue_size = static_cast<uint32_t>(*v);
        } else {
          diag_.report(q->source(), key + ".dpdk_queue_size",
                       "must be a power of two (64, 128, ..., 65536), found " + std::to_string(*v));
        }
      }
    }
    if (const toml::node* i = t->get("dpdk_idle_sleep_us")) {
      if (auto v = integer(*i, key + ".dpdk_idle_sleep_us", 0, kMaxDpdkIdleSleepUs)) {
        out.dpdk_idle_sleep_us = static_cast<uint32_t>(*v);
      }
    }
    if (const toml::node* c = t->get("dpdk_clock")) {
      if (auto v = keyword<DpdkClock>(*c, key + ".dpdk_clock",
                                      {{"tsc", DpdkClock::tsc}, {"capture", DpdkClock::capture}})) {
        out.dpdk_clock = *v;
      }
    }
    if (const toml::node* b = t->get("dpdk_standby")) {
      if (auto v = keyword<bool>(*b, key + ".dpdk_standby", {{"xdp", true}, {"none", false}}))
        out.dpdk_standby = *v;
    }
  }

  void dpdk_args(const toml::node& n, const std::string& key, DataplaneConfig& out) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      fail(n, key, "an array of strings");
      return;
    }
    std::vector<std::string> args;
    bool ok = true;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const auto* s = string((*a)[i], index_key(key, i));
      if (s != nullptr) args.push_back(*s);
      ok = ok && s != nullptr;
    }
    if (ok) out.dpdk_args = std::move(args);
  }

  void boundary(const toml::node& n, BoundaryConfig& out) {
    const std::string key = "boundary";
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key,
                   {"lookups_per_sec", "lookups_burst", "packets_per_sec", "packets_burst",
                    "max_queue_delay_us", "lookups_reserve_pct", "packets_reserve_pct"});
    rate_and_burst(*t, key, "lookups_per_sec", "lookups_burst", out.lookups_per_sec,
                   out.lookups_burst);
    rate_and_burst(*t, key, "packets_per_sec", "packets_burst", out.packets_per_sec,
                   out.packets_burst);
    if (const toml::node* d = t->get("max_queue_delay_us")) {
      if (auto v = integer(*d, key + ".max_queue_delay_us", 1, kMaxQueueDelayUs)) {
        out.max_queue_delay_us = static_cast<uint64_t>(*v);
      }
    }
    if (const toml::node* r = t->get("lookups_reserve_pct")) {
      reserves(*r, key + ".lookups_reserve_pct", out.lookups_reserve_pct);
    }
    if (const toml::node* r = t->get("packets_reserve_pct")) {
      reserves(*r, key + ".packets_reserve_pct", out.packets_reserve_pct);
    }
  }

  // Priority p may not take the last reserve[p] percent of a burst. A lower
  // priority reserving less than a higher one would let it dig into the share
  // kept for the higher one, so the reserves must not decrease with p.
  void reserves(const toml::node& n, const std::string& key,
                std::array<uint32_t, kPriorities>& out) {
    const auto* a = n.as_array();
    if (a == nullptr || a->size() != kPriorities) {
      fail(n, key, "an array of exactly 8 integers in 0..99 (priority 0 first)");
      return;
    }
    std::array<uint32_t, kPriorities> values{};
    bool ok = true;
    for (std::size_t i = 0; i < kPriorities; ++i) {
      auto v = integer((*a)[i], index_key(key, i), 0, kMaxReservePct);
      if (v) values[i] = static_cast<uint32_t>(*v);
      ok = ok && v.has_value();
    }
    if (!ok) return;
    for (std::size_t i = 1; i < kPriorities; ++i) {
      if (values[i] >= values[i - 1]) continue;
      diag_.report((*a)[i].source(), index_key(key, i),
                   "overlapping reserves: priority " + std::to_string(i) + " reserves " +
                       std::to_string(values[i]) + "% but priority " + std::to_string(i - 1) +
                       " reserves " + std::to_string(values[i - 1]) +
                       "%; reserves must not decrease from priority 0 to 7");
      ok = false;
    }
    if (ok) out = values;
  }

  void admission(const toml::node& n, AdmissionConfig& out) {
    const std::string key = "admission";
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(
        *t, key,
        {"shadow", "malformed", "sticky_epoch_sec", "sticky_window_ms", "source_table_size", "seed",
         "unverified", "flow_table_size", "flow_idle_tcp_sec", "flow_learn_sec"});
    if (const toml::node* s = t->get("shadow")) {
      if (auto v = boolean(*s, key + ".shadow")) out.shadow = *v;
    }
    if (const toml::node* m = t->get("malformed")) {
      if (auto v = keyword<MalformedAction>(
              *m, key + ".malformed",
              {{"drop", MalformedAction::drop}, {"pass", MalformedAction::pass}})) {
        out.malformed = *v;
      }
    }
    const toml::node* epoch = t->get("sticky_epoch_sec");
    std::optional<int64_t> epoch_sec;
    if (epoch != nullptr) {
      epoch_sec = integer(*epoch, key + ".sticky_epoch_sec", 1, kMaxStickyEpochSec);
      if (epoch_sec) out.sticky_epoch_sec = static_cast<uint64_t>(*epoch_sec);
    }
    if (const toml::node* w = t->get("sticky_window_ms")) {
      auto window_ms = integer(*w, key + ".sticky_window_ms", 1, kMaxStickyWindowMs);
      if (window_ms && (epoch == nullptr || epoch_sec)) {
        sticky_window(*w, key + ".sticky_window_ms", static_cast<uint64_t>(*window_ms),
                      out.sticky_epoch_sec);
        out.sticky_window_ms = static_cast<uint64_t>(*window_ms);
      }
    }
    if (const toml::node* s = t->get("source_table_size")) {
      if (auto v =
              integer(*s, key + ".source_table_size", kMinSourceTableSize, kMaxSourceTableSize)) {
        out.source_table_size = static_cast<uint64_t>(*v);
      }
    }
    if (const toml::node* s = t->get("seed")) {
      if (auto v = integer(*s, key + ".seed", 0, INT64_MAX)) out.seed = static_cast<uint64_t>(*v);
    }
    if (const toml::node* u = t->get("unverified")) {
      if (auto v = keyword<UnverifiedAction>(*u, key + ".unverified",
                                             {{"charge", UnverifiedAction::charge},
                                              {"drop", UnverifiedAction::drop},
                                              {"pass", UnverifiedAction::pass}})) {
        out.unverified = *v;
      }
    }
    if (const toml::node* s = t->get("flow_table_size")) {
      if (auto v = integer(*s, key + ".flow_table_size", kMinFlowTableSize, kMaxFlowTableSize))
        out.flow_table_size = static_cast<uint64_t>(*v);
    }
    if (const toml::node* s = t->get("flow_idle_tcp_sec")) {
      if (auto v = integer(*s, key + ".flow_idle_tcp_sec", 10, kMaxFlowIdleTcpSec))
        out.flow_idle_tcp_sec = static_cast<uint64_t>(*v);
    }
    if (const toml::node* s = t->get("flow_learn_sec")) {
      if (auto v = integer(*s, key + ".flow_learn_sec", 0, kMaxFlowLearnSec))
        out.flow_learn_sec = static_cast<uint64_t>(*v);
    }
  }

  // The window is a slice of the epoch; a window as long as the epoch would
  // make every source sticky-shed for the whole epoch.
  void sticky_window(const toml::node& n, const std::string& key, uint64_t window_ms,
                     uint64_t epoch_sec) {
    if (window_ms < epoch_sec * 1000) return;
    diag_.report(n.source(), key,
                 "must be less than sticky_epoch_sec (" + std::to_string(epoch_sec) + " s = " +
                     std::to_string(epoch_sec * 1000) + " ms), found " + std::to_string(window_ms));
  }

  void metrics(const toml::node& n, MetricsConfig& out) {
    const std::string key = "metrics";
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key, {"listen"});
    if (const toml::node* l = t->get("listen")) {
      const auto* s = l->as_string();
      // Debian's civetweb (under prometheus-cpp) is built without IPv6, so an
      // IPv6 address would be accepted here and then fail at startup.
      if (s != nullptr && is_listen_address(s->get()) && s->get().front() != '[') {
        out.listen = s->get();
      } else {
        fail(*l, key + ".listen",
             "\"HOST:PORT\" with an IPv4 address and a port in 1..65535 (the exporter's web "
             "server has no IPv6 here)");
      }
    }
  }

  void control(const toml::node& n, ControlConfig& out) {
    const std::string key = "control";
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key,
                   {"socket", "socket_mode", "socket_group", "http_listen", "http_token_file",
                    "audit_log", "history"});
    auto absolute_path = [&](const char* name, std::string& dst) {
      const toml::node* p = t->get(name);
      if (p == nullptr) return;
      const auto* s = p->as_string();
      if (s != nullptr && s->get().size() > 1 && s->get().front() == '/' &&
          s->get().find('\0') == std::string::npos) {
        dst = s->get();
      } else {
        fail(*p, key + "." + name, "an absolute file path (starting with /)");
      }
    };
    absolute_path("http_token_file", out.http_token_file);
    absolute_path("audit_log", out.audit_log);
    if (const toml::node* m = t->get("socket_mode")) {
      const auto* s = m->as_string();
      const std::string v = s != nullptr ? s->get() : "";
      char* end = nullptr;
      const long mode = v.empty() ? -1 : std::strtol(v.c_str(), &end, 8);
      if (s != nullptr && end != nullptr && *end == '\0' && mode >= 0 && mode <= 0777 &&
          (mode & 0600) == 0600 && (mode & 0007) == 0) {
        out.socket_mode = static_cast<uint32_t>(mode);
      } else {
        fail(*m, key + ".socket_mode",
             "an octal mode string such as \"0660\" that gives the owner rw and others nothing");
      }
    }
    if (const toml::node* g = t->get("socket_group")) {
      const auto* s = g->as_string();
      if (s != nullptr && !s->get().empty() && s->get().size() <= 32 &&
          s->get().find_first_of(": /\0") == std::string::npos) {
        out.socket_group = s->get();
      } else {
        fail(*g, key + ".socket_group", "a group name");
      }
    }
    if (const toml::node* h = t->get("http_listen")) {
      const auto* s = h->as_string();
      const std::string v = s != nullptr ? s->get() : "";
      const bool loopback = v.rfind("127.", 0) == 0 || v.rfind("[::1]:", 0) == 0;
      if (s != nullptr && is_listen_address(v) && loopback) {
        out.http_listen = v;
      } else {
        fail(*h, key + ".http_listen",
             "a loopback \"127.0.0.1:PORT\" or \"[::1]:PORT\" (the control API is local only)");
      }
      if (t->get("http_token_file") == nullptr)
        fail(*h, key + ".http_token_file", "a token file: http_listen requires one");
    }
    if (const toml::node* h = t->get("history")) {
      if (auto v = integer(*h, key + ".history", 1, 1000)) out.history = static_cast<uint32_t>(*v);
    }
    if (const toml::node* p = t->get("socket")) {
      const auto* s = p->as_string();
      const bool ok = s != nullptr && !s->get().empty() && s->get().front() == '/' &&
                      s->get().size() <= kMaxSocketPathLen &&
                      s->get().find('\0') == std::string::npos;
      if (ok) {
        out.socket = s->get();
      } else {
        fail(*p, key + ".socket",
             "an absolute path (starting with /) of at most " + std::to_string(kMaxSocketPathLen) +
                 " bytes");
      }
    }
  }

  // --- classes ---

  void classes(const toml::node& n, std::vector<ClassConfig>& out) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      fail(n, "class", "an array of tables ([[class]] sections)");
      return;
    }
    std::map<std::string, int> first_line;  // class name -> line of its name
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
        const int line = clamp_index(name_node.source().begin.line);
        auto [it, inserted] = first_line.emplace(c.name, line);
        if (!inserted) {
          diag_.report(name_node.source(), key + ".name",
                       "duplicate class name " + quoted(c.name) + ", also defined at line " +
                           std::to_string(it->second));
        }
      }
      const bool is_default = c.name == kDefaultClassName;
      if (is_default && i + 1 != a->size()) {
        diag_.report(t->source(), key,
                     "the class named \"default\" takes whatever no other class matched, so it "
                     "must be the last [[class]]");
      }
      if (!is_default && ++user_classes == kMaxUserClasses + 1) {
        diag_.report(t->source(), key,
                     "too many classes: at most " + std::to_string(kMaxUserClasses) +
                         " besides \"default\"");
      }
      class_body(*t, key, is_default, c);
      out.push_back(std::move(c));
    }
  }

  bool class_name(const toml::table& t, const std::string& fallback_key, std::string& name) {
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

  void class_body(const toml::table& t, const std::string& key, bool is_default, ClassConfig& c) {
    reject_unknown(t, key,
                   {"name", "priority", "match", "rate_per_sec", "burst", "on_shed", "mark_dscp",
                    "shed_order", "per_source"});
    if (const toml::node* p = t.get("priority")) {
      if (auto v = integer(*p, key + ".priority", 0, kPriorities - 1)) {
        c.priority = static_cast<uint8_t>(*v);
      }
    }
    rate_and_burst(t, key, "rate_per_sec", "burst", c.rate_per_sec, c.burst);
    shed_action(t, key, c);
    if (const toml::node* o = t.get("shed_order")) {
      if (auto v =
              keyword<ShedOrder>(*o, key + ".shed_order",
                                 {{"sticky", ShedOrder::sticky}, {"random", ShedOrder::random}})) {
        c.shed_order = *v;
      }
    }
    if (const toml::node* m = t.get("match")) {
      if (is_default) {
        diag_.report(m->source(), key + ".match",
                     "the default class takes whatever no other class matched; it must not have "
                     "a match");
      } else {
        match(*m, key + ".match", c.match);
      }
    }
    if (const toml::node* p = t.get("per_source")) per_source(*p, key + ".per_source", c);
  }

  // mark_dscp belongs to on_shed = "mark" alone: required with it, and an
  // error elsewhere because it would be silently ignored.
  void shed_action(const toml::table& t, const std::string& key, ClassConfig& c) {
    const toml::node* on = t.get("on_shed");
    bool on_shed_known = true;
    if (on != nullptr) {
      auto v = keyword<ShedAction>(
          *on, key + ".on_shed",
          {{"drop", ShedAction::drop}, {"reset", ShedAction::reset}, {"mark", ShedAction::mark}});
      if (v) c.on_shed = *v;
      on_shed_known = v.has_value();
    }
    const bool marks = on_shed_known && c.on_shed == ShedAction::mark;
    const toml::node* dscp = t.get("mark_dscp");
    if (dscp == nullptr) {
      if (marks) {
        diag_.report(t.source(), key + ".mark_dscp",
                     "missing; on_shed = \"mark\" needs the DSCP value to mark with (0..63)");
      }
      return;
    }
    if (on_shed_known && !marks) {
      diag_.report(dscp->source(), key + ".mark_dscp", "allowed only with on_shed = \"mark\"");
      return;
    }
    if (auto v = integer(*dscp, key + ".mark_dscp", 0, 63)) c.mark_dscp = static_cast<uint8_t>(*v);
  }

  void per_source(const toml::node& n, const std::string& key, ClassConfig& c) {
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key, {"rate_per_sec", "burst", "prefix_v4", "prefix_v6"});
    PerSourceConfig ps;
    bool ok = true;
    if (const toml::node* r = t->get("rate_per_sec")) {
      auto v = integer(*r, key + ".rate_per_sec", 1, kMaxRate);
      if (v) ps.rate_per_sec = static_cast<uint64_t>(*v);
      ok = v.has_value();
    } else {
      diag_.report(t->source(), key + ".rate_per_sec",
                   "missing; a per-source limit needs rate_per_sec (1..1000000000)");
      ok = false;
    }
    ps.burst = std::max<uint64_t>(1, ps.rate_per_sec);
    if (const toml::node* b = t->get("burst")) {
      auto v = integer(*b, key + ".burst", 1, kMaxRate);
      if (v) ps.burst = static_cast<uint64_t>(*v);
      ok = ok && v.has_value();
    }
    if (const toml::node* p = t->get("prefix_v4")) {
      auto v = integer(*p, key + ".prefix_v4", 1, 32);
      if (v) ps.prefix_v4 = static_cast<uint8_t>(*v);
      ok = ok && v.has_value();
    }
    if (const toml::node* p = t->get("prefix_v6")) {
      auto v = integer(*p, key + ".prefix_v6", 1, 128);
      if (v) ps.prefix_v6 = static_cast<uint8_t>(*v);
      ok = ok && v.has_value();
    }
    if (ok) c.per_source = ps;
  }

  // --- match ---

  void match(const toml::node& n, const std::string& key, MatchConfig& out) {
    const toml::table* t = table(n, key);
    if (t == nullptr) return;
    reject_unknown(*t, key, {"src", "dst", "proto", "dst_ports", "dscp"});
    if (const toml::node* s = t->get("src")) prefixes(*s, key + ".src", out.src);
    if (const toml::node* d = t->get("dst")) prefixes(*d, key + ".dst", out.dst);
    bool protocols_ok = true;
    if (const toml::node* p = t->get("proto")) {
      const std::size_t before = diag_.count();
      protocols(*p, key + ".proto", out.protocols);
      protocols_ok = diag_.count() == before;
    }
    if (const toml::node* p = t->get("dst_ports")) {
      ports(*p, key + ".dst_ports", out.dst_ports);
      if (protocols_ok) ports_need_tcp_or_udp(*p, key + ".dst_ports", out);
    }
    if (const toml::node* d = t->get("dscp")) {
      one_or_many(*d, key + ".dscp", [&](const toml::node& e, const std::string& k) {
        if (auto v = integer(e, k, 0, 63)) out.dscp.push_back(static_cast<uint8_t>(*v));
      });
    }
  }

  void prefixes(const toml::node& n, const std::string& key, std::vector<Prefix>& out) {
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

  void protocols(const toml::node& n, const std::string& key, std::vector<uint8_t>& out) {
    auto add = [&out](uint8_t proto) {
      if (std::find(out.begin(), out.end(), proto) == out.end()) out.push_back(proto);
    };
    one_or_many(n, key, [&](const toml::node& e, const std::string& k) {
      if (const auto* i = e.as_integer(); i != nullptr && i->get() >= 0 && i->get() <= 255) {
        add(static_cast<uint8_t>(i->get()));
        return;
      }
      const std::string* s = e.is_string() ? &e.as_string()->get() : nullptr;
      if (s != nullptr && *s == "tcp") {
        add(kProtoTcp);
      } else if (s != nullptr && *s == "udp") {
        add(kProtoUdp);
      } else if (s != nullptr && *s == "icmp") {
        add(kProtoIcmp);
        add(kProtoIcmpv6);
      } else if (s != nullptr && *s == "icmpv6") {
        add(kProtoIcmpv6);
      } else {
        fail(e, k, "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or an integer in 0..255");
      }
    });
  }

  void ports(const toml::node& n, const std::string& key, std::vector<PortRange>& out) {
    one_or_many(n, key, [&](const toml::node& e, const std::string& k) {
      if (const auto* i = e.as_integer(); i != nullptr && i->get() >= 0 && i->get() <= 65535) {
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
  void ports_need_tcp_or_udp(const toml::node& n, const std::string& key, const MatchConfig& m) {
    for (uint8_t proto : m.protocols) {
      if (proto == kProtoTcp || proto == kProtoUdp) continue;
      std::string name = proto == kProtoIcmp     ? "icmp"
                         : proto == kProtoIcmpv6 ? "icmpv6"
                                                 : std::to_string(proto);
      diag_.report(n.source(), key,
                   "destination ports apply only to tcp and udp, but proto includes " + name);
      return;
    }
  }

  // --- profiles ---

  void profiles(const toml::node& n, std::map<std::string, ProfileOverlay>& out);

  Diagnostics& diag_;
};

// ---------------------------------------------------------------------------
// 6a. Profile entries (used by the validator and by apply_profile)

struct ProfileEntry {
  std::string key;         // dotted override key
  std::string value_text;  // TOML text of the value
  toml::source_position at{};
};

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
  for (auto&& [k, v] : *t) {
    const std::string key = join_key("profiles", k.str());
    if (!is_lower_name(k.str())) {
      diag_.report(k.source(), key, "profile names are one or more of a-z, 0-9, _ and -");
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

// ---------------------------------------------------------------------------
// 5. Overrides

// One dotted-key setting to apply, with where to report problems with it.
struct Setting {
  std::string key;
  std::string value_text;
  ErrorSite site;
  std::string reported_key;  // key used in its errors
};

std::optional<toml::table> parse_document(std::string_view text, const std::string& source,
                                          Diagnostics& diag) {
  try {
    return toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    const toml::source_region& where = e.source();
    diag.add({where.path ? *where.path : source, clamp_index(where.begin.line),
              clamp_index(where.begin.column)},
             "", "TOML syntax: " + std::string(e.description()));
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
    if (!std::all_of(path.begin(), path.end(),
                     [](const std::string& p) { return is_bare_key(p); })) {
      diag_.report_setting(origin,
                           "malformed key; expected dotted names such as "
                           "class.NAME.rate_per_sec or boundary.lookups_per_sec");
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
      toml::table holder = toml::parse(line, kOverrideSource);
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
  std::stable_sort(r.errors.begin(), r.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::tie(a.file, a.line, a.col) < std::tie(b.file, b.line, b.col);
                   });
  if (r.errors.empty()) r.config = std::move(config);
  return r;
}

// The shared validation path for files, overrides and profiles.
std::optional<Config> validate_document(const toml::table& doc, const std::string& source,
                                        Diagnostics& diag) {
  const std::size_t before = diag.count();
  Config config;
  config.source = source;
  Validator(diag).document(doc, config);
  if (diag.count() != before) return std::nullopt;
  return config;
}

// Re-parses the base text (so that every node keeps its source position),
// applies the settings in order and validates the whole result.
LoadResult apply_settings(std::string_view base_text, const std::string& source,
                          const std::vector<Setting>& settings, Attribution attribution) {
  for (const Setting& s : settings) {
    attribution.origins.push_back({s.reported_key, s.key, s.site});
  }
  Diagnostics diag(source, &attribution);
  std::optional<toml::table> doc = parse_document(base_text, source, diag);
  if (!doc) return finish(std::nullopt, diag);
  // A setting that cannot be applied is reported and skipped; the others are
  // still validated so that one pass reports everything wrong with the list.
  DocumentEditor editor(*doc, attribution, diag);
  for (std::size_t i = 0; i < settings.size(); ++i) editor.apply(i, settings[i]);
  LoadResult r = finish(validate_document(*doc, source, diag), diag);
  if (r.ok()) {
    std::ostringstream os;
    os << toml::toml_formatter{*doc};
    r.text = os.str() + "\n";
  }
  return r;
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
                               const std::string& name, const toml::table& profile) {
  Attribution attribution;
  attribution.document_site = ErrorSite{source, clamp_index(profile.source().begin.line),
                                        clamp_index(profile.source().begin.column)};
  attribution.document_key = join_key("profiles", name);
  return apply_settings(text, source, profile_settings(name, profile, source),
                        std::move(attribution));
}

// Every profile is applied once at load time, so that a profile that would be
// rejected at retune time is already an error at startup.
void validate_profiles(std::string_view text, const std::string& source, const toml::table& doc,
                       Diagnostics& diag) {
  const toml::table* profiles = doc.get_as<toml::table>("profiles");
  if (profiles == nullptr) return;
  for (auto&& [k, v] : *profiles) {
    const toml::table* profile = v.as_table();
    if (profile == nullptr) continue;
    LoadResult r = apply_named_profile(text, source, std::string(k.str()), *profile);
    for (ConfigError& e : r.errors) diag.add({e.file, e.line, e.col}, e.key, e.message);
  }
}

LoadResult internal_error(const std::string& source, const char* what) {
  LoadResult r;
  r.errors.push_back({source, 0, 0, "", std::string("internal error while loading: ") + what});
  return r;
}

}  // namespace

std::optional<Prefix> parse_prefix_text(std::string_view text, std::string* why) {
  return parse_prefix(text, *why);
}

LoadResult load_config_string(std::string_view text, std::string source_name) {
  try {
    Diagnostics diag(source_name, nullptr);
    std::optional<toml::table> doc = parse_document(text, source_name, diag);
    if (!doc) return finish(std::nullopt, diag);
    std::optional<Config> config = validate_document(*doc, source_name, diag);
    if (config) validate_profiles(text, source_name, *doc, diag);
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

// The file's text, or false with *why.
bool read_config_text(const std::string& path, std::string* text, std::string* why) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    *why = std::strerror(errno);
    return false;
  }
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text->append(buf, n);
    if (text->size() > kMaxConfigFileBytes) {
      *why = "larger than " + std::to_string(kMaxConfigFileBytes) + " bytes";
      return false;
    }
  }
  if (std::ferror(f.get())) {
    *why = std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace

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
std::string local_section_lines(const std::string& text) {
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
      keep = header == "[dataplane]" || header == "[control]" || header == "[metrics]";
    }
    if (keep) out += line + "\n";
    at = end + 1;
  }
  return out;
}

}  // namespace

Config load_local_sections(const std::string& path) {
  try {
    std::string text, why;
    if (!read_config_text(path, &text, &why)) return Config{};
    Diagnostics diag(path, nullptr);
    std::optional<toml::table> doc = parse_document(text, path, diag);
    if (!doc) {
      // Not TOML somewhere: its local tables may still be.
      Diagnostics again(path, nullptr);
      doc = parse_document(local_section_lines(text), path, again);
      if (!doc) return Config{};
    }
    toml::table local;
    for (const char* section : {"dataplane", "control", "metrics"}) {
      if (const toml::node* n = doc->get(section)) local.insert(section, *n);
    }
    std::ostringstream out;
    out << local;
    LoadResult r = load_config_string(out.str(), path);
    return r.ok() ? *r.config : Config{};
  } catch (...) {
    return Config{};
  }
}

LoadResult apply_overrides(std::string_view base_text, std::string source_name,
                           const std::vector<std::pair<std::string, std::string>>& settings) {
  try {
    std::vector<Setting> list;
    for (std::size_t i = 0; i < settings.size(); ++i) {
      const int line = i >= static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(i + 1);
      list.push_back({settings[i].first, settings[i].second,
                      ErrorSite{std::string(kOverrideSource), line, 1}, settings[i].first});
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
      diag.add({source_name, 0, 0}, join_key("profiles", profile_name),
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
