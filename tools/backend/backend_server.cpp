// SPDX-License-Identifier: Apache-2.0
#include "tools/backend/backend_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tools/backend/http_request.hpp"
#include "tools/backend/listen_address.hpp"

namespace sluice {

using Clock = std::chrono::steady_clock;

struct BackendServer::Connection {
  int fd = -1;
  std::string buffer;        // bytes received and not yet consumed by a request
  bool peer_closed = false;  // read() returned 0: answer what is buffered, then close
};

namespace {

// Ids are echoed into the JSON body, so they are kept to characters that need
// no escaping; anything else is "not found", like an unknown resource.
bool valid_code_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string make_response(int status, std::string_view reason, std::string_view body,
                          bool keep_alive) {
  std::string r;
  r.reserve(160 + body.size());
  r += "HTTP/1.1 ";
  r += std::to_string(status);
  r += ' ';
  r += reason;
  r += "\r\nContent-Type: application/json\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
  if (status == 405) r += "Allow: GET\r\n";
  r += "\r\n";
  r += body;
  return r;
}

// Responses are a few hundred bytes, so a send rarely blocks; when the peer's
// window is full we wait a bounded time rather than park the bytes, because a
// client that does not read its responses deserves to lose the connection.
bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

// Nearest-rank percentile of sorted microseconds, in milliseconds.
double percentile_ms(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

nlohmann::json percentiles(std::vector<std::uint32_t> us) {
  std::sort(us.begin(), us.end());
  return {{"p50", percentile_ms(us, 0.50)},
          {"p99", percentile_ms(us, 0.99)},
          {"p999", percentile_ms(us, 0.999)}};
}

std::uint32_t to_us(Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return static_cast<std::uint32_t>(std::clamp<long long>(us, 0, UINT32_MAX));
}

}  // namespace

BackendServer::BackendServer(BackendOptions options) : options_(std::move(options)) {}

nlohmann::json BackendServer::schedule_json() const {
  nlohmann::json steps = nlohmann::json::array();
  steps.push_back({{"at_sec", 0}, {"factor", 1.0}, {"capacity_per_sec", capacity_per_sec()}});
  for (const BackendOptions::CapacityStep& step : options_.capacity_schedule)
    steps.push_back({{"at_sec", step.at_sec},
                     {"factor", step.factor},
                     {"capacity_per_sec", capacity_per_sec() * step.factor}});
  return steps;
}

double BackendServer::capacity_factor_at(double t) const {
  double factor = 1;
  for (const BackendOptions::CapacityStep& step : options_.capacity_schedule)
    if (t >= step.at_sec) factor = step.factor;
  return factor;
}

BackendServer::~BackendServer() { stop(); }

double BackendServer::capacity_per_sec() const {
  return options_.workers * 1000.0 / options_.service_time_ms;
}

bool BackendServer::start(std::string* error) {
  if (std::string e = validate_backend_options(options_); !e.empty()) {
    *error = e;
    return false;
  }
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!parse_listen(options_.listen, &addr, &len, error)) return false;
  listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  int zero = 0;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // "[::]:PORT" should take IPv4 too (dual stack), whatever the sysctl says.
  if (addr.ss_family == AF_INET6)
    ::setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    *error = "bind " + options_.listen + ": " + std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  // The kernel backlog is the first queue under a connection storm; keep it
  // as deep as the system allows so connections reach our own bounded queue.
  if (::listen(listen_fd_, SOMAXCONN) != 0) {
    *error = "listen: " + std::string(std::strerror(errno));
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the listener
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.ptr = this;  // the wake-up eventfd
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  started_at_ = Clock::now();
  started_ = true;
  poller_ = std::thread([this] { poll_loop(); });
  for (unsigned i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  timer_ = std::thread([this] { timer_loop(); });
  return true;
}

bool BackendServer::wait_done(std::chrono::milliseconds timeout) {
  std::unique_lock lock(done_mu_);
  done_cv_.wait_for(lock, timeout, [this] { return done_.load(); });
  return done_.load();
}

void BackendServer::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(stats_mu_);
    stopped_at_ = Clock::now();
  }
  {
    std::lock_guard lock(done_mu_);
    stopping_ = true;
    done_ = true;
  }
  done_cv_.notify_all();
  { std::lock_guard lock(queue_mu_); }
  queue_cv_.notify_all();
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  poller_.join();
  for (auto& w : workers_) w.join();
  timer_.join();
  // Every thread is gone: whatever is still queued or parked is closed here.
  queue_.clear();
  for (auto& [ptr, conn] : conns_) ::close(conn->fd);
  conns_.clear();
  ::close(listen_fd_);
  ::close(epoll_fd_);
  ::close(wake_fd_);
}

void BackendServer::poll_loop() {
  std::vector<epoll_event> events(256);
  while (!stopping_) {
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 500);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n && !stopping_; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == nullptr) {
        accept_all();
      } else if (tag == this) {
        take_returned();
      } else {
        on_readable(static_cast<Connection*>(tag));
      }
    }
  }
}

void BackendServer::take_returned() {
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof(count));
  std::vector<Connection*> conns;
  {
    std::lock_guard lock(returned_mu_);
    conns.swap(returned_);
  }
  for (Connection* conn : conns) rearm(conn, true);
}

void BackendServer::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: the listener stays readable, so back off briefly
        // instead of spinning; connections wait in the kernel backlog.
        static Clock::time_point last_log;
        if (Clock::now() - last_log > std::chrono::seconds(1)) {
          (void)std::fprintf(stderr, "sluice-backend: accept: %s (raise ulimit -n)\n",
                             std::strerror(errno));
          last_log = Clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection* raw = conn.get();
    {
      std::lock_guard lock(conns_mu_);
      conns_.emplace(raw, std::move(conn));
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = raw;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) close_connection(raw);
  }
}

void BackendServer::on_readable(Connection* conn) {
  char chunk[16384];
  // Enough for the largest request we accept; beyond it the parser refuses.
  const std::size_t cap = kMaxRequestHeadBytes + kMaxRequestBodyBytes + 4096;
  while (conn->buffer.size() < cap) {
    ssize_t n = ::recv(conn->fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      conn->buffer.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      conn->peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_connection(conn);  // reset by peer and the like
    return;
  }
  handle_buffered(conn, true);
}

void BackendServer::handle_buffered(Connection* conn, bool on_poller) {
  for (;;) {
    HttpRequest req;
    std::size_t consumed = 0;
    ParseStatus status = parse_http_request(conn->buffer, &req, &consumed);
    if (status == ParseStatus::kIncomplete) {
      if (conn->peer_closed) {
        close_connection(conn);
      } else {
        rearm(conn, on_poller);
      }
      return;
    }
    if (status == ParseStatus::kMalformed) {
      send_all(conn->fd,
               make_response(400, "Bad Request", R"({"error":"malformed request"})", false));
      close_connection(conn);
      return;
    }
    conn->buffer.erase(0, consumed);
    const Clock::time_point arrived = Clock::now();
    std::string_view path = req.target;
    path = path.substr(0, path.find('?'));
    std::string response;
    if (path == "/health") {
      response = req.method == "GET"
                     ? make_response(200, "OK", R"({"status":"ok"})", req.keep_alive)
                     : make_response(405, "Method Not Allowed", R"({"error":"method not allowed"})",
                                     req.keep_alive);
    } else if (path.starts_with("/code/") && valid_code_id(path.substr(6))) {
      if (req.method != "GET") {
        response = make_response(405, "Method Not Allowed", R"({"error":"method not allowed"})",
                                 req.keep_alive);
      } else {
        bool queued = false;
        {
          std::lock_guard lock(queue_mu_);
          if (queue_.size() < options_.queue) {
            queue_.push_back(Pending{conn, std::string(path.substr(6)), req.keep_alive, arrived});
            queued = true;
          }
        }
        if (queued) {
          queue_cv_.notify_one();
          return;  // a worker owns the connection now
        }
        // Queue full: answer at once and close, so the client learns now
        // rather than after a timeout, and its connection slot is freed.
        rejected_.fetch_add(1);
        send_all(conn->fd,
                 make_response(503, "Service Unavailable", R"({"error":"overloaded"})", false));
        ::shutdown(conn->fd, SHUT_WR);
        close_connection(conn);
        return;
      }
    } else {
      response = make_response(404, "Not Found", R"({"error":"not found"})", req.keep_alive);
    }
    if (!send_all(conn->fd, response) || !req.keep_alive) {
      close_connection(conn);
      return;
    }
  }
}

void BackendServer::rearm(Connection* conn, bool on_poller) {
  if (!on_poller) {
    // Workers hand connections back through a locked list rather than calling
    // epoll_ctl themselves: the mutex orders the worker's last touch of the
    // connection before the poller's next one (epoll alone is invisible to
    // the C++ memory model and to ThreadSanitizer).
    {
      std::lock_guard lock(returned_mu_);
      returned_.push_back(conn);
    }
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.ptr = conn;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn->fd, &ev) != 0) close_connection(conn);
}

void BackendServer::close_connection(Connection* conn) {
  ::close(conn->fd);  // also removes it from the epoll set
  std::lock_guard lock(conns_mu_);
  conns_.erase(conn);
}

void BackendServer::worker_loop() {
  const auto base_service = std::chrono::microseconds(options_.service_time_ms * 1000ULL);
  const auto timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  // When this worker's last request ended. While it stays busy, the next one
  // starts exactly then, so the few microseconds spent taking requests and
  // writing responses do not erode capacity below workers/service_time.
  Clock::time_point busy_until{};
  for (;;) {
    Pending p;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    Clock::time_point now = Clock::now();
    bool ok;
    if (now - p.arrived > timeout) {
      timed_out_.fetch_add(1);
      ok = send_all(p.conn->fd, make_response(503, "Service Unavailable", R"({"error":"timeout"})",
                                              p.keep_alive));
    } else {
      Clock::time_point start = now - busy_until < std::chrono::milliseconds(1) ? busy_until : now;
      // The capacity schedule slows the service (slow SQL) and speeds it back.
      const double factor =
          capacity_factor_at(std::chrono::duration<double>(start - started_at_).count());
      busy_until = start + std::chrono::duration_cast<Clock::duration>(base_service / factor);
      std::this_thread::sleep_until(busy_until);
      std::string body = R"({"id":")" + p.id + R"(","code":"green"})";
      ok = send_all(p.conn->fd, make_response(200, "OK", body, p.keep_alive));
      if (ok) record_served(p.arrived, start, Clock::now());
    }
    if (!ok || !p.keep_alive) {
      close_connection(p.conn);
    } else {
      handle_buffered(p.conn, false);  // pipelined requests, else back to the poller
    }
  }
}

void BackendServer::record_served(Clock::time_point arrived, Clock::time_point started,
                                  Clock::time_point finished) {
  std::lock_guard lock(stats_mu_);
  ++served_;
  ++interval_served_;
  auto sec = static_cast<std::size_t>(
      std::chrono::duration_cast<std::chrono::seconds>(finished - started_at_).count());
  if (served_per_sec_.size() <= sec) served_per_sec_.resize(sec + 1, 0);
  ++served_per_sec_[sec];
  std::uint32_t latency = to_us(finished - arrived);
  latency_us_.push_back(latency);
  queue_delay_us_.push_back(to_us(started - arrived));
  interval_latency_us_.push_back(latency);
}

void BackendServer::timer_loop() {
  const auto deadline = started_at_ + std::chrono::seconds(options_.duration_sec);
  const auto interval = std::chrono::seconds(options_.report_interval_sec);
  auto next_report = started_at_ + interval;
  std::uint64_t last_timed_out = 0;
  std::uint64_t last_rejected = 0;
  for (;;) {
    auto wake = options_.report_interval_sec > 0 ? std::min(deadline, next_report) : deadline;
    {
      std::unique_lock lock(done_mu_);
      done_cv_.wait_until(lock, wake, [this] { return stopping_.load(); });
      if (stopping_) return;
    }
    auto now = Clock::now();
    if (options_.report_interval_sec > 0 && now >= next_report) {
      std::vector<std::uint32_t> lat;
      std::uint64_t served;
      {
        std::lock_guard lock(stats_mu_);
        lat.swap(interval_latency_us_);
        served = interval_served_;
        interval_served_ = 0;
      }
      std::sort(lat.begin(), lat.end());
      BackendCounters c = counters();
      auto t = std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count();
      (void)std::fprintf(stderr,
                         "sluice-backend: t=%llds served/s=%.1f queued=%llu timed_out=+%llu "
                         "rejected=+%llu p50=%.1fms p99=%.1fms\n",
                         static_cast<long long>(t),
                         static_cast<double>(served) / options_.report_interval_sec,
                         static_cast<unsigned long long>(c.queued),
                         static_cast<unsigned long long>(c.timed_out - last_timed_out),
                         static_cast<unsigned long long>(c.rejected - last_rejected),
                         percentile_ms(lat, 0.50), percentile_ms(lat, 0.99));
      last_timed_out = c.timed_out;
      last_rejected = c.rejected;
      next_report += interval;
    }
    if (now >= deadline) {
      {
        std::lock_guard lock(done_mu_);
        done_ = true;
      }
      done_cv_.notify_all();
      // Stay until stop(): the owner decides when to tear down and report.
      std::unique_lock lock(done_mu_);
      done_cv_.wait(lock, [this] { return stopping_.load(); });
      return;
    }
  }
}

BackendCounters BackendServer::counters() const {
  BackendCounters c;
  {
    std::lock_guard lock(stats_mu_);
    c.served = served_;
  }
  c.timed_out = timed_out_.load();
  c.rejected = rejected_.load();
  {
    std::lock_guard lock(queue_mu_);
    c.queued = queue_.size();
  }
  return c;
}

nlohmann::json BackendServer::report() const {
  std::vector<std::uint32_t> latency;
  std::vector<std::uint32_t> queue_delay;
  std::vector<std::uint64_t> per_sec;
  std::uint64_t served;
  Clock::time_point end;
  {
    std::lock_guard lock(stats_mu_);
    latency = latency_us_;
    queue_delay = queue_delay_us_;
    per_sec = served_per_sec_;
    served = served_;
    end = stopped_at_ != Clock::time_point{} ? stopped_at_ : Clock::now();
  }
  // One entry per second of the run (the last may be partial), zeros included,
  // so the series lines up with wall time in the lab's plots.
  auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(end - started_at_).count();
  auto seconds = static_cast<std::size_t>((elapsed_ms + 999) / 1000);
  if (per_sec.size() < seconds) per_sec.resize(seconds, 0);
  return {{"capacity_per_sec", capacity_per_sec()},
          {"workers", options_.workers},
          {"service_time_ms", options_.service_time_ms},
          {"queue", options_.queue},
          {"request_timeout_ms", options_.request_timeout_ms},
          {"capacity_schedule", schedule_json()},
          {"served", served},
          {"timed_out", timed_out_.load()},
          {"rejected", rejected_.load()},
          {"served_per_sec", per_sec},
          {"latency_ms", percentiles(std::move(latency))},
          {"queue_delay_ms", percentiles(std::move(queue_delay))}};
}

}  // namespace sluice
