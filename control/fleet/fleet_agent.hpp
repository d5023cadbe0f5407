// SPDX-License-Identifier: Apache-2.0
// A fleet member's side of the fleet (docs/fleet.md): before the dataplane
// starts, fleet_join() fetches the fleet config from etcd (or, when etcd
// cannot be reached, the copy this edge kept of it) and the first shares;
// then a FleetAgent thread, every fleet.sync_ms, publishes this edge's
// demand under its lease, reads every edge's, sets this edge's shares of the
// fleet budgets (ControlState::set_shares) and applies a new fleet config
// when its revision changes (ControlState::apply_fleet_config).
//
// An edge's record at PREFIX/edges/NODE (fleet_record.hpp has the keys):
//   {"node", "demand": {CLASS: {"lookups", "packets"}}, "shares": {...},
//    "generation", "unix_ms"}, under the edge's lease.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"
#include "control/config/config_loader.hpp"
#include "control/fleet/fleet_record.hpp"
#include "control/fleet/shares.hpp"
#include "control/metrics.hpp"

namespace sluice {

class ControlState;
class EtcdClient;
struct EtcdKv;

// What an edge starts with.
struct FleetStart {
  // The local tables with the fleet config: the base in force (the fleet's
  // active profile, record.profile, is applied over it once sluiced runs).
  LoadResult loaded;
  FleetRecord record;
  EdgeShares shares;        // this edge's first shares, of the budgets with record.profile
  std::size_t edges = 1;    // edges in the fleet, this one included
  bool from_cache = false;  // etcd did not answer: the kept copy
  // From the kept copy, within static_sec of it: the last sync before a
  // clean stop, whose shares `shares` are; they hold until static_sec after
  // it (counted by the agent, after the join's own time). None: 1/N.
  std::optional<std::chrono::system_clock::time_point> kept_sync;
  // With etcd: `shares` are this node's hold (a restart within static_sec
  // of a clean stop), what the other edges count for it until its lease
  // ends, hold_ttl_sec (whole seconds) from the join. False: 1/N.
  bool held = false;
  int64_t hold_ttl_sec = 0;
  // The fleet's salt of sticky ranks (PREFIX/rank_seed; the first edge's own
  // kept seed, default_seed(), when the fleet had none): sluiced uses it for
  // configs without admission.seed, so every edge ranks a source alike.
  std::optional<uint64_t> rank_seed;
  // Who runs this node (fleet_instance()). A node name a live edge of
  // another instance holds is refused at the join.
  std::string instance;
  std::string log;  // what happened, for the log
};

// Who runs a node: "HOST:CONFIG_PATH (boot ID)", the kernel's boot ID's first
// 8 characters. The same after a restart of sluiced; another on a clone of
// the machine, or a second file on it.
std::string fleet_instance(const std::string& config_path);

// Fetches the fleet config (seeding it from the local file's fleet tables
// when the fleet has none yet) and the first shares: this node's hold when
// it lives (a restart after a clean stop), else an even share. Without etcd, the copy
// kept at the last start (in $STATE_DIRECTORY) with the shares this edge
// enforced at its clean stop while static_sec has not passed since its last
// sync (as a running edge keeps them), else an even share. False +
// *error when neither is there, or the fleet config is not valid here.
bool fleet_join(const FleetConfig& fleet, const std::string& config_path,
                const std::string& local_text, FleetStart* start, std::string* error);

class FleetAgent {
 public:
  // Starts the agent's threads; `status` of `control` reports the fleet
  // from now on.
  FleetAgent(const FleetConfig& fleet, ControlState& control, const FleetStart& start);
  ~FleetAgent();  // stops the threads and revokes the lease
  FleetAgent(const FleetAgent&) = delete;
  FleetAgent& operator=(const FleetAgent&) = delete;

  FleetFigures figures() const;
  nlohmann::json status() const;

 private:
  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::map<std::string, std::pair<uint64_t, uint64_t>> counts;  // class -> lookups, packets
  };

  void run();
  // Watches PREFIX/config and wakes run() at once when it changes (run()
  // also checks its revision every sync, which covers a watch being down).
  void watch();
  void tick(EtcdClient& etcd);
  // Writes this edge's record under its lease. True with *held_by set (and
  // nothing written) when another live instance's record holds the node.
  bool publish(EtcdClient& etcd, const std::string& record, std::string* held_by,
               std::string* error);
  // This edge's demand per class over about the last second.
  EdgeDemand measure();
  void reseed(EtcdClient& etcd);
  void rebalance_adaptive(const std::map<std::string, EdgeShares>& all,
                          const std::map<std::string, double>& learned);
  // Applies `shares` in the dataplane; with `edges` (live, held), status's
  // edge counts change with the shares, under one lock (a status read never
  // pairs new shares with the edges of the split before).
  FleetFigures figures_locked() const;  // figures(), with mutex_ held
  bool use_shares(const EdgeShares& shares,
                  std::optional<std::pair<std::size_t, std::size_t>> edges = std::nullopt);
  // PREFIX/held/NODE's value: {"node", "instance", "shares"}.
  std::string hold_text(const EdgeShares& shares) const;
  // Writes PREFIX/held/NODE: `shares`, under the hold lease (granted when
  // there is none). False + *error when etcd did not take it.
  bool write_hold(EtcdClient& etcd, const EdgeShares& shares, std::string* error);
  // Of the holds read (PREFIX/held/), every other edge's whose record is
  // gone (not in `live`): node -> the shares it may still enforce; a hold
  // not written since this edge came back (back_revision_) at least
  // `at_least` (the even shares that edge may have fallen to meanwhile).
  // Also notes this edge's own hold missing (hold_written_ reset).
  std::map<std::string, EdgeShares> held_of(const std::vector<EtcdKv>& kvs,
                                            const std::map<std::string, bool>& live,
                                            const EdgeShares& at_least);
  // Every other edge counted at this sync (live: the shares its record and
  // its hold say; held), and one counted at the last sync whose record and
  // hold both went since, while a lease of theirs still lives (etcd lost the
  // keys, or they were deleted by hand: a record lapses with its lease, and
  // a hold outlives the record), added to `held` at the shares counted
  // then, until they are back or their leases end. Before, its share was
  // free at once: a survivor that read etcd after a wipe and before the
  // holds were written back (write_back_holds) split the dead edge's share
  // for a sync, and counted every live edge whose record was not yet back
  // as gone. `records`: PREFIX/edges/ as read, `live` the edges counted
  // live from them. Logs which edges are held now and which holds ended
  // (an edge whose record etcd lost while its lease lives is not "gone").
  struct Counted {
    EdgeShares shares;
    int64_t record_lease = 0;
    int64_t hold_lease = 0;
  };
  // The other edges' records as one sync reads them (fleet_edges.cpp):
  // live edges' demand at ref_ms (between the two samples each record
  // holds), and the edges counted at shares instead: one not heard since
  // this edge came back from even shares (back_revision_) at `even` or what
  // it says, more; one whose first record says it measured no demand yet
  // ("warming") at what it says it enforces. A record without a lease, or
  // that is no JSON object, is no edge.
  struct EdgesRead {
    std::vector<EdgeDemand> live;
    std::map<std::string, bool> seen;  // every edge whose record it reads
    std::map<std::string, EdgeShares> unheard;
    std::map<std::string, EdgeShares> warming;
    std::map<std::string, double> learned_rates;  // live edges' adaptive rates
    uint32_t floor_pct = 0;                       // the largest any edge asks for (and this one)
  };
  EdgesRead read_edges(const std::vector<EtcdKv>& kvs, double ref_ms, const EdgeShares& even);
  void count_vanished(EtcdClient& etcd, const std::vector<EtcdKv>& records,
                      const std::map<std::string, bool>& live,
                      std::map<std::string, EdgeShares>* held);
  // At a clean stop: the hold lasts static_sec from now (the pinned program
  // keeps enforcing these shares), not lease_ttl_sec more.
  void shorten_hold(EtcdClient& etcd);
  // Out of sync for static_sec, before it raises its shares to `even`: where
  // etcd still takes its writes (its reads failing: a slow or filtered
  // link), it writes its hold at `even` and removes its record, so that the
  // others count it as a gone edge at those shares, not at what its demand
  // would give it (a check: such an edge's live record said 61/s while it
  // enforced 166/s, the fleet at 120% of its budget). True when the hold
  // was written (quiet_ then: no record until it reads etcd again). In an
  // outage nothing is written, and the others learn it when they are back
  // (back_revision_).
  bool stand_aside(EtcdClient& etcd, const EdgeShares& even);
  // Out of sync for static_sec: shares above 1/N lowered now, those below
  // raised raise_delay() later (raise_even_at_), after stand_aside.
  void fall_to_even_shares(EtcdClient& etcd, const Config& cfg, const EdgeShares& current,
                           const std::string& held_by, const std::string& error);
  // How long after its fall an edge raises its shares to even: 2 s, or 8
  // syncs where that is longer (a fall comes at a sync, whose calls to an
  // etcd that does not answer each take a timeout).
  std::chrono::milliseconds raise_delay() const {
    return std::max(std::chrono::milliseconds(2000),
                    std::chrono::milliseconds(8 * int64_t{fleet_.sync_ms}));
  }
  // untold_: stand_aside at this sync's start (fleet_hold.cpp).
  void tell_even_shares(EtcdClient& etcd);
  void follow_config(EtcdClient& etcd);
  // etcd lost the fleet's keys (reseed): the other edges' holds this edge
  // read at its last sync are written back, each under its own lease while
  // that lives (etcd lost the keys, not the leases: it ends when it would
  // have; a live edge's is kept alive by it), else under a new one for what
  // is left of its longest life (lease_ttl_sec + static_sec from when its
  // edge was last seen live). (Its own hold: a sync that does not find it
  // writes it again.)
  void write_back_holds(EtcdClient& etcd);
  // Keeps record and edges in the copy read at a start without etcd (and
  // remembers them: kept_); `stopping`: with the shares in force and when
  // this edge last synced (a restart while etcd is away keeps them until
  // static_sec after that sync, as this run would have).
  void keep_cache(const FleetRecord& record, std::size_t edges, bool stopping = false);

  const FleetConfig fleet_;
  const std::string instance_;  // FleetStart::instance, in this edge's record
  ControlState& control_;
  std::deque<Sample> samples_;
  int64_t lease_ = 0;
  std::chrono::steady_clock::time_point last_keepalive_{};
  // The hold: PREFIX/held/NODE under a lease of lease_ttl_sec + static_sec,
  // kept alive with the record's; the shares it says (none: to be written).
  int64_t hold_lease_ = 0;
  std::optional<EdgeShares> hold_written_;
  std::set<std::string> held_nodes_;  // other edges' holds counted at the last sync
  // Every other edge's hold read at the last sync, live edges' too (one that
  // just died still has a live record): what it said, under which lease,
  // and when this edge last saw that edge's record live, or first saw the
  // hold without one (write_back_holds).
  struct SeenHold {
    std::string value;
    int64_t lease = 0;
    std::chrono::steady_clock::time_point alive_at;
  };
  std::map<std::string, SeenHold> holds_seen_;
  std::map<std::string, Counted> counted_;  // count_vanished: the last sync's
  std::set<std::string> vanished_;          // ... and those it counted gone keys of
  int64_t applied_revision_ = 0;
  int64_t reseeded_revision_ = 0;  // the fleet config this edge wrote back (reseed)
  int64_t rejected_revision_ = 0;
  std::string rejected_error_;  // why rejected_revision_ was refused here
  // A refused revision is tried again (its refusal may pass: a dataplane
  // that was not enforcing), after 1 s, then twice as long each time, up to
  // 30 s.
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds retry_after_{0};
  const std::optional<uint64_t> rank_seed_;  // kept with the fleet config
  // What the kept copy says: the fleet config this edge runs and the edges
  // it knew, written again whenever the edges it counts change (a start
  // without etcd takes 1/N of each budget: N must be the fleet's size, not
  // the one this edge found when it joined).
  FleetRecord kept_record_;
  std::optional<EdgeDemand> published_;  // the demand of this edge's last sync (tick)
  double published_ms_ = 0;              // when (unix ms)
  std::size_t kept_edges_ = 0;
  // The kept copy has a "stopped" entry (its shares and last sync, written
  // when etcd went away, or read at a start from the copy): dropped at the
  // next sync, so that a crash later does not take them.
  bool drop_kept_stop_ = false;
  bool warmed_ = false;  // the last sync was its first ("warming"): this one raises nothing

  mutable std::mutex mutex_;  // the figures below; never held while calling ControlState
  FleetFigures figures_;      // shares and fleet_lookups filled in by figures()
  EdgeShares shares_;         // in force
  std::map<std::string, double> fleet_lookups_;
  std::chrono::steady_clock::time_point last_ok_;
  std::size_t last_edges_ = 1;
  bool even_ = false;
  // This edge fell to even shares, out of sync for static_sec (or started
  // without etcd): the others may have too. At its first sync back,
  // back_revision_ is etcd's revision then, and even_edges_ the edges the
  // even shares were split among. An edge whose record or hold is older
  // than that revision has not written since: it may have fallen to even
  // shares too, and died before it could say so (its hold, written before
  // it raises a share, could not be while etcd was away). It is counted at
  // no less than those even shares until it writes again or its hold ends
  // (a check: an edge killed in a 30 s etcd outage, enforcing 166/s and
  // counted at the 61/s its hold said, took the fleet to 120% of its budget).
  bool fell_even_ = false;
  int64_t back_revision_ = 0;
  std::size_t even_edges_ = 1;
  bool quiet_ = false;  // stood aside (stand_aside): its record goes back once it reads etcd
  // Fell to even shares, but etcd took no hold (stand_aside failed): each
  // sync tries the hold first, and keeps no record meanwhile (tick, step 0).
  bool untold_ = false;
  // fall_to_even_shares: when the shares below 1/N go up to it.
  std::optional<std::chrono::steady_clock::time_point> raise_even_at_;
  // ControlState rescaled its shares with a config it applied (at the
  // start, or a fleet change), so shares_ is not what it enforces: the next
  // sync applies the computed shares whatever they differ by.
  bool shares_stale_ = true;
  std::string sync_error_;      // why the last sync failed ("" after one that did not)
  std::string refused_shares_;  // why the dataplane refused the last shares ("" once it took some)
  std::string refused_config_;  // the fleet config this edge refuses ("" once it runs the newest)
  std::string logged_held_by_;  // the holder of this node name last logged
  std::set<std::string> bad_records_;  // edges whose malformed records were logged (sync thread)
  std::size_t unheard_logged_ = 0;     // edges not heard since back_revision_, last logged

  std::mutex stop_mutex_;  // guards the three below
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool config_changed_ = false;     // the watch saw PREFIX/config change
  EtcdClient* watching_ = nullptr;  // the watch's client, to end it at stop
  std::thread thread_;
  std::thread watch_thread_;
};

}  // namespace sluice
