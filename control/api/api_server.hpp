// SPDX-License-Identifier: Apache-2.0
// The control API's transports (docs/control-api.md): a JSON-lines Unix
// socket whose file permissions are the access control, and an optional
// loopback HTTP listener that requires a bearer token. Both hand requests to
// one handler; malformed, oversized or slow requests are answered with an
// error and never hold up other clients (thread per connection, bounded).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "control/api/control_state.hpp"

namespace sluice {

using RequestHandler = std::function<nlohmann::json(const nlohmann::json&, const Origin&)>;

struct ApiOptions {
  std::string socket_path;
  uint32_t socket_mode = 0660;
  std::string socket_group;     // "" = leave the group as created
  std::string http_listen;      // "" = no HTTP listener
  std::string http_token_file;  // required with http_listen
};

class ApiServer {
 public:
  static std::unique_ptr<ApiServer> start(const ApiOptions& options, RequestHandler handler,
                                          std::string* error);
  ~ApiServer();  // stops listening, closes connections, joins threads

 private:
  ApiServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
