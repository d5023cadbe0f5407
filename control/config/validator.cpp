// SPDX-License-Identifier: Apache-2.0
#include <cstdlib>

#include "control/config/validator.hpp"

namespace sluice::loader {

void Validator::dataplane(const toml::node& n, DataplaneConfig& out) {
  const std::string key = "dataplane";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  if (const toml::node* m = t->get("mode")) {
    if (auto v = keyword<DataplaneKind>(*m, key + ".mode", key_spec(key, "mode"),
                                        {{"auto", DataplaneKind::automatic},
                                         {"dpdk", DataplaneKind::dpdk},
                                         {"xdp", DataplaneKind::xdp}})) {
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
    if (auto v =
            keyword<XdpAttach>(*a, key + ".xdp_attach", key_spec(key, "xdp_attach"),
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
            *w, key + ".when_stopped", key_spec(key, "when_stopped"),
            {{"forward", WhenStopped::forward}, {"block", WhenStopped::block}})) {
      out.when_stopped = *v;
    }
  }
  if (const toml::node* w = t->get("dpdk_workers")) {
    if (auto v = integer(*w, key + ".dpdk_workers", key_spec(key, "dpdk_workers"))) {
      out.dpdk_workers = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* m = t->get("dpdk_mbufs")) {
    if (auto v = integer(*m, key + ".dpdk_mbufs", key_spec(key, "dpdk_mbufs"))) {
      out.dpdk_mbufs = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* q = t->get("dpdk_queue_size")) {
    if (auto v = integer(*q, key + ".dpdk_queue_size", key_spec(key, "dpdk_queue_size"))) {
      if ((*v & (*v - 1)) == 0) {
        out.dpdk_queue_size = static_cast<uint32_t>(*v);
      } else {
        diag_.report(q->source(), key + ".dpdk_queue_size",
                     "must be a power of two (64, 128, ..., 65536), found " + std::to_string(*v));
      }
    }
  }
  if (const toml::node* i = t->get("dpdk_idle_sleep_us")) {
    if (auto v = integer(*i, key + ".dpdk_idle_sleep_us", key_spec(key, "dpdk_idle_sleep_us"))) {
      out.dpdk_idle_sleep_us = static_cast<uint32_t>(*v);
    }
  }
  if (const toml::node* c = t->get("dpdk_clock")) {
    if (auto v = keyword<DpdkClock>(*c, key + ".dpdk_clock", key_spec(key, "dpdk_clock"),
                                    {{"tsc", DpdkClock::tsc}, {"capture", DpdkClock::capture}})) {
      out.dpdk_clock = *v;
    }
  }
  if (const toml::node* b = t->get("dpdk_standby")) {
    if (auto v = keyword<bool>(*b, key + ".dpdk_standby", key_spec(key, "dpdk_standby"),
                               {{"xdp", true}, {"none", false}}))
      out.dpdk_standby = *v;
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
  if (const toml::node* d = t->get("max_queue_delay_us")) {
    if (auto v = integer(*d, key + ".max_queue_delay_us", key_spec(key, "max_queue_delay_us"))) {
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
  if (const toml::node* s = t->get("shadow")) {
    if (auto v = boolean(*s, key + ".shadow")) out.shadow = *v;
  }
  if (const toml::node* m = t->get("malformed")) {
    if (auto v = keyword<MalformedAction>(
            *m, key + ".malformed", key_spec(key, "malformed"),
            {{"drop", MalformedAction::drop}, {"pass", MalformedAction::pass}})) {
      out.malformed = *v;
    }
  }
  const toml::node* epoch = t->get("sticky_epoch_sec");
  std::optional<int64_t> epoch_sec;
  if (epoch != nullptr) {
    epoch_sec = integer(*epoch, key + ".sticky_epoch_sec", key_spec(key, "sticky_epoch_sec"));
    if (epoch_sec) out.sticky_epoch_sec = static_cast<uint64_t>(*epoch_sec);
  }
  if (const toml::node* w = t->get("sticky_window_ms")) {
    auto window_ms = integer(*w, key + ".sticky_window_ms", key_spec(key, "sticky_window_ms"));
    if (window_ms && (epoch == nullptr || epoch_sec)) {
      sticky_window(*w, key + ".sticky_window_ms", static_cast<uint64_t>(*window_ms),
                    out.sticky_epoch_sec);
      out.sticky_window_ms = static_cast<uint64_t>(*window_ms);
    }
  }
  if (const toml::node* s = t->get("source_table_size")) {
    if (auto v = integer(*s, key + ".source_table_size", key_spec(key, "source_table_size"))) {
      out.source_table_size = static_cast<uint64_t>(*v);
    }
  }
  if (const toml::node* s = t->get("seed")) {
    if (auto v = integer(*s, key + ".seed", key_spec(key, "seed")))
      out.seed = static_cast<uint64_t>(*v);
  }
  if (const toml::node* u = t->get("unverified")) {
    if (auto v = keyword<UnverifiedAction>(*u, key + ".unverified", key_spec(key, "unverified"),
                                           {{"charge", UnverifiedAction::charge},
                                            {"drop", UnverifiedAction::drop},
                                            {"pass", UnverifiedAction::pass}})) {
      out.unverified = *v;
    }
  }
  if (const toml::node* s = t->get("flow_table_size")) {
    if (auto v = integer(*s, key + ".flow_table_size", key_spec(key, "flow_table_size")))
      out.flow_table_size = static_cast<uint64_t>(*v);
  }
  if (const toml::node* s = t->get("flow_idle_tcp_sec")) {
    if (auto v = integer(*s, key + ".flow_idle_tcp_sec", key_spec(key, "flow_idle_tcp_sec")))
      out.flow_idle_tcp_sec = static_cast<uint64_t>(*v);
  }
  if (const toml::node* s = t->get("flow_learn_sec")) {
    if (auto v = integer(*s, key + ".flow_learn_sec", key_spec(key, "flow_learn_sec")))
      out.flow_learn_sec = static_cast<uint64_t>(*v);
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

void Validator::control(const toml::node& n, ControlConfig& out) {
  const std::string key = "control";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
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
    if (auto v = integer(*h, key + ".history", key_spec(key, "history")))
      out.history = static_cast<uint32_t>(*v);
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
