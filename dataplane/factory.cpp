// SPDX-License-Identifier: Apache-2.0
// Picks the dataplane: DPDK when asked (or, for "auto", when it is built and
// can start), else the XDP fallback.
#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#include "dataplane/xdp/xdp_dataplane.hpp"
#ifdef SLUICE_WITH_DPDK
#include "dataplane/dpdk/dpdk_dataplane.hpp"
#endif

namespace sluice {
namespace {

std::unique_ptr<Dataplane> start_xdp(DataplaneSettings settings, const CompiledProfile& profile,
                                     uint64_t generation, std::string* error) {
  settings.outside = endpoint_interface(settings.outside);
  if (!settings.inside.empty()) settings.inside = endpoint_interface(settings.inside);
  auto dp = std::make_unique<XdpDataplane>(settings);
  if (!dp->start(profile, generation, error)) return nullptr;
  return dp;
}

}  // namespace

std::unique_ptr<Dataplane> start_dataplane(const DataplaneSettings& settings,
                                           const CompiledProfile& profile, uint64_t generation,
                                           std::string* log, std::string* error) {
  switch (settings.kind) {
    case DataplaneKind::dpdk: {
#ifdef SLUICE_WITH_DPDK
      auto dp = std::make_unique<DpdkDataplane>(settings);
      if (!dp->start(profile, generation, error)) return nullptr;
      return dp;
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
      std::string why;
      auto dp = std::make_unique<DpdkDataplane>(settings);
      if (dp->start(profile, generation, &why)) {
        *log += "mode auto: dpdk started";
        return dp;
      }
      *log += "mode auto: dpdk could not start (" + why + "); using xdp";
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

bool detach_dataplane(const DataplaneSettings& settings, std::string* report) {
  DataplaneSettings xdp = settings;
  xdp.outside = endpoint_interface(settings.outside);
  if (!xdp.inside.empty()) xdp.inside = endpoint_interface(settings.inside);
  return XdpDataplane::remove_pins(xdp, report);
}

}  // namespace sluice
