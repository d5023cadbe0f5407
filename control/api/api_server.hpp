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
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/control_state.hpp"

namespace sluice {

using RequestHandler = std::function<nlohmann::json(const nlohmann::json&, const Origin&)>;
// An op that answers with a stream of lines (capture): `emit` writes one and
// says false once the client is gone; the connection closes after it.
using StreamHandler = std::function<void(const nlohmann::json& request, const Origin& origin,
                                         const std::function<bool(const nlohmann::json&)>& emit)>;

struct ApiOptions {
  std::string socket_path;
  uint32_t socket_mode = 0660;
  std::string socket_group;     // "" = leave the group as created
  std::string http_listen;      // "" = no HTTP listener
  std::string http_token_file;  // required with http_listen
  // Ops answered by `stream` on the Unix socket instead of the handler.
  std::vector<std::string> stream_ops;
  StreamHandler stream;
};

// The HTTP listener's bearer token: the first line of the file, trailing
// whitespace dropped, at least 16 characters. False with *error saying what
// is wrong with the file (control.http_token_file's; sluiced --check-config
// reads it too, and names the key's line).
bool read_http_token(const std::string& path, std::string* token, std::string* error);

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
