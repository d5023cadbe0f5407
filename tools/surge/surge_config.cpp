#include "tools/surge/surge_config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace sluice {
namespace {

// Keys accepted globally and per class; anything else is a typo we report
// instead of silently ignoring.
const std::set<std::string> k_global_keys = {
    "baseline",       "step_to",   "step_at",    "ramp",         "hold",        "back_at",
    "duration",       "dst",       "proto",      "retry",        "max_retries", "backoff_base_ms",
    "backoff_cap_ms", "refresh_s", "timeout_ms", "max_inflight", "seed",        "progress"};
const std::set<std::string> k_class_keys = {
    "name",    "src",    "dst",         "proto",     "share",   "retry",
    "base_ms", "cap_ms", "max_retries", "refresh_s", "session", "session_gap_ms"};

// "A" or "A+N": N consecutive addresses from A (a client population too big
// to list, e.g. 10,000 citizens).
std::string parse_sources(const std::string& text, std::vector<SurgeEndpoint>& out) {
  constexpr uint32_t k_max_range = 65536;  // a /16: each address is kept as a sockaddr
  size_t plus = text.find('+');
  SurgeEndpoint first;
  std::string err = parse_endpoint(text.substr(0, plus), false, first);
  if (!err.empty()) return err;
  if (plus == std::string::npos) {
    out.push_back(first);
    return "";
  }
  const std::string n_text = text.substr(plus + 1);
  char* end = nullptr;
  errno = 0;
  unsigned long n = std::strtoul(n_text.c_str(), &end, 10);
  if (n_text.empty() || *end != '\0' || errno != 0 || n < 1 || n > k_max_range)
    return "'" + text + "': the count after '+' must be 1.." + std::to_string(k_max_range);
  for (unsigned long i = 0; i < n; ++i) {
    SurgeEndpoint e = first;
    if (e.addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&e.addr);
      uint32_t host = ntohl(a->sin_addr.s_addr);
      if (i > 0xffffffffUL - host) return "'" + text + "': the range runs past 255.255.255.255";
      a->sin_addr.s_addr = htonl(static_cast<uint32_t>(host + i));
      char buf[INET_ADDRSTRLEN];
      e.text = inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&e.addr);
      uint64_t carry = i;
      for (int b = 15; b >= 0 && carry; --b) {
        uint64_t sum = a->sin6_addr.s6_addr[b] + (carry & 0xff);
        a->sin6_addr.s6_addr[b] = static_cast<uint8_t>(sum);
        carry = (carry >> 8) + (sum >> 8);
      }
      char buf[INET6_ADDRSTRLEN];
      e.text = inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    }
    out.push_back(e);
  }
  return "";
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string parse_double(const std::string& key, const std::string& v, double lo, double hi,
                         double& out) {
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || errno != 0 || end != v.c_str() + v.size() || !std::isfinite(d) || d < lo ||
      d > hi) {
    return key + ": expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
           "], got '" + v + "'";
  }
  out = d;
  return "";
}

std::string parse_u64(const std::string& key, const std::string& v, uint64_t lo, uint64_t hi,
                      uint64_t& out) {
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || x < lo || x > hi) {
    return key + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
           "], got '" + v + "'";
  }
  out = x;
  return "";
}

std::string parse_u32(const std::string& key, const std::string& v, uint32_t lo, uint32_t hi,
                      uint32_t& out) {
  uint64_t x = 0;
  std::string err = parse_u64(key, v, lo, hi, x);
  out = static_cast<uint32_t>(x);
  return err;
}

std::string parse_retry(const std::string& v, RetryModel& out) {
  if (v == "none")
    out = RetryModel::none;
  else if (v == "immediate")
    out = RetryModel::immediate;
  else if (v == "backoff")
    out = RetryModel::backoff;
  else if (v == "refresh")
    out = RetryModel::refresh;
  else
    return "retry: expected none|immediate|backoff|refresh, got '" + v + "'";
  return "";
}

std::string parse_proto(const std::string& v, SurgeProto& out) {
  if (v == "tcp" || v == "http")
    out = SurgeProto::tcp;
  else if (v == "udp")
    out = SurgeProto::udp;
  else
    return "proto: expected tcp|udp, got '" + v + "'";
  return "";
}

// JSON scalars become text so the scenario goes through the same validation
// as the command line.
std::string json_to_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return j.dump();
}

}  // namespace

const char* to_string(RetryModel m) {
  switch (m) {
    case RetryModel::none:
      return "none";
    case RetryModel::immediate:
      return "immediate";
    case RetryModel::backoff:
      return "backoff";
    case RetryModel::refresh:
      return "refresh";
  }
  return "?";
}

const char* to_string(SurgeProto p) { return p == SurgeProto::udp ? "udp" : "tcp"; }

double RateProfile::rate_at(double t) const {
  if (!target_per_sec || t < step_at_sec) return baseline_per_sec;
  if (back_at_sec && t >= *back_at_sec) return baseline_per_sec;
  if (ramp_sec > 0.0 && t < step_at_sec + ramp_sec) {
    double f = (t - step_at_sec) / ramp_sec;
    return baseline_per_sec + f * (*target_per_sec - baseline_per_sec);
  }
  return *target_per_sec;
}

double RateProfile::max_rate() const {
  return target_per_sec ? std::max(baseline_per_sec, *target_per_sec) : baseline_per_sec;
}

bool is_allowed_destination(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in&>(addr).sin_addr.s_addr);
    return (a & 0xfffe0000u) == 0xc6120000u  // 198.18.0.0/15
           || (a >> 24) == 127u;             // 127.0.0.0/8
  }
  if (addr.ss_family == AF_INET6) {
    const uint8_t* b = reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr.s6_addr;
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(b, loop6, 16) == 0) return true;
    static const uint8_t bench6[6] = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00};  // 2001:2::/48
    if (std::memcmp(b, bench6, 6) == 0) return true;
    // A v4-mapped address would let an IPv4 destination slip past the v4 fence.
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, mapped, 12) == 0) {
      sockaddr_storage v4{};
      auto& s4 = reinterpret_cast<sockaddr_in&>(v4);
      s4.sin_family = AF_INET;
      std::memcpy(&s4.sin_addr, b + 12, 4);
      return is_allowed_destination(v4);
    }
  }
  return false;
}

std::string parse_endpoint(const std::string& text, bool with_port, SurgeEndpoint& out) {
  std::string host = text;
  std::string port;
  if (with_port) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return "'" + text + "': expected address:port";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
  }
  out = SurgeEndpoint{};
  out.text = text;
  uint32_t port_num = 0;
  if (with_port) {
    std::string err = parse_u32("port", port, 1, 65535, port_num);
    if (!err.empty()) return "'" + text + "': " + err;
  }
  auto& s4 = reinterpret_cast<sockaddr_in&>(out.addr);
  auto& s6 = reinterpret_cast<sockaddr_in6&>(out.addr);
  if (inet_pton(AF_INET, host.c_str(), &s4.sin_addr) == 1) {
    s4.sin_family = AF_INET;
    s4.sin_port = htons(static_cast<uint16_t>(port_num));
    out.len = sizeof(sockaddr_in);
    return "";
  }
  if (inet_pton(AF_INET6, host.c_str(), &s6.sin6_addr) == 1) {
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(static_cast<uint16_t>(port_num));
    out.len = sizeof(sockaddr_in6);
    return "";
  }
  return "'" + text + "': not a numeric IPv4/IPv6 address (host names are not resolved)";
}

std::multimap<std::string, std::string> parse_class_spec(const std::string& spec) {
  std::multimap<std::string, std::string> kv;
  size_t pos = 0;
  // Bounded by the spec length: each pass consumes at least one character.
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    std::string item = trim(spec.substr(pos, comma - pos));
    pos = comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = trim(item.substr(0, eq));
    std::string value = eq == std::string::npos ? std::string() : trim(item.substr(eq + 1));
    if (key == "src") {
      size_t p = 0;
      while (p <= value.size()) {
        size_t bar = value.find('|', p);
        if (bar == std::string::npos) bar = value.size();
        std::string one = trim(value.substr(p, bar - p));
        if (!one.empty()) kv.emplace(key, one);
        p = bar + 1;
      }
    } else {
      kv.emplace(key, value);
    }
  }
  return kv;
}

std::string load_scenario_file(const std::string& path, SurgeRawInput& raw) {
  std::ifstream in(path);
  if (!in) return "scenario '" + path + "': cannot open";
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return "scenario '" + path + "': not a JSON object";
  }
  for (auto& [key, value] : j.items()) {
    if (key == "classes") {
      if (!value.is_array()) return "scenario '" + path + "': classes must be an array";
      // Classes given on the command line replace the file's, as a whole.
      if (!raw.classes.empty()) continue;
      for (const auto& c : value) {
        if (!c.is_object()) return "scenario '" + path + "': each class must be an object";
        std::multimap<std::string, std::string> kv;
        for (auto& [ck, cv] : c.items()) {
          if (cv.is_array()) {
            for (const auto& e : cv) kv.emplace(ck, json_to_text(e));
          } else {
            kv.emplace(ck, json_to_text(cv));
          }
        }
        raw.classes.push_back(std::move(kv));
      }
    } else {
      raw.globals.emplace(key, json_to_text(value));  // CLI values already present win
    }
  }
  return "";
}

std::string build_surge_config(const SurgeRawInput& raw, SurgeConfig& out) {
  out = SurgeConfig{};
  for (const auto& [k, v] : raw.globals) {
    if (!k_global_keys.count(k)) return "unknown setting '" + k + "'";
  }
  auto get = [&](const char* key) -> const std::string* {
    auto it = raw.globals.find(key);
    return it == raw.globals.end() ? nullptr : &it->second;
  };
  std::string err;
  RateProfile& p = out.profile;
  const double max_rate = 10'000'000.0;
  if (auto* v = get("baseline");
      v && !(err = parse_double("baseline", *v, 0, max_rate, p.baseline_per_sec)).empty())
    return err;
  if (auto* v = get("duration");
      v && !(err = parse_double("duration", *v, 0.001, 86400, p.duration_sec)).empty())
    return err;
  if (auto* v = get("step_to")) {
    double t = 0;
    if (!(err = parse_double("step_to", *v, 0, max_rate, t)).empty()) return err;
    p.target_per_sec = t;
  }
  if (auto* v = get("step_at");
      v && !(err = parse_double("step_at", *v, 0, 86400, p.step_at_sec)).empty())
    return err;
  if (auto* v = get("ramp"); v && !(err = parse_double("ramp", *v, 0, 86400, p.ramp_sec)).empty())
    return err;
  if (auto* v = get("back_at")) {
    double t = 0;
    if (!(err = parse_double("back_at", *v, 0, 86400, t)).empty()) return err;
    p.back_at_sec = t;
  }
  if (auto* v = get("hold")) {
    double h = 0;
    if (!(err = parse_double("hold", *v, 0, 86400, h)).empty()) return err;
    // An explicit --back-at wins; --hold is the convenient relative form.
    if (!p.back_at_sec) p.back_at_sec = p.step_at_sec + p.ramp_sec + h;
  }
  if (!p.target_per_sec && (get("ramp") || get("hold") || get("back_at") || get("step_at"))) {
    return "step_at/ramp/hold/back_at need step_to (the rate to step or ramp to)";
  }
  if (p.back_at_sec && *p.back_at_sec < p.step_at_sec) return "back_at is before step_at";
  if (p.max_rate() <= 0) return "baseline and step_to are both 0: nothing to send";
  if (auto* v = get("timeout_ms");
      v && !(err = parse_u32("timeout_ms", *v, 1, 600'000, out.timeout_ms)).empty())
    return err;
  if (auto* v = get("max_inflight");
      v && !(err = parse_u32("max_inflight", *v, 1, 1'000'000, out.max_inflight)).empty())
    return err;
  if (auto* v = get("seed"); v && !(err = parse_u64("seed", *v, 0, UINT64_MAX, out.seed)).empty())
    return err;
  if (auto* v = get("progress")) out.progress = (*v == "true" || *v == "1");

  // Global defaults every class inherits.
  SurgeClass defaults;
  defaults.name = "default";
  std::string default_dst = get("dst") ? *get("dst") : "";
  if (auto* v = get("proto"); v && !(err = parse_proto(*v, defaults.proto)).empty()) return err;
  if (auto* v = get("retry"); v && !(err = parse_retry(*v, defaults.retry)).empty()) return err;
  if (auto* v = get("max_retries");
      v && !(err = parse_u32("max_retries", *v, 0, 100, defaults.max_retries)).empty())
    return err;
  if (auto* v = get("backoff_base_ms");
      v && !(err = parse_u32("backoff_base_ms", *v, 1, 600'000, defaults.backoff_base_ms)).empty())
    return err;
  if (auto* v = get("backoff_cap_ms");
      v && !(err = parse_u32("backoff_cap_ms", *v, 1, 600'000, defaults.backoff_cap_ms)).empty())
    return err;
  if (auto* v = get("refresh_s");
      v && !(err = parse_double("refresh_s", *v, 0.01, 3600, defaults.refresh_sec)).empty())
    return err;

  std::vector<std::multimap<std::string, std::string>> specs = raw.classes;
  if (specs.empty()) specs.emplace_back();  // one implied class with the defaults
  double share_sum = 0;
  std::set<std::string> names;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& kv = specs[i];
    SurgeClass c = defaults;
    if (specs.size() > 1) c.name = "class" + std::to_string(i);
    std::string dst = default_dst;
    for (const auto& [k, v] : kv) {
      std::string where = "class " + std::to_string(i) + ": ";
      if (!k_class_keys.count(k)) return where += "unknown key '" + k + "'";
      if (k == "name") {
        if (v.empty()) return where + "empty name";
        c.name = v;
      } else if (k == "src") {
        if (!(err = parse_sources(v, c.sources)).empty()) return where += "src " + err;
      } else if (k == "dst") {
        dst = v;
      } else if (k == "proto") {
        err = parse_proto(v, c.proto);
      } else if (k == "share") {
        err = parse_double("share", v, 0, 1e9, c.share);
      } else if (k == "retry") {
        err = parse_retry(v, c.retry);
      } else if (k == "base_ms") {
        err = parse_u32("base_ms", v, 1, 600'000, c.backoff_base_ms);
      } else if (k == "cap_ms") {
        err = parse_u32("cap_ms", v, 1, 600'000, c.backoff_cap_ms);
      } else if (k == "max_retries") {
        err = parse_u32("max_retries", v, 0, 100, c.max_retries);
      } else if (k == "refresh_s") {
        err = parse_double("refresh_s", v, 0.01, 3600, c.refresh_sec);
      } else if (k == "session") {
        err = parse_u32("session", v, 1, 16, c.session_lookups);
      } else if (k == "session_gap_ms") {
        err = parse_u32("session_gap_ms", v, 0, 60'000, c.session_gap_ms);
      }
      if (!err.empty()) return where + err;
    }
    if (!names.insert(c.name).second) return "duplicate class name '" + c.name + "'";
    if (dst.empty()) return "class '" + c.name + "': no destination (give --dst or dst=)";
    if (!(err = parse_endpoint(dst, true, c.destination)).empty()) {
      return "class '" + c.name + "': dst " + err;
    }
    if (!is_allowed_destination(c.destination.addr)) {
      return "class '" + c.name + "': destination " + dst +
             " refused: sluice-surge only sends to 198.18.0.0/15, 2001:2::/48 or loopback "
             "(127.0.0.0/8, ::1)";
    }
    for (const auto& s : c.sources) {
      if (s.addr.ss_family != c.destination.addr.ss_family) {
        return "class '" + c.name + "': source " + s.text + " and destination " + dst +
               " are different address families";
      }
    }
    if (c.backoff_cap_ms < c.backoff_base_ms) return "class '" + c.name + "': cap_ms < base_ms";
    share_sum += c.share;
    out.classes.push_back(std::move(c));
  }
  if (share_sum <= 0) return "class shares sum to 0";
  for (auto& c : out.classes) c.share /= share_sum;
  return "";
}

}  // namespace sluice
