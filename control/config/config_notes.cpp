// SPDX-License-Identifier: Apache-2.0
#include "control/config/config_notes.hpp"

#include "control/config/class_reach.hpp"

namespace sluice {
namespace {

// DPDK's net_af_packet joins its socket to a fanout group that asks the
// kernel to reassemble IPv4 fragments first (PACKET_FANOUT_FLAG_DEFRAG, set
// by the driver, no device argument turns it off): a fragmented datagram
// reaches the worker whole, cut to the driver's frame (2 KB by default)
// when longer, and counted malformed; nor could the port send it whole to
// a link of the usual MTU. A live check lost every fragmented IPv4 datagram
// this way (IPv6 fragments are left alone).
bool af_packet_port(const std::string& spec) { return spec.rfind("net_af_packet", 0) == 0; }

}  // namespace

std::vector<std::string> config_notes(const Config& config) {
  std::vector<std::string> notes = unreachable_class_notes(config);
  const DataplaneConfig& d = config.dataplane;
  if (d.mode != DataplaneKind::xdp && (af_packet_port(d.outside) || af_packet_port(d.inside)))
    notes.push_back(
        "dataplane." + std::string(af_packet_port(d.outside) ? "outside" : "inside") +
        ": DPDK's net_af_packet ports get IPv4 fragments reassembled by the kernel (the "
        "driver's fanout asks for it): fragmented IPv4 datagrams do not pass a DPDK edge on "
        "them (cut to the port's frame, counted malformed); IPv6 fragments do. A NIC bound to "
        "DPDK, or mode \"xdp\", passes both (docs/architecture.md, \"Production\")");
  return notes;
}

}  // namespace sluice
