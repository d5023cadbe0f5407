// SPDX-License-Identifier: Apache-2.0
#include "tools/backend/http_request.hpp"

#include <cctype>
#include <charconv>

namespace sluice {
namespace {

bool is_token_char(char c) {
  // RFC 9110 tchar.
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Connection is a comma-separated token list ("keep-alive, Upgrade").
bool has_connection_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = trim(value.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

ParseStatus parse_http_request(std::string_view buffer, HttpRequest* request,
                               std::size_t* consumed) {
  // Tolerate empty lines before a request (RFC 9112 2.2), as keep-alive
  // clients sometimes send a stray CRLF after a body.
  std::size_t start = 0;
  while (start + 1 < buffer.size() && buffer[start] == '\r' && buffer[start + 1] == '\n')
    start += 2;
  std::size_t head_end = buffer.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    return buffer.size() - start > kMaxRequestHeadBytes ? ParseStatus::kMalformed
                                                        : ParseStatus::kIncomplete;
  }
  if (head_end - start > kMaxRequestHeadBytes) return ParseStatus::kMalformed;
  std::string_view head = buffer.substr(start, head_end - start);

  std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return ParseStatus::kMalformed;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseStatus::kMalformed;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target.front() != '/') return ParseStatus::kMalformed;
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return ParseStatus::kMalformed;
  bool http11;
  if (version == "HTTP/1.1") {
    http11 = true;
  } else if (version == "HTTP/1.0") {
    http11 = false;
  } else {
    return ParseStatus::kMalformed;
  }

  bool conn_close = false;
  bool conn_keep_alive = false;
  std::size_t content_length = 0;
  bool seen_length = false;
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    std::size_t eol = rest.find("\r\n");
    std::string_view h = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) return ParseStatus::kMalformed;
    std::string_view name = h.substr(0, colon);
    std::string_view value = trim(h.substr(colon + 1));
    if (!is_token(name)) return ParseStatus::kMalformed;  // also rejects obs-fold
    if (iequals(name, "connection")) {
      conn_close = conn_close || has_connection_token(value, "close");
      conn_keep_alive = conn_keep_alive || has_connection_token(value, "keep-alive");
    } else if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || p != value.data() + value.size() || value.empty())
        return ParseStatus::kMalformed;
      // Differing duplicates are a request-smuggling tell (RFC 9112 6.3).
      if (seen_length && n != content_length) return ParseStatus::kMalformed;
      seen_length = true;
      content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      return ParseStatus::kMalformed;
    }
  }
  if (content_length > kMaxRequestBodyBytes) return ParseStatus::kMalformed;
  std::size_t total = head_end + 4 + content_length;
  if (buffer.size() < total) return ParseStatus::kIncomplete;

  request->method.assign(method);
  request->target.assign(target);
  request->keep_alive = http11 ? !conn_close : (conn_keep_alive && !conn_close);
  *consumed = total;
  return ParseStatus::kComplete;
}

}  // namespace sluice
