// SPDX-License-Identifier: Apache-2.0
// sluice-backend: a fixed-capacity HTTP/1.1 service for the surge lab (see
// backend_server.hpp for the model). Runs until --duration-sec, SIGINT or
// SIGTERM, then writes --report-json.
//
// Exit codes: 0 ok, 1 bad arguments, cannot listen, or cannot write the report.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>

#include "tools/backend/backend_server.hpp"

namespace {

// Under a surge every client connection is a descriptor; the default soft
// limit (often 1024) would cap the lab long before the backend's capacity.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int run(int argc, char** argv) {
  sluice::BackendOptions options;
  std::string report_path;
  CLI::App app{
      "sluice-backend: an HTTP/1.1 service with a fixed capacity of workers*1000/service-time-ms "
      "requests/s, for the surge lab. GET /code/<id> is served after the service time; "
      "GET /health answers at once. Requests that find the queue full get 503 \"overloaded\" "
      "and their connection is closed; requests that waited longer than --request-timeout-ms "
      "get 503 \"timeout\"."};
  app.add_option("--listen", options.listen,
                 "ADDR:PORT to listen on, e.g. 0.0.0.0:8080 or [::]:8080 (dual stack)")
      ->capture_default_str();
  app.add_option("--workers", options.workers, "requests served concurrently")
      ->capture_default_str()
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--service-time-ms", options.service_time_ms, "worker time per request, ms")
      ->capture_default_str()
      ->check(CLI::Range(1u, 60000u));
  app.add_option("--queue", options.queue, "requests allowed to wait beyond the workers")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1000000u));
  app.add_option("--request-timeout-ms", options.request_timeout_ms,
                 "a request that waited longer than this is answered 503 timeout, ms")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--duration-sec", options.duration_sec, "exit after this many seconds")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  std::string schedule;
  app.add_option("--capacity-schedule", schedule,
                 "the backend slows and recovers: SECONDS:FACTOR,... sets the capacity to FACTOR "
                 "x C from SECONDS after the start (the service time divided by FACTOR), e.g. "
                 "20:0.5,40:1");
  app.add_option("--report-json", report_path, "write the run's report to FILE at exit");
  app.add_option("--report-interval-sec", options.report_interval_sec,
                 "print a progress line to stderr every N seconds (0 = never)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 3600u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (!schedule.empty()) {
    std::string error;
    if (!sluice::parse_capacity_schedule(schedule, &options.capacity_schedule, &error)) {
      std::cerr << "sluice-backend: " << error << "\n";
      return 1;
    }
  }
  if (std::string error = sluice::validate_backend_options(options); !error.empty()) {
    std::cerr << "sluice-backend: " << error << "\n";
    return 1;
  }

  raise_fd_limit();
  // Signals are taken synchronously by the main thread; the server threads
  // inherit the blocked mask so none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  (void)std::signal(SIGPIPE, SIG_IGN);

  sluice::BackendServer server(options);
  std::string error;
  if (!server.start(&error)) {
    std::cerr << "sluice-backend: " << error << "\n";
    return 1;
  }
  std::cerr << "sluice-backend: listening on " << options.listen << " (port " << server.port()
            << "), capacity " << server.capacity_per_sec() << " req/s\n";
  while (!server.done()) {
    timespec tick{0, 200L * 1000 * 1000};  // 200 ms: how soon --duration-sec is noticed
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  server.stop();
  nlohmann::json report = server.report();
  std::cerr << "sluice-backend: served " << report["served"] << ", timed out "
            << report["timed_out"] << ", rejected " << report["rejected"] << "\n";
  if (!report_path.empty()) {
    std::ofstream out(report_path);
    out << report.dump(2) << "\n";
    if (!out.flush()) {
      std::cerr << "sluice-backend: cannot write " << report_path << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Allocation or thread creation failing at startup is the only way here.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sluice-backend: " << e.what() << "\n";
    return 1;
  }
}
