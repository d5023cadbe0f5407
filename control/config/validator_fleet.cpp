// SPDX-License-Identifier: Apache-2.0
// [fleet]: the etcd endpoints, the fleet's keys, TLS and etcd's users.
#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "control/config/validator.hpp"

namespace sluice::loader {

namespace {

// "http://HOST:PORT" or "https://HOST:PORT": what the etcd client (control/fleet/etcd_client.hpp)
// connects to. HOST is a name or an IPv4 address (cpp-httplib's client
// cannot reach a bracketed IPv6 literal: name it instead).
bool is_etcd_url(const std::string& v) {
  const std::size_t after = v.rfind("http://", 0) == 0 ? 7 : v.rfind("https://", 0) == 0 ? 8 : 0;
  if (after == 0) return false;
  const std::string rest = v.substr(after);
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const long p = std::strtol(port.c_str(), nullptr, 10);
  if (p < 1 || p > 65535) return false;
  if (host.front() == '[') return false;
  // Digits and dots are an IPv4 address, dotted quad, or nothing: no DNS
  // name is all digits, and getaddrinfo would take "10.1" as 10.0.0.1.
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr ignored{};
    return ::inet_pton(AF_INET, host.c_str(), &ignored) == 1;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
  });
}

// A name of dots only ("." or "..") reads as a path step, not a name.
bool all_dots(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '.'; });
}

bool is_fleet_prefix(const std::string& v) {
  if (v.size() < 2 || v.size() > 128 || v.front() != '/' || v.back() == '/') return false;
  if (!std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.' || c == '/';
      }))
    return false;
  // Every step between slashes a name: no "//", ".", "..".
  std::size_t start = 1;
  while (start <= v.size()) {
    const std::size_t end = std::min(v.find('/', start), v.size());
    const std::string step = v.substr(start, end - start);
    if (step.empty() || all_dots(step)) return false;
    start = end + 1;
  }
  return true;
}

bool is_node_name(const std::string& v) {
  if (v.empty() || v.size() > 64 || all_dots(v)) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

void Validator::fleet(const toml::node& n, std::optional<FleetConfig>& out) {
  const std::string key = "fleet";
  const toml::table* t = table(n, key);
  if (t == nullptr) return;
  reject_unknown(*t, key, keys_of(key));
  FleetConfig f;
  if (Field e = field(*t, key, key, "etcd")) {
    const auto* a = e->as_array();
    if (a == nullptr || a->empty()) {
      fail(*e, e.key, "a non-empty list of etcd client URLs such as [\"http://127.0.0.1:2379\"]");
    } else {
      for (std::size_t i = 0; i < a->size(); ++i) {
        const auto* s = (*a)[i].as_string();
        if (s != nullptr && is_etcd_url(s->get())) {
          f.etcd.push_back(s->get());
        } else {
          fail((*a)[i], index_key(e.key, i),
               "an etcd client URL \"http://HOST:PORT\" or \"https://HOST:PORT\" with a name or "
               "an IPv4 address (IPv6 literals are not supported)");
        }
      }
      // One scheme: a cluster reached partly in clear would send its
      // records (and a password) in clear whenever a member fails over.
      for (std::size_t i = 1; i < f.etcd.size(); ++i)
        if ((f.etcd[i].rfind("https://", 0) == 0) != (f.etcd[0].rfind("https://", 0) == 0))
          fail((*a)[i], index_key(e.key, i),
               "the scheme of the first endpoint (" + f.etcd[0].substr(0, f.etcd[0].find(':')) +
                   "): every endpoint of a cluster is reached alike");
    }
  } else {
    diag_.report(n.source(), key + ".etcd", "missing: a [fleet] needs its etcd endpoints");
  }
  if (Field p = field(*t, key, key, "prefix")) {
    const auto* s = p->as_string();
    if (s != nullptr && is_fleet_prefix(s->get())) {
      f.prefix = s->get();
    } else {
      fail(*p, p.key,
           "a key prefix such as \"/sluice/city\" (starts with /, no trailing /, at most 128 "
           "characters of a-z A-Z 0-9 _ - . /, no empty, \".\" or \"..\" step)");
    }
  }
  if (Field d = field(*t, key, key, "node")) {
    const auto* s = d->as_string();
    if (s != nullptr && is_node_name(s->get())) {
      f.node = s->get();
    } else {
      fail(*d, d.key, "a node name of 1..64 characters of a-z 0-9 _ - . (not dots only)");
    }
  } else {
    diag_.report(n.source(), key + ".node", "missing: each edge of a fleet needs its own name");
  }
  if (Field l = field(*t, key, key, "lease_ttl_sec")) {
    if (auto v = integer(l)) f.lease_ttl_sec = static_cast<uint32_t>(*v);
  }
  if (Field s = field(*t, key, key, "static_sec")) {
    if (auto v = integer(s)) f.static_sec = static_cast<uint32_t>(*v);
  }
  if (Field s = field(*t, key, key, "sync_ms")) {
    if (auto v = integer(s)) {
      f.sync_ms = static_cast<uint32_t>(*v);
      // Each sync keeps the edge's lease alive: at least twice a lease.
      if (uint64_t{f.sync_ms} * 2 > uint64_t{f.lease_ttl_sec} * 1000)
        diag_.report(s->source(), s.key,
                     "must be at most half of lease_ttl_sec (" +
                         std::to_string(f.lease_ttl_sec * 1000 / 2) +
                         " ms): each sync keeps the "
                         "edge's lease alive, found " +
                         std::to_string(f.sync_ms));
    }
  }
  if (Field s = field(*t, key, key, "floor_pct")) {
    if (auto v = integer(s)) f.floor_pct = static_cast<uint32_t>(*v);
  }
  etcd_access(*t, key, f);
  out = f;
}

// [fleet]'s TLS and auth keys: absolute paths, in pairs (a certificate
// with its key, a user with a password), TLS files only for https.
void Validator::etcd_access(const toml::table& t, const std::string& key, FleetConfig& f) {
  EtcdAccessConfig& a = f.access;
  const toml::node* ca = absolute_path(t, key, "etcd_ca_file", a.ca_file);
  const toml::node* cert = absolute_path(t, key, "etcd_cert_file", a.cert_file);
  const toml::node* private_key = absolute_path(t, key, "etcd_key_file", a.key_file);
  const toml::node* password = absolute_path(t, key, "etcd_password_file", a.password_file);
  const toml::node* user = t.get("etcd_user");
  if (user != nullptr) {
    const auto* s = user->as_string();
    if (s != nullptr && !s->get().empty() && s->get().size() <= 256 &&
        std::none_of(s->get().begin(), s->get().end(), is_control)) {
      a.user = s->get();
    } else {
      fail(*user, key + ".etcd_user",
           "an etcd user name (1..256 characters, no control characters)");
    }
  }
  if ((cert != nullptr) != (private_key != nullptr)) {
    const toml::node* one = cert != nullptr ? cert : private_key;
    diag_.report(one->source(), key + (cert != nullptr ? ".etcd_cert_file" : ".etcd_key_file"),
                 cert != nullptr ? "a client certificate needs its key: etcd_key_file"
                                 : "a client key needs its certificate: etcd_cert_file");
  }
  if ((user != nullptr) != (password != nullptr)) {
    const toml::node* one = user != nullptr ? user : password;
    diag_.report(one->source(), key + (user != nullptr ? ".etcd_user" : ".etcd_password_file"),
                 user != nullptr ? "an etcd user needs its password: etcd_password_file"
                                 : "an etcd password needs its user: etcd_user");
  }
  const bool https = !f.etcd.empty() && f.etcd[0].rfind("https://", 0) == 0;
  // A password in clear crosses only loopback.
  const bool loopback = std::all_of(f.etcd.begin(), f.etcd.end(), [](const std::string& url) {
    const std::string host = url.substr(7, url.rfind(':') - 7);  // after "http://"
    in_addr a{};
    return ::strcasecmp(host.c_str(), "localhost") == 0 ||
           (::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);
  });
  if (user != nullptr && !f.etcd.empty() && !https && !loopback)
    diag_.report(user->source(), key + ".etcd_user",
                 "a password over plain http:// to " + f.etcd[0] +
                     " crosses the network in clear: use https:// endpoints");
  for (const toml::node* tls : {ca, cert}) {
    if (tls != nullptr && !https && !f.etcd.empty()) {
      diag_.report(tls->source(), key + (tls == ca ? ".etcd_ca_file" : ".etcd_cert_file"),
                   "TLS needs https:// etcd endpoints, found " + f.etcd[0]);
      break;
    }
  }
}

}  // namespace sluice::loader
