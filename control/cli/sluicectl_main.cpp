// SPDX-License-Identifier: Apache-2.0
// sluicectl: the engineer's tool for a running sluiced (status, top, get,
// set, apply, profile, shadow, rollback, history, log-level, capture) and for
// offline replay.
//
// Exit codes: 0 ok, 1 rejected (bad arguments, refused change, bad config or
// capture; a fleet change an edge refused or did not run in time), 2 cannot
// reach the daemon, or it is still starting.
#include <signal.h>
#include <unistd.h>
#include <algorithm>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "control/api/api_client.hpp"
#include "control/api/change_json.hpp"
#include "control/cli/arg_checks.hpp"
#include "control/cli/capture.hpp"
#include "control/cli/cli_common.hpp"
#include "control/cli/edge_requests.hpp"
#include "control/cli/fleet_cli.hpp"
#include "control/cli/replay.hpp"
#include "control/cli/status_view.hpp"
#include "control/cli/top.hpp"
#include "control/config/compile.hpp"
#include "control/config/config.hpp"
#include "control/config/config_loader.hpp"
#include "control/fleet/fleet_policy.hpp"

namespace {

using json = nlohmann::json;
using namespace sluice::cli;

bool is_utf8(const std::string& text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// "class.citizen.on_shed=reset" -> key, TOML value text. A bare word that is
// not TOML (reset, drop, sticky, eth1, surge-2) is taken as a string, as an
// engineer means it. Digits are allowed after the first letter: a TOML value
// that starts with a letter is only true, false, inf or nan, so "eth1" can
// only have meant a string. So is an address or prefix (198.18.10.0/24,
// 2001:2::/48, 198.18.1.1), which TOML would misread as a number, and a
// port range (8000-8100), which it would misread as a date.
bool parse_setting(const std::string& arg, std::pair<std::string, std::string>* out) {
  const std::size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  std::string value = arg.substr(eq + 1);
  const bool bare =
      !value.empty() && std::isalpha(static_cast<unsigned char>(value[0])) != 0 &&
      value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
          std::string::npos;
  const bool address = !value.empty() &&
                       value.find_first_not_of("0123456789abcdefABCDEF.:/") == std::string::npos &&
                       (value.find_first_of("/:") != std::string::npos ||
                        std::count(value.begin(), value.end(), '.') > 1);
  // A port range (8000-8100), which TOML would misread as a date.
  const std::size_t dash = value.find('-');
  const bool port_range = dash != std::string::npos && dash > 0 && dash + 1 < value.size() &&
                          value.find_first_not_of("0123456789-") == std::string::npos &&
                          value.find('-', dash + 1) == std::string::npos;
  if ((bare && value != "true" && value != "false" && value != "inf" && value != "nan") ||
      address || port_range)
    value = "\"" + value + "\"";
  *out = {arg.substr(0, eq), value};
  return true;
}

int replay(const std::string& config_path, const std::string& pcap_path,
           const std::vector<std::string>& return_src, bool no_learning, bool json_out) {
  std::vector<sluice::LpmEntry> servers;
  for (const std::string& text : return_src) {
    std::string why;
    const auto p = sluice::parse_prefix_text(text, &why);
    if (!p) {
      std::cerr << "sluicectl replay: --return-src " << text << ": " << why << '\n';
      return kRejected;
    }
    sluice::LpmEntry e;
    e.family = p->family;
    e.len = p->len;
    e.addr_be = p->addr;
    e.class_mask = 1;
    servers.push_back(e);
  }
  sluice::LoadResult loaded = sluice::load_config_file(config_path);
  if (!loaded.ok()) {
    for (const sluice::ConfigError& e : loaded.errors) std::cerr << e.to_string() << '\n';
    return kRejected;
  }
  sluice::CompiledProfile profile = sluice::compile_profile(*loaded.config);
  if (no_learning) profile.prof.flow_learn_ns = 0;  // an edge already running
  std::string error;
  auto result = sluice::replay_pcap(profile, pcap_path, &error, servers);
  if (!result) {
    std::cerr << "sluicectl replay: " << error << '\n';
    return kRejected;
  }
  if (json_out) {
    std::cout << sluice::to_json(*result).dump(2) << '\n';
  } else {
    std::cout << sluice::to_table(*result);
  }
  return kOk;
}

int run(int argc, char** argv) {
  // A peer that closes a TLS connection (etcd, an HTTP client) must not
  // kill the process: OpenSSL writes without MSG_NOSIGNAL.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "sluicectl - see and retune a running sluiced, or replay a capture offline.\n\n"
      "Changes are validated in full before anything is applied; a refused change alters "
      "nothing and names the key. Every applied change gets a new generation (rollback "
      "returns to any kept one) and a line in the audit log.\n\n"
      "Exit codes: 0 ok, 1 rejected (bad arguments, refused change, bad config or capture), "
      "2 cannot reach sluiced, or it is still starting or busy (every control connection taken): "
      "try again."};
  app.set_version_flag("--version", std::string("sluicectl ") + SLUICE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --json and --socket also after the subcommand
  Globals g;
  app.add_option("--socket", g.socket, "sluiced's control socket (control.socket)")
      ->check(socket_named())
      ->capture_default_str();
  app.add_option("--pin-path", g.pin_path,
                 "dataplane.pin_path, where `status` reads the pinned edge record when sluiced "
                 "cannot answer")
      ->check(path_named())
      ->capture_default_str();
  app.add_flag("--json", g.json_out, "print the daemon's JSON response instead of text");
  app.add_flag("--fleet", g.fleet,
               "get, history, set, apply, profile, shadow, rollback: for every edge of the fleet "
               "that --config's [fleet] names, through its etcd (docs/fleet.md)");
  app.add_option("--config", g.config, "with --fleet: the local config whose [fleet] to use")
      ->check(path_named())
      ->capture_default_str();
  app.add_option("--fleet-wait-ms", g.fleet_wait_ms,
                 "with --fleet: how long a change waits for every edge to run it (0: not at all)")
      ->capture_default_str()
      ->transform(whole_between(0, 600000));

  double wait_sec = 0;
  auto* status_cmd =
      app.add_subcommand("status", "mode, interfaces, generation, uptime and per-class figures");
  status_cmd
      ->add_option("--wait", wait_sec,
                   "wait up to SECONDS for sluiced to answer in charge (while it is starting, "
                   "cannot be reached or is not in charge), then print the status: exit 0 in "
                   "charge, 1 not in charge, 2 unreachable or still starting")
      ->check(seconds_between(0.0, 3600.0));

  double interval = 1.0;
  int count = 0;
  auto* top_cmd = app.add_subcommand(
      "top",
      "live per-class table, refreshed every second: offered, admitted and shed lookups "
      "per second, shed by reason, bucket levels (works over ssh; without a terminal it "
      "prints one table per refresh)");
  top_cmd->add_option("--interval", interval, "seconds between refreshes")
      ->check(seconds_between(0.1, 60.0));
  top_cmd->add_option("--count", count, "stop after this many refreshes (0 = until ctrl-c)")
      ->transform(whole_between(0, 1000000000));

  bool get_base = false;
  app.add_subcommand("get", "print the effective config (TOML) and its generation")
      ->add_flag("--base", get_base,
                 "print the base config instead (without the active profile), as errors in it "
                 "number its lines: after a live set or shadow, toml++'s rewrite, named <running>");
  app.add_subcommand("history", "list the kept generations: when, who, what operation");

  std::vector<std::string> settings;
  bool dry_run = false;
  auto* set_cmd = app.add_subcommand(
      "set",
      "change one or more keys at once, e.g. class.citizen.rate_per_sec=20000 "
      "boundary.lookups_per_sec=30000 class.citizen.on_shed=reset (values are TOML; a "
      "bare word is a string)");
  set_cmd->add_option("KEY=VALUE", settings, "settings")->required();
  set_cmd->add_flag("--dry-run", dry_run, "validate and show the diff, apply nothing");

  std::string file;
  auto* apply_cmd = app.add_subcommand(
      "apply", "replace the config with FILE: validate, show the diff, swap atomically");
  apply_cmd->add_option("FILE", file, "config file")->required()->check(CLI::ExistingFile);
  apply_cmd->add_flag("--dry-run", dry_run, "validate and show the diff, apply nothing");

  std::string profile;
  auto* profile_cmd = app.add_subcommand(
      "profile", "switch to a [profiles.NAME] overlay of the config (e.g. surge-1), or 'none'");
  profile_cmd->add_option("NAME", profile, "profile name")->required();
  profile_cmd->add_flag("--dry-run", dry_run, "validate and show the diff, apply nothing");

  std::string on_off;
  auto* shadow_cmd = app.add_subcommand(
      "shadow", "shadow mode on: admit everything but count what would be shed; off: enforce");
  shadow_cmd->add_option("on|off", on_off, "on or off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  shadow_cmd->add_flag("--dry-run", dry_run, "validate and show the diff, apply nothing");

  uint64_t generation = 0;
  auto* rollback_cmd =
      app.add_subcommand("rollback",
                         "return to generation GEN (default: the one before the current), as a new "
                         "generation");
  rollback_cmd->add_option("GEN", generation, "generation number (see history)")
      ->transform(CLI::Validator(
          [](std::string& text) -> std::string {
            // Decimal: without its leading zeros, CLI11 would read 010 as 8.
            const std::size_t first = std::min(text.find_first_not_of('0'), text.size());
            const bool digits = decimal(text, false) && text.size() - first <= 19;
            if (digits && first < text.size()) {
              text.erase(0, first);
              return "";
            }
            return "expected a generation number, 1 or more (see sluicectl history), found \"" +
                   text + "\"";
          },
          "GEN"));
  rollback_cmd->add_flag("--dry-run", dry_run, "validate and show the diff, apply nothing");

  std::string level;
  auto* log_level_cmd = app.add_subcommand(
      "log-level",
      "print sluiced's log level, or set it now (not kept across restarts: sluiced "
      "--log-level)");
  log_level_cmd->add_option("LEVEL", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  CaptureArgs cap;
  auto* capture_cmd = app.add_subcommand(
      "capture",
      "write frames sluiced decides, sampled, to a pcapng file with each packet's class, verdict "
      "and reason in its comment (tcpdump reads it; tshark -r FILE -T fields -e frame.comment "
      "shows the comments); ends after COUNT frames or the time limit");
  const CLI::Validator named(
      [](const std::string& v) {
        return v.empty() ? std::string("expected a name, found \"\"") : "";
      },
      "NAME");
  capture_cmd->add_option("--class", cap.class_name, "only this class")->check(named);
  capture_cmd->add_option("--verdict", cap.verdict, "shed, admitted or any")
      ->check(CLI::IsMember({"shed", "admitted", "any"}))
      ->capture_default_str();
  capture_cmd
      ->add_option("--reason", cap.reason,
                   "only this reason (class_rate, boundary_lookups, sticky, ...)")
      ->check(named);
  capture_cmd->add_option("-c,--count", cap.count, "frames to capture")
      ->transform(whole_between(1, 1000000))
      ->capture_default_str();
  capture_cmd->add_option("-w,--write", cap.file, "pcapng file to write (-: standard output)")
      ->required();
  capture_cmd->add_option("--seconds", cap.seconds, "time limit")
      ->transform(whole_between(1, 3600))
      ->capture_default_str();
  capture_cmd->add_option("--sample", cap.sample, "1 in N of the matching frames")
      ->transform(whole_between(1, 1000000))
      ->capture_default_str();
  capture_cmd->add_option("--snaplen", cap.snaplen, "bytes kept of each frame")
      ->transform(whole_between(1, 256))
      ->capture_default_str();

  std::string config_path;
  std::string pcap_path;
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "Run every packet of a capture through the admission model, using the capture's "
      "timestamps as the clock, and print per class: packets, lookups, admitted, shed by "
      "reason. Nothing is sent anywhere; use it to ask 'what would this config have done?'");
  replay_cmd->add_option("--config", config_path, "sluice TOML config to evaluate")
      ->required()
      ->check(CLI::ExistingFile);
  replay_cmd
      ->add_option("--pcap", pcap_path,
                   "capture to replay: pcap or pcapng, \"-\" for stdin (tcpdump -w -); "
                   "Ethernet, Linux cooked (tcpdump -i any: LINUX_SLL, LINUX_SLL2) or raw IP")
      ->required()
      ->check(CLI::Validator(
          [](std::string& v) { return v == "-" ? std::string() : CLI::ExistingFile(v); },
          "FILE or -"));
  std::vector<std::string> return_src;
  replay_cmd->add_option("--return-src", return_src,
                         "prefix of the protected servers (repeatable): their frames in the "
                         "capture are the return path, which opens, closes and confirms flows "
                         "instead of being decided");
  bool no_learning = false;
  replay_cmd->add_flag("--no-learning", no_learning,
                       "replay as an edge already running: no learning window (by default "
                       "replay starts with an empty flow table, as a fresh start does, and "
                       "trusts unknown TCP flows for admission.flow_learn_sec from the first "
                       "packet)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command: CLI11 would only say that one is required.
    if (app.get_subcommands().empty() && !app.remaining().empty()) {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands({}))
        names += (names.empty() ? "" : ", ") + sub->get_name();
      std::cerr << "sluicectl: unknown command \"" << app.remaining().front()
                << "\"; commands are: " << names << "\nRun with --help for more information.\n";
      return kRejected;
    }
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kRejected;
  }

  json r;
  if (g.fleet) {
    for (const char* local_only : {"status", "top", "capture", "log-level", "replay"}) {
      if (app.got_subcommand(local_only)) {
        std::cerr << "sluicectl: --fleet is for get, history, set, apply, profile, shadow and "
                     "rollback; "
                  << local_only << " is one edge's\n";
        return kRejected;
      }
    }
  }
  if (app.got_subcommand("replay"))
    return replay(config_path, pcap_path, return_src, no_learning, g.json_out);
  if (app.got_subcommand("status")) return status(g, wait_sec);
  if (app.got_subcommand("capture")) return sluice::cli::capture(g.socket, cap);
  if (app.got_subcommand("log-level")) {
    json request = {{"op", "log_level"}};
    if (!level.empty()) request["level"] = level;
    const int rc = call(g, request, &r);
    if (rc != kOk) return rc;
    if (g.json_out) {
      std::cout << r.dump(2) << "\n";
    } else if (r.contains("previous")) {
      std::cout << "log level " << r["level"].get<std::string>() << " (was "
                << r["previous"].get<std::string>() << ")\n";
    } else {
      std::cout << "log level " << r["level"].get<std::string>() << "\n";
    }
    return kOk;
  }
  if (app.got_subcommand("top")) return sluice::cli::top(g.socket, g.json_out, interval, count);
  if (app.got_subcommand("get") || app.got_subcommand("history")) {
    const bool get = app.got_subcommand("get");
    const int rc = call(g, {{"op", get ? "get" : "history"}}, &r);
    if (rc != kOk) return rc;
    if (g.json_out) {
      std::cout << r.dump(2) << "\n";
    } else if (get && get_base) {
      // The text alone on stdout, so that an error's line is its line here.
      std::cerr << "# generation " << r["generation"] << ", base config "
                << r.value("base_source", std::string("?")) << "\n";
      std::cout << r.value("base", std::string());
    } else if (get) {
      std::cout << "# generation " << r["generation"] << ", profile "
                << (r["profile"].is_null() ? "none" : r["profile"].get<std::string>()) << "\n"
                << r["config"].get<std::string>();
    } else {
      for (const json& h : r["generations"])
        std::cout << h["generation"] << "  " << h["time"].get<std::string>() << "  "
                  << h["op"].get<std::string>() << "  " << h["origin"].dump()
                  << (h["profile"].is_null() ? "" : "  profile " + h["profile"].get<std::string>())
                  << "\n";
    }
    return kOk;
  }
  if (app.got_subcommand("set")) {
    json list = json::array();
    for (const std::string& s : settings) {
      std::pair<std::string, std::string> kv;
      if (!parse_setting(s, &kv)) {
        std::cerr << "sluicectl set: expected KEY=VALUE, found \"" << s << "\"\n";
        return kRejected;
      }
      list.push_back({kv.first, kv.second});
    }
    return change(g, {{"op", "set"}, {"settings", list}, {"dry_run", dry_run}});
  }
  if (app.got_subcommand("apply")) {
    std::string text, unread;
    if (!sluice::read_config_text(file, &text, &unread)) {
      std::cerr << "sluicectl apply: cannot read " << file << ": " << unread << "\n";
      return kRejected;
    }
    // The API takes UTF-8 only (JSON): what is wrong where, as the checker
    // says it, rather than the text sent with its bad bytes replaced.
    if (!is_utf8(text)) {
      const sluice::LoadResult bad = sluice::load_config_string(text, file);
      std::cerr << (bad.errors.empty() ? file + ": not UTF-8 text" : bad.errors[0].to_string())
                << "\n";
      return kRejected;
    }
    json request = {{"op", "apply"}, {"config", text}, {"dry_run", dry_run}};
    // Errors name FILE as given (a name the API would refuse, with control
    // characters, is left out: they then name "<apply>").
    if (std::string why; sluice::apply_source({{"source", file}}, &file, &why))
      request["source"] = file;
    return change(g, request);
  }
  if (app.got_subcommand("profile"))
    return change(g, {{"op", "profile"}, {"name", profile}, {"dry_run", dry_run}});
  if (app.got_subcommand("shadow"))
    return change(g, {{"op", "shadow"}, {"on", on_off == "on"}, {"dry_run", dry_run}});
  if (app.got_subcommand("rollback")) {
    json req = {{"op", "rollback"}, {"dry_run", dry_run}};
    if (generation != 0) req["generation"] = generation;
    return change(g, req);
  }
  return kRejected;
}

}  // namespace

// A reply of another shape than this sluicectl reads (another version's
// sluiced, or something else on the socket) is an error that says so, not
// an abort on the JSON library's exception.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const json::exception& e) {
    std::cerr << "sluicectl: the reply is not what this sluicectl reads (another version of "
                 "sluiced, or not sluiced at all?): "
              << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "sluicectl: " << e.what() << "\n";
  }
  return kUnreachable;
}
