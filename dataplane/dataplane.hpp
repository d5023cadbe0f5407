// SPDX-License-Identifier: Apache-2.0
// The one small interface the control plane sees of a dataplane: start,
// apply a compiled profile, read stats, stop. No DPDK or libbpf type crosses
// it. start_dataplane() picks DPDK or XDP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/common/profile.hpp"
#include "dataplane/model/abi.h"
#include "dataplane/model/capture.h"

namespace sluice {

enum class DataplaneKind { automatic, dpdk, xdp };
enum class XdpAttach { native, generic };
enum class DpdkClock { tsc, capture };

// What an inline edge does while no sluice program enforces
// (dataplane.when_stopped): forward every frame, or drop every frame.
enum class WhenStopped { forward, block };

// The [dataplane] section of the config as the dataplanes take it (every key
// needs a restart; ranges and meanings in control/config/schema.cpp). The
// table sizes come from [admission].
struct DataplaneSettings {
  DataplaneKind mode = DataplaneKind::automatic;
  std::string outside;  // interface (xdp) or port/vdev spec (dpdk)
  std::string inside;   // empty: host mode (xdp only)
  XdpAttach xdp_attach = XdpAttach::native;
  std::string pin_path = "/sys/fs/bpf/sluice";      // bpffs directory for pinned XDP state
  WhenStopped when_stopped = WhenStopped::forward;  // inline only
  uint64_t source_table_size = SL_SOURCES_DEFAULT;  // admission.source_table_size
  uint64_t flow_table_size = SL_FLOWS_DEFAULT;      // admission.flow_table_size
  std::vector<std::string> dpdk_args = {"--no-huge", "--no-pci", "-m", "512"};
  // DPDK only:
  uint32_t dpdk_workers = 1;        // worker lcores polling the ports (RSS across them)
  uint32_t dpdk_mbufs = 16383;      // mbufs in the packet pool (all ports, rings and queues)
  uint32_t dpdk_queue_size = 1024;  // slots of each priority ring per worker (power of two)
  uint32_t dpdk_idle_sleep_us = 0;  // sleep after an idle poll (0: busy poll, lowest latency)
  // The model's clock: the TSC, or the rx timestamp of the packet when the
  // port gives one (net_pcap replaying a capture).
  DpdkClock dpdk_clock = DpdkClock::tsc;
  bool dpdk_standby = true;  // af_packet ports: an XDP program stands by on their interfaces
  // Where a stop keeps DPDK's flow table for the next start (not a config
  // key: sluiced's state directory; dataplane/dpdk/flow_keep.hpp). Empty:
  // nowhere, every start begins with an empty table.
  std::string dpdk_flow_file;
  // The ports' symmetric RSS key is drawn from this (not a config key:
  // sluiced passes its sticky seed, random per host and kept across
  // restarts, so a restart's kept flows come back to the queues they left;
  // dataplane/dpdk/port.hpp). 0: drawn at random at each start.
  uint64_t dpdk_rss_seed = 0;
  bool operator==(const DataplaneSettings&) const = default;
};

struct ClassStats {
  std::string name;
  uint64_t packets[SL_VERDICT_COUNT][SL_REASON_COUNT] = {};
  uint64_t lookups[SL_VERDICT_COUNT][SL_REASON_COUNT] = {};
  uint64_t bucket_tokens = 0;  // whole tokens in the class bucket
  uint32_t sticky_threshold = SL_RANK_ONE;
};

// One priority queue of a dataplane that queues (DPDK; XDP has none).
struct QueueStats {
  uint32_t priority = 0;  // 0 = highest .. 7 = lowest
  uint64_t depth = 0;     // packets waiting when stats() was read
  // Time packets spent in the queue before they left it, as a histogram:
  // delay_bucket_count[i] counts packets whose delay was above bound i-1 and
  // at most delay_bucket_bound_ns[i] (not cumulative); the one extra last
  // entry counts the packets above every bound. Bounds ascend.
  std::vector<uint64_t> delay_bucket_bound_ns;
  std::vector<uint64_t> delay_bucket_count;  // delay_bucket_bound_ns.size() + 1 entries
  uint64_t delay_sum_ns = 0;                 // sum of every counted delay
  uint64_t dropped_full = 0;                 // refused: the queues held max_queue_delay of work
  uint64_t dropped_delay = 0;                // waited longer than max_queue_delay
};

// One port of a dataplane that owns ports (DPDK), as the driver counts it
// plus what sluice itself could not hand to it.
struct PortStats {
  std::string name;    // "outside" | "inside"
  std::string device;  // DPDK device name (e.g. net_af_packet0)
  uint64_t rx_packets = 0;
  uint64_t tx_packets = 0;
  uint64_t rx_missed = 0;   // dropped by the device: rx queues full (imissed)
  uint64_t rx_nombuf = 0;   // dropped by the device: no mbuf free
  uint64_t tx_errors = 0;   // the device failed to send (oerrors)
  uint64_t tx_dropped = 0;  // sluice gave up: the tx queue stayed full
};

struct DataplaneStats {
  bool healthy = true;    // running and enforcing (e.g. XDP: program loaded, link in place)
  std::string unhealthy;  // why healthy is false (logs: the watchdog withheld)
  std::string mode;       // "xdp" | "dpdk"
  std::string attach;     // xdp: "native" | "generic"; dpdk: "N workers"
  uint64_t generation = 0;
  std::vector<ClassStats> classes;  // in profile order
  uint64_t boundary_lookup_tokens = 0;
  uint64_t boundary_packet_tokens = 0;
  uint64_t source_table_capacity = 0;   // per-source table entries (0: not reported)
  uint64_t source_table_entries = 0;    // sources tracked now
  uint64_t source_table_evictions = 0;  // entries recycled for new sources since start
  // Takes and give-backs of a source's token that lost every
  // compare-and-swap try to other CPUs (XDP; DPDK retries until one lands).
  uint64_t source_races = 0;
  uint64_t flow_table_capacity = 0;           // flow entries, all partitions (0: not reported)
  uint64_t flow_entries[SL_PRIORITIES] = {};  // flows held now, by priority partition
  // Flow table events since start, by priority partition (enum sl_flow_event).
  uint64_t flow_events[SL_PRIORITIES][SL_FLOW_EV_COUNT] = {};
  // The backend signal since start (adaptive boundary; zero without it).
  sl_backend_signal backend = {};
  // Inline XDP edges: what holds the links (edge.hpp's state names:
  // "enforcing", "passthrough", "blocked") and since when; empty otherwise.
  std::string edge_state;
  uint64_t edge_since_unix_ns = 0;
  // DPDK with an XDP standby: "standing by" while DPDK beats, "enforcing"
  // once it took over (a stalled worker); empty without a standby.
  std::string standby;
  // Times the standby decided frames while this sluiced ran (DPDK stalled),
  // seen once DPDK beat again; DPDK then opened its learning window.
  uint64_t standby_takeovers = 0;
  // DPDK: what this start took back of the flow table the last stop kept
  // (dataplane/dpdk/flow_keep.hpp), for the start's log: how many flows,
  // or why none; kept_flows_refused when a kept table could not be taken.
  // Empty for XDP, whose table is pinned and adopted.
  std::string kept_flows;
  bool kept_flows_refused = false;
  std::vector<QueueStats> queues;  // empty when the dataplane does not queue (XDP)
  std::vector<PortStats> ports;    // empty when the dataplane owns no ports (XDP)
};

// sluicectl capture: which decided frames to sample, and one sampled frame.
struct CaptureFilter {
  std::string class_name;  // empty: every class
  uint32_t verdict_mask = SL_CAPTURE_ADMITTED | SL_CAPTURE_SHED;
  uint32_t reason = SL_CAPTURE_ANY;  // enum sl_reason, or any
  uint32_t sample_every = 1;         // 1 in N of the matching frames
  uint32_t snaplen = SL_CAPTURE_SNAP;
};

struct CaptureRecord {
  uint64_t unix_ns = 0;  // when the dataplane decided the frame
  uint32_t wire_len = 0;
  std::vector<uint8_t> bytes;  // the first snaplen bytes, as the dataplane saw them
  std::string class_name;
  uint32_t verdict = 0;  // enum sl_verdict
  uint32_t reason = 0;   // enum sl_reason
};

class Dataplane {
 public:
  virtual ~Dataplane() = default;

  // A capture of decided frames (one at a time): capture_start arms the
  // filter; capture_read waits up to timeout_ms and appends what was sampled
  // since (and how many the dataplane could not hand over to *lost);
  // capture_stop disarms it. Costs nothing on the fast path while none runs
  // beyond one check. A dataplane that cannot capture says so.
  virtual bool capture_start(const CaptureFilter& filter, std::string* error) {
    (void)filter;
    *error = std::string("the ") + kind() + " dataplane cannot capture";
    return false;
  }
  virtual void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) {
    (void)out;
    (void)lost;
    (void)timeout_ms;
  }
  virtual void capture_stop() {}

  // Takes over the interfaces and enforces `profile` as `generation`. When
  // state survives from an earlier run (pinned XDP maps), it is adopted, not
  // reset: the generation continues from it if higher. False + *error when
  // the interfaces cannot be taken.
  virtual bool start(const CompiledProfile& profile, uint64_t generation, std::string* error) = 0;

  // Swaps in a new profile atomically; state and counters of classes that
  // keep their name survive. All or nothing: false leaves the old one live.
  virtual bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) = 0;

  virtual DataplaneStats stats() const = 0;

  // Stops attending the dataplane. XDP leaves its program enforcing the last
  // profile (the next sluiced adopts it); DPDK releases its ports (its XDP
  // standby, if any, takes over).
  virtual void stop() = 0;
  // What the last stop kept for the next start, for its log line (DPDK: its
  // flow table, dataplane/dpdk/flow_keep.hpp); text empty when nothing is
  // kept, failed when it could not be.
  struct StopNote {
    std::string text;
    bool failed = false;
  };
  virtual StopNote stop_note() const { return {}; }

  virtual const char* kind() const = 0;

  // True when start() took over state an earlier sluiced left (pinned maps
  // and links) instead of starting fresh.
  virtual bool adopted_state() const = 0;
};

// How start_dataplane chose: what it tried and why, for the log, and whether
// mode auto wanted DPDK, which was built but could not start, so XDP runs
// (sluice_dataplane_fallback).
struct DataplaneSelection {
  std::string log;
  bool dpdk_fell_back = false;
};

// Builds and starts the dataplane the settings ask for, enforcing `profile`
// as `generation`. With DataplaneKind::automatic it tries DPDK and, when DPDK
// is not built or cannot start (EAL, ports), falls back to XDP on the same
// interfaces (a vdev spec's iface= names the interface) and says why in
// selection->log. Null + *error when none starts.
std::unique_ptr<Dataplane> start_dataplane(const DataplaneSettings& settings,
                                           const CompiledProfile& profile, uint64_t generation,
                                           DataplaneSelection* selection, std::string* error);

// The kernel interface behind a dataplane endpoint: the iface= of a DPDK vdev
// spec ("net_af_packet0,iface=eth1" -> "eth1"), else the endpoint itself.
inline std::string endpoint_interface(const std::string& endpoint) {
  const std::string key = ",iface=";
  const size_t at = endpoint.find(key);
  if (at == std::string::npos) return endpoint;
  const size_t from = at + key.size();
  return endpoint.substr(from, endpoint.find(',', from) - from);
}

// True when an endpoint names a DPDK device (a vdev "net_..." or a PCI
// address) rather than a kernel interface.
inline bool is_dpdk_endpoint(const std::string& endpoint) {
  return endpoint.rfind("net_", 0) == 0 || endpoint.find(':') != std::string::npos;
}

// `sluiced --detach`: an inline edge goes to the when_stopped pass-through
// (its maps are removed); host mode, or `all`, removes everything a sluiced
// left attached and pinned. True when that is done. With nothing pinned
// at pin_path (sluice never ran there since boot) nothing is done, except
// on an inline DPDK edge without the XDP standby (it pins nothing when it
// runs): the pass-through goes in.
bool detach_dataplane(const DataplaneSettings& settings, bool all, std::string* report);

// What a sluiced that is not in charge can say of the dataplane: the edge
// state and generation from the pinned record (no counters); healthy false.
DataplaneStats unattended_stats(const DataplaneSettings& settings);

// A start that failed before the dataplane was asked (a rejected config):
// the pinned edge record, where one exists, keeps why as its last failed
// start (a dataplane that fails records its own).
void record_failed_start(const DataplaneSettings& settings, const std::string& why);

// `sluiced --install-passthrough`: before the first start, an inline edge
// gets the when_stopped program unless a sluice program already enforces.
bool install_passthrough_dataplane(const DataplaneSettings& settings, std::string* report);

// `sluiced --check-config`: whether DPDK's EAL takes dataplane.dpdk_args
// (with the lcores sluice adds for dpdk_workers), when the settings would
// start DPDK (mode dpdk, or auto with a DPDK port) and it is built. Parses
// them in a child process that stops before any device.
bool check_dpdk_args(const DataplaneSettings& settings, std::string* error);

// `sluiced --check-config`: whether the profile's prefixes fit the XDP
// prefix tables, when XDP would run (mode xdp, auto without a DPDK port,
// or DPDK's XDP standby). A start, or a retune, would refuse them.
bool check_prefix_capacity(const DataplaneSettings& settings, const CompiledProfile& profile,
                           std::string* error);

// `sluiced --check-config`: whether a start could pin at the config's
// pin_path: under /sys/fs/bpf (a start mounts bpffs there if none is), or
// in a directory on a bpffs. Elsewhere a start fails, not in charge.
bool check_pin_path(const DataplaneSettings& settings, std::string* error);

// True when a dataplane cannot start again in this process (DPDK's EAL
// starts once per process): only a restart of sluiced can start it.
bool dataplane_needs_new_process();

}  // namespace sluice
