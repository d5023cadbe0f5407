// SPDX-License-Identifier: Apache-2.0
// Picks the dataplane: DPDK when asked (or, for "auto", when it is built and
// can start), else the XDP fallback.
#include <memory>
#include <string>

#include "dataplane/dataplane.hpp"
#include "dataplane/xdp/xdp_dataplane.hpp"

namespace sluice {

std::unique_ptr<Dataplane> make_dataplane(const DataplaneSettings& settings, std::string* log,
                                          std::string* error) {
  switch (settings.kind) {
    case DataplaneKind::dpdk:
      *error = "dataplane.mode: \"dpdk\" is not built into this sluiced (SLUICE_WITH_DPDK=OFF)";
      return nullptr;
    case DataplaneKind::automatic:
      *log += "mode auto: dpdk is not built into this sluiced; using xdp\n";
      [[fallthrough]];
    case DataplaneKind::xdp:
      return std::make_unique<XdpDataplane>(settings);
  }
  *error = "unknown dataplane mode";
  return nullptr;
}

bool detach_dataplane(const DataplaneSettings& settings, std::string* report) {
  return XdpDataplane::remove_pins(settings, report);
}

}  // namespace sluice
