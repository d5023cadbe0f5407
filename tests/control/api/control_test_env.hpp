// SPDX-License-Identifier: Apache-2.0
// What the control API tests share: a config written the way an operator
// would, a ControlState over a FakeDataplane running it as generation 1 with
// an audit log in a temporary directory, and small helpers to read results.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/api/audit.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"
#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"
#include "tests/support/fake_dataplane.hpp"

namespace sluice::test {

using json = nlohmann::json;

// Three classes (checkpoint, citizen and the implied default), budgets on
// both boundary resources and one profile, so that every op has something
// real to change. Restart-only keys are written so a change to them shows
// up in the diff.
inline constexpr std::string_view kControlTestConfig = R"([dataplane]
mode = "xdp"
outside = "eth0"
inside = "eth1"

[boundary]
lookups_per_sec = 40000
lookups_burst = 4000
packets_per_sec = 2000000

[admission]
shadow = false
source_table_size = 65536

[metrics]
listen = "127.0.0.1:9109"

[control]
socket = "/run/sluice/control.sock"
history = 8

[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24"], proto = "tcp", dst_ports = ["443"] }
rate_per_sec = 20000
on_shed = "reset"

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15"] }
rate_per_sec = 10000
shed_order = "random"

[profiles.surge-1]
"class.citizen.rate_per_sec" = 5000
"boundary.lookups_per_sec" = 30000
)";

// A fresh directory under /tmp, removed with its contents; paths stay short
// enough for a Unix socket (sun_path is 108 bytes).
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/sluice-ctl-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    path_ = made != nullptr ? made : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Every line of the audit log, parsed; a line that is not JSON fails the test.
inline std::vector<json> read_audit(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "audit line is not JSON: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

// The value a config text gives `key` (flattened as the diff flattens), or
// "" when the text does not write it. Lets tests compare configs by meaning
// rather than by formatting.
inline std::string config_value(const std::string& text, const std::string& key) {
  for (const DiffEntry& d : config_diff("", text))
    if (d.key == key) return d.new_value.value_or("");
  return "";
}

// A set request. (Built explicitly: nlohmann::json would read a braced list
// of two-string pairs as an object, which the API rightly refuses.)
inline json set_request(const std::vector<std::pair<std::string, std::string>>& settings,
                        bool dry_run = false) {
  json list = json::array();
  for (const auto& [k, v] : settings) list.push_back(json::array({k, v}));
  return {{"op", "set"}, {"settings", list}, {"dry_run", dry_run}};
}

// {key: [old, new]} of a response's diff, for exact comparisons.
inline std::map<std::string, std::pair<json, json>> diff_map(const json& response) {
  std::map<std::string, std::pair<json, json>> out;
  if (!response.contains("diff")) return out;
  for (const json& d : response["diff"]) out[d["key"].get<std::string>()] = {d["old"], d["new"]};
  return out;
}

// Waits for `condition` until `timeout`, polling; true when it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// A ControlState as sluiced builds it: the config file is loaded and
// validated, the (fake) dataplane started with it as generation 1, and
// changes are audited to `audit_path`.
class ControlHarness {
 public:
  explicit ControlHarness(std::string_view config_text = kControlTestConfig)
      : config_path_(dir_.file("sluice.toml")), audit_path_(dir_.file("audit.jsonl")) {
    write_text(config_path_, config_text);
    const LoadResult loaded = load_config_file(config_path_);
    std::string errors;
    for (const ConfigError& e : loaded.errors) errors += e.to_string() + "\n";
    EXPECT_TRUE(loaded.ok()) << errors;
    std::string error;
    EXPECT_TRUE(dataplane_.start(compile_profile(*loaded.config), 1, &error)) << error;
    EXPECT_TRUE(audit_.open(audit_path_, &error)) << error;
    initial_text_ = loaded.text;
    state_ = std::make_unique<ControlState>(dataplane_, config_path_, loaded, 1, &audit_);
  }

  // One request as the Unix socket would pass it (uid 0, a made-up pid).
  json call(const json& request) { return state_->handle(request, Origin{"unix", 0, 4242}); }

  // The effective config's value of `key` right now.
  std::string value(const std::string& key) {
    return config_value(call({{"op", "get"}})["config"].get<std::string>(), key);
  }

  ControlState& state() { return *state_; }
  FakeDataplane& dataplane() { return dataplane_; }
  const TempDir& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& audit_path() const { return audit_path_; }
  const std::string& initial_text() const { return initial_text_; }

 private:
  TempDir dir_;
  std::string config_path_;
  std::string audit_path_;
  std::string initial_text_;
  FakeDataplane dataplane_;
  AuditLog audit_;
  std::unique_ptr<ControlState> state_;
};

}  // namespace sluice::test
