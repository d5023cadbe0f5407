// SPDX-License-Identifier: Apache-2.0
// The Prometheus exporter: a prometheus::Collectable that asks the two
// callbacks for figures when a scrape arrives and turns them into metric
// families, written by prometheus-cpp's text serializer and served on
// GET /metrics by cpp-httplib (IPv4 and IPv6; Debian's civetweb, behind
// prometheus-cpp's own Exposer, is built without IPv6). Nothing is kept
// between scrapes, so a counter reads exactly what the dataplane has counted.
#include "control/metrics.hpp"
#include "control/metrics_detail.hpp"

#include "dataplane/common/labels.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <utility>

#include "dataplane/model/reasons.h"

namespace sluice {
namespace {

using namespace metrics_detail;

constexpr double kNsPerSec = 1e9;
constexpr std::size_t kHttpThreads = 64;  // connections served at once

// Reasons the dataplane can shed a packet or lookup for. Their counters are
// exported from zero, before the first shed, so that rate() over them has a
// series to work on from the first scrape. No default: a reason appended to
// reasons.h must be placed here (-Wswitch says so).
bool can_shed_for(sl_reason reason, bool has_queues) {
  switch (reason) {
    case SL_REASON_LOOKUP:
    case SL_REASON_CONTINUATION:
    case SL_REASON_NON_IP:
    case SL_REASON_COUNT:
      return false;
    case SL_REASON_MALFORMED:
    case SL_REASON_CLASS_RATE:
    case SL_REASON_PER_SOURCE:
    case SL_REASON_STICKY:
    case SL_REASON_BOUNDARY_LOOKUPS:
    case SL_REASON_BOUNDARY_PACKETS:
    case SL_REASON_UNVERIFIED:
      return true;
    case SL_REASON_QUEUE_FULL:
    case SL_REASON_QUEUE_DELAY:
      return has_queues;  // XDP cannot queue, so cannot shed for these
  }
  return false;
}

// Non-zero combinations of one class, plus admitted lookups and every reason
// the dataplane can shed for at zero.
void add_decisions(MetricFamily& f, const std::string& class_name,
                   const uint64_t (&counts)[SL_VERDICT_COUNT][SL_REASON_COUNT], bool has_queues) {
  for (int v = 0; v < SL_VERDICT_COUNT; v++) {
    for (int r = 0; r < SL_REASON_COUNT; r++) {
      const bool always =
          (v == SL_VERDICT_ADMITTED && r == SL_REASON_LOOKUP) ||
          (v == SL_VERDICT_SHED && can_shed_for(static_cast<sl_reason>(r), has_queues));
      if (counts[v][r] == 0 && !always) continue;
      add(f, static_cast<double>(counts[v][r]),
          {{"class", class_name}, {"verdict", verdict_label(v)}, {"reason", reason_label(r)}});
    }
  }
}

// Cumulative buckets in seconds from the dataplane's per-bucket counts in ns.
ClientMetric queue_delay_histogram(const QueueStats& q) {
  ClientMetric m;
  m.label = {{"priority", std::to_string(q.priority)}};
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < q.delay_bucket_bound_ns.size(); i++) {
    if (i < q.delay_bucket_count.size()) cumulative += q.delay_bucket_count[i];
    m.histogram.bucket.push_back(
        {cumulative, static_cast<double>(q.delay_bucket_bound_ns[i]) / kNsPerSec});
  }
  for (std::size_t i = q.delay_bucket_bound_ns.size(); i < q.delay_bucket_count.size(); i++) {
    cumulative += q.delay_bucket_count[i];
  }
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(q.delay_sum_ns) / kNsPerSec;
  return m;
}

// Only for a dataplane that queues (DPDK): XDP exports none of these.
void queue_families(const std::vector<QueueStats>& queues, std::vector<MetricFamily>* out) {
  MetricFamily depth =
      family("sluice_queue_depth", "Packets waiting in each priority queue", MetricType::Gauge);
  MetricFamily delay = family("sluice_queue_delay_seconds",
                              "Time packets waited in each priority queue", MetricType::Histogram);
  MetricFamily dropped =
      family("sluice_queue_dropped_total",
             "Packets a priority queue shed: full (refused, max_queue_delay of work waiting) or "
             "delay (waited longer than max_queue_delay)",
             MetricType::Counter);
  for (const QueueStats& q : queues) {
    const std::string priority = std::to_string(q.priority);
    add(depth, static_cast<double>(q.depth), {{"priority", priority}});
    delay.metric.push_back(queue_delay_histogram(q));
    add(dropped, static_cast<double>(q.dropped_full), {{"priority", priority}, {"cause", "full"}});
    add(dropped, static_cast<double>(q.dropped_delay),
        {{"priority", priority}, {"cause", "delay"}});
  }
  out->push_back(std::move(depth));
  out->push_back(std::move(delay));
  out->push_back(std::move(dropped));
}

// Only for a dataplane that owns its ports (DPDK); XDP's are the kernel's.
void port_families(const std::vector<PortStats>& ports, std::vector<MetricFamily>* out) {
  MetricFamily packets =
      family("sluice_port_packets_total",
             "Packets the port received and sent, as its driver counts them", MetricType::Counter);
  MetricFamily dropped = family(
      "sluice_port_dropped_total",
      "Packets lost at the port: rx_missed (rx queues full), rx_nombuf (no free mbuf), tx_errors "
      "(the device failed to send), tx_dropped (sluice gave up on a full tx queue)",
      MetricType::Counter);
  for (const PortStats& p : ports) {
    add(packets, static_cast<double>(p.rx_packets), {{"port", p.name}, {"direction", "rx"}});
    add(packets, static_cast<double>(p.tx_packets), {{"port", p.name}, {"direction", "tx"}});
    add(dropped, static_cast<double>(p.rx_missed), {{"port", p.name}, {"cause", "rx_missed"}});
    add(dropped, static_cast<double>(p.rx_nombuf), {{"port", p.name}, {"cause", "rx_nombuf"}});
    add(dropped, static_cast<double>(p.tx_errors), {{"port", p.name}, {"cause", "tx_errors"}});
    add(dropped, static_cast<double>(p.tx_dropped), {{"port", p.name}, {"cause", "tx_dropped"}});
  }
  out->push_back(std::move(packets));
  out->push_back(std::move(dropped));
}

// `ok` is false when the dataplane callback failed: its families are left out
// and the dataplane reads as down.

// The flow table: entries and events by priority partition.
void flow_families(const DataplaneStats& s, std::vector<MetricFamily>* out) {
  static const char* const kEvents[] = {
#define SL_FLOW_EVENT_LABEL(name, num, label, doc) label,
      SL_FLOW_EVENTS(SL_FLOW_EVENT_LABEL)
#undef SL_FLOW_EVENT_LABEL
  };
  MetricFamily capacity = family(
      "sluice_flow_table_capacity",
      "Entries of the flow table, all priority partitions (flow_table_size)", MetricType::Gauge);
  add(capacity, static_cast<double>(s.flow_table_capacity));
  out->push_back(std::move(capacity));
  MetricFamily flows =
      family("sluice_flows", "TCP flows (and fragment entries) tracked now", MetricType::Gauge);
  MetricFamily events =
      family("sluice_flow_events_total",
             "Flow table events: created, expired, evicted, learned, confirmed, over_rate "
             "(packets past a verified flow's own rate)",
             MetricType::Counter);
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    const std::string prio = std::to_string(p);
    add(flows, static_cast<double>(s.flow_entries[p]), {{"priority", prio}});
    for (uint32_t e = 0; e < SL_FLOW_EV_COUNT; e++)
      add(events, static_cast<double>(s.flow_events[p][e]),
          {{"priority", prio}, {"event", kEvents[e]}});
  }
  out->push_back(std::move(flows));
  out->push_back(std::move(events));
}

void dataplane_families(const DataplaneStats& s, bool ok, bool healthy,
                        std::vector<MetricFamily>* out) {
  MetricFamily up =
      family("sluice_dataplane_up", "1 when the dataplane is running and its figures could be read",
             MetricType::Gauge);
  add(up, ok && healthy ? 1 : 0);
  out->push_back(std::move(up));
  if (ok && !s.edge_state.empty()) {
    MetricFamily edge = family("sluice_edge_state",
                               "What holds the edge's links: a sluice program (enforcing), the "
                               "pass-through (passthrough), the blocking one (blocked), or "
                               "nothing of sluice's while its edge record is there (none)",
                               MetricType::Gauge);
    for (const char* state : {"enforcing", "passthrough", "blocked", "none"})
      add(edge, s.edge_state == state ? 1 : 0, {{"state", state}});
    out->push_back(std::move(edge));
    MetricFamily since = family("sluice_edge_state_since_timestamp_seconds",
                                "Unix time the edge entered its current state", MetricType::Gauge);
    add(since, static_cast<double>(s.edge_since_unix_ns) / 1e9);
    out->push_back(std::move(since));
  }
  if (!ok || s.mode.empty()) return;  // no dataplane of ours runs (not in charge)
  if (!s.standby.empty()) {
    MetricFamily standby =
        family("sluice_standby_enforcing",
               "1 when DPDK's XDP standby decides frames itself (DPDK's workers stopped beating)",
               MetricType::Gauge);
    add(standby, s.standby == "enforcing" ? 1 : 0);
    out->push_back(std::move(standby));
    MetricFamily takeovers = family(
        "sluice_standby_takeovers_total",
        "Times DPDK's XDP standby decided frames while sluiced ran (DPDK's workers stalled); "
        "DPDK then learned the flows it admitted",
        MetricType::Counter);
    add(takeovers, static_cast<double>(s.standby_takeovers));
    out->push_back(std::move(takeovers));
  }

  const bool has_queues = !s.queues.empty();
  MetricFamily info =
      family("sluice_dataplane_info", "The running dataplane; always 1", MetricType::Gauge);
  Labels info_labels = {{"mode", s.mode}};
  // DPDK attaches nothing (its status text says its workers in that field).
  if (s.mode == "xdp" && !s.attach.empty()) info_labels.push_back({"attach", s.attach});
  add(info, 1, std::move(info_labels));
  out->push_back(std::move(info));

  MetricFamily generation =
      family("sluice_dataplane_generation",
             "Config generation the dataplane enforces (lags sluice_config_generation mid-swap)",
             MetricType::Gauge);
  add(generation, static_cast<double>(s.generation));
  out->push_back(std::move(generation));

  MetricFamily packets =
      family("sluice_packets_total", "Packets by class, verdict and the reason for it",
             MetricType::Counter);
  MetricFamily lookups =
      family("sluice_lookups_total",
             "Lookups (TCP SYN, UDP datagram, ICMP echo request) by class, verdict and reason",
             MetricType::Counter);
  MetricFamily tokens = family(
      "sluice_bucket_tokens", "Whole tokens (lookups) left in the class bucket", MetricType::Gauge);
  MetricFamily sticky =
      family("sluice_sticky_admitted_ratio",
             "Fraction of source ranks the sticky controller lets reach the budgets (1 = everyone)",
             MetricType::Gauge);
  for (const ClassStats& c : s.classes) {
    add_decisions(packets, c.name, c.packets, has_queues);
    add_decisions(lookups, c.name, c.lookups, has_queues);
    add(tokens, static_cast<double>(c.bucket_tokens), {{"class", c.name}});
    add(sticky, static_cast<double>(c.sticky_threshold) / SL_RANK_ONE, {{"class", c.name}});
  }
  out->push_back(std::move(packets));
  out->push_back(std::move(lookups));
  out->push_back(std::move(tokens));
  out->push_back(std::move(sticky));

  MetricFamily boundary = family("sluice_boundary_tokens",
                                 "Whole tokens left in the boundary budgets", MetricType::Gauge);
  add(boundary, static_cast<double>(s.boundary_lookup_tokens), {{"budget", "lookups"}});
  add(boundary, static_cast<double>(s.boundary_packet_tokens), {{"budget", "packets"}});
  out->push_back(std::move(boundary));

  if (s.source_table_capacity > 0) {
    MetricFamily capacity =
        family("sluice_source_table_capacity",
               "Entries of the per-source table (least recently used recycled when full)",
               MetricType::Gauge);
    add(capacity, static_cast<double>(s.source_table_capacity));
    out->push_back(std::move(capacity));
    MetricFamily entries = family("sluice_source_table_entries",
                                  "Sources tracked in the per-source table", MetricType::Gauge);
    add(entries, static_cast<double>(s.source_table_entries));
    out->push_back(std::move(entries));
    MetricFamily evictions =
        family("sluice_source_table_evictions_total",
               "Per-source entries recycled for new sources because the table was full",
               MetricType::Counter);
    add(evictions, static_cast<double>(s.source_table_evictions));
    out->push_back(std::move(evictions));
    MetricFamily races =
        family("sluice_source_races_total",
               "Takes and give-backs of a source's token that lost every compare-and-swap try to "
               "other CPUs (XDP): a take so lost refused its lookup",
               MetricType::Counter);
    add(races, static_cast<double>(s.source_races));
    out->push_back(std::move(races));
  }

  if (s.flow_table_capacity > 0) flow_families(s, out);
  if (has_queues) queue_families(s.queues, out);
  if (!s.ports.empty()) port_families(s.ports, out);
}

void control_families(const ControlFigures& c, std::vector<MetricFamily>* out) {
  MetricFamily in_charge =
      family("sluice_in_charge",
             "1 when sluiced runs its config; 0 while it waits for a config it can validate or "
             "a dataplane that starts (the edge runs what sluice_edge_state says meanwhile)",
             MetricType::Gauge);
  add(in_charge, c.in_charge ? 1 : 0);
  out->push_back(std::move(in_charge));
  MetricFamily failures = family("sluice_start_failures_total",
                                 "Starts that failed since sluiced began, by reason (config: the "
                                 "file was rejected; dataplane: it did not start)",
                                 MetricType::Counter);
  add(failures, static_cast<double>(c.start_failures_config), {{"reason", "config"}});
  add(failures, static_cast<double>(c.start_failures_dataplane), {{"reason", "dataplane"}});
  out->push_back(std::move(failures));
  if (!c.in_charge) return;  // no config in force

  MetricFamily generation =
      family("sluice_config_generation",
             "Generation of the config in force; every applied change adds one", MetricType::Gauge);
  add(generation, static_cast<double>(c.generation));
  out->push_back(std::move(generation));

  MetricFamily changes = family("sluice_config_changes_total",
                                "Config change requests (set, apply, profile, shadow, "
                                "rollback, SIGHUP reload) by result",
                                MetricType::Counter);
  add(changes, static_cast<double>(c.changes_applied), {{"result", "applied"}});
  add(changes, static_cast<double>(c.changes_rejected), {{"result", "rejected"}});
  out->push_back(std::move(changes));

  MetricFamily reloads =
      family("sluice_config_reloads_total", "Reloads of the config file (SIGHUP) by result",
             MetricType::Counter);
  add(reloads, static_cast<double>(c.reloads_applied), {{"result", "applied"}});
  add(reloads, static_cast<double>(c.reloads_rejected), {{"result", "rejected"}});
  out->push_back(std::move(reloads));

  MetricFamily audit =
      family("sluice_audit_write_failures_total", "Applied changes the audit log could not record",
             MetricType::Counter);
  add(audit, static_cast<double>(c.audit_write_failures));
  out->push_back(std::move(audit));

  MetricFamily last =
      family("sluice_config_last_change_timestamp_seconds",
             "Unix time the config in force last changed (the start, a retune, a reload)",
             MetricType::Gauge);
  add(last, c.last_change_unix_sec);
  out->push_back(std::move(last));

  MetricFamily boundary_rate =
      family("sluice_boundary_rate_per_sec",
             "Configured boundary budget per second (0 = unlimited)", MetricType::Gauge);
  add(boundary_rate, static_cast<double>(c.boundary_lookups_per_sec), {{"budget", "lookups"}});
  add(boundary_rate, static_cast<double>(c.boundary_packets_per_sec), {{"budget", "packets"}});
  out->push_back(std::move(boundary_rate));

  MetricFamily class_rate =
      family("sluice_class_rate_per_sec",
             "Configured lookups per second of each class (0 = unlimited)", MetricType::Gauge);
  for (const auto& [name, rate] : c.class_rate_per_sec) {
    add(class_rate, static_cast<double>(rate), {{"class", name}});
  }
  out->push_back(std::move(class_rate));

  MetricFamily boundary_enforced =
      family("sluice_boundary_enforced_rate_per_sec",
             "Boundary budget per second this edge enforces: its fleet share, the adaptive rate, "
             "else the configured one (0 = unlimited)",
             MetricType::Gauge);
  add(boundary_enforced, static_cast<double>(c.boundary_lookups_enforced), {{"budget", "lookups"}});
  add(boundary_enforced, static_cast<double>(c.boundary_packets_enforced), {{"budget", "packets"}});
  out->push_back(std::move(boundary_enforced));

  MetricFamily class_enforced =
      family("sluice_class_enforced_rate_per_sec",
             "Lookups per second of each class this edge enforces: its fleet share, else the "
             "configured rate (0 = unlimited)",
             MetricType::Gauge);
  for (const auto& [name, rate] : c.class_rate_enforced)
    add(class_enforced, static_cast<double>(rate), {{"class", name}});
  out->push_back(std::move(class_enforced));

  MetricFamily priority =
      family("sluice_class_priority",
             "Configured priority of each class (0 = highest, 7 = lowest): alerts select by it",
             MetricType::Gauge);
  for (const auto& [name, prio] : c.class_priority)
    add(priority, static_cast<double>(prio), {{"class", name}});
  out->push_back(std::move(priority));

  MetricFamily fallback =
      family("sluice_dataplane_fallback",
             "1 when mode \"auto\" asked for DPDK, which could not start, and XDP runs instead",
             MetricType::Gauge);
  add(fallback, c.dataplane_fallback ? 1 : 0);
  out->push_back(std::move(fallback));
  if (c.fleet) fleet_families(*c.fleet, out);
}

class Collector final : public prometheus::Collectable {
 public:
  Collector(std::function<DataplaneStats()> dataplane, std::function<ControlFigures()> control)
      : dataplane_(std::move(dataplane)), control_(std::move(control)) {}

  // Runs on an exporter thread, once per scrape.
  std::vector<MetricFamily> Collect() const override {
    const std::lock_guard<std::mutex> lock(mutex_);
    DataplaneStats stats;
    ControlFigures figures;
    const bool stats_ok = call(dataplane_, &stats);
    const bool figures_ok = call(control_, &figures);
    std::vector<MetricFamily> out;
    dataplane_families(stats, stats_ok, figures.dataplane_healthy, &out);
    if (figures_ok) control_families(figures, &out);
    if (figures_ok && figures.adaptive)
      adaptive_families(*figures.adaptive, stats_ok ? &stats.backend : nullptr, &out);
    MetricFamily errors = family("sluice_exporter_callback_errors_total",
                                 "Scrapes on which reading the dataplane or the control plane "
                                 "threw (those figures were left out)",
                                 MetricType::Counter);
    add(errors, static_cast<double>(callback_errors_.load(std::memory_order_relaxed)));
    out.push_back(std::move(errors));
    return out;
  }

 private:
  // A callback that throws costs the scrape its figures, not the scrape:
  // the rest is served and the failure is counted.
  template <typename T>
  bool call(const std::function<T()>& read, T* out) const {
    try {
      *out = read();
      return true;
    } catch (...) {
      callback_errors_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }

  std::function<DataplaneStats()> dataplane_;
  std::function<ControlFigures()> control_;
  // Scrapes are served by several HTTP threads; one at a time reads, so the
  // callbacks never run concurrently with each other.
  mutable std::mutex mutex_;
  // The process's: an exporter is made anew each time sluiced goes in or out
  // of charge, and a counter of its own read as a reset within one process.
  static inline std::atomic<uint64_t> callback_errors_{0};
};

struct ListenAddress {
  int family = AF_INET;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// "IPv4:PORT" or "[IPv6]:PORT", port 1..65535, nothing else: the exporter
// must listen exactly where the operator said (no bare port binding every
// interface, no host name resolving to who knows what).
bool parse_listen(const std::string& s, ListenAddress* out) {
  std::string host;
  std::string port;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    out->family = AF_INET6;
  } else {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    out->family = AF_INET;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535) {
    return false;
  }
  if (host.find('\0') != std::string::npos) return false;
  if (out->family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out->addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(value));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return false;
    out->len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out->addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(value));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return false;
    out->len = sizeof(sockaddr_in6);
  }
  return true;
}

// cpp-httplib only says that it could not bind; a bind of our own finds the
// kernel's reason (in use, not a local address, no permission).
std::string why_not_listening(const ListenAddress& a) {
  const int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("cannot open a socket: ") + std::strerror(errno);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as cpp-httplib does
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return std::string("cannot bind: ") + std::strerror(err);
  return "the HTTP server could not listen there";
}

}  // namespace

struct MetricsExporter::Impl {
  std::shared_ptr<Collector> collector;
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> done{false};  // listen_after_bind() has returned

  ~Impl() {
    // stop() does nothing until listen_after_bind() has marked the server
    // running: stop until the thread has returned, then join it.
    while (thread.joinable() && !done) {
      http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (thread.joinable()) thread.join();
  }
};

std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string& listen,
                                                        std::function<DataplaneStats()> dataplane,
                                                        std::function<ControlFigures()> control,
                                                        std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error != nullptr) *error = "metrics on \"" + listen + "\": " + why;
    return std::unique_ptr<MetricsExporter>();
  };
  if (!dataplane || !control) return fail("the exporter needs both figure callbacks");
  ListenAddress address;
  if (!parse_listen(listen, &address)) {
    return fail("expected \"IPV4:PORT\" or \"[IPV6]:PORT\" with a port in 1..65535");
  }
  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter());
  exporter->impl_ = std::make_unique<Impl>();
  Impl& impl = *exporter->impl_;
  impl.collector = std::make_shared<Collector>(std::move(dataplane), std::move(control));
  impl.http.set_read_timeout(5, 0);
  impl.http.set_write_timeout(5, 0);
  // A connection holds one of these threads until it is done, and
  // cpp-httplib 0.11 bounds each read (5 s), not a whole request: eight
  // clients trickling a header line every 2 s held every scrape off for as
  // long as they went on (its default pool is 8). 64 raise that bar; the
  // listener should still be reachable by the scrapers only
  // (docs/metrics.md).
  impl.http.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  impl.http.Get(
      "/metrics", [collector = impl.collector](const httplib::Request&, httplib::Response& res) {
        const std::string body = prometheus::TextSerializer().Serialize(collector->Collect());
        res.set_content(body, "text/plain; version=0.0.4; charset=utf-8");
      });
  impl.http.set_address_family(address.family);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a
  // second sluiced would share the port silently instead of failing to bind.
  impl.http.set_socket_options([](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  char host[INET6_ADDRSTRLEN] = {};
  const void* raw =
      address.family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&address.addr)->sin_addr)
          : static_cast<const void*>(
                &reinterpret_cast<const sockaddr_in6*>(&address.addr)->sin6_addr);
  inet_ntop(address.family, raw, host, sizeof(host));
  const int port = ntohs(address.family == AF_INET
                             ? reinterpret_cast<const sockaddr_in*>(&address.addr)->sin_port
                             : reinterpret_cast<const sockaddr_in6*>(&address.addr)->sin6_port);
  if (!impl.http.bind_to_port(host, port)) return fail(why_not_listening(address));
  impl.thread = std::thread([&impl] {
    impl.http.listen_after_bind();
    impl.done = true;
  });
  return exporter;
}

MetricsExporter::~MetricsExporter() = default;

}  // namespace sluice
