// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>

#include <cstring>

#include "control/config/loader_detail.hpp"

namespace sluice::loader {

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
    // Decimal without leading zeros, in IPv4 as in IPv6 ("/024" was taken
    // as /24 and "/0048" refused).
    bool ok =
        !digits.empty() && digits.size() <= 3 && (digits.size() == 1 || digits[0] != '0') &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    len = 0;
    for (char c : digits) len = len * 10 + static_cast<unsigned>(c - '0');
    if (!ok || len > max_len) {
      why = "expected a prefix length in 0.." + std::to_string(max_len) +
            " after '/' (decimal, no leading zero)";
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
  // An IPv4-mapped prefix (::ffff:0:0/96 and under) names IPv4 addresses as
  // IPv6 sockets show them; on the wire they are IPv4 packets, which only
  // IPv4 prefixes match.
  const bool mapped =
      p.family == 6 && len >= 96 &&
      std::all_of(p.addr.begin(), p.addr.begin() + 10, [](uint8_t b) { return b == 0; }) &&
      p.addr[10] == 0xff && p.addr[11] == 0xff;
  if (mapped) {
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, p.addr.data() + 12, buf, sizeof buf);
    why = "expected IPv4 addresses as an IPv4 prefix, \"" + std::string(buf) + "/" +
          std::to_string(len - 96) +
          "\" (an IPv4-mapped IPv6 prefix never matches: IPv4 packets are IPv4 on the wire)";
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
bool ListenAddress::any() const {
  return std::all_of(addr.begin(), addr.end(), [](unsigned char b) { return b == 0; });
}

std::optional<ListenAddress> parse_listen_address(std::string_view s) {
  std::string host;
  std::string_view port;
  ListenAddress out;
  out.family = AF_INET;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return std::nullopt;
    host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    out.family = AF_INET6;
  } else {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
  }
  if (host.find('\0') != std::string::npos) return std::nullopt;
  if (inet_pton(out.family, host.c_str(), out.addr.data()) != 1) return std::nullopt;
  const auto p = parse_port_number(port);
  if (!p || *p < 1) return std::nullopt;
  out.port = static_cast<uint16_t>(*p);
  return out;
}

}  // namespace sluice::loader
