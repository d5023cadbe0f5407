// SPDX-License-Identifier: Apache-2.0
// sluiced: the admission-control daemon.
#include <grp.h>
#include <signal.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "control/api/api_server.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"
#include "control/config/config_notes.hpp"
#include "control/daemon.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/log.hpp"

namespace {

const char* mode_name(sluice::DataplaneKind m) {
  switch (m) {
    case sluice::DataplaneKind::dpdk:
      return "dpdk";
    case sluice::DataplaneKind::xdp:
      return "xdp";
    case sluice::DataplaneKind::automatic:
      return "auto";
  }
  return "?";
}

std::string rate_text(const std::optional<uint64_t>& rate, uint64_t burst) {
  if (!rate) return "unlimited";
  return std::to_string(*rate) + "/s burst " + std::to_string(burst);
}

// Validates a config and prints a short summary; every problem on stderr as
// FILE:LINE:COL: key: message. Returns the process exit code.
int check_config(const std::string& path) {
  sluice::LoadResult loaded = sluice::load_config_file(path);
  if (!loaded.ok()) {
    for (const sluice::ConfigError& e : loaded.errors) std::cerr << e.to_string() << '\n';
    std::cerr << path << ": " << loaded.errors.size() << " error(s), config not valid\n";
    return 1;
  }
  const sluice::Config& cfg = *loaded.config;
  // What the config names on this host, as far as a start would look it up:
  // the token file, etcd's access files, the socket and audit log paths,
  // DPDK's EAL arguments, the socket's group.
  std::vector<sluice::ConfigError> host;
  if (!cfg.control.http_listen.empty()) {
    std::string token, why;
    if (!sluice::read_http_token(cfg.control.http_token_file, &token, &why))
      host.push_back(sluice::error_at_key(loaded.text, path, "control.http_token_file", why));
  }
  if (cfg.fleet) {
    std::string key, why;
    if (!sluice::check_etcd_access(cfg.fleet->access, &key, &why))
      host.push_back(sluice::error_at_key(loaded.text, path, key, why));
  }
  // Files sluiced creates or appends to: not a directory already there.
  for (const auto& [key, file] :
       {std::pair<std::string, std::string>{"control.socket", cfg.control.socket},
        {"control.audit_log", cfg.control.audit_log}}) {
    std::error_code ec;
    if (!file.empty() && std::filesystem::is_directory(file, ec))
      host.push_back(sluice::error_at_key(loaded.text, path, key,
                                          file + " is a directory; expected a file's path"));
  }
  if (std::string why; !sluice::check_dpdk_args(sluice::dataplane_settings(cfg), &why))
    host.push_back(sluice::error_at_key(loaded.text, path, "dataplane.dpdk_args", why));
  if (std::string why; !sluice::check_pin_path(sluice::dataplane_settings(cfg), &why))
    host.push_back(sluice::error_at_key(loaded.text, path, "dataplane.pin_path", why));
  if (std::string why; !sluice::check_prefix_capacity(sluice::dataplane_settings(cfg),
                                                      sluice::compile_profile(cfg), &why))
    host.push_back(sluice::error_at_key(loaded.text, path, "class", why));
  if (!cfg.control.socket_group.empty() && ::getgrnam(cfg.control.socket_group.c_str()) == nullptr)
    host.push_back(
        sluice::error_at_key(loaded.text, path, "control.socket_group",
                             "no group \"" + cfg.control.socket_group + "\" on this host"));
  if (!host.empty()) {
    sluice::sort_by_position(host);  // as the loader's errors (docs/config.md)
    for (const sluice::ConfigError& e : host) std::cerr << e.to_string() << '\n';
    std::cerr << path << ": " << host.size() << " error(s), config not valid\n";
    return 1;
  }
  sluice::CompiledProfile profile = sluice::compile_profile(cfg);
  std::cout << path << ": ok\n"
            << "  dataplane: mode " << mode_name(cfg.dataplane.mode) << ", outside '"
            << cfg.dataplane.outside << "', inside '" << cfg.dataplane.inside << "'\n"
            << "  control: socket '" << cfg.control.socket << "'\n"
            << (cfg.dataplane.outside.empty()
                    ? "  note: no dataplane.outside: sluiced will not start with this file "
                      "(sluicectl replay needs none)\n"
                    : "")
            << "  boundary: lookups "
            << rate_text(cfg.boundary.lookups_per_sec, cfg.boundary.lookups_burst) << ", packets "
            << rate_text(cfg.boundary.packets_per_sec, cfg.boundary.packets_burst) << '\n'
            << "  classes (" << cfg.classes.size() << ", tried in order):\n";
  for (const sluice::ClassConfig& c : cfg.classes) {
    std::cout << "    " << c.name << ": priority " << int{c.priority} << ", "
              << rate_text(c.rate_per_sec, c.burst) << ", "
              << c.match.src.size() + c.match.dst.size() << " prefixes"
              << (c.per_source ? ", per-source budget" : "") << '\n';
  }
  for (const std::string& note : sluice::config_notes(cfg)) std::cout << "  note: " << note << '\n';
  std::cout << "  lpm entries: " << profile.src_prefixes.size() << " source, "
            << profile.dst_prefixes.size() << " destination\n"
            << "  profiles: " << cfg.profiles.size();
  for (const auto& [name, overlay] : cfg.profiles) std::cout << ' ' << name;
  std::cout << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closes a TLS connection (etcd, an HTTP client) must not
  // kill the process: OpenSSL writes without MSG_NOSIGNAL.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "sluiced - admission-control daemon for the network edge.\n\n"
      "Runs in the foreground: SIGHUP reloads the config file (a bad file is rejected and the "
      "running config stays); SIGTERM or SIGINT exit and leave the XDP program enforcing the "
      "last config (the next sluiced adopts it without losing a packet). A start that fails "
      "(config rejected, dataplane not starting) keeps sluiced up but not in charge: the control "
      "socket and /metrics say why, the edge keeps what it runs, and SIGHUP retries. SIGUSR1 "
      "reopens the audit log (logrotate). Logs are logfmt lines on stderr, with syslog "
      "priorities when stderr is the journal. Exit codes: 0 ok, 1 a bad config (--check-config), a "
      "control "
      "plane that cannot start, another sluiced on the same pin_path, or a failed --detach / "
      "--install-passthrough."};
  app.set_version_flag("--version", std::string("sluiced ") + SLUICE_VERSION);
  std::string check_path;
  std::string config_path;
  bool detach = false;
  bool detach_all = false;
  bool passthrough = false;
  unsigned log_interval = 5;
  auto* check = app.add_option("--check-config", check_path,
                               "validate FILE, print a summary and exit (0 valid, 1 invalid)")
                    ->option_text("FILE");
  auto* run =
      app.add_option("--config", config_path, "run with the config FILE")->option_text("FILE");
  auto* detach_flag = app.add_flag(
      "--detach", detach,
      "with --config: stop enforcement for good, then exit. An inline edge gets the "
      "dataplane.when_stopped program (\"forward\": a pass-through; \"block\": drops "
      "everything) and the maps are removed; host mode removes everything (an ExecStop= line "
      "for a stop that should not leave the last config enforcing)");
  app.add_flag("--all", detach_all,
               "with --detach: remove everything sluice attached and pinned, the pass-through and "
               "the edge record included (an inline edge then forwards nothing)")
      ->needs(detach_flag);
  app.add_flag("--install-passthrough", passthrough,
               "with --config: install the dataplane.when_stopped program on an inline edge where "
               "no sluice program enforces yet, then exit (a oneshot unit ordered before the "
               "network comes up)")
      ->excludes(detach_flag);
  app.add_option("--log-interval", log_interval,
                 "seconds between per-class counter logs (a whole number, 1..3600)")
      ->check(CLI::Validator(
          [](std::string& v) {
            return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                       ? std::string()
                       : "expected a whole number of seconds, found \"" + v + "\"";
          },
          "SECONDS"))
      ->check(CLI::Range(1u, 3600u));
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "lowest level logged: debug, info, warn, error (at run time: sluicectl "
                 "log-level)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  check->excludes(run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  sluice::set_log_level(*sluice::parse_log_level(log_level));
  for (auto* given : {check, run}) {
    if (given->count() > 0 && given->as<std::string>().empty()) {
      std::cerr << "sluiced: " << given->get_name() << ": an empty path; give a config FILE\n";
      return 1;
    }
  }
  if (!check_path.empty()) return check_config(check_path);
  if (config_path.empty() && (detach || passthrough)) {
    std::cerr << "sluiced: " << (detach ? "--detach" : "--install-passthrough")
              << " needs --config FILE: the config names the links and pins it acts on\n";
    return 1;
  }
  if (config_path.empty()) {
    std::cerr << "sluiced: give --config FILE to run, or --check-config FILE (see --help)\n";
    return 1;
  }
  if (detach) return sluice::detach(config_path, detach_all);
  if (passthrough) return sluice::install_passthrough(config_path);
  sluice::DaemonOptions options;
  options.config_path = config_path;
  options.log_interval_sec = log_interval;
  return sluice::run_daemon(options);
}
