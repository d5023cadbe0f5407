// SPDX-License-Identifier: Apache-2.0
// The Prometheus exporter over real HTTP on loopback: exact exposition lines
// (names, labels, values) for fake dataplane and control figures, figures
// read at scrape time only, queue and port metrics only when the dataplane
// queues and owns its ports (DPDK), and listen addresses that cannot work
// giving an error instead of a crash.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "control/metrics.hpp"
#include "tests/support/dpdk_stats.hpp"

namespace sluice {
namespace {

// A plain HTTP/1.0 GET of /metrics on the loopback (127.0.0.1, or ::1 for
// AF_INET6) at port: the body, or "" when the connection fails.
std::string scrape(int port, const std::string& path = "/metrics", int family = AF_INET) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval timeout{5, 0};  // a hung exporter fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    a->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  }
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  ::close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

std::set<std::string> lines_of(const std::string& body) {
  std::set<std::string> lines;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

::testing::AssertionResult has_line(const std::string& body, const std::string& line) {
  if (lines_of(body).count(line) != 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no line\n  " << line << "\nin\n" << body;
}

::testing::AssertionResult lacks(const std::string& body, const std::string& text) {
  if (body.find(text) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "unexpected '" << text << "' in\n" << body;
}

// An XDP dataplane mid-surge: the citizen class sheds, checkpoint does not.
DataplaneStats xdp_stats() {
  DataplaneStats s;
  s.mode = "xdp";
  s.attach = "native";
  s.generation = 3;
  ClassStats checkpoint;
  checkpoint.name = "checkpoint";
  checkpoint.lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 100;
  checkpoint.packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 100;
  checkpoint.packets[SL_VERDICT_ADMITTED][SL_REASON_CONTINUATION] = 700;
  checkpoint.bucket_tokens = 2000;
  ClassStats citizen;
  citizen.name = "citizen";
  citizen.lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 25;
  citizen.lookups[SL_VERDICT_SHED][SL_REASON_CLASS_RATE] = 375;
  citizen.packets[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 25;
  citizen.packets[SL_VERDICT_SHED][SL_REASON_CLASS_RATE] = 375;
  citizen.packets[SL_VERDICT_SHED][SL_REASON_MALFORMED] = 2;
  citizen.bucket_tokens = 0;
  citizen.sticky_threshold = SL_RANK_ONE / 4;
  ClassStats fallback;
  fallback.name = "default";
  fallback.packets[SL_VERDICT_ADMITTED][SL_REASON_NON_IP] = 4;
  s.classes = {checkpoint, citizen, fallback};
  s.boundary_lookup_tokens = 3990;
  s.boundary_packet_tokens = 199000;
  s.source_table_capacity = 65536;
  s.flow_table_capacity = 262144;
  s.flow_entries[0] = 120;
  s.flow_entries[5] = 3000;
  s.flow_events[0][SL_FLOW_EV_CREATED] = 150;
  s.flow_events[5][SL_FLOW_EV_EVICTED] = 7;
  s.flow_events[5][SL_FLOW_EV_LEARNED] = 40;
  return s;
}

ControlFigures control_figures() {
  ControlFigures c;
  c.generation = 3;
  c.changes_applied = 2;
  c.changes_rejected = 1;
  c.reloads_applied = 1;
  c.reloads_rejected = 0;
  c.last_change_unix_sec = 1795680000.5;
  c.boundary_lookups_per_sec = 40000;
  c.boundary_packets_per_sec = 0;
  c.class_rate_per_sec = {{"checkpoint", 20000}, {"citizen", 5}, {"default", 0}};
  c.boundary_lookups_enforced = 10000;  // a fleet share
  c.class_rate_enforced = {{"checkpoint", 5000}, {"citizen", 5}, {"default", 0}};
  c.class_priority = {{"checkpoint", 0}, {"citizen", 5}, {"default", 7}};
  return c;
}

// Starts an exporter on a free high port of 127.0.0.1 (a few tries: another
// process may hold one). *port receives the port.
std::unique_ptr<MetricsExporter> start_on_free_port(std::function<DataplaneStats()> dataplane,
                                                    std::function<ControlFigures()> control,
                                                    int* port) {
  for (int attempt = 0; attempt < 20; attempt++) {
    *port = 20000 + static_cast<int>((::getpid() * 131 + attempt * 977) % 40000);
    std::string error;
    auto exporter =
        MetricsExporter::start("127.0.0.1:" + std::to_string(*port), dataplane, control, &error);
    if (exporter) return exporter;
  }
  ADD_FAILURE() << "no free port for the exporter";
  return nullptr;
}

// One exporter serves the whole suite;
// each test sets the figures its callbacks return. Scrapes are synchronous,
// so the callbacks are never swapped while a scrape reads them.
class MetricsExporterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    exporter_ = start_on_free_port([] { return dataplane_(); }, [] { return control_(); }, &port_);
  }
  static void TearDownTestSuite() { exporter_.reset(); }
  void SetUp() override {
    ASSERT_NE(exporter_, nullptr);
    dataplane_ = xdp_stats;
    control_ = control_figures;
  }

  static inline std::unique_ptr<MetricsExporter> exporter_;
  static inline int port_ = 0;
  static inline std::function<DataplaneStats()> dataplane_;
  static inline std::function<ControlFigures()> control_;
};

TEST_F(MetricsExporterTest, ServesDecisionCountersPerClassVerdictAndReason) {
  const std::string body = scrape(port_);
  ASSERT_FALSE(body.empty());

  EXPECT_TRUE(has_line(body, "# TYPE sluice_lookups_total counter"));
  EXPECT_TRUE(has_line(body, "# TYPE sluice_packets_total counter"));
  // Non-zero combinations, labels in the order class, verdict, reason.
  EXPECT_TRUE(has_line(
      body, R"(sluice_lookups_total{class="checkpoint",verdict="admitted",reason="lookup"} 100)"));
  EXPECT_TRUE(has_line(
      body, R"(sluice_lookups_total{class="citizen",verdict="shed",reason="class_rate"} 375)"));
  EXPECT_TRUE(has_line(
      body,
      R"(sluice_packets_total{class="checkpoint",verdict="admitted",reason="continuation"} 700)"));
  EXPECT_TRUE(has_line(
      body, R"(sluice_packets_total{class="citizen",verdict="shed",reason="malformed"} 2)"));
  EXPECT_TRUE(has_line(
      body, R"(sluice_packets_total{class="default",verdict="admitted",reason="non_ip"} 4)"));
  // Admitted lookups and every reason XDP can shed for exist from zero.
  EXPECT_TRUE(has_line(
      body, R"(sluice_lookups_total{class="default",verdict="admitted",reason="lookup"} 0)"));
  for (const char* reason : {"malformed", "class_rate", "per_source", "sticky", "boundary_lookups",
                             "boundary_packets", "unverified"}) {
    EXPECT_TRUE(has_line(body, std::string(R"(sluice_lookups_total{class="checkpoint",)") +
                                   R"(verdict="shed",reason=")" + reason + "\"} 0"));
    EXPECT_TRUE(has_line(body, std::string(R"(sluice_packets_total{class="default",)") +
                                   R"(verdict="shed",reason=")" + reason + "\"} 0"));
  }
  // Nothing else at zero: no continuation lookups, no queue reasons on XDP.
  EXPECT_TRUE(lacks(
      body,
      R"(sluice_lookups_total{class="checkpoint",verdict="admitted",reason="continuation"})"));
  EXPECT_TRUE(lacks(body, R"(verdict="admitted",reason="class_rate")"));
  EXPECT_TRUE(lacks(body, "queue_full"));
  EXPECT_TRUE(lacks(body, "queue_delay"));
}

// A sluiced that has just started, nothing counted yet: every counter with
// a `result` or `reason` label already has its series at 0, so that
// increase() and rate() see the first rejection, reload failure, start
// failure or shed (a series born at 1 shows no increase).
TEST_F(MetricsExporterTest, CountersWithAResultOrReasonLabelStartAtZero) {
  dataplane_ = [] {
    DataplaneStats s;
    s.mode = "xdp";
    ClassStats only;
    only.name = "citizen";
    s.classes = {only};
    return s;
  };
  control_ = [] { return ControlFigures{}; };
  const std::string body = scrape(port_);
  ASSERT_FALSE(body.empty());
  for (const char* line : {
           R"(sluice_config_changes_total{result="applied"} 0)",
           R"(sluice_config_changes_total{result="rejected"} 0)",
           R"(sluice_config_reloads_total{result="applied"} 0)",
           R"(sluice_config_reloads_total{result="rejected"} 0)",
           R"(sluice_start_failures_total{reason="config"} 0)",
           R"(sluice_start_failures_total{reason="dataplane"} 0)",
           R"(sluice_lookups_total{class="citizen",verdict="admitted",reason="lookup"} 0)",
       })
    EXPECT_TRUE(has_line(body, line));
  for (const char* reason : {"malformed", "class_rate", "per_source", "sticky", "boundary_lookups",
                             "boundary_packets", "unverified"})
    for (const char* family : {"sluice_lookups_total", "sluice_packets_total"})
      EXPECT_TRUE(has_line(
          body,
          std::string(family) + R"({class="citizen",verdict="shed",reason=")" + reason + "\"} 0"));
  // And no series of these families is missing its zero: every `reason` and
  // `result` value served is 0 here.
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line.find("result=") == std::string::npos && line.find("reason=") == std::string::npos)
      continue;
    EXPECT_EQ(line.substr(line.rfind(' ') + 1), "0") << line;
  }
}

TEST_F(MetricsExporterTest, ServesBudgetsConfigAndDataplaneGauges) {
  const std::string body = scrape(port_);
  ASSERT_FALSE(body.empty());

  for (const char* line : {
           R"(sluice_class_priority{class="checkpoint"} 0)",
           R"(sluice_class_priority{class="citizen"} 5)",
           R"(sluice_dataplane_fallback 0)",
           R"(# TYPE sluice_bucket_tokens gauge)",
           R"(sluice_bucket_tokens{class="checkpoint"} 2000)",
           R"(sluice_bucket_tokens{class="citizen"} 0)",
           R"(sluice_sticky_admitted_ratio{class="checkpoint"} 1)",
           R"(sluice_sticky_admitted_ratio{class="citizen"} 0.25)",
           R"(sluice_class_rate_per_sec{class="citizen"} 5)",
           R"(sluice_class_rate_per_sec{class="default"} 0)",
           R"(sluice_boundary_tokens{budget="lookups"} 3990)",
           R"(sluice_boundary_tokens{budget="packets"} 199000)",
           R"(sluice_boundary_rate_per_sec{budget="lookups"} 40000)",
           R"(sluice_boundary_rate_per_sec{budget="packets"} 0)",
           R"(sluice_boundary_enforced_rate_per_sec{budget="lookups"} 10000)",
           R"(sluice_boundary_enforced_rate_per_sec{budget="packets"} 0)",
           R"(sluice_class_enforced_rate_per_sec{class="checkpoint"} 5000)",
           R"(# TYPE sluice_config_generation gauge)",
           R"(sluice_config_generation 3)",
           R"(sluice_dataplane_generation 3)",
           R"(# TYPE sluice_config_changes_total counter)",
           R"(sluice_config_changes_total{result="applied"} 2)",
           R"(sluice_config_changes_total{result="rejected"} 1)",
           R"(sluice_config_reloads_total{result="applied"} 1)",
           R"(sluice_config_reloads_total{result="rejected"} 0)",
           R"(sluice_config_last_change_timestamp_seconds 1795680000.5)",
           R"(sluice_dataplane_info{mode="xdp",attach="native"} 1)",
           R"(sluice_dataplane_up 1)",
           R"(sluice_source_table_capacity 65536)",
           R"(# TYPE sluice_flows gauge)",
           R"(sluice_flows{priority="0"} 120)",
           R"(sluice_flows{priority="5"} 3000)",
           R"(sluice_flows{priority="7"} 0)",
           R"(sluice_flow_table_capacity 262144)",
           R"(# TYPE sluice_flow_events_total counter)",
           R"(sluice_flow_events_total{priority="0",event="created"} 150)",
           R"(sluice_flow_events_total{priority="5",event="evicted"} 7)",
           R"(sluice_flow_events_total{priority="5",event="learned"} 40)",
           R"(sluice_flow_events_total{priority="3",event="confirmed"} 0)",
           R"(sluice_exporter_callback_errors_total 0)",
       }) {
    EXPECT_TRUE(has_line(body, line));
  }
  // XDP neither queues nor owns its ports: no queue or port families at all,
  // not even their TYPE lines.
  EXPECT_TRUE(lacks(body, "sluice_queue_"));
  EXPECT_TRUE(lacks(body, "sluice_port_"));
}

// A DPDK dataplane with two priority queues and both ports.
DataplaneStats dpdk_stats() {
  DataplaneStats s = xdp_stats();
  s.mode = "dpdk";
  s.attach = "2 workers";  // status text only: DPDK attaches nothing
  s.queues = test::sample_dpdk_queues();
  s.ports = test::sample_dpdk_ports();
  return s;
}

TEST_F(MetricsExporterTest, QueueDepthAndDelayHistogramWhenTheDataplaneQueues) {
  dataplane_ = dpdk_stats;
  const std::string body = scrape(port_);
  ASSERT_FALSE(body.empty());
  for (const char* line : {
           R"(# TYPE sluice_queue_depth gauge)",
           R"(sluice_queue_depth{priority="0"} 7)",
           R"(sluice_queue_depth{priority="5"} 0)",
           R"(# TYPE sluice_queue_delay_seconds histogram)",
           R"(sluice_queue_delay_seconds_bucket{priority="0",le="0.0001"} 10)",
           R"(sluice_queue_delay_seconds_bucket{priority="0",le="0.001"} 15)",
           R"(sluice_queue_delay_seconds_bucket{priority="0",le="0.005"} 17)",
           R"(sluice_queue_delay_seconds_bucket{priority="0",le="+Inf"} 18)",
           R"(sluice_queue_delay_seconds_count{priority="0"} 18)",
           R"(sluice_queue_delay_seconds_sum{priority="0"} 0.02)",
           R"(sluice_queue_delay_seconds_bucket{priority="5",le="+Inf"} 0)",
           R"(sluice_dataplane_info{mode="dpdk"} 1)",
           // Queues exist, so queue reasons are exported from zero.
           R"(sluice_lookups_total{class="citizen",verdict="shed",reason="queue_full"} 0)",
           R"(sluice_lookups_total{class="citizen",verdict="shed",reason="queue_delay"} 0)",
           // Drops of every queue by cause, from zero.
           R"(# TYPE sluice_queue_dropped_total counter)",
           R"(sluice_queue_dropped_total{priority="0",cause="full"} 3)",
           R"(sluice_queue_dropped_total{priority="0",cause="delay"} 11)",
           R"(sluice_queue_dropped_total{priority="5",cause="full"} 0)",
           R"(sluice_queue_dropped_total{priority="5",cause="delay"} 0)",
       }) {
    EXPECT_TRUE(has_line(body, line));
  }
}

TEST_F(MetricsExporterTest, PortPacketsAndDropsWhenTheDataplaneOwnsPorts) {
  dataplane_ = dpdk_stats;
  const std::string body = scrape(port_);
  ASSERT_FALSE(body.empty());
  for (const char* line : {
           R"(# TYPE sluice_port_packets_total counter)",
           R"(sluice_port_packets_total{port="outside",direction="rx"} 123456)",
           R"(sluice_port_packets_total{port="outside",direction="tx"} 1000)",
           R"(sluice_port_packets_total{port="inside",direction="rx"} 999)",
           R"(sluice_port_packets_total{port="inside",direction="tx"} 120000)",
           R"(# TYPE sluice_port_dropped_total counter)",
           R"(sluice_port_dropped_total{port="outside",cause="rx_missed"} 17)",
           R"(sluice_port_dropped_total{port="outside",cause="rx_nombuf"} 2)",
           R"(sluice_port_dropped_total{port="outside",cause="tx_errors"} 0)",
           R"(sluice_port_dropped_total{port="outside",cause="tx_dropped"} 0)",
           R"(sluice_port_dropped_total{port="inside",cause="rx_missed"} 0)",
           R"(sluice_port_dropped_total{port="inside",cause="rx_nombuf"} 0)",
           R"(sluice_port_dropped_total{port="inside",cause="tx_errors"} 5)",
           R"(sluice_port_dropped_total{port="inside",cause="tx_dropped"} 8)",
       }) {
    EXPECT_TRUE(has_line(body, line));
  }
  // Exactly one series per port and direction, four causes per port.
  std::size_t packet_series = 0, drop_series = 0;
  for (const std::string& l : lines_of(body)) {
    if (l.rfind("sluice_port_packets_total{", 0) == 0) packet_series++;
    if (l.rfind("sluice_port_dropped_total{", 0) == 0) drop_series++;
  }
  EXPECT_EQ(packet_series, 4u);
  EXPECT_EQ(drop_series, 8u);

  // Queues without ports (and the other way round) export only their own.
  dataplane_ = [] {
    DataplaneStats s = dpdk_stats();
    s.ports.clear();
    return s;
  };
  const std::string queues_only = scrape(port_);
  EXPECT_TRUE(has_line(queues_only, R"(sluice_queue_dropped_total{priority="0",cause="full"} 3)"));
  EXPECT_TRUE(lacks(queues_only, "sluice_port_"));
  dataplane_ = [] {
    DataplaneStats s = dpdk_stats();
    s.queues.clear();
    return s;
  };
  const std::string ports_only = scrape(port_);
  EXPECT_TRUE(
      has_line(ports_only, R"(sluice_port_dropped_total{port="inside",cause="tx_dropped"} 8)"));
  EXPECT_TRUE(lacks(ports_only, "sluice_queue_"));
}

TEST_F(MetricsExporterTest, ReadsFiguresAtScrapeTimeOnly) {
  std::atomic<uint64_t> calls{0};
  dataplane_ = [&calls] {
    DataplaneStats s = xdp_stats();
    s.classes[0].lookups[SL_VERDICT_ADMITTED][SL_REASON_LOOKUP] = 1000 + calls.fetch_add(1);
    return s;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(calls.load(), 0u) << "figures were read with no scrape";
  const char* series =
      R"(sluice_lookups_total{class="checkpoint",verdict="admitted",reason="lookup"})";
  EXPECT_TRUE(has_line(scrape(port_), std::string(series) + " 1000"));
  EXPECT_TRUE(has_line(scrape(port_), std::string(series) + " 1001"));
  EXPECT_EQ(calls.load(), 2u);
  // Only /metrics is served.
  EXPECT_TRUE(lacks(scrape(port_, "/"), "sluice_"));
  EXPECT_EQ(calls.load(), 2u);
  dataplane_ = xdp_stats;  // `calls` goes out of scope
}

// Clients that open a request and never finish it hold a thread each until
// a read waits 5 s (cpp-httplib bounds no whole request). Sixteen held
// every thread of cpp-httplib's default pool (8): a scrape behind them waited
// past its own 5 s timeout, and trickled header lines held it off for good.
TEST_F(MetricsExporterTest, AScrapeIsServedBesideConnectionsThatNeverFinish) {
  std::vector<int> slow;
  for (int i = 0; i < 16; i++) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string part = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n";
    ASSERT_EQ(::send(fd, part.data(), part.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(part.size()));
  }
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(has_line(scrape(port_), "sluice_config_generation 3"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
  for (int fd : slow) ::close(fd);
}

TEST_F(MetricsExporterTest, ACallbackThatThrowsCostsItsFiguresNotTheScrape) {
  dataplane_ = []() -> DataplaneStats { throw std::runtime_error("map read failed"); };
  const std::string body = scrape(port_);
  EXPECT_TRUE(has_line(body, "sluice_dataplane_up 0"));
  EXPECT_TRUE(has_line(body, "sluice_config_generation 3"));
  EXPECT_TRUE(has_line(body, "sluice_exporter_callback_errors_total 1"));
  EXPECT_TRUE(lacks(body, "sluice_lookups_total"));
}

// sluiced makes a new exporter each time it goes in or out of charge: the
// count goes on in the process (a counter of the exporter's own read as a
// reset within one process).
TEST_F(MetricsExporterTest, CallbackErrorsCountOnAcrossExporters) {
  dataplane_ = []() -> DataplaneStats { throw std::runtime_error("map read failed"); };
  auto count_in = [](const std::string& body) {
    const std::string name = "sluice_exporter_callback_errors_total ";
    const std::size_t at = body.find("\n" + name);
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + 1 + name.size()));
  };
  const double first = count_in(scrape(port_));
  ASSERT_GE(first, 1);
  int other_port = 0;
  std::unique_ptr<MetricsExporter> other =
      start_on_free_port([] { return xdp_stats(); }, [] { return control_figures(); }, &other_port);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(count_in(scrape(other_port)), first);
}

TEST_F(MetricsExporterTest, UnhealthyDataplaneReadsAsDown) {
  control_ = [] {
    ControlFigures c = control_figures();
    c.dataplane_healthy = false;
    return c;
  };
  EXPECT_TRUE(has_line(scrape(port_), "sluice_dataplane_up 0"));
}

TEST_F(MetricsExporterTest, AddressesThatCannotWorkAreErrorsNotCrashes) {
  for (const char* listen : {
           "", "nonsense",
           "9109",                           // no address: which interfaces?
           "127.0.0.1",                      // no port
           "127.0.0.1:0",                    // port out of range
           "127.0.0.1:65536",                //
           "127.0.0.1:9109s",                // civetweb's TLS suffix, once
           "127.0.0.1:9109,127.0.0.1:9110",  // civetweb's list of sockets, once
           "localhost:9109",                 // a name, not an address
           "[::1:9109",                      //
           "::1:9109",                       // IPv6 without brackets
       }) {
    std::string error;
    EXPECT_EQ(MetricsExporter::start(listen, xdp_stats, control_figures, &error), nullptr)
        << listen;
    EXPECT_NE(error.find("expected \"IPV4:PORT\" or \"[IPV6]:PORT\""), std::string::npos)
        << listen << ": " << error;
  }

  // Not an address of this host (198.18.0.0/15 is the benchmarking range).
  std::string error;
  EXPECT_EQ(MetricsExporter::start("198.18.255.254:9109", xdp_stats, control_figures, &error),
            nullptr);
  EXPECT_NE(error.find("cannot bind: Cannot assign requested address"), std::string::npos) << error;

  // A port already taken, by the suite's exporter.
  const std::string taken = "127.0.0.1:" + std::to_string(port_);
  error.clear();
  EXPECT_EQ(MetricsExporter::start(taken, xdp_stats, control_figures, &error), nullptr);
  EXPECT_NE(error.find("cannot bind: Address already in use"), std::string::npos) << error;
  EXPECT_NE(error.find(taken), std::string::npos) << error;
  EXPECT_FALSE(scrape(port_).empty()) << "the running exporter stopped serving";

  error.clear();
  EXPECT_EQ(MetricsExporter::start(taken, nullptr, control_figures, &error), nullptr);
  EXPECT_NE(error.find("callbacks"), std::string::npos) << error;
}

// IPv6: [::1]:P serves on the IPv6 loopback; [::]:P on every address, and,
// unless the host sets net.ipv6.bindv6only, IPv4 ones too.
TEST(MetricsExporter, ServesOnIPv6) {
  // A host without IPv6 on its loopback cannot serve there: then the
  // exporter must say why, and that is all this host can show.
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 lo{};
  lo.sin6_family = AF_INET6;
  lo.sin6_addr = in6addr_loopback;
  const bool has_v6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0;
  if (probe >= 0) ::close(probe);
  std::string error;
  int port = 0;
  std::unique_ptr<MetricsExporter> v6;
  for (int attempt = 0; attempt < 20 && !v6; attempt++) {
    port = 20000 + static_cast<int>((::getpid() * 131 + attempt * 977 + 7) % 40000);
    v6 =
        MetricsExporter::start("[::1]:" + std::to_string(port), xdp_stats, control_figures, &error);
    if (!has_v6) break;
  }
  if (!has_v6) {
    EXPECT_EQ(v6, nullptr);
    EXPECT_NE(error.find("cannot bind"), std::string::npos) << error;
    return;
  }
  ASSERT_NE(v6, nullptr) << error;
  const std::string body = scrape(port, "/metrics", AF_INET6);
  EXPECT_TRUE(has_line(body, "sluice_dataplane_up 1")) << body;
  EXPECT_TRUE(scrape(port).empty()) << "[::1] must not serve on 127.0.0.1";
  v6.reset();

  std::unique_ptr<MetricsExporter> any =
      MetricsExporter::start("[::]:" + std::to_string(port), xdp_stats, control_figures, &error);
  ASSERT_NE(any, nullptr) << error;
  EXPECT_TRUE(has_line(scrape(port, "/metrics", AF_INET6), "sluice_dataplane_up 1"));
  std::ifstream v6only("/proc/sys/net/ipv6/bindv6only");
  int only = 0;
  v6only >> only;
  if (only == 0) EXPECT_TRUE(has_line(scrape(port), "sluice_dataplane_up 1"));
}

}  // namespace
}  // namespace sluice
