// SPDX-License-Identifier: Apache-2.0
// One DPDK port sluice owns: found by name or probed from a vdev spec,
// configured with one rx and one tx queue per worker (RSS spreads the rx
// queues when there are several), started promiscuous.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct rte_mempool;

namespace sluice::dpdk {

struct PortOptions {
  std::string role;  // "outside" | "inside", for messages
  std::string spec;  // device name (PCI address, vdev name) or vdev spec "net_x0,key=value"
  uint16_t queues = 1;
  bool rx_timestamp = false;  // use rx timestamps as the model clock (net_pcap)
  rte_mempool* pool = nullptr;
  // The RSS key: this 16-bit pattern repeated, which makes it symmetric (a
  // flow's two directions hash alike on both ports). Give both ports the
  // same one (rss_pattern_for).
  uint16_t rss_pattern = 0x6d5a;
};

// A symmetric RSS key's pattern, secret: with the published 0x6d5a, anyone
// could aim a flood of spoofed tuples at one worker (its flow-table shard
// holds 1/W of each partition). From `seed` (DataplaneSettings::
// dpdk_rss_seed: the same pattern for the same seed, so that a restart
// keeps its flows' queues), or at random when it is 0. Only patterns that
// spread tuples over the queues are given (rss_pattern_spreads).
uint16_t rss_pattern_for(uint64_t seed);
// An odd number of its bits set, 5 to 11. A Toeplitz hash's bits are sums
// of the key's 32-bit windows, here the pattern's 16 rotations: they span
// all 16 dimensions exactly when x + 1 does not divide the pattern as a
// polynomial over GF(2), i.e. when its bits are odd in number (0x6d5a: 9).
// A pattern of an even count (0xff00: 9 dimensions; any of a period under
// 16 bits, 0xaaaa, 0xf0f0 ...) hashes to fewer values.
bool rss_pattern_spreads(uint16_t pattern);
// The key of `size` bytes: the pattern repeated, high byte first.
std::vector<uint8_t> rss_key_of(uint16_t pattern, std::size_t size);

class Port {
 public:
  // Finds (or, for a vdev spec not yet probed, creates) the device and starts
  // it. False + *error naming the port, the device and what failed.
  bool open(const PortOptions& options, std::string* error);
  // Stops and closes the device (flushes what a pcap vdev writes).
  void close();
  ~Port() { close(); }

  uint16_t id() const { return id_; }
  const std::string& device() const { return device_; }
  bool open() const { return open_; }
  // The device stamps received mbufs with wall time (a pcap vdev: the
  // capture's timestamp); rx_timestamp_flag marks stamped ones, and a stamp
  // times rx_timestamp_unit_ns is ns. Offset -1: no usable stamps.
  int rx_timestamp_offset() const { return timestamp_offset_; }
  uint64_t rx_timestamp_flag() const { return timestamp_flag_; }
  uint64_t rx_timestamp_unit_ns() const { return timestamp_unit_ns_; }

 private:
  uint16_t id_ = 0;
  std::string device_;
  bool open_ = false;
  bool probed_ = false;  // we created the vdev: remove it on close
  int timestamp_offset_ = -1;
  uint64_t timestamp_flag_ = 0;
  uint64_t timestamp_unit_ns_ = 1;
};

}  // namespace sluice::dpdk
