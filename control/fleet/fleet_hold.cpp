// SPDX-License-Identifier: Apache-2.0
// A fleet member's hold (docs/fleet.md, PREFIX/held/NODE): the shares this
// edge may enforce, kept in etcd past its record so that every edge, one
// that joins later too, counts them while its pinned program may still
// enforce them; and the holds of gone edges, read at each sync.
#include <chrono>
#include <set>

#include "control/api/control_state.hpp"
#include "control/api/json_parse.hpp"
#include "control/fleet/etcd_client.hpp"
#include "control/fleet/fleet_agent.hpp"
#include "control/log.hpp"

namespace sluice {

using json = nlohmann::json;

std::string FleetAgent::hold_text(const EdgeShares& shares) const {
  return json{{"node", fleet_.node}, {"instance", instance_}, {"shares", shares_to_json(shares)}}
      .dump();
}

bool FleetAgent::write_hold(EtcdClient& etcd, const EdgeShares& shares, std::string* error) {
  if (hold_lease_ == 0 &&
      !etcd.lease_grant(static_cast<int64_t>(fleet_.lease_ttl_sec) + fleet_.static_sec,
                        &hold_lease_, error))
    return false;
  if (!etcd.put(fleet_held_prefix(fleet_) + fleet_.node, hold_text(shares), hold_lease_, nullptr,
                error))
    return false;
  hold_written_ = shares;
  return true;
}

std::map<std::string, EdgeShares> FleetAgent::held_of(const std::vector<EtcdKv>& kvs,
                                                      const std::map<std::string, bool>& live,
                                                      const EdgeShares& at_least) {
  std::map<std::string, EdgeShares> held;
  std::map<std::string, SeenHold> seen;
  bool own_found = false;
  const auto now = std::chrono::steady_clock::now();
  for (const EtcdKv& kv : kvs) {
    const std::string node = kv.key.substr(fleet_held_prefix(fleet_).size());
    if (node == fleet_.node) {
      // Its own, as this edge wrote it: one that says other shares (an
      // older one an etcd restore brought back, or one changed by hand),
      // or lost its lease, is written again.
      const json h = parse_json(kv.value);
      own_found = kv.lease != 0 && hold_written_ && h.is_object() && h.contains("shares") &&
                  shares_from_json(h["shares"]) == hold_written_;
      continue;
    }
    // Holds without a lease (written by hand) would count forever: none.
    if (kv.lease == 0) continue;
    const auto before = holds_seen_.find(node);
    seen[node] = {
        kv.value, kv.lease,
        live.count(node) != 0 || before == holds_seen_.end() ? now : before->second.alive_at};
    // This edge's own (from before a restart: what it enforces now is its
    // own share), and live edges' (their records count) are not held.
    if (live.count(node) != 0) continue;
    const json h = parse_json(kv.value);
    if (!h.is_object() || !h.contains("shares")) continue;
    const std::optional<EdgeShares> shares = shares_from_json(h["shares"]);
    if (!shares) continue;
    held[node] = kv.mod_revision < back_revision_ ? higher_of(*shares, at_least) : *shares;
  }
  holds_seen_ = std::move(seen);
  // This edge's own hold gone from etcd (its keys lost, or deleted by hand)
  // or not as written, while it thought it written: written again at this
  // sync (step 4).
  if (!own_found) hold_written_.reset();
  return held;
}

void FleetAgent::count_vanished(EtcdClient& etcd, const std::vector<EtcdKv>& records,
                                const std::map<std::string, bool>& live,
                                std::map<std::string, EdgeShares>* held) {
  auto shares_in = [](const std::string& text) {
    const json j = parse_json(text);
    return j.is_object() && j.contains("shares") ? shares_from_json(j["shares"]) : std::nullopt;
  };
  std::map<std::string, Counted> now;
  for (const EtcdKv& kv : records) {
    const std::string node = kv.key.substr(fleet_edges_prefix(fleet_).size());
    if (live.count(node) == 0) continue;
    Counted& c = now[node];
    c.record_lease = kv.lease;
    if (const std::optional<EdgeShares> s = shares_in(kv.value)) c.shares = *s;
  }
  for (const auto& [node, seen] : holds_seen_) {
    const std::optional<EdgeShares> s = shares_in(seen.value);
    Counted& c = now[node];
    c.hold_lease = seen.lease;
    // No record now: the lease of the one it had, to tell when it ended.
    if (const auto b = counted_.find(node); c.record_lease == 0 && b != counted_.end())
      c.record_lease = b->second.record_lease;
    if (s) c.shares = higher_of(c.shares, *s);
  }
  for (const auto& [node, shares] : *held) now[node].shares = higher_of(now[node].shares, shares);
  // A lease etcd did not tell the life of (slow, or gone since the range)
  // lives: an edge etcd lost is not freed on a failed call.
  auto lives = [&etcd](int64_t lease) {
    int64_t ttl = 0;
    std::string error;
    return lease != 0 && (!etcd.lease_ttl(lease, &ttl, &error) || ttl >= 0);  // 0: its last second
  };
  std::set<std::string> vanished;
  for (const auto& [node, before] : counted_) {
    if (now.count(node) != 0) continue;
    // Both keys went since the last sync: counted while a lease of theirs
    // lives (a record lapses with its lease, and the hold lives longer).
    if (!lives(before.record_lease) && !lives(before.hold_lease)) continue;
    (*held)[node] = before.shares;
    now[node] = before;
    vanished.insert(node);
    if (vanished_.count(node) == 0)
      log_event(LogLevel::warn,
                "fleet: an edge's record and hold went while their leases live (etcd lost its "
                "keys?); counting the shares it had until they are back or the leases end",
                {{"node", node}});
  }
  // Said once per change: an edge counted by its hold, once its record's
  // lease has ended (while it lives, etcd lost the record: the edge may be
  // live, and back at its next sync), and a hold no longer counted.
  std::set<std::string> nodes;
  for (const auto& [node, shares] : *held) {
    if (held_nodes_.count(node) == 0) {
      if (vanished.count(node) != 0 || lives(now[node].record_lease)) continue;
      log_event(LogLevel::info, "fleet: edge gone; counting the shares it may still enforce",
                {{"node", node}});
    }
    nodes.insert(node);
  }
  for (const std::string& node : held_nodes_)
    if (nodes.count(node) == 0 && live.count(node) == 0)
      log_event(LogLevel::info, "fleet: a gone edge's hold ended; its share is free",
                {{"node", node}});
  held_nodes_ = std::move(nodes);
  counted_ = std::move(now);
  vanished_ = std::move(vanished);
}

void FleetAgent::write_back_holds(EtcdClient& etcd) {
  const auto now = std::chrono::steady_clock::now();
  const auto longest = std::chrono::seconds(int64_t{fleet_.lease_ttl_sec} + fleet_.static_sec);
  for (const auto& [node, seen] : holds_seen_) {
    const std::string key = fleet_held_prefix(fleet_) + node;
    std::string error;
    bool swapped = false;
    int64_t lease = seen.lease;
    // Written only where nothing is (another edge may have been first, or
    // the edge itself is back); under its own lease while that lives (an
    // edge that stood aside keeps it alive).
    bool ok = etcd.put_if(key, seen.value, 0, &swapped, nullptr, &error, lease);
    const auto left = seen.alive_at + longest - now;
    if (!ok && left > std::chrono::seconds(0)) {  // its lease is gone too (restored empty)
      const auto sec = std::chrono::ceil<std::chrono::seconds>(left).count();
      ok = etcd.lease_grant(sec, &lease, &error) &&
           etcd.put_if(key, seen.value, 0, &swapped, nullptr, &error, lease);
      if (ok && !swapped) etcd.lease_revoke(lease, &error);
    } else if (!ok) {
      continue;  // its longest life is over: it ended
    }
    if (!ok)
      log_event(LogLevel::warn, "fleet: an edge's hold etcd lost was not written back",
                {{"node", node}, {"error", error}});
    else if (swapped)
      log_event(LogLevel::warn, "fleet: etcd had lost an edge's hold; written back",
                {{"node", node}, {"lease", lease == seen.lease ? "its own" : "a new one"}});
  }
}

// Out of sync for static_sec: even shares, lowered at once where a share is
// above 1/N (a busy edge's), then told (its hold), then raised where below,
// raise_delay() later: the edges' falls are up to a sync's calls apart (~1
// s), and one that raised before a busier one lowered took the fleet over
// its budget meanwhile (by 1/N less its share). Another instance under
// this node name keeps its own hold.
void FleetAgent::fall_to_even_shares(EtcdClient& etcd, const Config& cfg, const EdgeShares& current,
                                     const std::string& held_by, const std::string& error) {
  even_ = true;
  fell_even_ = true;
  const EdgeShares even = even_shares(cfg, last_edges_);
  if (const EdgeShares lower = lower_of(even, current, cfg); lower != current) use_shares(lower);
  const bool aside = held_by.empty() && stand_aside(etcd, even);
  untold_ = held_by.empty() && !aside;
  const auto delay = raise_delay();
  log_event(LogLevel::warn, "fleet: out of sync for static_sec; even shares",
            {{"edges", std::to_string(last_edges_)},
             {"error", error},
             {"raised", "shares above them now, below them in " + std::to_string(delay.count()) +
                            " ms (time for the other edges, whose falls come up to ~1 s apart, "
                            "to lower theirs first)"},
             {"told", aside ? "its hold says them; its record is gone until it reads etcd"
                            : "nobody yet: etcd took no write (tried again every sync)"}});
  raise_even_at_ = std::chrono::steady_clock::now() + delay;
}

// Its hold's write failed at the fall (a link slow enough to time it out,
// say): tried first each sync, before the fleet config's read, the record's
// keepalive, its re-publish and the reads, and until it lands no record
// either, neither kept alive nor written again (it lapses with its lease).
// Before, those went first each sync, and on a 24 kbit/s link the hold's
// retries never landed: the record went on saying the demand's share while
// the edge enforced 1/N (a check: the fleet at ~120%).
void FleetAgent::tell_even_shares(EtcdClient& etcd) {
  if (!stand_aside(etcd, even_shares(control_.config(), last_edges_))) {
    lease_ = 0;  // not kept alive: the record ends with it
    return;
  }
  untold_ = false;
  log_event(LogLevel::info, "fleet: stood aside",
            {{"told", "its hold says its even shares; its record is gone until it reads etcd"}});
}

bool FleetAgent::stand_aside(EtcdClient& etcd, const EdgeShares& even) {
  std::string error;
  if (!write_hold(etcd, even, &error)) return false;  // the record stays: nothing changes
  quiet_ = true;
  if (lease_ != 0 && !etcd.lease_revoke(lease_, &error))
    log_event(LogLevel::warn, "fleet: record not removed; it ends with its lease",
              {{"error", error}});
  lease_ = 0;  // not kept alive: it ends with its lease if the revoke did not reach etcd
  return true;
}

void FleetAgent::shorten_hold(EtcdClient& etcd) {
  std::optional<EdgeShares> shares;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // etcd away: the hold runs out as it is. Another live instance under
    // this node name: the hold is its own now.
    if (!figures_.etcd_up || hold_lease_ == 0 || !logged_held_by_.empty()) return;
    shares = shares_;
  }
  std::string error;
  int64_t short_lease = 0;
  bool swapped = false;
  // Moved to the short lease only while this edge's lease still holds it:
  // another instance that took the node name meanwhile keeps its own.
  if (!etcd.lease_grant(fleet_.static_sec, &short_lease, &error) ||
      !etcd.put_on_lease(fleet_held_prefix(fleet_) + fleet_.node, hold_text(*shares), hold_lease_,
                         &swapped, &error, short_lease)) {
    log_event(LogLevel::warn, "fleet: hold not shortened; it ends lease_ttl_sec later",
              {{"error", error}});
    return;
  }
  if (!swapped) etcd.lease_revoke(short_lease, &error);  // not this edge's hold any more
  etcd.lease_revoke(hold_lease_, &error);
  hold_lease_ = 0;
}

}  // namespace sluice
