// SPDX-License-Identifier: Apache-2.0
// The control API's transports (docs/control-api.md): JSON lines on a Unix
// socket whose permissions are the access control, and the loopback HTTP
// listener behind a bearer token. Malformed, oversized and slow requests are
// answered with an error and never hold up other clients.
#include "control/api/api_server.hpp"
#include "control/api/json_parse.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <condition_variable>
#include <mutex>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "control/api/api_client.hpp"
#include "tests/control/api/control_test_env.hpp"
#include "tests/support/privileges.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::ControlHarness;
using test::json;
using Clock = std::chrono::steady_clock;

// A client speaking the framing by hand, to send what ApiClient never would:
// half lines, junk, oversized lines.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "cannot connect to " << path << ": " << std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
    }
  }
  // Over TCP to 127.0.0.1:port, for the HTTP listener.
  explicit RawConnection(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // False once the server has closed its end (EPIPE / ECONNRESET).
  bool send_all(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // The next response line, or nullopt on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const std::size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  // True when the server sends nothing (and does not close) for `span`.
  bool quiet_for(std::chrono::milliseconds span) {
    pollfd p{fd_, POLLIN, 0};
    return pending_.empty() && ::poll(&p, 1, static_cast<int>(span.count())) == 0;
  }

  // Everything until the server closes (or the timeout).
  std::string read_to_end(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (fill(deadline)) {
    }
    return std::exchange(pending_, std::string());
  }

  // Whether that close was a reset rather than an orderly end.
  bool was_reset() const { return reset_; }

  // True when the server closes the connection (EOF or reset) before the
  // deadline, with nothing more to read.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (!fill(deadline)) return eof_;
    }
    return false;
  }

 private:
  bool fill(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0 && errno == ECONNRESET) reset_ = true;
      eof_ = true;
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
  bool eof_ = false;
  bool reset_ = false;
};

json parse_line(const std::optional<std::string>& line) {
  if (!line) return json();
  return json::parse(*line, nullptr, false);
}

// A free loopback TCP port: bound once by the kernel's choice, then released
// for the server to take.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

class ApiServerTest : public ::testing::Test {
 protected:
  ApiOptions options(uint32_t mode = 0660) const {
    ApiOptions o;
    o.socket_path = socket_path_;
    o.socket_mode = mode;
    return o;
  }

  RequestHandler handler() {
    return [this](const json& request, const Origin& origin) {
      return h_.state().handle(request, origin);
    };
  }

  std::unique_ptr<ApiServer> start(const ApiOptions& o) {
    std::string error;
    auto server = ApiServer::start(o, handler(), &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }

  // A server with the HTTP listener on a free loopback port (*port), its
  // bearer token in a file.
  std::unique_ptr<ApiServer> start_http(const std::string& token, int* port) {
    const std::string token_file = h_.dir().file("http.token");
    test::write_text(token_file, token + "\n");
    *port = free_loopback_port();
    if (*port <= 0) return nullptr;
    ApiOptions o = options();
    o.http_listen = "127.0.0.1:" + std::to_string(*port);
    o.http_token_file = token_file;
    return start(o);
  }

  ApiClient connect() {
    std::string error;
    auto client = ApiClient::connect(socket_path_, &error);
    EXPECT_TRUE(client.has_value()) << error;
    // No client means nothing later in the test can hold: end it here (gtest
    // reports the exception as a failure of this test).
    if (!client) throw std::runtime_error(error);
    return std::move(*client);
  }

  ControlHarness h_;
  std::string socket_path_ = h_.dir().file("control.sock");
};

// ---------------------------------------------------------------------------
// Unix socket

TEST_F(ApiServerTest, SocketIsCreatedWithTheConfiguredModeAndServesStatus) {
  auto server = start(options(0660));
  ASSERT_NE(server, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);

  ApiClient client = connect();
  std::string error;
  auto r = client.call({{"op", "status"}}, &error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ((*r)["ok"], true) << r->dump();
  EXPECT_EQ((*r)["generation"], 1);
  EXPECT_EQ((*r)["classes"].size(), 3u);
}

TEST_F(ApiServerTest, OneConnectionCarriesManyRequestsAndTheAuditNamesThePeer) {
  auto server = start(options());
  ApiClient client = connect();
  std::string error;
  for (int i = 0; i < 100; i++) {
    const char* op = i % 3 == 0 ? "status" : i % 3 == 1 ? "get" : "history";
    auto r = client.call({{"op", op}}, &error);
    ASSERT_TRUE(r.has_value()) << "request " << i << ": " << error;
    ASSERT_EQ((*r)["ok"], true) << r->dump();
    ASSERT_EQ((*r)["generation"], 1);
  }
  auto set = client.call(test::set_request({{"class.citizen.rate_per_sec", "20000"}}), &error);
  ASSERT_TRUE(set.has_value()) << error;
  ASSERT_EQ((*set)["ok"], true) << set->dump();
  EXPECT_EQ((*set)["generation"], 2);

  // SO_PEERCRED: the audit line names this process.
  const std::vector<json> audit = test::read_audit(h_.audit_path());
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["origin"], (json{{"transport", "unix"},
                                      {"uid", static_cast<int>(::getuid())},
                                      {"pid", static_cast<int>(::getpid())}}));
}

TEST_F(ApiServerTest, ConcurrentClientsAllGetTheirAnswers) {
  auto server = start(options());
  constexpr int kClients = 8;
  constexpr int kRequests = 50;
  std::atomic<int> answered{0};
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; c++) {
    threads.emplace_back([&, c] {
      std::string error;
      auto client = ApiClient::connect(socket_path_, &error);
      if (!client) {
        failures[c] = error;
        return;
      }
      for (int i = 0; i < kRequests; i++) {
        // Dry runs go through the same mutex as real changes without
        // changing the generation the others check.
        const json request =
            i % 2 == 0
                ? json{{"op", "status"}}
                : test::set_request({{"class.citizen.rate_per_sec", std::to_string(1000 + c)}},
                                    /*dry_run=*/true);
        auto r = client->call(request, &error);
        if (!r || !(*r)["ok"].get<bool>() || (*r)["generation"] != 1) {
          failures[c] = r ? r->dump() : error;
          return;
        }
        answered++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int c = 0; c < kClients; c++) EXPECT_EQ(failures[c], "") << "client " << c;
  EXPECT_EQ(answered.load(), kClients * kRequests);
}

TEST_F(ApiServerTest, LineThatIsNotJsonGetsAnErrorAndTheConnectionStillAnswers) {
  auto server = start(options());
  RawConnection conn(socket_path_);
  ASSERT_TRUE(conn.send_all("this is not json\n"));
  const json bad = parse_line(conn.read_line(2s));
  ASSERT_TRUE(bad.is_object()) << bad.dump();
  EXPECT_EQ(bad["ok"], false);
  EXPECT_NE(bad["error"].get<std::string>().find("JSON object"), std::string::npos) << bad.dump();

  ASSERT_TRUE(conn.send_all("[1, 2]\n"));  // JSON, but not an object
  const json array = parse_line(conn.read_line(2s));
  EXPECT_EQ(array["ok"], false) << array.dump();

  // Nested 200,000 deep (400 KB): parsed without recursion, but copied and
  // dumped by it, which overflowed the stack and killed sluiced.
  ASSERT_TRUE(conn.send_all("{\"op\": \"set\", \"settings\": " + std::string(200000, '[') +
                            std::string(200000, ']') + "}\n"));
  const json deep = parse_line(conn.read_line(5s));
  EXPECT_EQ(deep["ok"], false) << deep.dump();
  EXPECT_NE(deep["error"].get<std::string>().find("nested at most 32 levels"), std::string::npos)
      << deep.dump();

  // A NUL and junk after the object: nlohmann's lexer stops at a NUL, so
  // this was answered as a status.
  ASSERT_TRUE(conn.send_all(std::string("{\"op\": \"status\"}\0garbage\n", 25)));
  const json nul = parse_line(conn.read_line(2s));
  EXPECT_EQ(nul["ok"], false) << nul.dump();

  // One key twice: nlohmann keeps the last, so this ran a set.
  ASSERT_TRUE(conn.send_all("{\"op\": \"status\", \"op\": \"rollback\", \"dry_run\": true}\n"));
  const json twice = parse_line(conn.read_line(2s));
  EXPECT_EQ(twice["ok"], false) << twice.dump();
  EXPECT_NE(twice["error"].get<std::string>().find("the key \"op\" is given twice"),
            std::string::npos)
      << twice.dump();

  ASSERT_TRUE(conn.send_all("{\"op\": \"status\"}\n"));
  const json good = parse_line(conn.read_line(2s));
  EXPECT_EQ(good["ok"], true) << good.dump();
  EXPECT_EQ(good["generation"], 1);
}

TEST_F(ApiServerTest, LineLongerThanTheLimitGetsAnErrorAndIsClosed) {
  auto server = start(options());
  RawConnection conn(socket_path_);
  // Sent from another thread: the server stops reading once over the limit,
  // so a blocking send would otherwise stall this one.
  std::thread sender(
      [&conn] { conn.send_all(std::string(kMaxRequestBytes + (256 << 10), 'x') + "\n"); });
  const json r = parse_line(conn.read_line(5s));
  sender.join();
  ASSERT_TRUE(r.is_object()) << "no error line before the close";
  EXPECT_EQ(r["ok"], false);
  EXPECT_NE(r["error"].get<std::string>().find("request longer than 32 MiB"), std::string::npos)
      << r.dump();
  EXPECT_TRUE(conn.closed_within(2s));
  EXPECT_EQ(h_.state().generation(), 1u);
}

TEST_F(ApiServerTest, TheLimitHoldsForACompleteLineToo) {
  auto server = start(options());
  // A valid request padded with whitespace to exactly the limit is served...
  const std::string request = "{\"op\": \"status\"}";
  {
    RawConnection conn(socket_path_);
    std::string line = request + std::string(kMaxRequestBytes - request.size(), ' ');
    ASSERT_EQ(line.size(), kMaxRequestBytes);
    std::thread sender([&conn, line] { conn.send_all(line + "\n"); });
    const json r = parse_line(conn.read_line(5s));
    sender.join();
    EXPECT_EQ(r["ok"], true) << r.dump().substr(0, 200);
  }
  // ...one byte more is refused even though its newline arrives with it.
  {
    RawConnection conn(socket_path_);
    std::string line = request + std::string(kMaxRequestBytes + 1 - request.size(), ' ');
    std::thread sender([&conn, line] { conn.send_all(line + "\n"); });
    const json r = parse_line(conn.read_line(5s));
    sender.join();
    EXPECT_EQ(r["ok"], false) << r.dump().substr(0, 200);
    EXPECT_TRUE(conn.closed_within(2s));
  }
}

TEST_F(ApiServerTest, SlowClientDoesNotHoldUpOthersAndTimesOutAfterFiveSeconds) {
  auto server = start(options());
  RawConnection slow(socket_path_);
  const auto stalled_at = Clock::now();
  ASSERT_TRUE(slow.send_all("{\"op\": \"sta"));

  // Another client is served at once while the slow line is pending.
  const auto asked = Clock::now();
  ApiClient other = connect();
  std::string error;
  auto r = other.call({{"op", "status"}}, &error, 1000);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ((*r)["ok"], true);
  EXPECT_LT(Clock::now() - asked, 1s);
  EXPECT_LT(Clock::now() - stalled_at, 4s) << "the slow line must still be pending here";

  const json timeout = parse_line(slow.read_line(8s));
  const auto waited = Clock::now() - stalled_at;
  ASSERT_TRUE(timeout.is_object()) << "no timeout error from the server";
  EXPECT_EQ(timeout["ok"], false);
  EXPECT_NE(timeout["error"].get<std::string>().find("not completed within 5 s"), std::string::npos)
      << timeout.dump();
  EXPECT_GE(waited, 4500ms);
  EXPECT_LT(waited, 7s);
  EXPECT_TRUE(slow.closed_within(2s));
}

TEST_F(ApiServerTest, SecondServerOnALiveSocketIsRefused) {
  auto first = start(options());
  ASSERT_NE(first, nullptr);
  std::string error;
  auto second = ApiServer::start(options(), handler(), &error);
  EXPECT_EQ(second, nullptr);
  EXPECT_NE(error.find("in use by another sluiced"), std::string::npos) << error;
  EXPECT_NE(error.find(socket_path_), std::string::npos) << error;

  // The refusal left the first server's socket alone.
  ApiClient client = connect();
  auto r = client.call({{"op", "status"}}, &error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ((*r)["ok"], true);
}

TEST_F(ApiServerTest, StaleSocketFileIsReplaced) {
  // A socket file with nobody listening, as a killed sluiced leaves it.
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    ::close(fd);
  }
  struct stat st {};
  ASSERT_EQ(::stat(socket_path_.c_str(), &st), 0);
  ASSERT_TRUE(S_ISSOCK(st.st_mode));

  auto server = start(options());
  ASSERT_NE(server, nullptr);
  ApiClient client = connect();
  std::string error;
  auto r = client.call({{"op", "status"}}, &error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ((*r)["ok"], true);
}

TEST_F(ApiServerTest, PathThatIsNotASocketIsLeftAlone) {
  test::write_text(socket_path_, "precious");
  std::string error;
  auto server = ApiServer::start(options(), handler(), &error);
  EXPECT_EQ(server, nullptr);
  EXPECT_NE(error.find("is not a socket"), std::string::npos) << error;
  EXPECT_EQ(test::read_text(socket_path_), "precious");
}

TEST_F(ApiServerTest, StoppingRemovesTheSocket) {
  auto server = start(options());
  ASSERT_TRUE(std::filesystem::exists(socket_path_));
  RawConnection idle(socket_path_);  // an open connection must not keep it alive
  server.reset();
  EXPECT_FALSE(std::filesystem::exists(socket_path_));
  EXPECT_TRUE(idle.closed_within(2s));
}

// sluiced stopping while a request is being handled: the client still gets
// its answer (a change applied as sluiced stopped is enforced and audited;
// its client got "closed the connection" and could not tell).
TEST_F(ApiServerTest, StoppingAnswersTheRequestBeingHandled) {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false, release = false;
  RequestHandler slow = [&](const json& request, const Origin&) {
    if (request.value("op", "") == "status") return json{{"ok", true}};
    std::unique_lock<std::mutex> lock(m);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return json{{"ok", true}, {"generation", 7}};
  };
  std::string error;
  auto server = ApiServer::start(options(), slow, &error);
  ASSERT_NE(server, nullptr) << error;
  RawConnection conn(socket_path_);
  ASSERT_TRUE(conn.send_all("{\"op\": \"set\"}\n"));
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return entered; }));
  }
  std::thread stopping([&] { server.reset(); });
  // The stop has begun once a new connection's status goes unanswered (it
  // accepts none): then the request being handled is released.
  for (int i = 0; i < 100; i++) {
    RawConnection probe(socket_path_);
    if (!probe.send_all("{\"op\": \"status\"}\n") || !probe.read_line(200ms)) break;
  }
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  const json answer = parse_line(conn.read_line(5s));
  stopping.join();
  EXPECT_EQ(answer["generation"], 7) << answer.dump();
  EXPECT_TRUE(conn.closed_within(2s));
}

TEST_F(ApiServerTest, UnknownSocketGroupIsRefusedWithTheKeyNamed) {
  ApiOptions o = options(0660);
  o.socket_group = "no-such-group-sluice";
  std::string error;
  EXPECT_EQ(ApiServer::start(o, handler(), &error), nullptr);
  EXPECT_NE(error.find("control.socket_group"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists(socket_path_)) << "a failed start leaves no socket";
}

// ---------------------------------------------------------------------------
// HTTP

std::string token_id_of(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  return hex;
}

TEST_F(ApiServerTest, HttpNeedsTheRightBearerTokenAndAuditsTheTokenIdOnly) {
  const std::string token = "Q7f2kL9xW3mN8pR4tV6yB1cD5gH0jZsA";
  ASSERT_EQ(token.size(), 32u);
  int port = 0;
  auto server = start_http(token, &port);
  ASSERT_NE(server, nullptr);

  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(2, 0);
  http.set_read_timeout(5, 0);
  const std::string status = json{{"op", "status"}}.dump();

  auto none = http.Post("/v1/request", status, "application/json");
  ASSERT_TRUE(none) << httplib::to_string(none.error());
  EXPECT_EQ(none->status, 401);
  const json none_body = json::parse(none->body, nullptr, false);
  EXPECT_EQ(none_body["ok"], false) << none->body;
  EXPECT_TRUE(none_body["error"].is_string()) << none->body;

  for (const std::string& wrong :
       {std::string("Bearer ") + token.substr(0, 31) + "B", std::string("Bearer ") + token + "x",
        std::string("Bearer "), std::string("Basic ") + token, token}) {
    SCOPED_TRACE(wrong);
    auto r = http.Post("/v1/request", {{"Authorization", wrong}}, status, "application/json");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(json::parse(r->body, nullptr, false)["ok"], false) << r->body;
  }
  EXPECT_EQ(h_.state().generation(), 1u);

  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto ok = http.Post("/v1/request", auth, status, "application/json");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);
  const json ok_body = json::parse(ok->body, nullptr, false);
  EXPECT_EQ(ok_body["ok"], true) << ok->body;
  EXPECT_EQ(ok_body["generation"], 1);
  // The scheme's name in any case (RFC 9110); the token exactly.
  auto lower =
      http.Post("/v1/request", {{"Authorization", "bearer " + token}}, status, "application/json");
  ASSERT_TRUE(lower) << httplib::to_string(lower.error());
  EXPECT_EQ(lower->status, 200) << lower->body;

  // Other methods and paths: an answer that says what is served.
  auto get = http.Get("/v1/request", auth);
  ASSERT_TRUE(get) << httplib::to_string(get.error());
  EXPECT_EQ(get->status, 405);
  EXPECT_NE(get->body.find("POST a JSON request to /v1/request"), std::string::npos) << get->body;
  // A path that decodes to bytes that are not UTF-8 is answered, not a crash.
  auto odd = http.Get("/%ff%fe", auth);
  ASSERT_TRUE(odd) << httplib::to_string(odd.error());
  EXPECT_EQ(odd->status, 404);
  EXPECT_EQ(json::parse(odd->body, nullptr, false)["ok"], false) << odd->body;
  auto elsewhere = http.Post("/v2/request", auth, status, "application/json");
  ASSERT_TRUE(elsewhere) << httplib::to_string(elsewhere.error());
  EXPECT_EQ(elsewhere->status, 404);
  EXPECT_EQ(json::parse(elsewhere->body, nullptr, false)["ok"], false) << elsewhere->body;

  auto junk = http.Post("/v1/request", auth, "not json", "application/json");
  ASSERT_TRUE(junk) << httplib::to_string(junk.error());
  EXPECT_EQ(junk->status, 400);
  EXPECT_EQ(json::parse(junk->body, nullptr, false)["ok"], false) << junk->body;

  const json set = test::set_request({{"class.citizen.rate_per_sec", "20000"}});
  auto changed = http.Post("/v1/request", auth, set.dump(), "application/json");
  ASSERT_TRUE(changed) << httplib::to_string(changed.error());
  EXPECT_EQ(changed->status, 200) << changed->body;
  EXPECT_EQ(json::parse(changed->body, nullptr, false)["generation"], 2) << changed->body;

  // A config of more than 8 KiB sent as a form (curl -d's default type):
  // httplib reads no more; the answer says which header to send. As JSON
  // the same request is read.
  json big = test::set_request({{"class.citizen.rate_per_sec", "20000"}});
  big["padding"] = std::string(9000, 'x');
  auto form = http.Post("/v1/request", auth, big.dump(), "application/x-www-form-urlencoded");
  ASSERT_TRUE(form) << httplib::to_string(form.error());
  EXPECT_EQ(form->status, 413);
  EXPECT_NE(form->body.find("Content-Type: application/json"), std::string::npos) << form->body;
  auto as_json = http.Post("/v1/request", auth, big.dump(), "application/json");
  ASSERT_TRUE(as_json) << httplib::to_string(as_json.error());
  EXPECT_NE(as_json->status, 413) << as_json->body;

  const std::vector<json> audit = test::read_audit(h_.audit_path());
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["origin"], (json{{"transport", "http"}, {"token_id", token_id_of(token)}}));
  EXPECT_EQ(audit[0]["op"], "set");
  EXPECT_EQ(test::read_text(h_.audit_path()).find(token), std::string::npos)
      << "the audit log must never hold the token";
}

// A client without the token is answered on its headers: the daemon does
// not wait for, read or hold the body it announces (here 32 MiB, never sent).
// Reading it first would answer 400 after the 5 s read timeout instead.
TEST_F(ApiServerTest, HttpRefusesAWrongTokenBeforeReadingTheBody) {
  int port = 0;
  auto server = start_http("Q7f2kL9xW3mN8pR4tV6yB1cD5gH0jZsA", &port);
  ASSERT_NE(server, nullptr);

  RawConnection raw(port);
  ASSERT_TRUE(
      raw.send_all("POST /v1/request HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer not-the-token\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: " +
                   std::to_string(kMaxRequestBytes) + "\r\n\r\n"));
  const std::optional<std::string> status_line = raw.read_line(10s);
  ASSERT_TRUE(status_line.has_value()) << "no answer";
  EXPECT_EQ(status_line->rfind("HTTP/1.1 401", 0), 0u) << *status_line;
  // The unread body is never taken for a next request: the server closes.
  EXPECT_TRUE(raw.closed_within(10s));

  // A client that waits for "100 Continue" before its body gets the 401.
  RawConnection asking(port);
  ASSERT_TRUE(
      asking.send_all("POST /v1/request HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer not-the-token\r\n"
                      "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"));
  const std::optional<std::string> answer = asking.read_line(10s);
  ASSERT_TRUE(answer.has_value()) << "no answer";
  EXPECT_EQ(answer->rfind("HTTP/1.1 401", 0), 0u) << *answer;
  EXPECT_EQ(h_.state().generation(), 1u);
}

// A client that sends a small body without asking first (curl --data with a
// config to apply) gets the whole 401 and an orderly close, on any method or
// path: the server reads the body it refuses before it answers. It answered
// on the headers and closed, so a client still sending its body was reset.
TEST_F(ApiServerTest, HttpReadsASmallBodySentUnaskedBeforeItsRefusal) {
  int port = 0;
  auto server = start_http("Q7f2kL9xW3mN8pR4tV6yB1cD5gH0jZsA", &port);
  ASSERT_NE(server, nullptr);
  const std::string body = "{\"op\":\"status\",\"pad\":\"" + std::string(60 * 1024, 'x') + "\"}";
  for (const char* start : {"POST /v1/request", "PUT /v1/request", "POST /elsewhere"}) {
    SCOPED_TRACE(start);
    RawConnection raw(port);
    ASSERT_TRUE(raw.send_all(std::string(start) +
                             " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Authorization: Bearer not-the-token\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n"));
    EXPECT_TRUE(raw.quiet_for(300ms)) << "answered before the body it announced";
    ASSERT_TRUE(raw.send_all(body));
    const std::optional<std::string> status_line = raw.read_line(10s);
    ASSERT_TRUE(status_line.has_value()) << "no answer";
    EXPECT_EQ(status_line->rfind("HTTP/1.1 401", 0), 0u) << *status_line;
    const std::string rest = raw.read_to_end(10s);
    EXPECT_NE(rest.find("missing or wrong bearer token"), std::string::npos) << rest;
    EXPECT_TRUE(raw.closed_within(1s));
    EXPECT_FALSE(raw.was_reset());
    EXPECT_EQ(rest.find("Allow:"), std::string::npos) << "a 401 like any other";
  }
  // A compressed body is not read (httplib would inflate it: 421 bytes of
  // brotli make 512 MiB), nor one on a method whose body httplib never reads:
  // both refused on their headers.
  for (const char* head :
       {"POST /v1/request HTTP/1.1\r\nContent-Encoding: br\r\n", "GET /v1/request HTTP/1.1\r\n"}) {
    SCOPED_TRACE(head);
    RawConnection raw(port);
    ASSERT_TRUE(raw.send_all(std::string(head) +
                             "Host: 127.0.0.1\r\nAuthorization: Bearer not-the-token\r\n"
                             "Content-Length: 100\r\n\r\n"));
    const std::optional<std::string> status_line = raw.read_line(10s);
    ASSERT_TRUE(status_line.has_value()) << "no answer before the body";
    EXPECT_EQ(status_line->rfind("HTTP/1.1 401", 0), 0u) << *status_line;
  }
  // With the token, a compressed body is refused too (unbounded once inflated).
  RawConnection encoded(port);
  ASSERT_TRUE(encoded.send_all(
      "POST /v1/request HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
      "Authorization: Bearer Q7f2kL9xW3mN8pR4tV6yB1cD5gH0jZsA\r\nContent-Length: 100\r\n\r\n"));
  const std::optional<std::string> status_line = encoded.read_line(10s);
  ASSERT_TRUE(status_line.has_value()) << "no answer before the body";
  EXPECT_EQ(status_line->rfind("HTTP/1.1 415", 0), 0u) << *status_line;
  EXPECT_NE(encoded.read_to_end(10s).find("Content-Encoding gzip is not taken"), std::string::npos);
  EXPECT_EQ(h_.state().generation(), 1u);
}

// httplib's stop() is a no-op until its listen thread has started; a server
// stopped right after it started used to wait forever for that thread.
TEST_F(ApiServerTest, HttpListenerStopsEvenRightAfterStarting) {
  const std::string token_file = h_.dir().file("http.token");
  test::write_text(token_file, std::string(32, 'k') + "\n");
  ApiOptions o = options();
  o.http_token_file = token_file;
  for (int i = 0; i < 20; i++) {
    o.http_listen = "127.0.0.1:" + std::to_string(free_loopback_port());
    auto server = start(o);
    ASSERT_NE(server, nullptr);
    // The regression is a hang, so stop on another thread and give up on
    // the whole process (nothing else can be trusted then) after 5 s.
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      server.reset();
      stopped = true;
    });
    if (!test::eventually([&] { return stopped.load(); }, 5s)) {
      std::fprintf(stderr, "FATAL: ApiServer with HTTP did not stop within 5 s (round %d)\n", i);
      std::fflush(stderr);
      std::_Exit(1);
    }
    stopper.join();
  }
}

TEST_F(ApiServerTest, HttpRefusesAShortOrMissingTokenFile) {
  ApiOptions o = options();
  o.http_listen = "127.0.0.1:" + std::to_string(free_loopback_port());
  o.http_token_file = h_.dir().file("missing.token");
  std::string error;
  EXPECT_EQ(ApiServer::start(o, handler(), &error), nullptr);
  EXPECT_NE(error.find("control.http_token_file"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists(socket_path_)) << "a failed start leaves no socket";

  test::write_text(o.http_token_file, "short\n");
  error.clear();
  EXPECT_EQ(ApiServer::start(o, handler(), &error), nullptr);
  EXPECT_NE(error.find("at least 16"), std::string::npos) << error;
}

// ---------------------------------------------------------------------------
// Access: the socket's permissions are the access control (root only, since
// the test needs another uid to knock on the door).

// Runs `body` in a child process as uid/gid with no supplementary groups;
// returns its exit code (or -1 if it did not exit normally). The child
// never returns into the test framework.
int run_as(uid_t uid, gid_t gid, const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0) ::_exit(90);
    if (::setgid(gid) != 0) ::_exit(91);
    if (::setuid(uid) != 0) ::_exit(92);
    if (::geteuid() != uid || ::getegid() != gid) ::_exit(93);
    ::_exit(body());
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

constexpr uid_t kNobody = 65534;

// Exit codes of the child's connection attempt.
constexpr int kRefused = 0;            // connect failed with Permission denied
constexpr int kServed = 1;             // connect and a status request worked
constexpr int kOtherFailure = 2;       // connect failed otherwise
constexpr int kConnectedNoAnswer = 3;  // connected but the request failed

int try_status(const std::string& socket_path) {
  std::string error;
  auto client = ApiClient::connect(socket_path, &error);
  if (!client)
    return error.find("Permission denied") != std::string::npos ? kRefused : kOtherFailure;
  auto r = client->call({{"op", "status"}}, &error, 5000);
  return r && (*r)["ok"] == true ? kServed : kConnectedNoAnswer;
}

// The name and gid of a group to give the socket: one every Debian has.
std::optional<std::pair<std::string, gid_t>> socket_group() {
  for (const char* name : {"nogroup", "daemon"}) {
    if (const group* g = ::getgrnam(name)) return std::make_pair(std::string(name), g->gr_gid);
  }
  return std::nullopt;
}

class ApiAccessTest : public ApiServerTest {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_ROOT();
    // mkdtemp makes the directory 0700: open it for traversal so that only
    // the socket's own mode decides who gets in.
    ASSERT_EQ(::chmod(h_.dir().path().c_str(), 0755), 0);
  }
};

TEST_F(ApiAccessTest, OwnerOnlySocketRefusesOtherUsers) {
  auto server = start(options(0600));
  ASSERT_NE(server, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(socket_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);

  EXPECT_EQ(run_as(kNobody, kNobody, [this] { return try_status(socket_path_); }), kRefused);
  // Root itself still gets in.
  EXPECT_EQ(try_status(socket_path_), kServed);
}

TEST_F(ApiAccessTest, GroupSocketAdmitsItsGroupOnly) {
  const auto grp = socket_group();
  // Debian always has both; a machine without either cannot show the check.
  if (!grp) {
    if (std::getenv("CI") != nullptr) FAIL() << "neither group nogroup nor daemon exists";
    GTEST_SKIP() << "neither group nogroup nor daemon exists (outside CI)";
  }
  ApiOptions o = options(0660);
  o.socket_group = grp->first;
  auto server = start(o);
  ASSERT_NE(server, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(socket_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, grp->second);

  // An unprivileged user in the socket's group is served...
  EXPECT_EQ(run_as(kNobody, grp->second, [this] { return try_status(socket_path_); }), kServed);
  // ...the same user in another group is not.
  const gid_t other = grp->second == 1 ? 2 : 1;
  EXPECT_EQ(run_as(kNobody, other, [this] { return try_status(socket_path_); }), kRefused);
}

// Connects `count` times to the socket and asks each connection for status:
// a refused one answers with its refusal line and is closed; a held one
// answers the request and stays open. Returns the held fds; *refusals
// collects the refusal lines.
std::vector<int> hold_connections(const std::string& path, int count,
                                  std::vector<std::string>* refusals) {
  std::vector<int> held;
  for (int i = 0; i < count; i++) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    const timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      refusals->push_back(std::string("connect: ") + std::strerror(errno));
      ::close(fd);
      continue;
    }
    const std::string request = "{\"op\": \"status\"}\n";
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string line;
    char c;
    while (line.size() < (1 << 20) && ::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
    if (line.find("\"ok\":true") != std::string::npos) {
      held.push_back(fd);
    } else {
      refusals->push_back(line.empty() ? "closed" : line);
      ::close(fd);
    }
  }
  return held;
}

// Idle connections cannot lock the operator out: no uid but root holds more
// than 16, and the last 8 of the 64 slots are root's alone.
TEST_F(ApiAccessTest, IdleConnectionsOfOtherUsersCannotLockRootOut) {
  auto server = start(options(0666));
  ASSERT_NE(server, nullptr);
  // Five users, 20 connections each, holding them until told to let go.
  struct Child {
    pid_t pid;
    int report;  // the child writes "held refused_per_uid refused_for_root\n"
    int release;
  };
  std::vector<Child> children;
  for (uid_t uid : {kNobody, kNobody - 1, kNobody - 2, kNobody - 3, kNobody - 4}) {
    int report[2], release[2];
    ASSERT_EQ(::pipe(report), 0);
    ASSERT_EQ(::pipe(release), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(90);
      std::vector<std::string> refusals;
      std::vector<int> held = hold_connections(socket_path_, 20, &refusals);
      int per_uid = 0, for_root = 0, busy = 0;
      for (const std::string& r : refusals) {
        per_uid += r.find("too many control connections from uid " + std::to_string(uid)) !=
                   std::string::npos;
        for_root += r.find("kept for root") != std::string::npos;
        // Busy, not refused: sluicectl tries again (exit 2), as at a start.
        busy += r.find("\"busy\":true") != std::string::npos;
      }
      const std::string line = std::to_string(held.size()) + " " + std::to_string(per_uid) + " " +
                               std::to_string(for_root) + " " + std::to_string(busy) + "\n";
      (void)!::write(report[1], line.data(), line.size());
      char c;
      (void)!::read(release[0], &c, 1);
      ::_exit(0);
    }
    ::close(report[1]);
    ::close(release[0]);
    children.push_back({pid, report[0], release[1]});
    // One user at a time, so that who gets refused for what is known.
    char buf[64] = {};
    ASSERT_GT(::read(report[0], buf, sizeof(buf) - 1), 0);
    int held = 0, per_uid = 0, for_root = 0, busy = 0;
    ASSERT_EQ(std::sscanf(buf, "%d %d %d %d", &held, &per_uid, &for_root, &busy), 4) << buf;
    SCOPED_TRACE("uid " + std::to_string(uid));
    const int before = 16 * static_cast<int>(children.size() - 1);
    const int room = std::max(0, std::min(16, 56 - before));  // 56 = 64 - root's 8
    EXPECT_EQ(held, room);
    EXPECT_EQ(per_uid + for_root, 20 - room);
    EXPECT_EQ(for_root, room < 16 ? 20 - room : 0);
    EXPECT_EQ(busy, 20 - room);
  }
  // 56 connections of other users are held: root still gets in.
  EXPECT_EQ(try_status(socket_path_), kServed);
  for (Child& c : children) {
    (void)!::write(c.release, "x", 1);
    ::close(c.release);
    ::close(c.report);
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
}

}  // namespace
}  // namespace sluice
