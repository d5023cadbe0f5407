// SPDX-License-Identifier: Apache-2.0
#include "tools/backend/listen_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace sluice {

// Parses "A.B.C.D:PORT" or "[V6]:PORT" (numeric hosts only: a lab tool
// should not depend on DNS).
bool parse_listen(const std::string& listen, sockaddr_storage* addr, socklen_t* len,
                  std::string* error) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    std::size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      *error = "--listen '" + listen + "': expected [IPV6]:PORT";
      return false;
    }
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) {
      *error = "--listen '" + listen + "': expected IPV4:PORT or [IPV6]:PORT";
      return false;
    }
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || p != port_text.data() + port_text.size() ||
      port > 65535) {
    *error = "--listen '" + listen + "': port must be 0..65535";
    return false;
  }
  std::memset(addr, 0, sizeof(*addr));
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  *error = "--listen '" + listen + "': '" + host + "' is not a numeric IPv4 or IPv6 address";
  return false;
}

}  // namespace sluice
