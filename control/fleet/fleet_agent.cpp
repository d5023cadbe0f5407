// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/fleet_agent.hpp"
#include "control/api/json_parse.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "control/api/control_state.hpp"
#include "control/fleet/agent_detail.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/log.hpp"
#include "control/seed_store.hpp"

namespace sluice {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using fleet_detail::cache_path;
using fleet_detail::etcd_timeout;
using fleet_detail::instance_of;

double unix_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A share worth applying (a: the computed one, b: the one in force): another
// rate or burst by more than 2% (or one budget appearing or going), or any
// lower one. Shares move with measured demand, and every small wobble up
// would be a profile swap; but a share kept above what was computed is
// budget another edge was given too, and the fleet's total would run over.
bool differs(const std::optional<BudgetShare>& a, const std::optional<BudgetShare>& b) {
  if (a.has_value() != b.has_value()) return true;
  if (!a) return false;
  auto far = [](uint64_t x, uint64_t y) {
    const double d = std::fabs(static_cast<double>(x) - static_cast<double>(y));
    return x < y || (d > 1 && d > 0.02 * static_cast<double>(std::max(x, y)));
  };
  return far(a->rate, b->rate) || far(a->burst, b->burst);
}

bool differs(const EdgeShares& a, const EdgeShares& b) {
  if (differs(a.boundary_lookups, b.boundary_lookups) ||
      differs(a.boundary_packets, b.boundary_packets) || a.classes.size() != b.classes.size())
    return true;
  for (const auto& [name, s] : a.classes) {
    auto it = b.classes.find(name);
    if (it == b.classes.end() || differs(s, it->second)) return true;
  }
  return false;
}

}  // namespace

FleetAgent::FleetAgent(const FleetConfig& fleet, ControlState& control, const FleetStart& start)
    : fleet_(fleet),
      instance_(start.instance),
      control_(control),
      applied_revision_(start.record.revision),
      rank_seed_(start.rank_seed) {
  const bool kept = start.from_cache && start.kept_sync.has_value();
  // Joined etcd: in sync. Started from the kept copy: static_sec counted
  // from the last sync before its clean stop (as that run would have), or
  // already over.
  last_ok_ = Clock::now();
  if (kept)
    last_ok_ -= std::chrono::duration_cast<Clock::duration>(std::chrono::system_clock::now() -
                                                            *start.kept_sync);
  else if (start.from_cache)
    last_ok_ -= std::chrono::seconds(fleet.static_sec);
  else if (start.held)  // out of sync from the start: falls when the hold ends
    last_ok_ -= std::chrono::seconds(fleet.static_sec -
                                     std::min<int64_t>(start.hold_ttl_sec, fleet.static_sec));
  last_edges_ = start.edges;
  even_ = !kept && !start.held;            // the shares it stopped with: falls as a running edge
  fell_even_ = start.from_cache && !kept;  // its kept copy's 1/N: so may the others' be
  shares_ = start.shares;
  figures_.static_shares = start.from_cache || start.held;  // until its first sync
  // The join reached etcd (or not): a first sync that fails then is news,
  // and the log says so.
  figures_.etcd_up = !start.from_cache;
  kept_record_ = start.record;
  kept_edges_ = start.edges;
  if (!start.from_cache) keep_cache(start.record, start.edges);
  drop_kept_stop_ = start.from_cache;
  control_.set_fleet_status([this] { return status(); });
  thread_ = std::thread([this] { run(); });
  watch_thread_ = std::thread([this] { watch(); });
}

FleetAgent::~FleetAgent() {
  control_.set_fleet_status(nullptr);
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
    if (watching_ != nullptr) watching_->stop();
  }
  stop_cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (thread_.joinable()) thread_.join();
}

void FleetAgent::watch() {
  // etcd away: tried again after a sync period, then twice as long each
  // time up to 5 s (the syncs check the config's revision meanwhile).
  const auto first = std::chrono::milliseconds(fleet_.sync_ms);
  auto backoff = first;
  // Idle streams end after the client's timeout and are opened again:
  // bounded waits, and a member that went away is left for the next. One
  // client for all of them: its etcd token (and TLS session) is kept.
  EtcdClient etcd(fleet_.etcd, std::chrono::seconds(5), fleet_.access);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      if (stopping_) return;
      watching_ = &etcd;
    }
    std::string error;
    const bool watched = etcd.watch(
        fleet_config_key(fleet_),
        [this](int64_t) {
          std::lock_guard<std::mutex> lock(stop_mutex_);
          config_changed_ = true;
          stop_cv_.notify_all();
          return !stopping_;
        },
        &error);
    std::unique_lock<std::mutex> lock(stop_mutex_);
    watching_ = nullptr;
    if (watched) backoff = first;
    if (stop_cv_.wait_for(lock, watched ? std::chrono::milliseconds(0) : backoff,
                          [this] { return stopping_; }))
      return;
    if (!watched)
      backoff = std::max(first,
                         std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5)));
  }
}

void FleetAgent::run() {
  EtcdClient etcd(fleet_.etcd, etcd_timeout(fleet_), fleet_.access);
  auto next = Clock::now();
  for (;;) {
    bool changed = false;
    {
      std::unique_lock<std::mutex> lock(stop_mutex_);
      if (stop_cv_.wait_until(lock, next, [this] { return stopping_ || config_changed_; }) &&
          stopping_)
        break;
      changed = config_changed_;
      config_changed_ = false;
    }
    if (changed && Clock::now() < next) {
      // A fleet change between syncs: applied now, and this edge's record
      // says so now (sluicectl --fleet waits for every edge's).
      tick(etcd);
      continue;
    }
    next += std::chrono::milliseconds(fleet_.sync_ms);
    if (next < Clock::now()) next = Clock::now();  // a slow sync: no catching up in a burst
    tick(etcd);
  }
  // The record goes at once; the others count this edge's hold until
  // static_sec has passed (its pinned program keeps enforcing its shares).
  std::string error;
  keep_cache(kept_record_, kept_edges_, true);
  shorten_hold(etcd);
  if (lease_ != 0) etcd.lease_revoke(lease_, &error);
}

EdgeDemand FleetAgent::measure() {
  const DataplaneStats s = control_.stats();
  Sample now{Clock::now(), {}};
  for (const ClassStats& c : s.classes) {
    uint64_t lookups = 0, packets = 0;
    for (int v = 0; v < SL_VERDICT_COUNT; v++) {
      for (int r = 0; r < SL_REASON_COUNT; r++) {
        lookups += c.lookups[v][r];
        packets += c.packets[v][r];
      }
    }
    lookups -= c.lookups[SL_VERDICT_SHED][SL_REASON_PER_SOURCE];
    now.counts[c.name] = {lookups, packets};
  }
  samples_.push_back(now);
  // Demand over about the last second: the oldest sample at most 1 s old.
  while (samples_.size() > 2 && now.at - samples_[1].at >= std::chrono::seconds(1))
    samples_.pop_front();
  EdgeDemand d;
  d.node = fleet_.node;
  const Sample& then = samples_.front();
  const double secs = std::chrono::duration<double>(now.at - then.at).count();
  if (secs <= 0) return d;
  for (const auto& [name, counts] : now.counts) {
    auto it = then.counts.find(name);
    if (it == then.counts.end()) continue;
    // A counter that went down (a class renamed and back) measures nothing.
    if (counts.first >= it->second.first)
      d.class_lookups[name] = static_cast<double>(counts.first - it->second.first) / secs;
    if (counts.second >= it->second.second)
      d.class_packets[name] = static_cast<double>(counts.second - it->second.second) / secs;
  }
  return d;
}

bool FleetAgent::use_shares(const EdgeShares& shares,
                            std::optional<std::pair<std::size_t, std::size_t>> edges) {
  std::string error;
  if (!control_.set_shares(shares, &error)) {
    log_event(LogLevel::error, "fleet: the dataplane refused new shares", {{"error", error}});
    std::lock_guard<std::mutex> lock(mutex_);
    refused_shares_ = "the dataplane refused this edge's shares: " + error;
    sync_error_ = refused_shares_;
    return false;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  refused_shares_.clear();
  shares_ = shares;
  if (edges) {
    figures_.edges_live = edges->first;
    figures_.edges_held = edges->second;
  }
  return true;
}

void FleetAgent::keep_cache(const FleetRecord& record, std::size_t edges, bool stopping) {
  kept_record_ = record;
  kept_edges_ = edges;
  std::string error;
  json cached = {{"record", fleet_record_json(record)},
                 {"revision", record.revision},
                 {"edges", edges},
                 {"prefix", fleet_.prefix}};
  if (rank_seed_) cached["rank_seed"] = *rank_seed_;
  if (stopping) {
    std::lock_guard<std::mutex> lock(mutex_);
    const double silent_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - last_ok_).count();
    cached["stopped"] = {{"shares", shares_to_json(shares_)},
                         {"last_sync_unix_ms", unix_ms() - silent_ms}};
  }
  if (!keep_file(cache_path(fleet_), cached.dump() + "\n", &error))
    log_event(LogLevel::warn, "fleet: config copy not kept", {{"error", error}});
}

bool FleetAgent::publish(EtcdClient& etcd, const std::string& record, std::string* held_by,
                         std::string* error) {
  const std::string key = fleet_edges_prefix(fleet_) + fleet_.node;
  bool swapped = false;
  if (!etcd.put_on_lease(key, record, lease_, &swapped, error)) return false;
  if (swapped) return true;  // the record this edge keeps under its lease
  // Not under this lease: none yet (a first sync, or the lease expired while
  // etcd was away), this edge's own from before a restart, or another live
  // edge's with the same node name, which stays.
  std::vector<EtcdKv> kvs;
  if (!etcd.range(key, false, &kvs, nullptr, error)) return false;
  if (kvs.empty()) {
    if (!etcd.put_if(key, record, 0, &swapped, nullptr, error, lease_)) return false;
    if (swapped) return true;
    // Another edge created it meanwhile (two under one name, starting at
    // once): whose it is, next time round.
    *error =
        "the record of fleet.node \"" + fleet_.node + "\" was written meanwhile by another edge";
    return false;
  }
  const json other = parse_json(kvs[0].value);
  const std::string theirs = instance_of(other);
  if (!theirs.empty() && theirs != instance_) {
    *held_by = theirs;
    return true;
  }
  return etcd.put(key, record, lease_, nullptr, error);
}

void FleetAgent::tick(EtcdClient& etcd) {
  const auto now = Clock::now();
  const EdgeDemand mine = measure();
  // Its first sample (no demand measured yet): its record says so, and the
  // edges count it at the shares it enforces for this sync, it too (a
  // record of no demand left it its floor for two syncs: 16/s of 166).
  const bool warming = samples_.size() < 2;
  std::string error;
  bool ok = true;
  if (untold_) tell_even_shares(etcd);  // 0. before anything else goes over the link

  follow_config(etcd);  // then: the record below says what this edge runs

  // 1. This edge's record, under its lease (none while it stands aside,
  // quiet_, or has yet to: untold_).
  if ((lease_ == 0 && !quiet_ && !untold_) ||
      now - last_keepalive_ >= std::chrono::milliseconds(fleet_.lease_ttl_sec * 1000 / 3)) {
    int64_t ttl = 0;
    if (lease_ != 0 && !etcd.lease_keepalive(lease_, &ttl, &error)) ok = false;
    if (ok && ttl == 0 && !quiet_ && !untold_) {  // none yet, or it expired while etcd was away
      ok = etcd.lease_grant(fleet_.lease_ttl_sec, &lease_, &error);
    }
    if (ok && hold_lease_ != 0) {
      ok = etcd.lease_keepalive(hold_lease_, &ttl, &error);
      if (ok && ttl == 0) {  // expired while etcd was away, and the hold with it
        hold_lease_ = 0;
        hold_written_.reset();
      }
    }
    if (ok) last_keepalive_ = now;
  }
  const Config cfg = control_.config();
  EdgeShares current;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current = shares_;
  }
  const double now_ms = unix_ms();
  json record = {{"node", fleet_.node},
                 {"instance", instance_},
                 {"demand", demand_to_json(mine)},
                 {"shares", shares_to_json(current)},
                 {"generation", applied_revision_},
                 {"floor_pct", fleet_.floor_pct},
                 {"unix_ms", now_ms}};
  if (warming) record["warming"] = true;
  // The sample before, so that every edge can tell this edge's demand at
  // any time between the two (step 3).
  if (published_)
    record["before"] = {{"demand", demand_to_json(*published_)}, {"unix_ms", published_ms_}};
  if (rejected_revision_ > applied_revision_)
    record["refused"] = {{"generation", rejected_revision_}, {"error", rejected_error_}};
  const std::optional<double> learned = control_.adaptive_rate();
  if (learned) record["adaptive_rate"] = *learned;
  std::string held_by;  // another live edge's instance under this node name
  if (ok && !quiet_ && !untold_) ok = publish(etcd, record.dump(), &held_by, &error);

  // 2. Every edge's record.
  std::vector<EtcdKv> kvs, holds;
  int64_t revision = 0;
  if (ok && held_by.empty())
    ok = etcd.range(fleet_edges_prefix(fleet_), true, &kvs, &revision, &error) &&
         etcd.range(fleet_held_prefix(fleet_), true, &holds, nullptr, &error);
  if (ok && held_by.empty() && (quiet_ || untold_)) {
    // It stood aside (or could not), and reads etcd again: its record
    // again, under a new lease, before it computes its shares.
    ok = (lease_ != 0 || etcd.lease_grant(fleet_.lease_ttl_sec, &lease_, &error)) &&
         publish(etcd, record.dump(), &held_by, &error);
    if (ok && held_by.empty()) quiet_ = false;
  }
  if (!ok || !held_by.empty()) {
    // Out of sync: as for an etcd outage, the last shares for static_sec,
    // then an even share. A node name another live edge holds is the same
    // for the fleet: this edge's demand and shares are not in the records
    // the others split the budgets by.
    if (!held_by.empty())
      error = "fleet.node \"" + fleet_.node + "\" is held by a live edge at " + held_by +
              ": every edge needs a node name of its own";
    const double silent = std::chrono::duration<double>(now - last_ok_).count();
    bool fall_to_even = false, was_in_sync = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      was_in_sync = !figures_.static_shares;
      const bool news = held_by.empty() ? figures_.etcd_up : held_by != logged_held_by_;
      logged_held_by_ = held_by;
      if (news)
        log_event(held_by.empty() ? LogLevel::warn : LogLevel::error,
                  held_by.empty() ? "fleet: etcd unreachable; keeping the last shares"
                                  : "fleet: cannot publish this edge's record; keeping the last "
                                    "shares",
                  {{"error", error}, {"static_sec", std::to_string(fleet_.static_sec)}});
      figures_.etcd_up = !held_by.empty();
      figures_.static_shares = true;
      figures_.last_sync_age_sec = silent;
      sync_error_ = error;
      fall_to_even = silent >= fleet_.static_sec && !even_;
    }
    // Its shares and last sync kept, as at a clean stop: a crash and a
    // start meanwhile keep them too, until static_sec (dropped once back).
    if (was_in_sync) {
      keep_cache(kept_record_, kept_edges_, true);
      drop_kept_stop_ = true;
    }
    if (fall_to_even) {
      fall_to_even_shares(etcd, cfg, current, held_by, error);
    } else if (raise_even_at_ && now >= *raise_even_at_) {
      raise_even_at_.reset();
      use_shares(even_shares(cfg, last_edges_));
      log_event(LogLevel::info, "fleet: even shares raised",
                {{"edges", std::to_string(last_edges_)}});
    }
    std::lock_guard<std::mutex> lock(mutex_);
    figures_.stood_aside = quiet_;
    figures_.hold_pending = untold_;
    return;
  }

  // 3. Who is in the fleet: live edges, and gone ones still held. Every
  // edge's demand, this one's too, as of one sync ago (ref_ms), between the
  // two samples its record holds: records are published at different
  // times, up to a sync apart, and demand weighed at different times does
  // not split one budget. Weighing its own fresh demand against the
  // others' older records, every edge took more than the others left it
  // while a surge ramped up at all of them at once (a live check: a fleet of
  // three at 1.37x its budget for a second); weighing its own older figure
  // against the others' fresher ones, each took less (0.1x for 0.3 s).
  const double ref_ms = now_ms - static_cast<double>(fleet_.sync_ms);
  untold_ = false;  // its record says what it enforces again
  raise_even_at_.reset();
  if (fell_even_) {  // back: see back_revision_
    fell_even_ = false;
    back_revision_ = revision;
    even_edges_ = last_edges_;
  }
  const Config in_force = control_.config();
  const EdgeShares even = even_shares(in_force, even_edges_);
  std::vector<EdgeDemand> live{
      published_ ? demand_at(*published_, published_ms_, mine, now_ms, ref_ms) : mine};
  live[0].node = fleet_.node;
  if (!warming) {  // its next record's "before": not the demand it did not measure
    published_ = mine;
    published_ms_ = now_ms;
  }
  EdgesRead others = read_edges(kvs, ref_ms, even);
  live.insert(live.end(), others.live.begin(), others.live.end());
  if (learned) others.learned_rates[fleet_.node] = *learned;
  std::map<std::string, EdgeShares> held = held_of(holds, others.seen, even);
  count_vanished(etcd, kvs, others.seen, &held);
  for (const auto& [node, shares] : others.unheard) held[node] = shares;
  for (const auto& [node, shares] : others.warming) held[node] = shares;
  if (others.unheard.size() != unheard_logged_) {
    unheard_logged_ = others.unheard.size();
    if (!others.unheard.empty())
      log_event(LogLevel::info,
                "fleet: back after even shares; edges not heard since counted at an even share "
                "or more",
                {{"edges", std::to_string(others.unheard.size())}});
  }

  // 4. This edge's shares of the budgets in force.
  const std::map<std::string, EdgeShares> all =
      compute_shares(in_force, live, held, others.floor_pct);
  // Warming, the shares it enforces (as the others count it); the sync
  // after, no raise: the others count it so until they read this record
  // (a live check: the fleet at 620/s of 500 for 0.2 s, raised at once).
  const EdgeShares next = warming   ? current
                          : warmed_ ? lower_of(all.at(fleet_.node), current, in_force)
                                    : all.at(fleet_.node);
  warmed_ = warming;
  const bool was_static = even_ || [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return figures_.static_shares;
  }();
  if (was_static)
    log_event(LogLevel::info, "fleet: in sync", {{"edges", std::to_string(live.size())}});
  if (was_static || shares_stale_ || differs(next, current)) {
    // The hold first: what the others count for this edge if it goes is
    // written before a higher share is enforced; without it, no share
    // above the one in force (the hold says that one, or less).
    const std::pair<std::size_t, std::size_t> edges{live.size(), held.size()};
    if (write_hold(etcd, next, &error)) {
      if (use_shares(next, edges)) shares_stale_ = false;
    } else {
      log_event(LogLevel::warn, "fleet: hold not written; no share raised", {{"error", error}});
      use_shares(lower_of(next, current, in_force), edges);
    }
  } else if (hold_written_ != current && !write_hold(etcd, current, &error)) {
    log_event(LogLevel::warn, "fleet: hold not written", {{"error", error}});
  }
  rebalance_adaptive(all, others.learned_rates);
  even_ = false;
  last_edges_ = live.size() + held.size();
  if (drop_kept_stop_) {
    drop_kept_stop_ = false;
    keep_cache(kept_record_, kept_edges_);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_ok_ = now;
    // In sync with etcd; not with the fleet while this edge refuses the
    // fleet's config or the shares it gave this edge (both tried again).
    sync_error_ = refused_config_.empty()   ? refused_shares_
                  : refused_shares_.empty() ? refused_config_
                                            : refused_config_ + "; " + refused_shares_;
    logged_held_by_.clear();
    figures_.etcd_up = true;
    figures_.static_shares = false;
    figures_.stood_aside = false;
    figures_.hold_pending = false;
    figures_.last_sync_age_sec = 0;
    figures_.edges_live = live.size();
    figures_.edges_held = held.size();
    fleet_lookups_.clear();
    for (const EdgeDemand& d : live)
      for (const auto& [name, rate] : d.class_lookups) fleet_lookups_[name] += rate;
  }
  // After the figures (a file write): status says the edges the shares
  // just applied were split among.
  if (last_edges_ != kept_edges_) keep_cache(kept_record_, last_edges_);
}

// The adaptive boundary in a fleet (docs/adaptive.md): every edge adapts its
// own rate from its own flows, and they all see the one backend's latency,
// so their sum finds its capacity; but nothing in that pulls the split
// toward demand. Each sync re-splits the sum the way the fleet splits the
// boundary's ceiling (this edge's share of it over all live edges' shares):
// the sum stays what the edges learned, the split follows demand.
void FleetAgent::rebalance_adaptive(const std::map<std::string, EdgeShares>& all,
                                    const std::map<std::string, double>& learned) {
  if (learned.size() != all.size()) return;  // not every live edge has learned one yet
  double total = 0, ceilings = 0;
  for (const auto& [node, shares] : all) {
    auto it = learned.find(node);
    if (it == learned.end() || !shares.boundary_lookups) return;
    total += it->second;
    ceilings += static_cast<double>(shares.boundary_lookups->rate);
  }
  const EdgeShares& mine = all.at(fleet_.node);
  if (ceilings <= 0) return;
  control_.set_adaptive_fair(total * static_cast<double>(mine.boundary_lookups->rate) / ceilings);
}

FleetFigures FleetAgent::figures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return figures_locked();
}

FleetFigures FleetAgent::figures_locked() const {
  FleetFigures f = figures_;
  if (!f.etcd_up)
    f.last_sync_age_sec = std::chrono::duration<double>(Clock::now() - last_ok_).count();
  if (shares_.boundary_lookups)
    f.shares.push_back(
        {"boundary_lookups", "", shares_.boundary_lookups->rate, shares_.boundary_lookups->burst});
  if (shares_.boundary_packets)
    f.shares.push_back(
        {"boundary_packets", "", shares_.boundary_packets->rate, shares_.boundary_packets->burst});
  for (const auto& [name, s] : shares_.classes)
    f.shares.push_back({"class", name, s.rate, s.burst});
  for (const auto& [name, rate] : fleet_lookups_) f.fleet_lookups.emplace_back(name, rate);
  return f;
}

json FleetAgent::status() const {
  // One read of figures and shares: the shares a sync applied come with
  // the edge counts they were split among (use_shares).
  FleetFigures f;
  EdgeShares shares;
  std::string sync_error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    f = figures_locked();
    shares = shares_;
    sync_error = sync_error_;
  }
  json demand = json::object();
  for (const auto& [name, rate] : f.fleet_lookups) demand[name] = std::round(rate);
  return {{"prefix", fleet_.prefix},
          {"node", fleet_.node},
          {"etcd_up", f.etcd_up},
          {"last_sync_age_sec", f.last_sync_age_sec},
          {"static_shares", f.static_shares},
          {"stood_aside", f.stood_aside},
          {"hold_pending", f.hold_pending},
          {"sync_error", sync_error.empty() ? json(nullptr) : json(sync_error)},
          {"edges_live", f.edges_live},
          {"edges_held", f.edges_held},
          {"shares", shares_to_json(shares)},
          {"fleet_lookups_per_sec", demand}};
}

}  // namespace sluice
