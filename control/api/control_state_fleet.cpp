// SPDX-License-Identifier: Apache-2.0
// ControlState as a member of a fleet (docs/fleet.md): the fleet's config
// applied as its revision, this edge's shares of the fleet budgets, and the
// profile the dataplane runs with them.
#include "control/api/change_json.hpp"
#include "control/api/control_state.hpp"
#include "control/config/compile.hpp"

namespace sluice {

using json = nlohmann::json;

void ControlState::join_fleet(const std::string& prefix, const std::string& node,
                              const std::string& fleet_text) {
  std::lock_guard<std::mutex> lock(mutex_);
  fleet_prefix_ = prefix;
  fleet_node_ = node;
  fleet_text_ = fleet_text;
}

json ControlState::apply_fleet_config(const std::string& fleet_text, const std::string& profile,
                                      uint64_t revision, const json& fleet_origin,
                                      const std::string& fleet_op, bool retry,
                                      const EdgeShares* shares) {
  std::lock_guard<std::mutex> lock(mutex_);
  quiet_refusals_ = retry;
  struct Loud {
    bool& quiet;
    ~Loud() { quiet = false; }
  } loud{quiet_refusals_};
  const std::string source = "etcd:" + fleet_prefix_ + "/config";
  LoadResult r =
      compose_fleet_config(local_tables_text(base_text_), config_path_, fleet_text, source);
  if (!r.ok()) {
    return refuse("fleet config rejected: " +
                      (r.errors.empty() ? std::string("invalid") : r.errors[0].to_string()),
                  errors_json(r.errors));
  }
  if (!profile.empty() && r.config->profiles.count(profile) == 0)
    return refuse("fleet config rejected: it does not define its active profile " + profile);
  // This edge's shares move with the budgets at once (a lowered budget must
  // not run on shares of the old one until the next sync).
  const std::optional<EdgeShares> before = shares_;
  if (shares != nullptr) {
    shares_ = *shares;
  } else if (shares_ && effective_.config) {
    const LoadResult next = profile.empty() ? r : apply_profile(r.text, config_path_, profile);
    if (next.ok()) shares_ = rescale_shares(*shares_, *effective_.config, *next.config);
  }
  json result = change(
      "fleet " + fleet_op, r.text, {source, fleet_text}, profile, false, Origin{"fleet"}, {},
      revision,
      {{"revision", revision}, {"origin", fleet_origin}, {"op", fleet_op}, {"node", fleet_node_}});
  if (result.value("ok", false)) {
    fleet_text_ = fleet_text;
  } else {
    shares_ = before;
  }
  return result;
}

bool ControlState::set_shares(const EdgeShares& shares, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::optional<EdgeShares> before = shares_;
  shares_ = shares;
  if (dataplane_.apply(compile(*effective_.config), generation_, error)) return true;
  shares_ = before;
  return false;
}

void ControlState::set_fleet_status(std::function<json()> status) {
  std::lock_guard<std::mutex> lock(mutex_);
  fleet_status_ = std::move(status);
}

Config ControlState::config() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return *effective_.config;
}

}  // namespace sluice
