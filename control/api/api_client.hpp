// SPDX-License-Identifier: Apache-2.0
// Client side of the control API's Unix socket (docs/control-api.md), used by
// sluicectl and the tests.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice {

class ApiClient {
 public:
  // Connects to the socket; nullopt + *error when sluiced cannot be reached.
  static std::optional<ApiClient> connect(const std::string& socket_path, std::string* error);
  ApiClient(ApiClient&& other) noexcept;
  ApiClient& operator=(ApiClient&&) = delete;
  ~ApiClient();

  // Sends one request, waits up to timeout_ms for its response. A request
  // the API would refuse unread (longer than kMaxRequestBytes (json_parse.hpp), or a string
  // that is not UTF-8) comes back refused, {"ok": false, "error"}, unsent.
  std::optional<nlohmann::json> call(const nlohmann::json& request, std::string* error,
                                     int timeout_ms = 10000);
  // The next line of a streamed response (after call() returned the first).
  // stop: a flag a signal handler sets; once set, the wait ends at the
  // signal's interruption (nullopt, *error "interrupted").
  std::optional<nlohmann::json> next(std::string* error, int timeout_ms = 10000,
                                     const volatile int* stop = nullptr);

 private:
  explicit ApiClient(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string pending_;
};

}  // namespace sluice
