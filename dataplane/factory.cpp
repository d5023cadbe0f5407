// SPDX-License-Identifier: Apache-2.0
// Picks the dataplane: DPDK when asked (or, for "auto", when it is built and
// can start), else the XDP fallback. Either may be left out of the build
// (SLUICE_WITH_DPDK, SLUICE_WITH_XDP); asking for one that is not built is an
// error that says so.
#include <filesystem>
#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#ifdef SLUICE_WITH_XDP
#include "dataplane/xdp/edge.hpp"
#include "dataplane/xdp/xdp_dataplane.hpp"
#include "dataplane/xdp/xdp_program.hpp"
#endif
#ifdef SLUICE_WITH_DPDK
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#include "dataplane/dpdk/eal.hpp"
#endif
#if defined(SLUICE_WITH_DPDK) && defined(SLUICE_WITH_XDP)
#include "dataplane/standby.hpp"
#endif

namespace sluice {
namespace {

// The settings with DPDK endpoints replaced by the kernel interfaces behind
// them (what XDP attaches to).
[[maybe_unused]] DataplaneSettings kernel_side(DataplaneSettings settings) {
  settings.outside = endpoint_interface(settings.outside);
  if (!settings.inside.empty()) settings.inside = endpoint_interface(settings.inside);
  return settings;
}

std::unique_ptr<Dataplane> start_xdp(const DataplaneSettings& settings,
                                     const CompiledProfile& profile, uint64_t generation,
                                     std::string* error) {
#ifdef SLUICE_WITH_XDP
  auto dp = std::make_unique<XdpDataplane>(kernel_side(settings));
  if (!dp->start(profile, generation, error)) return nullptr;
  return dp;
#else
  (void)settings, (void)profile, (void)generation;
  *error = "the XDP dataplane is not built into this sluiced (SLUICE_WITH_XDP=OFF)";
  return nullptr;
#endif
}

#ifdef SLUICE_WITH_DPDK
// DPDK, with an XDP standby on the kernel interfaces behind af_packet ports.
std::unique_ptr<Dataplane> start_dpdk(const DataplaneSettings& settings,
                                      const CompiledProfile& profile, uint64_t generation,
                                      std::string* log, std::string* error) {
#ifdef SLUICE_WITH_XDP
  if (standby_possible(settings)) {
    auto dp = std::make_unique<StandbyDataplane>(settings, kernel_side(settings));
    if (!dp->start(profile, generation, error)) return nullptr;
    *log += std::string("dpdk: an XDP program stands by on ") +
            endpoint_interface(settings.outside) + " and " + endpoint_interface(settings.inside) +
            " (takes over within 250 ms of DPDK stopping)";
    return dp;
  }
  const char* why = settings.dpdk_standby ? "the ports are not af_packet vdevs on kernel interfaces"
                                          : "dpdk_standby = \"none\"";
#else
  const char* why = "XDP is not built into this sluiced";
#endif
  auto dp = std::make_unique<DpdkDataplane>(settings);
  if (!dp->start(profile, generation, error)) return nullptr;
  *log += std::string("dpdk: no XDP standby (") + why + "): nothing forwards while DPDK is down";
#ifdef SLUICE_WITH_XDP
  // An XDP program an earlier run left on the kernel interfaces (XDP mode,
  // the standby, the pass-through) takes their frames before af_packet sees
  // them: it went on enforcing its own profile while this DPDK edge counted
  // nothing and took every retune. DPDK runs now: they go, and so does the
  // record of that edge (this one pins nothing while it runs).
  if (std::filesystem::exists(kernel_side(settings).pin_path)) {
    std::string report;
    if (!XdpDataplane::detach(kernel_side(settings), /*all=*/true, /*pins_nothing=*/true,
                              &report)) {
      dp->stop();
      *error = "an earlier run's XDP program on the DPDK ports' interfaces could not go: " + report;
      return nullptr;
    }
    for (char& c : report)
      if (c == '\n') c = ' ';
    *log += "; an earlier run's XDP program left on the interfaces was detached: " + report;
  }
#endif
  return dp;
}
#endif

}  // namespace

std::unique_ptr<Dataplane> start_dataplane(const DataplaneSettings& settings,
                                           const CompiledProfile& profile, uint64_t generation,
                                           DataplaneSelection* selection, std::string* error) {
  std::string* log = &selection->log;
  switch (settings.mode) {
    case DataplaneKind::dpdk: {
#ifdef SLUICE_WITH_DPDK
      return start_dpdk(settings, profile, generation, log, error);
#else
      *error = "dataplane.mode: \"dpdk\" is not built into this sluiced (SLUICE_WITH_DPDK=OFF)";
      return nullptr;
#endif
    }
    case DataplaneKind::automatic: {
#ifdef SLUICE_WITH_DPDK
      if (!is_dpdk_endpoint(settings.outside) && !is_dpdk_endpoint(settings.inside)) {
        *log += "mode auto: outside and inside are kernel interfaces, not DPDK ports; using xdp";
        return start_xdp(settings, profile, generation, error);
      }
      std::string why, note;
      if (auto dp = start_dpdk(settings, profile, generation, &note, &why)) {
        *log += "mode auto: dpdk started; " + note;
        return dp;
      }
      *log += "mode auto: dpdk could not start (" + why + "); using xdp";
      selection->dpdk_fell_back = true;
#else
      *log += "mode auto: dpdk is not built into this sluiced; using xdp";
#endif
      return start_xdp(settings, profile, generation, error);
    }
    case DataplaneKind::xdp:
      return start_xdp(settings, profile, generation, error);
  }
  *error = "unknown dataplane mode";
  return nullptr;
}

namespace {
[[maybe_unused]] bool starts_dpdk(const DataplaneSettings& settings) {
  return settings.mode == DataplaneKind::dpdk ||
         (settings.mode == DataplaneKind::automatic &&
          (is_dpdk_endpoint(settings.outside) || is_dpdk_endpoint(settings.inside)));
}
}  // namespace

bool check_dpdk_args(const DataplaneSettings& settings, std::string* error) {
#ifdef SLUICE_WITH_DPDK
  return !starts_dpdk(settings) ||
         dpdk::eal_check(settings.dpdk_args, settings.dpdk_workers, error);
#else
  (void)settings, (void)error;
  return true;  // mode dpdk without DPDK built is refused at the start
#endif
}

bool check_prefix_capacity(const DataplaneSettings& settings, const CompiledProfile& profile,
                           std::string* error) {
#ifdef SLUICE_WITH_XDP
#if defined(SLUICE_WITH_DPDK)
  const bool xdp_runs = !starts_dpdk(settings) || standby_possible(settings);
#else
  (void)settings;
  const bool xdp_runs = true;
#endif
  return !xdp_runs || XdpProgram::prefixes_fit(profile, error);
#else
  (void)settings, (void)profile, (void)error;
  return true;  // DPDK sizes its tables to the profile (within the EAL's -m)
#endif
}

bool check_pin_path(const DataplaneSettings& settings, std::string* error) {
#ifdef SLUICE_WITH_XDP
  return pin_path_usable(kernel_side(settings).pin_path, error);
#else
  (void)settings, (void)error;
  return true;  // nothing is pinned
#endif
}

#ifdef SLUICE_WITH_XDP
bool detach_dataplane(const DataplaneSettings& settings, bool all, std::string* report) {
  // A DPDK edge without the XDP standby pins nothing while it runs: nothing
  // pinned does not tell it never ran, and its inline edge still goes to
  // the pass-through. Every other edge pins what it attaches.
#if defined(SLUICE_WITH_DPDK)
  const bool standby = standby_possible(settings);
#else
  const bool standby = false;
#endif
  const bool pins_nothing = starts_dpdk(settings) && !standby;
  return XdpDataplane::detach(kernel_side(settings), all, pins_nothing, report);
}

DataplaneStats unattended_stats(const DataplaneSettings& settings) {
  const DataplaneSettings xdp = kernel_side(settings);
  DataplaneStats s;
  s.healthy = false;
  EdgeRecord record;
  std::string ignored;
  if (read_edge_record(xdp.pin_path, &record, &ignored)) {
    s.edge_state = edge_state_name(edge_link_state(xdp.pin_path));
    s.edge_since_unix_ns = record.since_unix_ns;
    s.generation = record.generation;
  }
  return s;
}

void record_failed_start(const DataplaneSettings& settings, const std::string& why) {
  const DataplaneSettings xdp = kernel_side(settings);
  EdgeRecord record;
  std::string ignored;
  if (!read_edge_record(xdp.pin_path, &record, &ignored)) return;
  record.last_failure = why;
  record.last_failure_unix_ns = unix_now_ns();
  write_edge_record(xdp.pin_path, record, &ignored);
}

bool install_passthrough_dataplane(const DataplaneSettings& settings, std::string* report) {
  const DataplaneSettings xdp = kernel_side(settings);
  if (xdp.inside.empty()) {
    *report +=
        "host mode (no dataplane.inside): the kernel handles traffic while no program "
        "runs; nothing to install\n";
    return true;
  }
  if (edge_link_state(xdp.pin_path) == EdgeState::enforcing) {
    *report += "a sluice program is enforcing on the links already; left as it is\n";
    return true;
  }
  return install_passthrough(xdp, report);
}
#else
// Without XDP nothing of sluice's outlives sluiced and there is no
// pass-through: an inline DPDK edge needs a bypass (architecture.md).
bool detach_dataplane(const DataplaneSettings&, bool, std::string* report) {
  *report += "XDP is not built into this sluiced: nothing is attached or pinned\n";
  return true;
}

DataplaneStats unattended_stats(const DataplaneSettings&) {
  DataplaneStats s;
  s.healthy = false;
  return s;
}

void record_failed_start(const DataplaneSettings&, const std::string&) {}

bool install_passthrough_dataplane(const DataplaneSettings&, std::string* report) {
  *report += "XDP is not built into this sluiced: there is no pass-through to install\n";
  return false;
}
#endif

bool dataplane_needs_new_process() {
#ifdef SLUICE_WITH_DPDK
  return dpdk::eal_spent();
#else
  return false;
#endif
}

}  // namespace sluice
