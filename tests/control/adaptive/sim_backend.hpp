// SPDX-License-Identifier: Apache-2.0
// A simulated edge + backend for the adaptive controller's tests: Poisson
// arrivals, a token bucket at the controller's rate (burst rate / 10), a
// FIFO backend of `workers` servers with a service time that follows a
// schedule, and the backend signal the dataplane would count (one sample per
// admitted request, from admission to the answer). 1 ms steps, 100 ms
// controller ticks, seeded: every run is the same.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <random>
#include <vector>

#include "control/adaptive/controller.hpp"
#include "dataplane/model/backend_signal.h"
#include "dataplane/model/flow.h"

namespace sluice::sim {

struct Backend {
  uint32_t workers = 4;
  // service time in ms at time t (seconds since start)
  std::function<double(double)> service_ms = [](double) { return 20.0; };
  // A pacing backend (0: none): requests start at most this many per
  // second (a token bucket of one), each then answered in its service time,
  // e.g. an API gateway's rate limit in front of a fast service.
  double pace_per_sec = 0;
  std::function<double(double)> pace_at;  // the pace at time t, when it changes
  double pace(double t) const { return pace_at ? pace_at(t) : pace_per_sec; }
  double capacity(double t) const {
    const double served = workers * 1000.0 / service_ms(t);
    return pace(t) > 0 ? std::min(served, pace(t)) : served;
  }
};

// One edge: its own arrivals, bucket and controller, feeding a shared backend.
struct Edge {
  double offered_per_sec = 0;
  AdaptiveController controller;
  double floor = 1;
  double ceiling = 1;
  double tokens = 0;
  AdaptiveTick tick;
  std::vector<double> rates;      // per 100 ms tick
  std::vector<double> delivered;  // answers per second of this edge, per whole second
  Edge(double offered, double start_rate, double floor_, double ceiling_)
      : offered_per_sec(offered), controller(start_rate), floor(floor_), ceiling(ceiling_) {}
};

class Run {
 public:
  Run(Backend backend, std::vector<Edge*> edges, uint64_t seed = 1)
      : backend_(std::move(backend)), edges_(std::move(edges)), rng_(seed) {}

  // Runs `seconds`; the offered load of each edge may follow `offered(t, i)`.
  void run(double seconds, const std::function<double(double, size_t)>& offered = nullptr) {
    const int steps = static_cast<int>(seconds * 1000);
    for (int i = 0; i < steps; i++, now_ms_++) {
      const double t = now_ms_ / 1000.0;
      for (size_t e = 0; e < edges_.size(); e++) {
        Edge& edge = *edges_[e];
        const double rate = edge.controller.rate();
        edge.tokens = std::min(edge.tokens + rate / 1000.0, std::max(1.0, rate / 10.0));
        const double lambda = offered ? offered(t, e) : edge.offered_per_sec;
        std::poisson_distribution<int> arrivals(lambda / 1000.0);
        for (int n = arrivals(rng_); n > 0; n--) {
          if (edge.tokens >= 1.0) {
            edge.tokens -= 1.0;
            if (jitter_ms > 0) {
              // The request reaches the backend a client's round trip later.
              std::exponential_distribution<double> after(1.0 / jitter_ms);
              pending_.push_back({now_ms_ + std::llround(after(rng_)), e});
            } else {
              queue_.push_back({now_ms_, e});
            }
            edge.tick.signal.requests++;
            edge.tick.admitted_lookups++;
          } else {
            edge.tick.boundary_shed++;
          }
        }
      }
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->admitted_ms > now_ms_) {
          ++it;
          continue;
        }
        queue_.push_back(*it);  // its latency counts from here, as the dataplane's does
        it = pending_.erase(it);
      }
      serve(t);
      if (resplit_ms > 0 && (now_ms_ + 1) % resplit_ms == 0) resplit(t, offered);
      if ((now_ms_ + 1) % 100 == 0) {
        for (Edge* edge : edges_) {
          edge->tick.seconds = 0.1;
          const AdaptiveStep st = edge->controller.step(edge->tick, edge->floor, edge->ceiling);
          if (std::getenv("SIM_TRACE"))
            std::fprintf(stderr,
                         "t=%.1f rate=%.0f %s lat=%.1fms base=%.1fms del=%.0f req=%lu ans=%lu\n", t,
                         st.rate, adaptive_reason_name(st.reason), st.latency_sec * 1e3,
                         st.baseline_sec * 1e3, st.delivered_per_sec,
                         (unsigned long)edge->tick.signal.requests,
                         (unsigned long)edge->tick.signal.responses);
          edge->rates.push_back(edge->controller.rate());
          edge->tick = AdaptiveTick{};
        }
      }
      if ((now_ms_ + 1) % 1000 == 0) {
        for (size_t e = 0; e < edges_.size(); e++) {
          edges_[e]->delivered.push_back(answered_[e]);
          answered_[e] = 0;
        }
      }
    }
  }

  // Answers per second within `deadline_ms` of admission, all edges, per second.
  const std::vector<double>& useful() const { return useful_; }

 private:
  struct Request {
    int64_t admitted_ms;
    size_t edge;
  };
  struct Busy {
    int64_t done_ms;
    Request r;
  };

  // The fleet's re-split (fleet_agent.cpp): each edge's share, by its
  // demand, of the sum of the rates the edges published at the sync before
  // (a sync old, as etcd's records are); then they publish anew.
  void resplit(double t, const std::function<double(double, size_t)>& offered) {
    published_.resize(edges_.size(), 0);
    double total = 0, demand = 0;
    for (size_t e = 0; e < edges_.size(); e++) {
      total += published_[e];
      demand += offered ? offered(t, e) : edges_[e]->offered_per_sec;
    }
    for (size_t e = 0; e < edges_.size(); e++) {
      Edge& edge = *edges_[e];
      const double mine = offered ? offered(t, e) : edge.offered_per_sec;
      if (total > 0 && demand > 0)
        edge.controller.resplit(total * mine / demand, edge.floor, edge.ceiling);
    }
    for (size_t e = 0; e < edges_.size(); e++) published_[e] = edges_[e]->controller.rate();
  }

  void serve(double t) {
    answered_.resize(edges_.size(), 0);
    for (auto it = busy_.begin(); it != busy_.end();) {
      if (it->done_ms > now_ms_) {
        ++it;
        continue;
      }
      answer(it->r);
      it = busy_.erase(it);
    }
    const double pace = backend_.pace(t);
    if (pace > 0) pace_tokens_ = std::min(1.0, pace_tokens_ + pace / 1000.0);
    while (busy_.size() < backend_.workers && !queue_.empty()) {
      if (pace > 0) {
        if (pace_tokens_ < 1.0) break;
        pace_tokens_ -= 1.0;
      }
      const int64_t service = std::max<int64_t>(1, std::llround(backend_.service_ms(t)));
      busy_.push_back({now_ms_ + service, queue_.front()});
      queue_.pop_front();
    }
  }

  void answer(const Request& r) {
    const uint64_t us = static_cast<uint64_t>(now_ms_ - r.admitted_ms) * 1000;
    sl_backend_signal& sig = edges_[r.edge]->tick.signal;
    sig.responses++;
    sig.sum_us += us;
    sig.hist[sl_rt_bucket(us)]++;
    const size_t second = static_cast<size_t>(now_ms_ / 1000);
    if (useful_.size() <= second) useful_.resize(second + 1, 0);
    if (now_ms_ - r.admitted_ms <= deadline_ms) {
      useful_[second] += 1;
      answered_[r.edge] += 1;
    }
  }

  Backend backend_;
  std::vector<Edge*> edges_;
  std::mt19937_64 rng_;
  int64_t now_ms_ = 0;
  std::deque<Request> queue_;
  std::vector<Request> pending_;  // admitted, on their way (jitter_ms)
  std::vector<Busy> busy_;
  std::vector<double> useful_;
  std::vector<double> answered_;
  std::vector<double> published_;
  double pace_tokens_ = 1;  // a pacing backend's

 public:
  int64_t deadline_ms = 1000;  // a client's timeout: later answers are not useful
  int64_t resplit_ms = 0;      // a fleet's sync period (0: edges never re-split)
  // Admitted requests reach the backend this long later on average
  // (exponential: clients' handshakes and think times), 0: at once. Under a
  // surge the edge admits at its rate almost evenly; real clients then
  // scatter those admissions in time, as Poisson arrivals at the backend.
  double jitter_ms = 0;
};

}  // namespace sluice::sim
