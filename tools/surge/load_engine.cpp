#include "tools/surge/load_engine.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <queue>
#include <random>

namespace sluice {

const char* to_string(FailureKind k) {
  switch (k) {
    case FailureKind::reset:
      return "reset";
    case FailureKind::timeout:
      return "timeout";
    case FailureKind::error:
      return "error";
    case FailureKind::overload_local:
      return "overload_local";
  }
  return "?";
}

namespace {

constexpr int64_t k_ns_per_sec = 1'000'000'000;
// Caps on work per loop turn: each inner loop is bounded by count as well as
// by time; what is not done this turn is done the next (latency is measured
// from scheduled times, so lag is visible, not hidden).
constexpr int k_max_events = 512;
constexpr int k_max_starts_per_turn = 100'000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

FailureKind kind_of_errno(int e) {
  switch (e) {
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
      return FailureKind::reset;
    case ETIMEDOUT:
      return FailureKind::timeout;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL:  // ephemeral ports exhausted
      return FailureKind::overload_local;
    default:
      return FailureKind::error;
  }
}

struct PendingAttempt {
  int64_t at_ns;  // scheduled time, relative to the run's start
  uint64_t intent;
  uint32_t cls;
  uint16_t try_no;  // 0 = first attempt of this lookup
  uint16_t step;    // which lookup of the session
  bool operator>(const PendingAttempt& o) const { return at_ns > o.at_ns; }
};

enum class SessionState : uint8_t { open, completed, failed };

// One intent: its source address and how far it got.
struct Session {
  uint32_t cls = 0;
  uint32_t src = 0;   // index into the class's sources
  uint16_t step = 0;  // the lookup it waits for
  SessionState state = SessionState::open;
};

enum class SlotPhase : uint8_t { idle, connecting, reading };

struct AttemptSlot {
  int fd = -1;
  uint32_t gen = 0;  // bumped on every reuse so stale timeouts/events are ignored
  SlotPhase phase = SlotPhase::idle;
  PendingAttempt a{};
  size_t got = 0;
  char buf[32];
};

struct TimeoutEntry {
  int64_t deadline_ns;
  uint32_t slot;
  uint32_t gen;
};

class Engine {
 public:
  Engine(const SurgeConfig& cfg, SurgeResult& res)
      : cfg_(cfg), res_(res), rng_(cfg.seed), slots_(cfg.max_inflight) {
    res_ = SurgeResult{};
    res_.classes.resize(cfg_.classes.size());
    size_t seconds = static_cast<size_t>(std::ceil(cfg_.profile.duration_sec)) +
                     static_cast<size_t>(cfg_.timeout_ms / 1000) + 2;
    res_.series.resize(seconds);
    for (auto& c : res_.classes) c.series.resize(seconds);
    free_.reserve(slots_.size());
    for (size_t i = slots_.size(); i > 0; --i) free_.push_back(static_cast<uint32_t>(i - 1));
    double cum = 0;
    for (const auto& c : cfg_.classes) cdf_.push_back(cum += c.share);
    src_next_.assign(cfg_.classes.size(), 0);
    duration_ns_ = static_cast<int64_t>(cfg_.profile.duration_sec * k_ns_per_sec);
    timeout_ns_ = int64_t{cfg_.timeout_ms} * 1'000'000;
  }

  std::string run();

 private:
  // Thinning (Lewis-Shedler): candidates at the peak rate, kept with
  // probability rate(t)/peak, give an exact non-homogeneous Poisson process.
  int64_t next_arrival_after(int64_t t_ns) {
    double peak = cfg_.profile.max_rate();
    double t = static_cast<double>(t_ns) / k_ns_per_sec;
    std::exponential_distribution<double> gap(peak);
    // Bounded: every candidate advances t by a positive gap and we stop at
    // the run's end.
    for (;;) {
      t += gap(rng_);
      if (t >= cfg_.profile.duration_sec) return INT64_MAX;
      if (uniform_(rng_) * peak <= cfg_.profile.rate_at(t)) {
        return static_cast<int64_t>(t * k_ns_per_sec);
      }
    }
  }

  uint32_t pick_class() {
    double u = uniform_(rng_);
    for (size_t i = 0; i < cdf_.size(); ++i) {
      if (u < cdf_[i]) return static_cast<uint32_t>(i);
    }
    return static_cast<uint32_t>(cdf_.size() - 1);
  }

  size_t second_of(int64_t t_ns) const {
    size_t s = t_ns <= 0 ? 0 : static_cast<size_t>(t_ns / k_ns_per_sec);
    return std::min(s, res_.series.size() - 1);
  }

  void start_attempt(const PendingAttempt& a, int64_t now);
  void complete(uint32_t slot_index, bool ok, FailureKind kind, int64_t now);
  void record(const PendingAttempt& a, bool ok, FailureKind kind, int64_t now);
  void on_event(uint32_t slot_index, uint32_t events, int64_t now);
  void send_request(uint32_t slot_index, int64_t now);
  void print_progress(int64_t now);

  const SurgeConfig& cfg_;
  SurgeResult& res_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  std::vector<AttemptSlot> slots_;
  std::vector<uint32_t> free_;
  std::vector<double> cdf_;
  std::vector<size_t> src_next_;
  std::vector<Session> sessions_;  // by intent id
  std::priority_queue<PendingAttempt, std::vector<PendingAttempt>, std::greater<>> retries_;
  std::deque<TimeoutEntry> timeouts_;  // FIFO == deadline order: timeout is constant
  int epfd_ = -1;
  int64_t start_ns_ = 0;
  int64_t duration_ns_ = 0;
  int64_t timeout_ns_ = 0;
  uint64_t next_intent_ = 0;
  SecondCounts last_tick_{};
};

void Engine::record(const PendingAttempt& a, bool ok, FailureKind kind, int64_t now) {
  ClassResult& c = res_.classes[a.cls];
  uint64_t lat_us = now > a.at_ns ? static_cast<uint64_t>((now - a.at_ns) / 1000) : 0;
  size_t s = second_of(now);
  const SurgeClass& sc = cfg_.classes[a.cls];
  Session& session = sessions_[a.intent];
  // A late answer to an older attempt (refresh) no longer moves the session.
  const bool current = session.state == SessionState::open && session.step == a.step;
  if (ok) {
    ++c.successes;
    c.success_latency.record_us(lat_us);
    ++c.series[s].successes;
    ++res_.series[s].successes;
    if (!current) return;
    if (++session.step < sc.session_lookups) {
      PendingAttempt next{now + int64_t{sc.session_gap_ms} * 1'000'000, a.intent, a.cls, 0,
                          session.step};
      retries_.push(next);
      return;
    }
    session.state = SessionState::completed;
    ++c.sessions_completed;
    ++c.series[s].sessions_completed;
    ++res_.series[s].sessions_completed;
    return;
  }
  ++c.failures[static_cast<size_t>(kind)];
  c.failure_latency.record_us(lat_us);
  ++c.series[s].failures;
  ++res_.series[s].failures;

  if (a.try_no >= sc.max_retries) {
    if (current) {  // this lookup failed for good, and with it the session
      session.state = SessionState::failed;
      ++c.sessions_failed;
      ++c.series[s].sessions_failed;
      ++res_.series[s].sessions_failed;
    }
    return;
  }
  PendingAttempt next = a;
  next.try_no = static_cast<uint16_t>(a.try_no + 1);
  if (sc.retry == RetryModel::immediate) {
    next.at_ns = now;
  } else if (sc.retry == RetryModel::backoff) {
    // Full jitter (AWS architecture blog): U(0, min(cap, base * 2^n)).
    double ceiling = std::min<double>(
        sc.backoff_cap_ms, sc.backoff_base_ms * std::ldexp(1.0, static_cast<int>(a.try_no)));
    next.at_ns = now + static_cast<int64_t>(uniform_(rng_) * ceiling * 1e6);
  } else {
    return;  // none; refresh schedules itself at start time regardless of outcome
  }
  retries_.push(next);
}

void Engine::start_attempt(const PendingAttempt& a, int64_t now) {
  const SurgeClass& sc = cfg_.classes[a.cls];
  ClassResult& c = res_.classes[a.cls];
  ++c.attempts;
  size_t s = second_of(a.at_ns);
  ++c.series[s].attempts;
  ++res_.series[s].attempts;

  if (sc.retry == RetryModel::refresh && a.try_no < sc.max_retries) {
    // The user reloads every refresh period whether or not this attempt has
    // answered; a reload due after a success is skipped when it pops.
    PendingAttempt next = a;
    next.try_no = static_cast<uint16_t>(a.try_no + 1);
    next.at_ns = a.at_ns + static_cast<int64_t>(sc.refresh_sec * k_ns_per_sec);
    retries_.push(next);
  }

  if (free_.empty()) {
    record(a, false, FailureKind::overload_local, now);
    return;
  }
  bool tcp = sc.proto == SurgeProto::tcp;
  int family = sc.destination.addr.ss_family;
  int fd = ::socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    record(a, false, kind_of_errno(errno), now);
    return;
  }
  auto fail_now = [&](int e) {
    ::close(fd);
    record(a, false, kind_of_errno(e), now);
  };
  if (tcp) {
    // RST on close: the client side would otherwise hold every connection in
    // TIME_WAIT for 60 s and run out of ephemeral ports at a few hundred
    // connections/s per source address.
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (!sc.sources.empty()) {
    const SurgeEndpoint& src = sc.sources[sessions_[a.intent].src];
    if (tcp) {
      // Defer the port choice to connect() so the 4-tuple, not the source
      // address alone, limits concurrency.
      int one = 1;
      ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&src.addr), src.len) != 0) {
      fail_now(errno);
      return;
    }
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sc.destination.addr), sc.destination.len) !=
          0 &&
      errno != EINPROGRESS) {
    fail_now(errno);
    return;
  }
  uint32_t idx = free_.back();
  free_.pop_back();
  AttemptSlot& slot = slots_[idx];
  slot.fd = fd;
  ++slot.gen;
  slot.a = a;
  slot.got = 0;
  slot.phase = tcp ? SlotPhase::connecting : SlotPhase::reading;
  epoll_event ev{};
  ev.events = tcp ? EPOLLOUT : EPOLLIN;
  ev.data.u64 = (uint64_t{slot.gen} << 32) | idx;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    slot.fd = -1;
    slot.phase = SlotPhase::idle;
    free_.push_back(idx);
    fail_now(e);
    return;
  }
  timeouts_.push_back({now + timeout_ns_, idx, slot.gen});
  if (!tcp) send_request(idx, now);
}

void Engine::complete(uint32_t idx, bool ok, FailureKind kind, int64_t now) {
  AttemptSlot& slot = slots_[idx];
  ::close(slot.fd);  // also removes it from the epoll set
  slot.fd = -1;
  slot.phase = SlotPhase::idle;
  ++slot.gen;
  free_.push_back(idx);
  record(slot.a, ok, kind, now);
}

void Engine::send_request(uint32_t idx, int64_t now) {
  AttemptSlot& slot = slots_[idx];
  const SurgeClass& sc = cfg_.classes[slot.a.cls];
  char req[160];
  int n = sc.proto == SurgeProto::tcp
              ? std::snprintf(req, sizeof(req),
                              "GET /code/%llu HTTP/1.1\r\nHost: surge\r\nConnection: close\r\n\r\n",
                              static_cast<unsigned long long>(slot.a.intent))
              : std::snprintf(req, sizeof(req), "code %llu\n",
                              static_cast<unsigned long long>(slot.a.intent));
  // The request is far smaller than any socket buffer, so a short write only
  // happens on a broken connection: treat it as a failure, not a retry loop.
  ssize_t w = ::send(slot.fd, req, static_cast<size_t>(n), MSG_NOSIGNAL);
  if (w != n) {
    complete(idx, false, w < 0 ? kind_of_errno(errno) : FailureKind::error, now);
    return;
  }
  slot.phase = SlotPhase::reading;
  if (sc.proto == SurgeProto::tcp) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t{slot.gen} << 32) | idx;
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, slot.fd, &ev) != 0) {
      complete(idx, false, FailureKind::error, now);
    }
  }
}

void Engine::on_event(uint32_t idx, uint32_t events, int64_t now) {
  AttemptSlot& slot = slots_[idx];
  if (slot.phase == SlotPhase::connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      complete(idx, false, kind_of_errno(err), now);
      return;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
      complete(idx, false, FailureKind::reset, now);
      return;
    }
    send_request(idx, now);
    return;
  }
  if (cfg_.classes[slot.a.cls].proto == SurgeProto::udp) {
    char b[2048];
    ssize_t r = ::recv(slot.fd, b, sizeof(b), 0);
    if (r >= 0)
      complete(idx, true, FailureKind::error, now);
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
      complete(idx, false, kind_of_errno(errno), now);
    return;
  }
  // HTTP: the status line decides; the body is not needed.
  ssize_t r = ::recv(slot.fd, slot.buf + slot.got, sizeof(slot.buf) - slot.got, 0);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) complete(idx, false, kind_of_errno(errno), now);
    return;
  }
  if (r == 0) {
    // Closed before a full status line: the edge refused us.
    complete(idx, false, FailureKind::reset, now);
    return;
  }
  slot.got += static_cast<size_t>(r);
  // "HTTP/1.1 200" is 12 bytes; a shorter reply waits for more data.
  if (slot.got < 12) return;
  bool ok = std::memcmp(slot.buf, "HTTP/1.", 7) == 0 && std::memcmp(slot.buf + 8, " 200", 4) == 0;
  complete(idx, ok, FailureKind::error, now);
}

void Engine::print_progress(int64_t now) {
  SecondCounts total{};
  for (const auto& s : res_.series) {
    total.offered += s.offered;
    total.attempts += s.attempts;
    total.successes += s.successes;
    total.failures += s.failures;
  }
  (void)std::fprintf(stderr,
                     "t=%5.1fs offered/s=%-7llu success/s=%-7llu failures/s=%-7llu inflight=%zu\n",
                     static_cast<double>(now) / k_ns_per_sec,
                     static_cast<unsigned long long>(total.offered - last_tick_.offered),
                     static_cast<unsigned long long>(total.successes - last_tick_.successes),
                     static_cast<unsigned long long>(total.failures - last_tick_.failures),
                     slots_.size() - free_.size());
  last_tick_ = total;
}

std::string Engine::run() {
  // Every in-flight attempt holds a socket; make sure the fd limit is not the
  // real concurrency bound.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = static_cast<rlim_t>(cfg_.max_inflight) + 64;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = std::min(want, rl.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return std::string("epoll_create1: ") + std::strerror(errno);

  // Sized for the expected intents; grown if the Poisson draw exceeds it.
  sessions_.reserve(static_cast<size_t>(cfg_.profile.max_rate() * cfg_.profile.duration_sec * 1.2) +
                    16);
  start_ns_ = now_ns();
  int64_t next_arrival = next_arrival_after(0);
  int64_t next_tick = k_ns_per_sec;
  int64_t hard_end = duration_ns_ + timeout_ns_ + 100'000'000;
  epoll_event events[k_max_events];

  // Bounded by time: leaves at hard_end at the latest.
  for (;;) {
    int64_t now = now_ns() - start_ns_;
    int budget = k_max_starts_per_turn;
    while (next_arrival <= now && budget-- > 0) {
      PendingAttempt a{next_arrival, next_intent_++, pick_class(), 0, 0};
      Session session;
      session.cls = a.cls;
      const SurgeClass& sc = cfg_.classes[a.cls];
      // A session and its retries keep one source address, as a phone does.
      if (!sc.sources.empty())
        session.src = static_cast<uint32_t>(src_next_[a.cls]++ % sc.sources.size());
      sessions_.push_back(session);
      ++res_.classes[a.cls].intents;
      size_t s = second_of(a.at_ns);
      ++res_.classes[a.cls].series[s].offered;
      ++res_.series[s].offered;
      start_attempt(a, now);
      next_arrival = next_arrival_after(next_arrival);
    }
    while (!retries_.empty() && retries_.top().at_ns <= now && budget-- > 0) {
      PendingAttempt a = retries_.top();
      retries_.pop();
      const Session& session = sessions_[a.intent];
      if (session.state != SessionState::open || session.step != a.step)
        continue;  // a refresh after the answer arrived
      if (a.at_ns >= duration_ns_) {
        if (a.try_no > 0) ++res_.classes[a.cls].retries_abandoned;  // not a session's next lookup
        continue;
      }
      start_attempt(a, now);
    }
    while (!timeouts_.empty() && timeouts_.front().deadline_ns <= now && budget-- > 0) {
      TimeoutEntry t = timeouts_.front();
      timeouts_.pop_front();
      if (slots_[t.slot].gen == t.gen && slots_[t.slot].phase != SlotPhase::idle) {
        complete(t.slot, false, FailureKind::timeout, now);
      }
    }
    if (now >= next_tick) {
      if (cfg_.progress) print_progress(now);
      next_tick += k_ns_per_sec;
    }
    bool arrivals_done = next_arrival == INT64_MAX || now >= duration_ns_;
    // Retries due after the end will never run; count them once, then stop.
    bool retries_done = retries_.empty() || retries_.top().at_ns >= duration_ns_;
    if ((arrivals_done && retries_done && free_.size() == slots_.size()) || now >= hard_end) {
      while (!retries_.empty()) {
        const PendingAttempt& a = retries_.top();
        const Session& session = sessions_[a.intent];
        if (session.state == SessionState::open && session.step == a.step && a.try_no > 0)
          ++res_.classes[a.cls].retries_abandoned;
        retries_.pop();
      }
      for (uint32_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].phase != SlotPhase::idle) complete(i, false, FailureKind::timeout, now);
      }
      for (const Session& session : sessions_)
        if (session.state == SessionState::open) ++res_.classes[session.cls].sessions_unfinished;
      res_.elapsed_sec = static_cast<double>(now) / k_ns_per_sec;
      break;
    }

    int64_t wake = std::min({next_arrival, next_tick, hard_end});
    if (!retries_.empty()) wake = std::min(wake, retries_.top().at_ns);
    if (!timeouts_.empty()) wake = std::min(wake, timeouts_.front().deadline_ns);
    if (budget <= 0) wake = now;
    // epoll_pwait2 takes a nanosecond timeout: with epoll_wait's milliseconds
    // every arrival could start up to 1 ms late, which would show up as
    // latency (it is measured from the scheduled time).
    int64_t wait_ns = wake <= now ? 0 : std::min<int64_t>(wake - now, k_ns_per_sec);
    timespec ts{static_cast<time_t>(wait_ns / k_ns_per_sec),
                static_cast<long>(wait_ns % k_ns_per_sec)};
    int n = ::epoll_pwait2(epfd_, events, k_max_events, &ts, nullptr);
    if (n < 0 && errno != EINTR) return std::string("epoll_wait: ") + std::strerror(errno);
    int64_t after = now_ns() - start_ns_;
    for (int i = 0; i < n; ++i) {
      uint32_t idx = static_cast<uint32_t>(events[i].data.u64 & 0xffffffffu);
      uint32_t gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
      if (idx < slots_.size() && slots_[idx].gen == gen && slots_[idx].phase != SlotPhase::idle) {
        on_event(idx, events[i].events, after);
      }
    }
  }
  ::close(epfd_);
  epfd_ = -1;
  return "";
}

}  // namespace

std::string run_surge(const SurgeConfig& config, SurgeResult& result) {
  Engine e(config, result);
  return e.run();
}

}  // namespace sluice
