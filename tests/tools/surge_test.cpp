// sluice-surge, specified by running the real binary against tiny servers on
// 127.0.0.1 (loopback only), plus in-process checks of its building blocks.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tools/surge/latency_histogram.hpp"
#include "tools/surge/surge_config.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;

int bound_socket(int type, uint16_t& port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// Answers every connection with a fixed 200; optionally stalls once (sleeps
// stall_ms before serving connection number stall_at) or never accepts at all
// (connections complete in the kernel backlog and then hear nothing).
class TcpServer {
 public:
  explicit TcpServer(bool answer = true, int stall_at = -1, int stall_ms = 0) {
    fd_ = bound_socket(SOCK_STREAM, port_);
    ::listen(fd_, 4096);
    if (answer) thread_ = std::thread([=, this] { serve(stall_at, stall_ms); });
  }
  ~TcpServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string dst() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void serve(int stall_at, int stall_ms) {
    int served = 0;
    // Bounded: stops when the test ends (stop_) and at most 60 s.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (served++ == stall_at) std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
      timeval tv{0, 200'000};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buf[512];
      ssize_t got = ::recv(c, buf, sizeof(buf) - 1, 0);
      if (got > 0) {
        record(c, std::string(buf, static_cast<size_t>(got)));
        static const char k_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ::send(c, k_resp, sizeof(k_resp) - 1, MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }

  // Which client addresses asked for each intent id ("GET /code/<id>").
  void record(int c, const std::string& request) {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    ::getpeername(c, reinterpret_cast<sockaddr*>(&peer), &len);
    char addr[INET_ADDRSTRLEN] = "";
    ::inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr));
    size_t at = request.find("/code/");
    if (at == std::string::npos) return;
    std::string id = request.substr(at + 6, request.find(' ', at) - at - 6);
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[id];
    peers_[id].insert(addr);
  }

 public:
  std::map<std::string, int> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::map<std::string, std::set<std::string>> peers() {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> requests_;
  std::map<std::string, std::set<std::string>> peers_;
};

class UdpEcho {
 public:
  UdpEcho() {
    fd_ = bound_socket(SOCK_DGRAM, port_);
    thread_ = std::thread([this] {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!stop_ && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        char buf[2048];
        sockaddr_storage from{};
        socklen_t len = sizeof(from);
        ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0)
          ::sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string dst() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A port that was bound then closed: connects are refused (RST).
std::string closed_dst() {
  uint16_t port = 0;
  int fd = bound_socket(SOCK_STREAM, port);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(port);
}

struct RunOutput {
  int exit_code = -1;
  std::string stderr_text;
  json report;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunOutput run_surge_binary(const std::string& args) {
  static int counter = 0;
  std::string base = ::testing::TempDir() + "surge_test_" + std::to_string(::getpid()) + "_" +
                     std::to_string(counter++);
  std::string report = base + ".json", err = base + ".err";
  std::string cmd = std::string(SURGE_BINARY) + " --no-progress --report-json " + report + " " +
                    args + " >/dev/null 2>" + err;
  RunOutput out;
  int rc = std::system(cmd.c_str());
  out.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  out.stderr_text = slurp(err);
  std::string text = slurp(report);
  if (!text.empty()) out.report = json::parse(text, nullptr, false);
  (void)std::remove(report.c_str());
  (void)std::remove(err.c_str());
  return out;
}

const json& default_class(const RunOutput& r) { return r.report["classes"]["default"]; }

TEST(SurgeTest, OfferedRateFollowsTheRequestedPoissonRateAndSuccessesAreCounted) {
  TcpServer server;
  RunOutput r = run_surge_binary("--dst " + server.dst() + " --baseline 500 --duration 2");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  EXPECT_NEAR(c["intents"].get<double>(), 1000.0, 100.0);
  EXPECT_EQ(c["successes"], c["intents"]);
  EXPECT_EQ(c["failures"], 0);
  EXPECT_DOUBLE_EQ(c["amplification"].get<double>(), 1.0);
  // The time series accounts for every intent, about 500 in each second.
  uint64_t offered = 0;
  for (const auto& s : r.report["series"]) offered += s["offered"].get<uint64_t>();
  EXPECT_EQ(offered, c["intents"].get<uint64_t>());
  EXPECT_NEAR(r.report["series"][0]["offered"].get<double>(), 500.0, 75.0);
  EXPECT_LT(c["latency_ms"]["success"]["p50"].get<double>(), 50.0);
}

// An intent is a session of lookups from one address: every lookup of it is
// asked for, each from the address the session started with, and it
// completes only when all have been answered.
TEST(SurgeTest, SessionsAskEveryLookupFromOneAddress) {
  TcpServer server;
  RunOutput r = run_surge_binary("--dst " + server.dst() +
                                 " --baseline 100 --duration 1 --class "
                                 "name=app,src=127.0.0.2+8,session=3,session_gap_ms=5");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = r.report["classes"]["app"];
  const uint64_t intents = c["intents"].get<uint64_t>();
  ASSERT_GT(intents, 50u);
  // Sessions whose next lookup fell due after --duration are unfinished
  // (a session started in the last ~100 ms), never failed.
  const uint64_t done = c["sessions"]["completed"].get<uint64_t>();
  const uint64_t unfinished = c["sessions"]["unfinished"].get<uint64_t>();
  EXPECT_EQ(done + unfinished, intents);
  EXPECT_LE(unfinished, 5u);
  EXPECT_EQ(c["sessions"]["failed"], 0);
  EXPECT_EQ(c["failures"], 0);
  uint64_t completed = 0;
  for (const auto& s : r.report["series"]) completed += s["sessions_completed"].get<uint64_t>();
  EXPECT_EQ(completed, done);
  std::set<std::string> addresses;
  uint64_t whole = 0, asked = 0;
  for (const auto& [id, n] : server.requests()) {
    EXPECT_LE(n, 3) << "intent " << id;
    whole += n == 3;
    asked += static_cast<uint64_t>(n);
  }
  EXPECT_EQ(whole, done);  // every completed session asked for all three lookups
  EXPECT_EQ(asked, c["successes"].get<uint64_t>());
  for (const auto& [id, from] : server.peers()) {
    EXPECT_EQ(from.size(), 1u) << "intent " << id;
    addresses.insert(from.begin(), from.end());
  }
  EXPECT_EQ(addresses.size(), 8u);  // the population is used round-robin
  EXPECT_EQ(server.requests().size(), intents);
}

// A lookup that fails for good fails its session: the next ones are never
// asked for.
TEST(SurgeTest, ASessionEndsAtItsFirstFailedLookup) {
  RunOutput r = run_surge_binary("--dst " + closed_dst() +
                                 " --baseline 100 --duration 0.5 --retry immediate "
                                 "--max-retries 1 --class name=app,session=3");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = r.report["classes"]["app"];
  const uint64_t intents = c["intents"].get<uint64_t>();
  ASSERT_GT(intents, 20u);
  EXPECT_EQ(c["attempts"].get<uint64_t>(), 2 * intents);  // the first lookup and its retry
  EXPECT_EQ(c["sessions"]["failed"].get<uint64_t>(), intents);
  EXPECT_EQ(c["sessions"]["completed"], 0);
}

TEST(SurgeConfigTest, SourcePopulationsAndSessionsAreValidated) {
  SurgeRawInput raw;
  raw.globals["dst"] = "198.18.0.1:80";
  raw.classes.push_back(parse_class_spec("name=a,src=198.18.20.250+10,session=2"));
  SurgeConfig cfg;
  ASSERT_EQ(build_surge_config(raw, cfg), "");
  ASSERT_EQ(cfg.classes[0].sources.size(), 10u);
  EXPECT_EQ(cfg.classes[0].sources[9].text, "198.18.21.3");  // carries into the next octet
  EXPECT_EQ(cfg.classes[0].session_lookups, 2u);
  for (const char* bad :
       {"src=198.18.0.1+0", "src=198.18.0.1+x", "src=198.18.0.1+65537", "src=255.255.255.250+10",
        "session=0", "session=17", "session_gap_ms=-1"}) {
    SurgeRawInput r2 = raw;
    r2.classes = {parse_class_spec(std::string("name=a,") + bad)};
    SurgeConfig c2;
    EXPECT_NE(build_surge_config(r2, c2), "") << bad;
  }
}

TEST(SurgeTest, ReportHasTheDocumentedFields) {
  TcpServer server;
  RunOutput r = run_surge_binary("--dst " + server.dst() + " --baseline 50 --duration 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  for (const char* k : {"intents", "attempts", "amplification", "successes", "failures",
                        "failures_by_kind", "latency_ms", "retries_abandoned"}) {
    EXPECT_TRUE(c.contains(k)) << k;
  }
  for (const char* k : {"reset", "timeout", "error", "overload_local"}) {
    EXPECT_TRUE(c["failures_by_kind"].contains(k)) << k;
  }
  for (const char* outcome : {"success", "failure"}) {
    for (const char* p : {"p50", "p99", "p999"}) {
      EXPECT_TRUE(c["latency_ms"][outcome].contains(p)) << outcome << " " << p;
    }
  }
  ASSERT_TRUE(r.report["series"].is_array());
  ASSERT_FALSE(r.report["series"].empty());
  for (const char* k : {"t", "offered", "attempts", "successes", "failures"}) {
    EXPECT_TRUE(r.report["series"][0].contains(k)) << k;
  }
  EXPECT_TRUE(r.report["series_by_class"]["default"].is_array());
  EXPECT_TRUE(r.report.contains("overall"));
}

TEST(SurgeTest, UdpLookupsSucceedWhenAnyReplyArrives) {
  UdpEcho echo;
  RunOutput r =
      run_surge_binary("--dst " + echo.dst() + " --proto udp --baseline 200 --duration 1");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  EXPECT_GT(c["intents"].get<int>(), 100);
  EXPECT_EQ(c["successes"], c["intents"]);
}

TEST(SurgeTest, ClosedPortFailsWithResetAndOnlyRetryingClientsAmplify) {
  std::string dst = closed_dst();
  RunOutput none = run_surge_binary("--dst " + dst + " --baseline 200 --duration 0.5 --retry none");
  ASSERT_EQ(none.exit_code, 0) << none.stderr_text;
  const json& n = default_class(none);
  EXPECT_GT(n["intents"].get<int>(), 50);
  EXPECT_EQ(n["failures_by_kind"]["reset"], n["attempts"]);
  EXPECT_DOUBLE_EQ(n["amplification"].get<double>(), 1.0);

  RunOutput imm = run_surge_binary(
      "--dst " + dst + " --baseline 200 --duration 0.5 --retry immediate --max-retries 3");
  ASSERT_EQ(imm.exit_code, 0) << imm.stderr_text;
  const json& i = default_class(imm);
  EXPECT_EQ(i["failures_by_kind"]["reset"], i["attempts"]);
  EXPECT_GT(i["amplification"].get<double>(), 1.0);
  EXPECT_NEAR(i["amplification"].get<double>(), 4.0, 0.1);
}

TEST(SurgeTest, ServerThatNeverAnswersGivesTimeouts) {
  TcpServer silent(/*answer=*/false);
  RunOutput r =
      run_surge_binary("--dst " + silent.dst() + " --baseline 100 --duration 0.5 --timeout-ms 200");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  EXPECT_GT(c["attempts"].get<int>(), 20);
  EXPECT_EQ(c["failures_by_kind"]["timeout"], c["attempts"]);
  EXPECT_NEAR(c["latency_ms"]["failure"]["p50"].get<double>(), 200.0, 30.0);
}

TEST(SurgeTest, BackoffSendsFewerAttemptsThanImmediateRetry) {
  std::string dst = closed_dst();
  std::string common = "--dst " + dst + " --baseline 200 --duration 1 --max-retries 5 --seed 7";
  RunOutput imm = run_surge_binary(common + " --retry immediate");
  RunOutput bo =
      run_surge_binary(common + " --retry backoff --backoff-base-ms 200 --backoff-cap-ms 2000");
  ASSERT_EQ(imm.exit_code, 0) << imm.stderr_text;
  ASSERT_EQ(bo.exit_code, 0) << bo.stderr_text;
  EXPECT_LT(default_class(bo)["attempts"].get<int>(), default_class(imm)["attempts"].get<int>());
  EXPECT_GT(default_class(bo)["amplification"].get<double>(), 1.0);
}

TEST(SurgeTest, RefreshingUsersReloadUntilTheyGetACode) {
  // Against a refused port every reload happens (1 + max_retries attempts,
  // minus reloads due after the end); against a server that answers, the
  // reload due after a success is skipped.
  std::string dst = closed_dst();
  RunOutput failing = run_surge_binary("--dst " + dst +
                                       " --baseline 200 --duration 1 --retry refresh"
                                       " --refresh-s 0.1 --max-retries 2");
  ASSERT_EQ(failing.exit_code, 0) << failing.stderr_text;
  const json& f = default_class(failing);
  EXPECT_GT(f["amplification"].get<double>(), 2.5);
  EXPECT_LE(f["amplification"].get<double>(), 3.0);
  EXPECT_GT(f["retries_abandoned"].get<int>(), 0);

  TcpServer server;
  RunOutput ok = run_surge_binary("--dst " + server.dst() +
                                  " --baseline 200 --duration 1 --retry refresh --refresh-s 0.1");
  ASSERT_EQ(ok.exit_code, 0) << ok.stderr_text;
  EXPECT_DOUBLE_EQ(default_class(ok)["amplification"].get<double>(), 1.0);
}

TEST(SurgeTest, RefusesDestinationsOutsideTheLabRanges) {
  for (const char* dst : {"192.0.2.1:80", "[2001:db8::1]:80", "8.8.8.8:53"}) {
    RunOutput r = run_surge_binary(std::string("--dst ") + dst + " --duration 1");
    EXPECT_EQ(r.exit_code, 1) << dst;
    EXPECT_NE(r.stderr_text.find("refused"), std::string::npos) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("198.18.0.0/15"), std::string::npos) << r.stderr_text;
    EXPECT_TRUE(r.report.is_null()) << "nothing may be sent or reported";
  }
  RunOutput in_class = run_surge_binary("--class name=x,dst=192.0.2.1:80 --duration 1");
  EXPECT_EQ(in_class.exit_code, 1);
  EXPECT_NE(in_class.stderr_text.find("refused"), std::string::npos);
}

TEST(SurgeTest, LatencyIsMeasuredFromTheScheduledTimeDuringAStall) {
  // The server sleeps 500 ms once; connections keep arriving (open loop) and
  // queue in the backlog, so ~25 % of requests wait up to 500 ms.
  TcpServer stalling(/*answer=*/true, /*stall_at=*/100, /*stall_ms=*/500);
  RunOutput r = run_surge_binary("--dst " + stalling.dst() +
                                 " --baseline 200 --duration 2 --timeout-ms 3000");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  EXPECT_EQ(c["successes"], c["intents"]);
  EXPECT_GE(c["latency_ms"]["success"]["p99"].get<double>(), 400.0);
  EXPECT_LT(c["latency_ms"]["success"]["p50"].get<double>(), 100.0);
}

TEST(SurgeTest, ScenarioFileSplitsIntentsByShare) {
  TcpServer server;
  std::string path =
      ::testing::TempDir() + "surge_scenario_" + std::to_string(::getpid()) + ".json";
  json scenario = {{"baseline", 400},
                   {"duration", 1},
                   {"dst", server.dst()},
                   {"classes",
                    {{{"name", "checkpoint"}, {"share", 0.2}, {"src", {"127.0.0.2"}}},
                     {{"name", "citizen"}, {"share", 0.8}, {"retry", "backoff"}}}}};
  std::ofstream(path) << scenario.dump();
  RunOutput r = run_surge_binary("--scenario " + path);
  (void)std::remove(path.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  double cp = r.report["classes"]["checkpoint"]["intents"].get<double>();
  double ci = r.report["classes"]["citizen"]["intents"].get<double>();
  EXPECT_NEAR(cp / (cp + ci), 0.2, 0.06);
  EXPECT_EQ(r.report["classes"]["checkpoint"]["successes"].get<double>(), cp);
  EXPECT_EQ(r.report["classes"]["citizen"]["successes"].get<double>(), ci);
}

TEST(SurgeTest, InflightBoundTurnsExcessArrivalsIntoLocalOverload) {
  TcpServer silent(/*answer=*/false);
  RunOutput r = run_surge_binary(
      "--dst " + silent.dst() + " --baseline 200 --duration 0.5 --timeout-ms 300 --max-inflight 5");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const json& c = default_class(r);
  EXPECT_GT(c["failures_by_kind"]["overload_local"].get<int>(), 0);
  EXPECT_EQ(c["failures"], c["attempts"]);  // none dropped silently
}

// --- in-process building blocks ---

bool allowed(const char* text) {
  SurgeEndpoint e;
  EXPECT_EQ(parse_endpoint(text, false, e), "") << text;
  return is_allowed_destination(e.addr);
}

TEST(SurgeConfigTest, OnlyLabAndLoopbackDestinationsAreAllowed) {
  EXPECT_TRUE(allowed("198.18.0.1"));
  EXPECT_TRUE(allowed("198.19.255.255"));
  EXPECT_TRUE(allowed("127.0.0.1"));
  EXPECT_TRUE(allowed("::1"));
  EXPECT_TRUE(allowed("2001:2::10"));
  EXPECT_TRUE(allowed("2001:2:0:ffff::1"));
  EXPECT_FALSE(allowed("198.17.255.255"));
  EXPECT_FALSE(allowed("198.20.0.0"));
  EXPECT_FALSE(allowed("192.0.2.1"));
  EXPECT_FALSE(allowed("2001:2:1::1"));
  EXPECT_FALSE(allowed("2001:db8::1"));
  EXPECT_FALSE(allowed("::ffff:192.0.2.1"));
  EXPECT_TRUE(allowed("::ffff:198.18.1.1"));
}

TEST(SurgeConfigTest, RateProfileStepsRampsAndComesBack) {
  SurgeRawInput raw;
  raw.globals = {{"baseline", "100"}, {"step_to", "1000"}, {"step_at", "2"},
                 {"ramp", "2"},       {"hold", "3"},       {"dst", "127.0.0.1:80"}};
  SurgeConfig cfg;
  ASSERT_EQ(build_surge_config(raw, cfg), "");
  EXPECT_DOUBLE_EQ(cfg.profile.rate_at(1.0), 100.0);
  EXPECT_DOUBLE_EQ(cfg.profile.rate_at(3.0), 550.0);
  EXPECT_DOUBLE_EQ(cfg.profile.rate_at(5.0), 1000.0);
  EXPECT_DOUBLE_EQ(cfg.profile.rate_at(7.5), 100.0);  // back_at = 2 + 2 + 3
}

TEST(SurgeConfigTest, ClassSpecParsesSourcesSharesAndRetryModels) {
  SurgeRawInput raw;
  raw.globals = {{"dst", "[2001:2::1]:443"}};
  raw.classes.push_back(
      parse_class_spec("name=checkpoint,src=2001:2:0:10::2|2001:2:0:10::3,share=0.05,retry=none"));
  raw.classes.push_back(
      parse_class_spec("name=citizen,share=0.95,retry=backoff,base_ms=10,cap_ms=100"));
  SurgeConfig cfg;
  ASSERT_EQ(build_surge_config(raw, cfg), "");
  ASSERT_EQ(cfg.classes.size(), 2u);
  EXPECT_EQ(cfg.classes[0].sources.size(), 2u);
  EXPECT_NEAR(cfg.classes[0].share, 0.05, 1e-9);
  EXPECT_EQ(cfg.classes[1].retry, RetryModel::backoff);
  EXPECT_EQ(cfg.classes[1].backoff_cap_ms, 100u);

  raw.classes.push_back(parse_class_spec("name=x,shrae=1"));
  EXPECT_NE(build_surge_config(raw, cfg).find("unknown key 'shrae'"), std::string::npos);
}

TEST(SurgeConfigTest, HistogramPercentilesAreWithinTheDocumentedError) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) h.record_us(v);
  for (double q : {0.5, 0.99, 0.999}) {
    double exact = q * 100'000;
    EXPECT_NEAR(h.percentile_us(q), exact, exact / 128 + 1) << q;
  }
  LatencyHistogram small;
  small.record_us(17);
  EXPECT_DOUBLE_EQ(small.percentile_us(0.5), 17.0);
}

}  // namespace
}  // namespace sluice
