// SPDX-License-Identifier: Apache-2.0
// sluice-backend as the surge lab relies on it: the HTTP contract, capacity
// that holds at C under overload, queueing delay that grows, timeouts and
// rejections, the report, and the CLI contract of the real binary.
// Loopback only; every load is bounded in count and time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tools/backend/backend_server.hpp"
#include "tools/backend/http_request.hpp"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int connect_loopback(std::uint16_t port, bool nonblocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && !(nonblocking && errno == EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Response {
  int status = -1;
  std::string head;
  std::string body;
};

// Reads one response (Content-Length framed) from a blocking socket, 3 s max.
Response read_response(int fd, std::string* carry) {
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  Response r;
  for (;;) {
    std::size_t end = carry->find("\r\n\r\n");
    if (end != std::string::npos) {
      r.head = carry->substr(0, end);
      std::size_t cl = r.head.find("Content-Length: ");
      std::size_t len = cl == std::string::npos ? 0 : std::stoul(r.head.substr(cl + 16));
      if (carry->size() >= end + 4 + len) {
        r.body = carry->substr(end + 4, len);
        carry->erase(0, end + 4 + len);
        r.status = std::stoi(r.head.substr(9, 3));
        return r;
      }
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return r;
    carry->append(buf, static_cast<std::size_t>(n));
  }
}

bool send_text(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// True if the server closed the connection (EOF within 2 s).
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return false;
  char c;
  return ::recv(fd, &c, 1, 0) == 0;
}

Response request_once(std::uint16_t port, const std::string& raw) {
  int fd = connect_loopback(port, false);
  EXPECT_GE(fd, 0);
  send_text(fd, raw);
  std::string carry;
  Response r = read_response(fd, &carry);
  ::close(fd);
  return r;
}

struct LoadResult {
  int sent = 0;
  int ok = 0;          // 200
  int timed_out = 0;   // 503 "timeout"
  int overloaded = 0;  // 503 "overloaded"
  int other = 0;       // anything else, incl. resets and unfinished
  std::vector<double> ok_latency_ms;
};

// Open-loop load: a new connection every 1/rate s for `duration`, whatever
// the server does (that is what makes overload build up), each sending one
// "Connection: close" GET. Waits at most `drain` after the last send.
// `at_end` runs once, when the last request has been sent.
LoadResult open_loop(std::uint16_t port, double rate, Clock::duration duration,
                     Clock::duration drain, const std::function<void()>& at_end = {}) {
  struct Client {
    int fd;
    Clock::time_point sent_at;
    std::string out;
    std::string in;
  };
  LoadResult result;
  std::vector<Client> clients;
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto begin = Clock::now();
  const auto end = begin + duration;
  auto next = begin;
  bool ended = false;
  auto finish = [&](Client& c) {
    ::close(c.fd);
    c.fd = -1;
    if (c.in.rfind("HTTP/1.1 200", 0) == 0) {
      ++result.ok;
      result.ok_latency_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - c.sent_at).count());
    } else if (c.in.rfind("HTTP/1.1 503", 0) == 0 && c.in.find("timeout") != std::string::npos) {
      ++result.timed_out;
    } else if (c.in.rfind("HTTP/1.1 503", 0) == 0 && c.in.find("overloaded") != std::string::npos) {
      ++result.overloaded;
    } else {
      ++result.other;
    }
  };
  for (;;) {
    auto now = Clock::now();
    while (next <= now && next < end) {
      int fd = connect_loopback(port, true);
      ++result.sent;
      if (fd < 0) {
        ++result.other;
      } else {
        clients.push_back({fd,
                           now,
                           "GET /code/" + std::to_string(result.sent) +
                               " HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
                           {}});
      }
      next += period;
    }
    std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
    if (now >= end && !ended) {
      ended = true;
      if (at_end) at_end();
    }
    if (now >= end && (clients.empty() || now >= end + drain)) break;
    std::vector<pollfd> fds;
    fds.reserve(clients.size());
    for (const Client& c : clients)
      fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
    auto wait =
        next < end ? std::chrono::duration_cast<std::chrono::milliseconds>(next - now) : 5ms;
    ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait.count(), 0)));
    for (std::size_t i = 0; i < fds.size(); ++i) {
      Client& c = clients[i];
      if (fds[i].revents == 0) continue;
      if (!c.out.empty()) {
        ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
          c.out.erase(0, static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN) {
          finish(c);
        }
        continue;
      }
      char buf[2048];
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        finish(c);
      }
    }
  }
  for (Client& c : clients) {
    ::close(c.fd);
    ++result.other;  // never answered within the drain time
  }
  return result;
}

BackendOptions lab_options() {
  BackendOptions o;
  o.listen = "127.0.0.1:0";
  o.workers = 2;
  o.service_time_ms = 10;  // C = 200 req/s
  o.duration_sec = 60;
  return o;
}

TEST(BackendHttp, AnswersCodeHealthNotFoundAndMalformed) {
  BackendServer server(lab_options());
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  std::uint16_t port = server.port();

  Response code = request_once(port, "GET /code/abc-1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(code.status, 200);
  EXPECT_EQ(nlohmann::json::parse(code.body), (nlohmann::json{{"id", "abc-1"}, {"code", "green"}}));
  EXPECT_EQ(request_once(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  EXPECT_EQ(request_once(port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
  EXPECT_EQ(request_once(port, "GET /code/ HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
  EXPECT_EQ(request_once(port, "POST /code/1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").status, 405);
  EXPECT_EQ(request_once(port, "garbage\r\n\r\n").status, 400);
  EXPECT_EQ(request_once(port, "GET /code/1 HTTP/2.0\r\n\r\n").status, 400);
  EXPECT_EQ(request_once(port, "GET /code/1 HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);
  server.stop();
  EXPECT_EQ(server.counters().served, 1u);
}

TEST(BackendHttp, KeepAlivePipeliningAndConnectionClose) {
  BackendServer server(lab_options());
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  int fd = connect_loopback(server.port(), false);
  ASSERT_GE(fd, 0);
  std::string carry;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(send_text(fd, "GET /code/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    Response r = read_response(fd, &carry);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("Connection: keep-alive"), std::string::npos);
  }
  // Two pipelined requests in one segment, the second asking to close.
  ASSERT_TRUE(send_text(fd,
                        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /code/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(read_response(fd, &carry).status, 200);
  Response last = read_response(fd, &carry);
  EXPECT_EQ(last.status, 200);
  EXPECT_NE(last.head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(peer_closed(fd));
  ::close(fd);

  // HTTP/1.0 closes unless it asks to keep alive.
  fd = connect_loopback(server.port(), false);
  carry.clear();
  ASSERT_TRUE(send_text(fd, "GET /health HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(read_response(fd, &carry).status, 200);
  EXPECT_TRUE(peer_closed(fd));
  ::close(fd);
  server.stop();
  EXPECT_EQ(server.counters().served, 4u);
}

// Below capacity, a request waits for no one. The load is 0.8x C, not 1x: at
// exactly C a queue once built (a generator stalled by this shared 2-core
// machine, then catching up) never drains, and the p50 would measure that stall
// rather than the server (a CI run saw 17 ms). The served rate at and above C
// is the next test's.
TEST(BackendLoad, BelowCapacityEverythingIsServedInAboutTheServiceTime) {
  BackendServer server(lab_options());
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  LoadResult r = open_loop(server.port(), 0.8 * server.capacity_per_sec(), 1s, 2s);
  server.stop();
  EXPECT_EQ(r.ok, r.sent);
  EXPECT_EQ(r.timed_out + r.overloaded + r.other, 0);
  nlohmann::json report = server.report();
  EXPECT_EQ(report["served"], r.sent);
  EXPECT_GE(report["latency_ms"]["p50"].get<double>(), 10.0);
  EXPECT_LT(report["latency_ms"]["p50"].get<double>(), 15.0);
  EXPECT_LT(report["latency_ms"]["p99"].get<double>(), 40.0);
}

TEST(BackendLoad, AtThreeTimesCapacityServedRateHoldsQueueGrowsThenTimesOut) {
  BackendOptions o = lab_options();
  o.queue = 5000;  // deep enough that only the timeout sheds
  o.request_timeout_ms = 300;
  BackendServer server(o);
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  const double c = server.capacity_per_sec();
  BackendCounters before = server.counters();
  auto t0 = Clock::now();
  BackendCounters during;
  double elapsed = 0;
  // The backlog drains within the timeout, so every client gets a verdict.
  LoadResult r = open_loop(server.port(), 3 * c, 2s,
                           std::chrono::milliseconds(o.request_timeout_ms + 500), [&] {
                             during = server.counters();
                             elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
                           });
  server.stop();

  double served_per_sec = static_cast<double>(during.served - before.served) / elapsed;
  EXPECT_NEAR(served_per_sec, c, 0.15 * c) << "served/s under 3x load";
  BackendCounters after = server.counters();
  EXPECT_GT(after.timed_out, 0u);
  EXPECT_EQ(after.rejected, 0u);
  nlohmann::json report = server.report();
  // Served requests waited for a worker: far more than the service time, and
  // never (much) more than the timeout.
  EXPECT_GT(report["queue_delay_ms"]["p50"].get<double>(), 5.0 * o.service_time_ms);
  EXPECT_LT(report["queue_delay_ms"]["p99"].get<double>(), o.request_timeout_ms + 20.0);
  EXPECT_GT(report["latency_ms"]["p99"].get<double>(), 10.0 * o.service_time_ms);
  // The full second in the middle of the load ran at capacity.
  ASSERT_GE(report["served_per_sec"].size(), 2u);
  EXPECT_NEAR(report["served_per_sec"][1].get<double>(), c, 0.15 * c);
  EXPECT_GT(r.sent, 1000);
  EXPECT_GT(r.timed_out, 0);
  EXPECT_EQ(r.ok, static_cast<int>(after.served));
}

// The capacity schedule: C, then C/2 from 1 s, then C again from 2 s. A
// closed loop that keeps every worker busy is served at the capacity of the
// time, and the report says the schedule.
TEST(BackendLoad, CapacityFollowsItsSchedule) {
  BackendOptions o = lab_options();
  std::string error;
  ASSERT_TRUE(parse_capacity_schedule("1:0.5,2:1", &o.capacity_schedule, &error)) << error;
  BackendServer server(o);
  ASSERT_TRUE(server.start(&error)) << error;
  EXPECT_EQ(server.capacity_factor_at(0.5), 1.0);
  EXPECT_EQ(server.capacity_factor_at(1.5), 0.5);
  EXPECT_EQ(server.capacity_factor_at(2.5), 1.0);
  const double c = server.capacity_per_sec();
  LoadResult r = open_loop(server.port(), 1.5 * c, 3s, 2s);
  server.stop();
  const nlohmann::json report = server.report();
  const auto& per_sec = report["served_per_sec"];
  ASSERT_GE(per_sec.size(), 3u);
  EXPECT_NEAR(per_sec[0].get<double>(), c, 0.1 * c);
  EXPECT_NEAR(per_sec[1].get<double>(), c / 2, 0.1 * c);
  EXPECT_NEAR(per_sec[2].get<double>(), c, 0.1 * c);
  ASSERT_EQ(report["capacity_schedule"].size(), 3u);
  EXPECT_EQ(report["capacity_schedule"][1]["capacity_per_sec"].get<double>(), c / 2);
  EXPECT_GT(r.sent, 0);
}

TEST(BackendParse, CapacitySchedule) {
  std::vector<BackendOptions::CapacityStep> steps;
  std::string error;
  ASSERT_TRUE(parse_capacity_schedule("20:0.5,40.5:1", &steps, &error)) << error;
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].at_sec, 40.5);
  EXPECT_EQ(steps[0].factor, 0.5);
  for (const char* bad : {"", "20", "20:", ":1", "20:0.5,10:1", "0:1", "20:200", "a:1", "20:1,"}) {
    EXPECT_FALSE(parse_capacity_schedule(bad, &steps, &error)) << bad;
    EXPECT_NE(error.find("--capacity-schedule"), std::string::npos) << bad;
  }
}

TEST(BackendLoad, FullQueueIsAnsweredOverloadedAtOnce) {
  BackendOptions o = lab_options();
  o.queue = 5;
  BackendServer server(o);
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  LoadResult r = open_loop(server.port(), 600.0, 1s, 1s);
  server.stop();
  BackendCounters c = server.counters();
  EXPECT_GT(c.rejected, 0u);
  EXPECT_EQ(c.timed_out, 0u);
  EXPECT_EQ(r.overloaded, static_cast<int>(c.rejected));
  EXPECT_EQ(r.ok, static_cast<int>(c.served));
  EXPECT_EQ(r.other, 0);
  EXPECT_NEAR(static_cast<double>(c.served), server.capacity_per_sec(), 0.15 * 200);
}

TEST(BackendParse, Requests) {
  HttpRequest req;
  std::size_t used = 0;
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\n", &req, &used), ParseStatus::kIncomplete);
  EXPECT_EQ(parse_http_request("GET /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", &req, &used),
            ParseStatus::kIncomplete);
  ASSERT_EQ(
      parse_http_request("GET /a HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\nX", &req, &used),
      ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive);
  EXPECT_EQ(used, 50u);
  ASSERT_EQ(parse_http_request("GET /a HTTP/1.0\r\nconnection: keep-alive\r\n\r\n", &req, &used),
            ParseStatus::kComplete);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(
      parse_http_request("GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req, &used),
      ParseStatus::kMalformed);
  EXPECT_EQ(parse_http_request(std::string(kMaxRequestHeadBytes + 1, 'a'), &req, &used),
            ParseStatus::kMalformed);
}

// --- the real binary ---

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult run_binary_command(const std::string& command) {
  RunResult r;
  std::string cmd = "timeout 10 " + command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) r.output += buf;
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

RunResult run_binary(const std::string& args) {
  return run_binary_command(std::string(SLUICE_BACKEND_BIN) + " " + args);
}

TEST(BackendBinary, BadArgumentsExitOneWithAMessage) {
  struct Case {
    const char* args;
    const char* says;
  } cases[] = {
      {"--workers 0", "--workers"},
      {"--service-time-ms 0", "--service-time-ms"},
      {"--duration-sec 0", "--duration-sec"},
      {"--listen nowhere", "--listen"},
      {"--listen 127.0.0.1:70000", "port"},
      {"--listen [::1:80", "--listen"},
      {"--queue -3", "--queue"},
      {"--capacity-schedule 10", "--capacity-schedule"},
      {"--capacity-schedule 10:0.5,5:1", "--capacity-schedule"},
      {"--capacity-schedule 10:0", "--capacity-schedule"},
      {"--capacity-schedule 10:x", "--capacity-schedule"},
      {"--bogus", "bogus"},
  };
  for (const Case& c : cases) {
    RunResult r = run_binary(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << ": " << r.output;
  }
}

TEST(BackendBinary, RunsForItsDurationAndWritesTheReport) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice-backend-report-" + std::to_string(::getpid()) + ".json");
  RunResult r = run_binary(
      "--listen 127.0.0.1:0 --workers 3 --service-time-ms 20 "
      "--duration-sec 1 --report-json " +
      path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(path);
  nlohmann::json report = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  EXPECT_DOUBLE_EQ(report["capacity_per_sec"].get<double>(), 150.0);
  for (const char* key : {"served", "timed_out", "rejected"}) EXPECT_EQ(report[key], 0) << key;
  EXPECT_TRUE(report["served_per_sec"].is_array());
  for (const char* p : {"p50", "p99", "p999"}) {
    EXPECT_TRUE(report["latency_ms"][p].is_number()) << p;
    EXPECT_TRUE(report["queue_delay_ms"][p].is_number()) << p;
  }
}

TEST(BackendBinary, SigtermStopsEarlyAndStillWritesTheReport) {
  auto path = std::filesystem::temp_directory_path() /
              ("sluice-backend-term-" + std::to_string(::getpid()) + ".json");
  auto started = Clock::now();
  std::string cmd = std::string("sh -c '") + SLUICE_BACKEND_BIN +
                    " --listen 127.0.0.1:0 --duration-sec 30 --report-json " + path.string() +
                    " & pid=$!; sleep 0.5; kill -TERM $pid; wait $pid'";
  RunResult r = run_binary_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(Clock::now() - started, 5s);
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << r.output;
  nlohmann::json report = nlohmann::json::parse(in);
  std::filesystem::remove(path);
  EXPECT_DOUBLE_EQ(report["capacity_per_sec"].get<double>(), 800.0);
}

}  // namespace
}  // namespace sluice
