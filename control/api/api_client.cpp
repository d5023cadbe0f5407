// SPDX-License-Identifier: Apache-2.0
#include "control/api/api_client.hpp"
#include "control/api/json_parse.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice {
namespace {

// The longest response line read: `get` answers with the config text and
// its base (each at most the loader's 16 MiB) as JSON strings.
constexpr std::size_t kMaxResponseBytes = std::size_t{128} << 20;

}  // namespace

std::optional<ApiClient> ApiClient::connect(const std::string& socket_path, std::string* error) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    *error = "socket path too long: " + socket_path;
    return std::nullopt;
  }
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error = "cannot reach sluiced at " + socket_path + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }
  return ApiClient(fd);
}

ApiClient::ApiClient(ApiClient&& other) noexcept
    : fd_(other.fd_), pending_(std::move(other.pending_)) {
  other.fd_ = -1;
}

ApiClient::~ApiClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<nlohmann::json> ApiClient::call(const nlohmann::json& request, std::string* error,
                                              int timeout_ms) {
  std::string line;
  try {
    line = request.dump() + "\n";
  } catch (const nlohmann::json::type_error&) {
    return nlohmann::json{{"ok", false},
                          {"error",
                           "the request holds text that is not UTF-8 (the control API "
                           "takes JSON, which is UTF-8)"}};
  }
  if (line.size() - 1 > kMaxRequestBytes)  // the newline is not counted
    return nlohmann::json{
        {"ok", false},
        {"error", "the request is " + std::to_string(line.size()) +
                      " bytes; the control API takes at most " + std::to_string(kMaxRequestBytes) +
                      " (a config file up to 16 MiB)"}};
  std::size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // sluiced may have answered why before it closed (a refusal).
      const std::string lost =
          std::string("lost the connection to sluiced: ") + std::strerror(errno);
      if (auto why = next(error, 1000); why && why->is_object()) return why;
      *error = lost;
      return std::nullopt;
    }
    off += static_cast<std::size_t>(n);
  }
  return next(error, timeout_ms);
}

std::optional<nlohmann::json> ApiClient::next(std::string* error, int timeout_ms,
                                              const volatile int* stop) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (stop != nullptr && *stop != 0) {
      *error = "interrupted";
      return std::nullopt;
    }
    const std::size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      nlohmann::json r = parse_json(pending_.substr(0, nl));
      pending_.erase(0, nl + 1);
      if (r.is_discarded()) {
        *error = "sluiced sent a response that is not JSON";
        return std::nullopt;
      }
      return r;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      *error = "sluiced did not answer within " + std::to_string(timeout_ms) + " ms";
      return std::nullopt;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      *error = "sluiced closed the connection";
      return std::nullopt;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    // A config at the loader's limit is 16 MiB, a few times that as JSON at
    // most: a line that goes on past this is not sluiced's.
    if (pending_.size() > kMaxResponseBytes && pending_.find('\n') == std::string::npos) {
      *error = "the response goes on past " + std::to_string(kMaxResponseBytes >> 20) +
               " MiB without ending its line: not sluiced?";
      return std::nullopt;
    }
  }
}

}  // namespace sluice
