// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/port.hpp"

#include "dataplane/dpdk/engine.hpp"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>

#include <sys/random.h>

#include <cstring>
#include <vector>

namespace sluice::dpdk {
namespace {

std::string err_text(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

// splitmix64's step: each seed's patterns, one after another.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

bool rss_pattern_spreads(uint16_t pattern) {
  const int bits = __builtin_popcount(pattern);
  return bits % 2 == 1 && bits >= 5 && bits <= 11;
}

uint16_t rss_pattern_for(uint64_t seed) {
  uint64_t x = seed;
  if (x == 0 && ::getrandom(&x, sizeof(x), 0) != static_cast<ssize_t>(sizeof(x)))
    return 0x6d5a;  // no randomness to be had: the published key
  for (int tries = 0; tries < 64; tries++) {
    x = mix(x);
    const auto p = static_cast<uint16_t>(x >> 48);
    if (rss_pattern_spreads(p)) return p;
  }
  return 0x6d5a;
}

std::vector<uint8_t> rss_key_of(uint16_t pattern, std::size_t size) {
  std::vector<uint8_t> key(size);
  for (std::size_t i = 0; i < size; i++)
    key[i] = static_cast<uint8_t>(i % 2 == 0 ? pattern >> 8 : pattern & 0xff);
  return key;
}

bool Port::open(const PortOptions& o, std::string* error) {
  const std::string what = "dataplane." + o.role + " (" + o.spec + "): ";
  const std::string name = o.spec.substr(0, o.spec.find(','));
  if (name.empty()) {
    *error = what + "empty device name";
    return false;
  }
  if (rte_eth_dev_get_port_by_name(name.c_str(), &id_) != 0) {
    if (name.rfind("net_", 0) != 0) {
      *error = what + "no DPDK port named \"" + name +
               "\" (not a probed device; a vdev spec starts with net_)";
      return false;
    }
    const int rc = rte_dev_probe(o.spec.c_str());
    if (rc != 0) {
      *error = what + "cannot create the vdev: " + err_text(rc);
      return false;
    }
    probed_ = true;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id_) != 0) {
      *error = what + "the vdev was probed but has no port named \"" + name + "\"";
      rte_eal_hotplug_remove("vdev", name.c_str());
      return false;
    }
  }
  device_ = name;
  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(id_, &info);
  if (rc != 0) {
    *error = what + "cannot read device info: " + err_text(rc);
    return false;
  }
  if (info.max_rx_queues < o.queues || info.max_tx_queues < o.queues) {
    *error = what + "the device has " + std::to_string(info.max_rx_queues) + " rx / " +
             std::to_string(info.max_tx_queues) + " tx queues, dpdk_workers needs " +
             std::to_string(o.queues) + " of each";
    return false;
  }
  rte_eth_conf conf{};
  // A symmetric Toeplitz key (a 16-bit pattern repeated, secret:
  // rss_pattern_for): a flow's two directions hash alike, so with the same key and
  // queue count on both ports a reply comes to the worker that admitted the
  // request, and finds its flow in that worker's shard of the flow table
  // (flow_shards.hpp).
  std::vector<uint8_t> rss_key =
      rss_key_of(o.rss_pattern, info.hash_key_size != 0 ? info.hash_key_size : 40);
  if (o.queues > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    conf.rx_adv_conf.rss_conf.rss_key = rss_key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(rss_key.size());
  }
  if (o.rx_timestamp && (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP))
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  rc = rte_eth_dev_configure(id_, o.queues, o.queues, &conf);
  if (rc != 0) {
    *error = what + "cannot configure " + std::to_string(o.queues) + " queues: " + err_text(rc);
    return false;
  }
  uint16_t rx_desc = kDescriptors, tx_desc = kDescriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rx_desc, &tx_desc);
  const int socket = rte_eth_dev_socket_id(id_);
  const unsigned sock = socket < 0 ? SOCKET_ID_ANY : static_cast<unsigned>(socket);
  for (uint16_t q = 0; q < o.queues; q++) {
    rte_eth_rxconf rxc = info.default_rxconf;
    rxc.offloads = conf.rxmode.offloads;
    rc = rte_eth_rx_queue_setup(id_, q, rx_desc, sock, &rxc, o.pool);
    if (rc == 0) rc = rte_eth_tx_queue_setup(id_, q, tx_desc, sock, nullptr);
    if (rc != 0) {
      *error = what + "cannot set up queue " + std::to_string(q) + ": " + err_text(rc);
      return false;
    }
  }
  rc = rte_eth_dev_start(id_);
  if (rc != 0) {
    *error = what + "cannot start: " + err_text(rc);
    return false;
  }
  open_ = true;
  rte_eth_promiscuous_enable(id_);  // inline: frames are addressed to the hosts behind us
  // The unit of rx timestamps is the driver's. net_pcap stamps every packet
  // with its capture time in microseconds (without advertising the
  // offload); other drivers' clocks are not wall time, so only net_pcap
  // drives the capture clock.
  if (o.rx_timestamp && std::strcmp(info.driver_name, "net_pcap") == 0) {
    timestamp_unit_ns_ = 1000;
    const int flag = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
    timestamp_offset_ = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
    if (flag < 0 || timestamp_offset_ < 0) {
      timestamp_offset_ = -1;
    } else {
      timestamp_flag_ = 1ULL << flag;
    }
  }
  return true;
}

void Port::close() {
  if (open_) {
    rte_eth_dev_stop(id_);
    rte_eth_dev_close(id_);
    open_ = false;
  }
  if (probed_) {
    rte_eal_hotplug_remove("vdev", device_.c_str());  // may already be gone with the close
    probed_ = false;
  }
}

}  // namespace sluice::dpdk
