// SPDX-License-Identifier: Apache-2.0
// The small slice of HTTP/1.x that sluice-backend speaks: one request head
// (plus an optional Content-Length body, which is read and discarded) parsed
// out of a connection's byte buffer. No allocation beyond the strings kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice {

// Heads larger than this are refused with 400: a lab backend never needs
// more, and the bound keeps a slow or hostile client from growing a buffer.
inline constexpr std::size_t kMaxRequestHeadBytes = 8192;
// Bodies are read and thrown away; anything larger is refused with 400.
inline constexpr std::size_t kMaxRequestBodyBytes = std::size_t{64} * 1024;

struct HttpRequest {
  std::string method;
  std::string target;
  bool keep_alive = true;  // HTTP/1.1 default; false after "Connection: close" or for 1.0
};

enum class ParseStatus {
  kIncomplete,  // need more bytes; nothing consumed
  kComplete,    // *request filled, *consumed bytes belong to it
  kMalformed,   // answer 400 and close: the stream cannot be resynchronised
};

// Parses the first request in `buffer`. Chunked request bodies are not
// supported (kMalformed): the lab's clients only send bodiless GETs.
ParseStatus parse_http_request(std::string_view buffer, HttpRequest* request,
                               std::size_t* consumed);

}  // namespace sluice
