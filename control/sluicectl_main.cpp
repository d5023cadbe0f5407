// SPDX-License-Identifier: Apache-2.0
// sluicectl: the engineer's tool. This build offers offline replay; the live
// retune commands talk to sluiced's control API.
//
// Exit codes: 0 ok, 1 rejected (bad input, bad config, unreadable capture),
// 2 cannot reach the daemon.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "control/compile.hpp"
#include "control/config_loader.hpp"
#include "control/replay.hpp"

namespace {

int run_replay(const std::string& config_path, const std::string& pcap_path, bool json) {
  sluice::LoadResult loaded = sluice::load_config_file(config_path);
  if (!loaded.ok()) {
    for (const sluice::ConfigError& e : loaded.errors) std::cerr << e.to_string() << '\n';
    return 1;
  }
  sluice::CompiledProfile profile = sluice::compile_profile(*loaded.config);
  std::string error;
  auto result = sluice::replay_pcap(profile, pcap_path, &error);
  if (!result) {
    std::cerr << "sluicectl replay: " << error << '\n';
    return 1;
  }
  if (json) {
    std::cout << sluice::to_json(*result).dump(2) << '\n';
  } else {
    std::cout << sluice::to_table(*result);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sluicectl - inspect and retune the sluice admission-control daemon.\n\n"
      "Exit codes: 0 ok, 1 rejected (bad arguments, config or input), 2 daemon unreachable."};
  app.require_subcommand(1);

  std::string config_path;
  std::string pcap_path;
  bool json = false;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Run every packet of a capture through the admission model, using the capture's "
      "timestamps as the clock, and print per class: packets, lookups, admitted, shed by "
      "reason. Nothing is sent anywhere; use it to ask 'what would this config have done?'");
  replay->add_option("--config", config_path, "sluice TOML config to evaluate")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_option("--pcap", pcap_path, "capture to replay (pcap or pcapng, Ethernet)")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_flag("--json", json,
                   "print one JSON object {\"classes\": {...}, \"totals\": {...}} instead of a "
                   "table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (replay->parsed()) return run_replay(config_path, pcap_path, json);
  return 1;
}
