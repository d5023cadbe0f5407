// SPDX-License-Identifier: Apache-2.0
// sluice-backend: an HTTP/1.1 service with a fixed capacity, the thing the
// surge lab overloads. Capacity C = workers * 1000 / service_time_ms req/s.
//
// Design (one owner per connection at any time, so no per-connection locks):
//   poller thread  epoll (EPOLLONESHOT) over the listener and idle
//                  connections; reads and parses request heads; answers
//                  /health, 404, 405 and 400 inline (they cost nothing), and
//                  puts GET /code/<id> on the bounded request queue stamped
//                  with its arrival time. A full queue is answered 503
//                  "overloaded" at once and the connection closed.
//   N workers      take the oldest request; if it waited longer than
//                  request_timeout_ms it gets 503 "timeout" and costs no
//                  service time; else the worker is busy for service_time_ms
//                  (sleep: the work is modelled, not burned) and answers 200.
//                  Keep-alive connections then go back to the poller.
// So under overload requests wait for a worker (queueing delay grows up to the
// timeout) while served/s stays at C: what a real saturated service does.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sluice {

struct BackendOptions {
  std::string listen = "127.0.0.1:8080";  // "ADDR:PORT", "[V6ADDR]:PORT"; port 0 = ephemeral
  unsigned workers = 8;                   // requests served concurrently
  unsigned service_time_ms = 10;          // worker time per served request
  unsigned queue = 256;                   // requests waiting beyond the workers
  unsigned request_timeout_ms = 2000;     // max wait in the queue before 503 "timeout"
  unsigned duration_sec = 600;            // the server declares itself done after this
  unsigned report_interval_sec = 0;       // progress line to stderr; 0 = none
  // The backend slows and recovers (slow SQL): from at_sec after the start
  // the capacity is factor x C (the service time divided by factor). In
  // ascending at_sec; empty = C throughout.
  struct CapacityStep {
    double at_sec = 0;
    double factor = 1;
  };
  std::vector<CapacityStep> capacity_schedule;
};

// Parses --capacity-schedule "T:F,T:F..." (seconds since the start, factor
// of C; T ascending, 0 < T, 0.01 <= F <= 100). False + *error naming the
// entry.
bool parse_capacity_schedule(const std::string& text,
                             std::vector<BackendOptions::CapacityStep>* out, std::string* error);

// Validates option ranges; returns an empty string when fine, else a message
// naming the option. Shared by the CLI and by tests.
std::string validate_backend_options(const BackendOptions& options);

struct BackendCounters {
  std::uint64_t served = 0;     // 200 on /code after service time
  std::uint64_t timed_out = 0;  // 503 "timeout": waited longer than request_timeout_ms
  std::uint64_t rejected = 0;   // 503 "overloaded": queue full on arrival
  std::uint64_t queued = 0;     // requests waiting right now
};

class BackendServer {
 public:
  explicit BackendServer(BackendOptions options);
  // The capacity factor (of C) in force t seconds after the start.
  double capacity_factor_at(double t) const;
  ~BackendServer();
  BackendServer(const BackendServer&) = delete;
  BackendServer& operator=(const BackendServer&) = delete;

  // Binds and starts the threads. False with *error set if the address is bad
  // or cannot be bound.
  bool start(std::string* error);
  // The bound port (useful with port 0).
  std::uint16_t port() const { return port_; }
  double capacity_per_sec() const;
  // True once duration_sec has elapsed (or stop() ran).
  bool done() const { return done_.load(); }
  // Blocks up to `timeout` for done(); returns done().
  bool wait_done(std::chrono::milliseconds timeout);
  // Stops accepting, closes every connection and joins the threads. Idempotent.
  void stop();

  BackendCounters counters() const;
  // The report: capacity_per_sec, served, timed_out, rejected,
  // served_per_sec (per second since start), latency_ms and queue_delay_ms
  // {p50, p99, p999} of served requests (arrival to response written, and
  // arrival to start of service).
  nlohmann::json report() const;
  // [{"at_sec", "factor", "capacity_per_sec"}], the start's C first.
  nlohmann::json schedule_json() const;

 private:
  struct Connection;
  struct Pending {
    Connection* conn;
    std::string id;
    bool keep_alive;
    std::chrono::steady_clock::time_point arrived;
  };

  void poll_loop();
  void worker_loop();
  void timer_loop();
  void accept_all();
  // Reads what is available and handles every complete request in the buffer;
  // ends by re-arming, enqueueing or closing the connection (its new owner).
  void on_readable(Connection* conn);
  // on_poller: called on the poller thread (else on a worker).
  void handle_buffered(Connection* conn, bool on_poller);
  void rearm(Connection* conn, bool on_poller);
  void take_returned();
  void close_connection(Connection* conn);
  void record_served(std::chrono::steady_clock::time_point arrived,
                     std::chrono::steady_clock::time_point started,
                     std::chrono::steady_clock::time_point finished);

  BackendOptions options_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the poller to stop or to take returned_
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point stopped_at_;  // guarded by stats_mu_

  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};
  std::mutex done_mu_;
  std::condition_variable done_cv_;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;

  // Keep-alive connections a worker is done with, for the poller to re-arm.
  std::mutex returned_mu_;
  std::vector<Connection*> returned_;

  // Every live connection, so stop() can close the ones parked in epoll.
  std::mutex conns_mu_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;

  std::atomic<std::uint64_t> timed_out_{0};
  std::atomic<std::uint64_t> rejected_{0};
  mutable std::mutex stats_mu_;
  std::uint64_t served_ = 0;
  std::vector<std::uint64_t> served_per_sec_;
  std::vector<std::uint32_t> latency_us_;           // every served request, for the report
  std::vector<std::uint32_t> queue_delay_us_;       // ditto
  std::vector<std::uint32_t> interval_latency_us_;  // since the last progress line
  std::uint64_t interval_served_ = 0;

  std::thread poller_;
  std::thread timer_;
  std::vector<std::thread> workers_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sluice
