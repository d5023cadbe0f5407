// SPDX-License-Identifier: Apache-2.0
#include "control/cli/top.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "control/api/api_client.hpp"
#include "control/cli/cli_common.hpp"

namespace sluice::cli {

// The adaptive boundary in one line (status and top): the rate it set and
// why, against its bounds and its signal.
std::string adaptive_line(const json& a) {
  if (!a.contains("rate") || !a["rate"].is_number())
    return "adaptive boundary: " + a.value("reason", std::string("starting"));
  char line[320];
  std::snprintf(
      line, sizeof(line),
      "adaptive boundary: %lld lookups/s (ceiling %lld, floor %lld), %s; latency %.1f ms "
      "(baseline %.1f, target %.1f), backend answers %.0f/s",
      static_cast<long long>(a.value("rate", 0LL)), static_cast<long long>(a.value("ceiling", 0LL)),
      static_cast<long long>(a.value("floor", 0LL)), a.value("reason", std::string("?")).c_str(),
      a.value("latency_ms", 0.0), a.value("baseline_ms", 0.0), a.value("target_ms", 0.0),
      a.value("delivered_per_sec", 0.0));
  return line;
}

namespace {

// Per second between two readings of a counter; 0 when it went back (a
// restarted sluiced) or no time passed.
double per_sec(unsigned long long now, unsigned long long before, double seconds) {
  return now < before || seconds <= 0 ? 0.0 : static_cast<double>(now - before) / seconds;
}

// The element of `list` whose `key` equals `value`, or `fallback`.
const json& find_by(const json& list, const char* key, const json& value, const json& fallback) {
  for (const json& e : list)
    if (e.contains(key) && e[key] == value) return e;
  return fallback;
}

// The queue and port part of a `top` screen, rates from two statuses.
void top_queues_and_ports(const json& now, const json& before, double seconds,
                          std::ostringstream& out) {
  char line[256];
  const json& queues = list_of(now, "queues");
  if (!queues.empty()) {
    std::snprintf(line, sizeof(line), "\n%-8s %9s %14s %15s\n", "PRIORITY", "DEPTH", "DROP FULL/s",
                  "DROP DELAY/s");
    out << line;
    for (const json& q : queues) {
      const json& p = find_by(list_of(before, "queues"), "priority", q["priority"], q);
      std::snprintf(line, sizeof(line), "%-8llu %9llu %14.0f %15.0f\n", count_of(q, "priority"),
                    count_of(q, "depth"),
                    per_sec(count_of(q, "dropped_full"), count_of(p, "dropped_full"), seconds),
                    per_sec(count_of(q, "dropped_delay"), count_of(p, "dropped_delay"), seconds));
      out << line;
    }
  }
  const json& ports = list_of(now, "ports");
  if (!ports.empty()) {
    std::snprintf(line, sizeof(line), "\n%-8s %11s %11s %11s  %s\n", "PORT", "RX/s", "TX/s",
                  "DROPS/s", "DROPS BY CAUSE /s");
    out << line;
    for (const json& n : ports) {
      const json& p = find_by(list_of(before, "ports"), "name", n["name"], n);
      double drops = 0;
      std::string causes;
      for (const char* cause : {"rx_missed", "rx_nombuf", "tx_errors", "tx_dropped"}) {
        const double r = per_sec(count_of(n, cause), count_of(p, cause), seconds);
        drops += r;
        if (r > 0) {
          char part[64];
          std::snprintf(part, sizeof(part), "%s%s=%.0f", causes.empty() ? "" : " ", cause, r);
          causes += part;
        }
      }
      std::snprintf(line, sizeof(line), "%-8s %11.0f %11.0f %11.0f  %s\n",
                    n.value("name", "-").c_str(),
                    per_sec(count_of(n, "rx_packets"), count_of(p, "rx_packets"), seconds),
                    per_sec(count_of(n, "tx_packets"), count_of(p, "tx_packets"), seconds), drops,
                    causes.empty() ? "-" : causes.c_str());
      out << line;
    }
  }
}

// One screen of `top`: per-class rates from the difference of two statuses.
std::string top_frame(const json& now, const json& before, double seconds) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line),
                "sluice top - %s (%s), generation %llu, profile %s%s, boundary tokens: lookups "
                "%llu packets %llu\n\n",
                now["mode"].get<std::string>().c_str(), now["attach"].get<std::string>().c_str(),
                static_cast<unsigned long long>(now["generation"].get<uint64_t>()),
                now["profile"].is_null() ? "none" : now["profile"].get<std::string>().c_str(),
                now["shadow"].get<bool>() ? ", SHADOW" : "",
                static_cast<unsigned long long>(now["boundary"]["lookup_tokens"].get<uint64_t>()),
                static_cast<unsigned long long>(now["boundary"]["packet_tokens"].get<uint64_t>()));
  out << line;
  if (now.contains("adaptive") && now["adaptive"].is_object())
    out << adaptive_line(now["adaptive"]) << "\n\n";
  std::snprintf(line, sizeof(line), "%-16s %11s %11s %11s %8s %9s %7s  %s\n", "CLASS", "OFFERED/s",
                "ADMITTED/s", "SHED/s", "ADMIT%", "TOKENS", "STICKY", "SHED BY REASON /s");
  out << line;
  std::map<std::string, json> prev;
  for (const json& c : before["classes"]) prev[c["name"]] = c;
  for (const json& c : now["classes"]) {
    const json& p = prev.count(c["name"]) ? prev[c["name"]] : c;
    auto rate = [&](const char* key) {
      const double d =
          static_cast<double>(c[key].get<uint64_t>()) - static_cast<double>(p[key].get<uint64_t>());
      return d < 0 || seconds <= 0 ? 0.0 : d / seconds;
    };
    const double offered = rate("lookups");
    const double admitted = rate("admitted");
    std::string reasons;
    for (auto& [k, v] : c["shed_by_reason"].items()) {
      const double was = p["shed_by_reason"].contains(k) ? p["shed_by_reason"][k].get<double>() : 0;
      const double r = seconds > 0 ? (v.get<double>() - was) / seconds : 0;
      if (r > 0) {
        char part[64];
        std::snprintf(part, sizeof(part), "%s%s=%.0f", reasons.empty() ? "" : " ", k.c_str(), r);
        reasons += part;
      }
    }
    std::snprintf(line, sizeof(line), "%-16s %11.0f %11.0f %11.0f %7.1f%% %9llu %6.0f%%  %s\n",
                  c["name"].get<std::string>().c_str(), offered, admitted, offered - admitted,
                  offered > 0 ? 100.0 * admitted / offered : 100.0,
                  static_cast<unsigned long long>(c["bucket_tokens"].get<uint64_t>()),
                  100.0 * c.value("sticky_admitted_ratio", 1.0),
                  reasons.empty() ? "-" : reasons.c_str());
    out << line;
  }
  if (list_of(now, "queues").empty() && list_of(now, "ports").empty()) {
    out << "\nqueues: " << (now["mode"] == "dpdk" ? "none reported" : "none (XDP cannot queue)")
        << "    q: ctrl-c to quit\n";
    return out.str();
  }
  top_queues_and_ports(now, before, seconds, out);
  out << "\nq: ctrl-c to quit\n";
  return out.str();
}

}  // namespace

// Refresh intervals above this reconnect (the server's idle timeout is 30 s).
constexpr double kReconnectAfterSec = 10.0;

int top(const std::string& socket, bool json_out, double interval, int count) {
  std::string error;
  auto client = sluice::ApiClient::connect(socket, &error);
  if (!client) {
    std::cerr << "sluicectl: " << error << "\n";
    return kUnreachable;
  }
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  auto before = client->call({{"op", "status"}}, &error);
  if (before && !before->value("ok", false)) {
    error = before->value("error", "status refused");
    before.reset();
  }
  auto t_before = std::chrono::steady_clock::now();
  for (int i = 0; before && (count <= 0 || i < count); i++) {
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    // sluiced closes a connection idle for 30 s: a long interval asks on a
    // new one each time.
    if (interval > kReconnectAfterSec) {
      client.reset();
      if (auto fresh = sluice::ApiClient::connect(socket, &error))
        client.emplace(std::move(*fresh));
      if (!client) {
        before.reset();
        break;
      }
    }
    auto now = client->call({{"op", "status"}}, &error);
    if (!now || !now->value("ok", false)) {
      if (now) error = now->value("error", "status refused");
      before.reset();
      break;
    }
    const auto t_now = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(t_now - t_before).count();
    if (json_out) {
      std::cout << now->dump() << "\n" << std::flush;
    } else {
      if (tty) std::cout << "\x1b[H\x1b[2J";  // home + clear: redraw in place
      std::cout << top_frame(*now, *before, secs) << std::flush;
      if (!tty) std::cout << "\n";
    }
    before = now;
    t_before = t_now;
  }
  if (!before) {
    std::cerr << "sluicectl: " << error << "\n";
    return kUnreachable;
  }
  return kOk;
}

}  // namespace sluice::cli
