// SPDX-License-Identifier: Apache-2.0
#include "control/api/api_server.hpp"
#include "control/api/json_parse.hpp"
#include "control/config/config_loader.hpp"

#include <fcntl.h>
#include <grp.h>
#include <httplib.h>
#include <openssl/sha.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace sluice {
namespace {

using json = nlohmann::json;

constexpr int kLineTimeoutMs = 5000;
constexpr int kIdleTimeoutMs = 30000;
// Control connections: at most kMaxConnections at once, each a thread. The
// last kRootReserve slots are root's alone, and no other uid holds more than
// kMaxPerUid, so idle connections of a script (or of anyone the socket's mode
// lets in) cannot lock the operator out.
constexpr int kMaxConnections = 64;
constexpr int kRootReserve = 8;
constexpr int kMaxPerUid = 16;
// The largest body the HTTP listener reads from a client without the token,
// to answer 401 rather than reset (see listen_http).
constexpr unsigned long kUnauthenticatedBodyBytes = 64 * 1024;

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Serialises without throwing: bytes that are not UTF-8 (a path, a value
// echoed from a request) are replaced rather than ending the connection.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string error_line(const std::string& message) {
  return dump(json({{"ok", false}, {"error", message}})) + "\n";
}

std::string token_id(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  return hex;
}

// Compares without an early exit, so timing does not tell how much matched.
bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); i++) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool read_http_token(const std::string& path, std::string* token, std::string* error) {
  if (!read_first_line(path, token, error)) return false;
  while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back())))
    token->pop_back();
  if (token->size() < 16) {
    *error = "the token in " + path + " must be at least 16 characters, found " +
             std::to_string(token->size()) + " on its first line";
    return false;
  }
  return true;
}

struct ApiServer::Impl {
  ApiOptions options;
  RequestHandler handler;
  int listen_fd = -1;
  int stop_pipe[2] = {-1, -1};
  std::thread acceptor;
  std::mutex mutex;
  std::condition_variable idle;
  std::set<int> connections;     // fds being served
  std::map<uid_t, int> per_uid;  // connections being served, by peer uid
  std::map<int, uid_t> uid_of;   // the peer uid of each served fd
  std::atomic<bool> stopping{false};
  std::unique_ptr<httplib::Server> http;
  std::thread http_thread;
  std::atomic<bool> http_done{false};  // listen_after_bind() has returned
  std::string token;

  bool streams(const json& request) const {
    if (!options.stream || !request.contains("op") || !request["op"].is_string()) return false;
    const std::string& op = request["op"].get_ref<const std::string&>();
    return std::find(options.stream_ops.begin(), options.stream_ops.end(), op) !=
           options.stream_ops.end();
  }

  void serve(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    Origin origin{"unix"};
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      origin.uid = static_cast<int>(cred.uid);
      origin.pid = static_cast<int>(cred.pid);
    }
    std::string buffer;
    std::size_t scanned = 0;  // leading bytes of buffer known to hold no newline
    auto line_started = std::chrono::steady_clock::now();
    const std::string too_long =
        "request longer than " + std::to_string(kMaxRequestBytes >> 20) + " MiB";
    for (;;) {
      std::size_t nl;
      while ((nl = buffer.find('\n', scanned)) != std::string::npos) {
        scanned = 0;
        // The limit holds for a line whose newline came in the same read
        // that took it past the limit, not only for one still incomplete.
        if (nl > kMaxRequestBytes) {
          write_all(fd, error_line(too_long));
          return;
        }
        const std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        json response;
        std::string why = "not an object";
        json request = parse_json(line, &why);
        if (request.is_discarded() || !request.is_object()) {
          response = {{"ok", false},
                      {"error", "a request is one JSON object per line, nested at most " +
                                    std::to_string(kMaxJsonDepth) + " levels; this one: " + why}};
        } else if (streams(request)) {
          // The stream owns the connection until it ends; no idle timeout
          // applies while it runs.
          options.stream(request, origin, [this, fd](const json& l) {
            return !stopping && write_all(fd, dump(l) + "\n");  // sluiced stops: it ends
          });
          return;
        } else {
          response = handler(request, origin);
        }
        if (!write_all(fd, dump(response) + "\n")) return;
        line_started = std::chrono::steady_clock::now();
      }
      scanned = buffer.size();
      if (buffer.size() > kMaxRequestBytes) {
        write_all(fd, error_line(too_long));
        return;
      }
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - line_started)
                              .count();
      const int limit = buffer.empty() ? kIdleTimeoutMs : kLineTimeoutMs;
      if (waited >= limit) {
        if (!buffer.empty()) write_all(fd, error_line("request not completed within 5 s"));
        return;
      }
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(limit - waited));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;  // timeout: loop to answer it
      char chunk[65536];
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      if (buffer.empty()) line_started = std::chrono::steady_clock::now();
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0 || stopping) return;
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        // Out of descriptors or memory: back off instead of spinning.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      // A client that never reads must not hold its thread forever in send().
      const timeval send_timeout{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
      ucred cred{};
      socklen_t cred_len = sizeof(cred);
      const uid_t uid = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0
                            ? cred.uid
                            : static_cast<uid_t>(-1);
      std::unique_lock<std::mutex> lock(mutex);
      const int total = static_cast<int>(connections.size());
      std::string refusal;
      if (uid == 0) {
        if (total >= kMaxConnections) refusal = "too many control connections; try again";
      } else if (per_uid[uid] >= kMaxPerUid) {
        refusal = "too many control connections from uid " + std::to_string(uid) + " (at most " +
                  std::to_string(kMaxPerUid) + "); close some and try again";
      } else if (total >= kMaxConnections - kRootReserve) {
        refusal = "too many control connections; the rest are kept for root; try again";
      }
      if (!refusal.empty()) {
        if (per_uid[uid] == 0) per_uid.erase(uid);
        lock.unlock();
        // "busy": a client tries again (sluicectl: exit 2, as for a daemon
        // still starting), not a refused request.
        write_all(fd, dump(json({{"ok", false}, {"busy", true}, {"error", refusal}})) + "\n");
        ::close(fd);
        continue;
      }
      connections.insert(fd);
      per_uid[uid]++;
      uid_of[fd] = uid;
      lock.unlock();
      auto release = [this](int done) {  // with mutex held
        ::close(done);
        connections.erase(done);
        const uid_t u = uid_of[done];
        uid_of.erase(done);
        if (--per_uid[u] == 0) per_uid.erase(u);
      };
      try {
        std::thread([this, fd, release] {
          serve(fd);
          std::lock_guard<std::mutex> guard(mutex);
          release(fd);
          idle.notify_all();
        }).detach();
      } catch (const std::system_error&) {
        write_all(fd, error_line("sluiced is busy; try again"));
        std::lock_guard<std::mutex> guard(mutex);
        release(fd);
      }
    }
  }

  bool listen_unix(std::string* error) {
    const std::string& path = options.socket_path;
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      *error = "control.socket: path too long";
      return false;
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    // A socket file left by a dead sluiced is replaced; a live one is not.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        *error = "control.socket: " + path + " exists and is not a socket";
        ::close(fd);
        return false;
      }
      const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool live = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      ::close(probe);
      if (live) {
        *error = "control.socket: " + path + " is in use by another sluiced";
        ::close(fd);
        return false;
      }
      ::unlink(path.c_str());
    }
    // Created with no access for anyone, then opened up to the configured mode.
    const mode_t old_mask = ::umask(0777);
    const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::umask(old_mask);
    if (rc != 0 || ::listen(fd, 64) != 0) {
      *error = "control.socket: cannot listen on " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    listen_fd = fd;  // from here on ours to unlink
    if (!options.socket_group.empty()) {
      const group* g = ::getgrnam(options.socket_group.c_str());
      if (g == nullptr || ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
        *error = "control.socket_group: cannot give " + path + " to group " + options.socket_group;
        return false;
      }
    }
    if (::chmod(path.c_str(), options.socket_mode) != 0) {
      *error = "control.socket_mode: cannot chmod " + path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }

  bool listen_http(std::string* error) {
    if (!read_http_token(options.http_token_file, &token, error)) {
      *error = "control.http_token_file: " + *error;
      return false;
    }
    const std::string id = token_id(token);
    http = std::make_unique<httplib::Server>();
    // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which
    // another process could bind the same port silently.
    http->set_socket_options([](socket_t sock) {
      const int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http->set_payload_max_length(kMaxRequestBytes);
    http->set_read_timeout(5, 0);
    // Connections served at once, as on the Unix socket (cpp-httplib's
    // default is 8, and it bounds each read, not a whole request).
    http->new_task_queue = [] { return new httplib::ThreadPool(kMaxConnections); };
    // One request per connection: after a refusal the unread body must not
    // be taken for a next request, and a retune needs no keep-alive.
    http->set_keep_alive_max_count(1);
    // The token is checked on the headers, before httplib reads a body: a
    // client without it cannot make the daemon read and hold 32 MiB.
    auto refused = [this](const httplib::Request& req, httplib::Response& res) {
      const std::string auth = req.get_header_value("Authorization");
      // The scheme's name is case-insensitive (RFC 9110), the token not.
      const std::string prefix = "Bearer ";
      const bool bearer = auth.size() >= prefix.size() &&
                          strncasecmp(auth.c_str(), prefix.c_str(), prefix.size()) == 0;
      if (bearer && constant_time_equal(auth.substr(prefix.size()), token)) return false;
      res.status = 401;
      res.set_content(json({{"ok", false}, {"error", "missing or wrong bearer token"}}).dump(),
                      "application/json");
      return true;
    };
    // A small body sent without asking first (curl's --data of a config) is
    // read before the 401: closing on unread bytes would send a reset, and
    // the client, still sending, would see that instead of the answer. The
    // handlers below refuse it. Refused on the headers, unread (its client
    // may see the reset): a larger or chunked body; a compressed one
    // (httplib would inflate it first: 421 bytes of brotli are 512 MiB);
    // one on a method whose body httplib never reads.
    http->set_pre_routing_handler([refused](const httplib::Request& req, httplib::Response& res) {
      if (!refused(req, res)) {
        // Nor from a client with the token: a request is a JSON text, and
        // an inflated body has no bound but memory.
        if (!req.has_header("Content-Encoding") ||
            req.get_header_value("Content-Encoding") == "identity")
          return httplib::Server::HandlerResponse::Unhandled;
        res.status = 415;
        res.set_content(
            dump(json({{"ok", false},
                       {"error", "Content-Encoding " + req.get_header_value("Content-Encoding") +
                                     " is not taken: send the JSON request as it is"}})),
            "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      const bool read = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                        req.method == "DELETE";
      const bool plain =
          !req.has_header("Transfer-Encoding") && !req.has_header("Content-Encoding");
      const std::string length = req.get_header_value("Content-Length");
      const bool small_body = read && plain && !length.empty() && length.size() <= 6 &&
                              length.find_first_not_of("0123456789") == std::string::npos &&
                              std::stoul(length) > 0 &&
                              std::stoul(length) <= kUnauthenticatedBodyBytes;
      return small_body ? httplib::Server::HandlerResponse::Unhandled
                        : httplib::Server::HandlerResponse::Handled;
    });
    // A client that asks before it sends its body (Expect: 100-continue,
    // as curl does for a large one) gets the 401 instead of "continue".
    http->set_expect_100_continue_handler(
        [refused](const httplib::Request& req, httplib::Response& res) {
          return refused(req, res) ? 401 : 100;
        });
    http->Post("/v1/request", [this, id, refused](const httplib::Request& req,
                                                  httplib::Response& res) {
      if (refused(req, res)) return;
      std::string why = "not an object";
      json request = parse_json(req.body, &why);
      json response =
          request.is_discarded() || !request.is_object()
              ? json({{"ok", false},
                      {"error", "the body must be one JSON object, nested at most " +
                                    std::to_string(kMaxJsonDepth) + " levels; this one: " + why}})
              : handler(request, Origin{"http", -1, -1, id});
      res.status = response.value("ok", false) ? 200 : 400;
      res.set_content(dump(response), "application/json");
    });
    // Anything else says what is served, as JSON too.
    auto only_post = [](const httplib::Request&, httplib::Response& res) {
      res.status = 405;
      res.set_header("Allow", "POST");
      res.set_content(dump(json({{"ok", false}, {"error", "POST a JSON request to /v1/request"}})),
                      "application/json");
    };
    http->Get("/v1/request", only_post);
    http->Put("/v1/request", only_post);
    http->Delete("/v1/request", only_post);
    http->Patch("/v1/request", only_post);
    // httplib calls it outside its own try: nothing in it may throw (the
    // path is URL-decoded and may be any bytes; dump() replaces those).
    http->set_error_handler([refused](const httplib::Request& req, httplib::Response& res) {
      // A small body's refusal (above) on any other method or path: the
      // same 401 as every other (no 405's Allow).
      if (res.status != 401 && refused(req, res)) {
        res.headers.erase("Allow");
        return;
      }
      if (!res.body.empty()) return;
      // httplib reads a form's body (curl -d's default type) up to 8 KiB
      // only, which a whole config passes.
      const bool form =
          req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
      const std::string error =
          res.status == 404 ? "nothing at " + req.path + ": POST to /v1/request"
          : res.status == 413 && form
              ? "HTTP 413: a body sent as application/x-www-form-urlencoded (curl -d's default) "
                "is read up to 8 KiB; send the JSON request with Content-Type: application/json"
          : res.status == 413 ? "HTTP 413: the request is larger than " +
                                    std::to_string(kMaxRequestBytes >> 20) + " MiB"
                              : "HTTP " + std::to_string(res.status) +
                                    ": expected a POST of one JSON request to /v1/request";
      res.set_content(dump(json({{"ok", false}, {"error", error}})), "application/json");
    });
    const std::string& l = options.http_listen;
    const std::size_t colon = l.rfind(':');
    std::string host = l.substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    const int port = std::stoi(l.substr(colon + 1));
    errno = 0;
    if (!http->bind_to_port(host, port)) {
      *error = "control.http_listen: cannot listen on " + l;
      if (errno != 0) *error += std::string(": ") + std::strerror(errno);
      return false;
    }
    http_thread = std::thread([this] {
      http->listen_after_bind();
      http_done = true;
    });
    return true;
  }

  void stop() {
    stopping = true;
    if (stop_pipe[1] >= 0) {
      const char c = 1;
      (void)!::write(stop_pipe[1], &c, 1);
    }
    if (acceptor.joinable()) acceptor.join();
    {
      std::unique_lock<std::mutex> lock(mutex);
      // Read no more requests, but answer the one being handled: a change
      // applied as sluiced stopped was audited and enforced, and its client
      // got "sluiced closed the connection" instead of its generation.
      for (int fd : connections) ::shutdown(fd, SHUT_RD);
      idle.wait(lock, [this] { return connections.empty(); });
    }
    // httplib's stop() does nothing until listen_after_bind() has marked the
    // server running; a stop() that raced ahead of the thread would leave it
    // listening and the join waiting forever. So stop until it has returned.
    while (http && http_thread.joinable() && !http_done) {
      http->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (http_thread.joinable()) http_thread.join();
    if (listen_fd >= 0) {
      ::close(listen_fd);
      ::unlink(options.socket_path.c_str());
    }
    for (int& fd : stop_pipe)
      if (fd >= 0) ::close(fd);
  }
};

std::unique_ptr<ApiServer> ApiServer::start(const ApiOptions& options, RequestHandler handler,
                                            std::string* error) {
  std::unique_ptr<ApiServer> s(new ApiServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.options = options;
  impl.handler = std::move(handler);
  if (::pipe2(impl.stop_pipe, O_CLOEXEC) != 0) {
    *error = "cannot create a pipe";
    return nullptr;
  }
  if (!impl.listen_unix(error)) return nullptr;
  if (!options.http_listen.empty() && !impl.listen_http(error)) return nullptr;
  impl.acceptor = std::thread([&impl] { impl.accept_loop(); });
  return s;
}

ApiServer::~ApiServer() {
  if (impl_) impl_->stop();
}

}  // namespace sluice
