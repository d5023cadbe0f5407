// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>

#include "control/config/validator.hpp"

namespace sluice::loader {

void Validator::dataplane(const toml::node& n, DataplaneConfig& out) {
  const std::string key = "dataplane";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  if (Field m = field(*t, key, key, "mode")) {
    if (auto v = keyword<DataplaneKind>(m, {{"auto", DataplaneKind::automatic},
                                            {"dpdk", DataplaneKind::dpdk},
                                            {"xdp", DataplaneKind::xdp}})) {
      out.mode = *v;
    }
  }
  // An interface or device: named (the empty name is none of them). What
  // XDP would attach to is a Linux interface name as the kernel takes one
  // (dev_valid_name: under 16 bytes, no '/', ':' or blank, not . or ..),
  // else the start would be the first to say: in mode xdp the name; in mode
  // auto, which falls back to XDP, a name that is no DPDK device, or a vdev
  // spec's iface=.
  auto port = [this, &out](const Field& f) -> const std::string* {
    const std::string* v = string(*f, f.key);
    if (v == nullptr) return nullptr;
    if (v->empty() || v->find('\0') != std::string::npos) {
      fail(*f, f.key, "an interface or device name (empty names none)");
      return nullptr;
    }
    // The interface XDP would attach to, when it would attach to one.
    // A vdev spec's iface= names a kernel interface in every mode (DPDK's
    // af_packet and pcap open it; mode auto's XDP fallback attaches to it).
    std::optional<std::string> xdp_name;
    if (out.mode == DataplaneKind::xdp)
      xdp_name = *v;
    else if (v->find(",iface=") != std::string::npos)
      xdp_name = endpoint_interface(*v);
    else if (out.mode == DataplaneKind::automatic && !is_dpdk_endpoint(*v))
      xdp_name = *v;
    if (xdp_name &&
        (xdp_name->empty() || xdp_name->size() > 15 || *xdp_name == "." || *xdp_name == ".." ||
         xdp_name->find_first_of("/: \t\n\r\v\f") != std::string::npos)) {
      fail(*f, f.key,
           out.mode == DataplaneKind::xdp
               ? "a Linux interface name (mode xdp): at most 15 bytes, no '/', ':' or blank, not "
                 ". or .."
           : out.mode == DataplaneKind::dpdk
               ? "a DPDK device whose iface= is a Linux interface name: at most 15 bytes, no "
                 "'/', ':' or blank, not . or .."
               : "a DPDK device, or an interface name for the XDP fallback (mode auto; a vdev "
                 "spec's iface= too): at most 15 bytes, no '/', ':' or blank, not . or ..");
      return nullptr;
    }
    return v;
  };
  if (Field s = field(*t, key, key, "outside")) {
    if (const auto* v = port(s)) out.outside = *v;
  }
  if (Field s = field(*t, key, key, "inside")) {
    if (const auto* v = port(s)) {
      out.inside = *v;
      // Also through a vdev's iface= (DPDK refuses it; mode auto's XDP
      // fallback would attach both sides to one interface).
      const std::string interface = endpoint_interface(*v);
      if (*v == out.outside)
        diag_.report(s->source(), s.key,
                     "\"" + *v + "\" is dataplane.outside too: an inline edge has two sides");
      else if (!out.outside.empty() && interface == endpoint_interface(out.outside))
        diag_.report(s->source(), s.key,
                     "\"" + *v + "\" is on " + interface +
                         ", as dataplane.outside is: an inline edge has two sides");
    }
  }
  // The DPDK fast path is inline only: an outside without an inside would
  // pass here and leave sluiced not in charge at its start.
  if (out.mode == DataplaneKind::dpdk && !out.outside.empty() && out.inside.empty())
    if (Field m = field(*t, key, key, "mode"))
      diag_.report(m->source(), m.key,
                   "\"dpdk\" is inline only: set dataplane.inside (the server side) too, or "
                   "use mode \"xdp\" for host mode");
  if (Field a = field(*t, key, key, "xdp_attach")) {
    if (auto v = keyword<XdpAttach>(
            a, {{"native", XdpAttach::native}, {"generic", XdpAttach::generic}})) {
      out.xdp_attach = *v;
    }
  }
  if (Field a = field(*t, key, key, "dpdk_args")) dpdk_args(*a, a.key, out);
  if (Field p = field(*t, key, key, "pin_path")) {
    const auto* s = p->as_string();
    // Absolute and plain: no "." or ".." step (a path through a directory
    // --detach --all removes would pin beside it, and never be found).
    bool plain = s != nullptr && s->get().size() > 1 && s->get().front() == '/' &&
                 s->get().find('\0') == std::string::npos;
    for (std::size_t at = 0; plain && at < s->get().size();) {
      const std::size_t next = std::min(s->get().find('/', at + 1), s->get().size());
      const std::string step = s->get().substr(at + 1, next - at - 1);
      plain = step != "." && step != "..";
      at = next;
    }
    // One spelling per directory: "//" as "/", no trailing "/" (the
    // instance lock is named after the path).
    std::string path;
    for (char c : plain ? s->get() : std::string())
      if (c != '/' || path.empty() || path.back() != '/') path += c;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (plain && path.size() > 1) {
      out.pin_path = path;
    } else {
      fail(*p, p.key,
           "an absolute directory path on a bpffs without . or .. steps (e.g. "
           "/sys/fs/bpf/sluice)");
    }
  }
  if (Field w = field(*t, key, key, "when_stopped")) {
    if (auto v = keyword<WhenStopped>(
            w, {{"forward", WhenStopped::forward}, {"block", WhenStopped::block}})) {
      out.when_stopped = *v;
    }
  }
  if (Field w = field(*t, key, key, "dpdk_workers")) {
    if (auto v = integer(w)) {
      out.dpdk_workers = static_cast<uint32_t>(*v);
    }
  }
  if (Field m = field(*t, key, key, "dpdk_mbufs")) {
    if (auto v = integer(m)) {
      out.dpdk_mbufs = static_cast<uint32_t>(*v);
    }
  }
  if (Field q = field(*t, key, key, "dpdk_queue_size")) {
    if (auto v = integer(q)) {
      if ((*v & (*v - 1)) == 0) {
        out.dpdk_queue_size = static_cast<uint32_t>(*v);
      } else {
        diag_.report(q->source(), q.key,
                     "must be a power of two (64, 128, ..., 65536), found " + std::to_string(*v));
      }
    }
  }
  if (Field i = field(*t, key, key, "dpdk_idle_sleep_us")) {
    if (auto v = integer(i)) {
      out.dpdk_idle_sleep_us = static_cast<uint32_t>(*v);
    }
  }
  if (Field c = field(*t, key, key, "dpdk_clock")) {
    if (auto v =
            keyword<DpdkClock>(c, {{"tsc", DpdkClock::tsc}, {"capture", DpdkClock::capture}})) {
      out.dpdk_clock = *v;
    }
  }
  if (Field b = field(*t, key, key, "dpdk_standby")) {
    if (auto v = keyword<bool>(b, {{"xdp", true}, {"none", false}})) out.dpdk_standby = *v;
  }
}

void Validator::dpdk_args(const toml::node& n, const std::string& key, DataplaneConfig& out) {
  const auto* a = n.as_array();
  if (a == nullptr) {
    fail(n, key, "an array of strings");
    return;
  }
  std::vector<std::string> args;
  bool ok = true;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto* s = string((*a)[i], index_key(key, i));
    // "--" would end the EAL's options before the ones sluice adds; --help
    // makes the EAL print its usage and exit the daemon.
    if (s != nullptr && (*s == "--" || *s == "-h" || *s == "--help" || s->empty() ||
                         s->find('\0') != std::string::npos)) {
      fail(*(*a)[i].as_string(), index_key(key, i),
           std::string("an EAL option sluiced can pass on (") +
               (*s == "--"   ? "\"--\" would end the EAL's options"
                : s->empty() ? "an empty argument is no option, nor any option's value"
                : s->find('\0') != std::string::npos
                    ? "a NUL byte would cut it short"
                    : "it would print the EAL's usage and exit the daemon") +
               ")");
      s = nullptr;
    }
    if (s != nullptr) args.push_back(*s);
    ok = ok && s != nullptr;
  }
  if (ok) out.dpdk_args = std::move(args);
}

void Validator::boundary(const toml::node& n, BoundaryConfig& out) {
  const std::string key = "boundary";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  rate_and_burst(*t, key, key, "lookups_per_sec", "lookups_burst", out.lookups_per_sec,
                 out.lookups_burst);
  rate_and_burst(*t, key, key, "packets_per_sec", "packets_burst", out.packets_per_sec,
                 out.packets_burst);
  if (Field d = field(*t, key, key, "max_queue_delay_us")) {
    if (auto v = integer(d)) {
      out.max_queue_delay_us = static_cast<uint64_t>(*v);
    }
  }
  adaptive(*t, key, out);
  if (Field r = field(*t, key, key, "lookups_reserve_pct")) {
    reserves(*r, r.key, out.lookups_reserve_pct);
  }
  if (Field r = field(*t, key, key, "packets_reserve_pct")) {
    reserves(*r, r.key, out.packets_reserve_pct);
  }
}

// The adaptive boundary's keys: a ceiling (lookups_per_sec) it needs, and a
// floor below it. Whether the edge is inline is checked with [dataplane]
// (Validator::adaptive_needs_inline).
void Validator::adaptive(const toml::table& t, const std::string& key, BoundaryConfig& out) {
  Field a = field(t, key, key, "adaptive");
  if (a) {
    if (auto v = boolean(*a, a.key)) out.adaptive = *v;
  }
  Field m = field(t, key, key, "adaptive_min_per_sec");
  if (m) {
    auto v = integer(m);
    if (!v) return;
    out.adaptive_min_per_sec = static_cast<uint64_t>(*v);
    if (out.lookups_per_sec && out.adaptive_min_per_sec > *out.lookups_per_sec) {
      diag_.report(m->source(), m.key,
                   "the floor " + std::to_string(out.adaptive_min_per_sec) +
                       " is above the ceiling boundary.lookups_per_sec = " +
                       std::to_string(*out.lookups_per_sec) + "; lower it or raise the ceiling");
      return;
    }
  }
  if (out.adaptive && !out.lookups_per_sec)
    diag_.report(a->source(), a.key,
                 "an adaptive boundary needs its ceiling: set boundary.lookups_per_sec");
}

// Checked where the document says how the edge is attached: the fleet's
// tables, validated on their own, have no [dataplane] (each member's file
// does, and the member validates them together).
void Validator::adaptive_needs_inline(const toml::table& doc, const Config& out) {
  if (!out.boundary.adaptive || !out.dataplane.inside.empty() || !doc.contains("dataplane")) return;
  const toml::node* n = doc.at_path("boundary.adaptive").node();
  if (n == nullptr) return;
  diag_.report(n->source(), "boundary.adaptive",
               "an adaptive boundary needs the return path: inline mode only (set "
               "dataplane.inside); host mode sees no replies");
}

// The metrics endpoint and the HTTP control API cannot share a socket: the
// second to bind would fail at start. Same port, and the same address or
// either one every address (0.0.0.0, [::]).
void Validator::listeners_apart(const toml::table& doc, const Config& out) {
  const std::string& metrics = out.metrics.listen;
  if (out.control.http_listen.empty()) return;
  const std::optional<ListenAddress> a = parse_listen_address(out.control.http_listen);
  const std::optional<ListenAddress> m = parse_listen_address(metrics);
  if (!a || !m || a->port != m->port) return;  // (a malformed one is reported already)
  if (!a->any() && !m->any() && (a->family != m->family || a->addr != m->addr)) return;
  const toml::node* n = doc.at_path("control.http_listen").node();
  if (n == nullptr) return;
  diag_.report(n->source(), "control.http_listen",
               "the same socket as metrics.listen (" + metrics +
                   "): the metrics endpoint and the control API each need their own port");
}

// Priority p may not take the last reserve[p] percent of a burst. A lower
// priority reserving less than a higher one would let it dig into the share
// kept for the higher one, so the reserves must not decrease with p.
void Validator::reserves(const toml::node& n, const std::string& key,
                         std::array<uint32_t, SL_PRIORITIES>& out) {
  const auto* a = n.as_array();
  if (a == nullptr || a->size() != SL_PRIORITIES) {
    fail(n, key, "an array of exactly 8 integers in 0..99 (priority 0 first)");
    return;
  }
  std::array<uint32_t, SL_PRIORITIES> values{};
  bool ok = true;
  for (std::size_t i = 0; i < SL_PRIORITIES; ++i) {
    auto v =
        integer((*a)[i], index_key(key, i), key_spec("boundary", key.substr(key.find('.') + 1)));
    if (v) values[i] = static_cast<uint32_t>(*v);
    ok = ok && v.has_value();
  }
  if (!ok) return;
  for (std::size_t i = 1; i < SL_PRIORITIES; ++i) {
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

void Validator::admission(const toml::node& n, AdmissionConfig& out) {
  const std::string key = "admission";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  if (Field s = field(*t, key, key, "shadow")) {
    if (auto v = boolean(*s, s.key)) out.shadow = *v;
  }
  if (Field m = field(*t, key, key, "malformed")) {
    if (auto v = keyword<MalformedAction>(
            m, {{"drop", MalformedAction::drop}, {"pass", MalformedAction::pass}})) {
      out.malformed = *v;
    }
  }
  Field epoch = field(*t, key, key, "sticky_epoch_sec");
  std::optional<int64_t> epoch_sec;
  if (epoch != nullptr) {
    epoch_sec = integer(epoch);
    if (epoch_sec) out.sticky_epoch_sec = static_cast<uint64_t>(*epoch_sec);
  }
  if (Field w = field(*t, key, key, "sticky_window_ms")) {
    auto window_ms = integer(w);
    if (window_ms && (epoch == nullptr || epoch_sec)) {
      sticky_window(*w, w.key, static_cast<uint64_t>(*window_ms), out.sticky_epoch_sec);
      out.sticky_window_ms = static_cast<uint64_t>(*window_ms);
    }
  }
  if (Field s = field(*t, key, key, "source_table_size")) {
    if (auto v = integer(s)) {
      out.source_table_size = static_cast<uint64_t>(*v);
    }
  }
  if (Field s = field(*t, key, key, "seed")) {
    if (auto v = integer(s)) out.seed = static_cast<uint64_t>(*v);
  }
  if (Field u = field(*t, key, key, "unverified")) {
    if (auto v = keyword<UnverifiedAction>(u, {{"charge", UnverifiedAction::charge},
                                               {"drop", UnverifiedAction::drop},
                                               {"pass", UnverifiedAction::pass}})) {
      out.unverified = *v;
    }
  }
  if (Field s = field(*t, key, key, "flow_table_size")) {
    if (auto v = integer(s)) out.flow_table_size = static_cast<uint64_t>(*v);
  }
  if (Field s = field(*t, key, key, "flow_idle_tcp_sec")) {
    if (auto v = integer(s)) out.flow_idle_tcp_sec = static_cast<uint64_t>(*v);
  }
  if (Field s = field(*t, key, key, "flow_learn_sec")) {
    if (auto v = integer(s)) out.flow_learn_sec = static_cast<uint64_t>(*v);
  }
  if (Field s = field(*t, key, key, "flow_packets_per_sec")) {
    if (auto v = integer(s)) out.flow_packets_per_sec = static_cast<uint64_t>(*v);
  }
}

// The window is a slice of the epoch; a window as long as the epoch would
// make every source sticky-shed for the whole epoch.
void Validator::sticky_window(const toml::node& n, const std::string& key, uint64_t window_ms,
                              uint64_t epoch_sec) {
  if (window_ms < epoch_sec * 1000) return;
  diag_.report(n.source(), key,
               "must be less than sticky_epoch_sec (" + std::to_string(epoch_sec) + " s = " +
                   std::to_string(epoch_sec * 1000) + " ms), found " + std::to_string(window_ms));
}

void Validator::metrics(const toml::node& n, MetricsConfig& out) {
  const std::string key = "metrics";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  if (Field l = field(*t, key, key, "listen")) {
    const auto* s = l->as_string();
    if (s != nullptr && is_listen_address(s->get())) {
      out.listen = s->get();
    } else {
      fail(*l, l.key,
           "\"IPV4:PORT\" or \"[IPV6]:PORT\" with a literal address and a port in 1..65535");
    }
  }
}

void Validator::control(const toml::node& n, ControlConfig& out) {
  const std::string key = "control";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  absolute_path(*t, key, "http_token_file", out.http_token_file);
  absolute_path(*t, key, "audit_log", out.audit_log);
  if (Field m = field(*t, key, key, "socket_mode")) {
    const auto* s = m->as_string();
    const std::string v = s != nullptr ? s->get() : "";
    // Octal digits only: strtol would also take blanks, a sign, and stop
    // at a NUL inside the string.
    const bool octal =
        !v.empty() && v.size() <= 4 && v.find_first_not_of("01234567") == std::string::npos;
    const long mode = octal ? std::strtol(v.c_str(), nullptr, 8) : -1;
    if (s != nullptr && mode >= 0 && mode <= 0777 && (mode & 0600) == 0600 && (mode & 0007) == 0) {
      out.socket_mode = static_cast<uint32_t>(mode);
    } else {
      fail(*m, m.key,
           "an octal mode string such as \"0660\" that gives the owner rw and others nothing");
    }
  }
  if (Field g = field(*t, key, key, "socket_group")) {
    const auto* s = g->as_string();
    const std::string v = s != nullptr ? s->get() : "";
    const bool plain = std::none_of(v.begin(), v.end(), [](char c) {
      return c == ':' || c == '/' || c == ' ' || std::iscntrl(static_cast<unsigned char>(c));
    });
    if (s != nullptr && !v.empty() && v.size() <= 32 && plain) {
      out.socket_group = s->get();
    } else {
      fail(*g, g.key, "a group name");
    }
  }
  if (Field h = field(*t, key, key, "http_listen")) {
    const auto* s = h->as_string();
    const std::string v = s != nullptr ? s->get() : "";
    const bool loopback = v.rfind("127.", 0) == 0 || v.rfind("[::1]:", 0) == 0;
    if (s != nullptr && is_listen_address(v) && loopback) {
      out.http_listen = v;
    } else {
      fail(*h, h.key,
           "a loopback \"127.0.0.1:PORT\" or \"[::1]:PORT\" (the control API is local only)");
    }
    if (t->get("http_token_file") == nullptr)
      diag_.report(h->source(), key + ".http_token_file",
                   "missing: http_listen needs a token file (its first line is the bearer token "
                   "HTTP clients send)");
  }
  if (Field h = field(*t, key, key, "history")) {
    if (auto v = integer(h)) out.history = static_cast<uint32_t>(*v);
  }
  if (Field p = field(*t, key, key, "socket")) {
    const auto* s = p->as_string();
    const bool ok = s != nullptr && !s->get().empty() && s->get().front() == '/' &&
                    s->get().size() <= kMaxSocketPathLen &&
                    s->get().find('\0') == std::string::npos;
    if (ok) {
      out.socket = s->get();
    } else {
      fail(*p, p.key,
           "an absolute path (starting with /) of at most " + std::to_string(kMaxSocketPathLen) +
               " bytes");
    }
  }
}

const toml::node* Validator::absolute_path(const toml::table& t, const std::string& key,
                                           const char* name, std::string& dst) {
  const toml::node* p = t.get(name);
  if (p == nullptr) return nullptr;
  const auto* s = p->as_string();
  if (s != nullptr && s->get().size() > 1 && s->get().front() == '/' &&
      s->get().find('\0') == std::string::npos) {
    dst = s->get();
  } else {
    fail(*p, key + "." + name, "an absolute file path (starting with /)");
  }
  return p;
}

std::optional<Config> validate_document(const toml::table& doc, const std::string& source,
                                        Diagnostics& diag) {
  const std::size_t before = diag.count();
  Config config;
  config.source = source;
  Validator(diag).document(doc, config);
  if (diag.count() != before) return std::nullopt;
  return config;
}

}  // namespace sluice::loader
