// SPDX-License-Identifier: Apache-2.0
#include "dataplane/reference/reference.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "dataplane/model/classify.h"
#include "dataplane/model/credit.h"
#include "dataplane/model/decide.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"

namespace sluice {

ReferenceModel::ReferenceModel(CompiledProfile profile)
    : profile_(std::move(profile)),
      src_lpm_(profile_.src_prefixes),
      dst_lpm_(profile_.dst_prefixes),
      sources_(profile_.source_table_size),
      flows_(profile_.flow_table_size),
      slots_(SL_MAX_CLASSES),
      counters_(std::make_unique<sl_counters>()),
      by_class_(std::make_unique<sl_counters>()) {
  SlotAssignment a;
  std::string error;
  book_.assign(profile_, sl_profile{}, generation_, &a, &error);  // a first profile always fits
  profile_.prof = a.prof;
  book_.give(profile_, a, *counters_);
}

const sl_counters& ReferenceModel::counters() const {
  *by_class_ = *counters_;  // flow events and source inserts as counted
  const std::vector<ClassStats> classes = book_.class_stats(profile_.prof, *counters_);
  for (uint32_t c = 0; c < classes.size(); c++) {
    std::memcpy(by_class_->packets[c], classes[c].packets, sizeof(classes[c].packets));
    std::memcpy(by_class_->lookups[c], classes[c].lookups, sizeof(classes[c].lookups));
  }
  for (uint32_t c = static_cast<uint32_t>(classes.size()); c < SL_MAX_CLASSES; c++) {
    std::memset(by_class_->packets[c], 0, sizeof(by_class_->packets[c]));
    std::memset(by_class_->lookups[c], 0, sizeof(by_class_->lookups[c]));
  }
  return *by_class_;
}

uint32_t ReferenceModel::classify(const sl_meta& m) const {
  const uint32_t src = src_lpm_.lookup(m.family, m.src_be);
  const uint32_t dst = dst_lpm_.lookup(m.family, m.dst_be);
  const uint32_t port = m.has_ports ? profile_.port_mask[m.dport] : 0;
  return sl_classify(&profile_.prof, &m, src, dst, port);
}

void ReferenceModel::use_credits(uint16_t cpus) {
  profile_.prof.credit_cpus = cpus;
  credits_.assign(cpus, sl_cpu_credits{});
  sticky_.assign(static_cast<std::size_t>(cpus) * SL_MAX_CLASSES, sl_sticky_cpu{});
}

sl_decision ReferenceModel::decide(const uint8_t* frame, uint32_t len, uint64_t now_ns,
                                   sl_meta* meta, uint32_t cpu) {
  const sl_profile& prof = profile_.prof;
  sl_meta m;
  int parsed = sl_parse(frame, frame + len, &m);
  uint32_t class_id = prof.n_classes - 1;
  if (parsed == SL_PARSE_OK) class_id = classify(m);
  auto by_class = [this](const sl_meta& x) { return classify(x); };
  int flow_hit = 0;
  if (parsed == SL_PARSE_OK && !m.is_start)
    flow_hit = flow_verify(flows_, prof, m, frame, len, class_id, by_class, now_ns, *counters_);
  sl_source_state* ss = nullptr;
  const sl_class_params& cp = prof.classes[class_id];
  if (parsed == SL_PARSE_OK && sl_charged(&prof, &m, flow_hit) && cp.src_bucket.enabled) {
    sl_source_key key;
    sl_source_key_make(&key, &m, &cp);
    ss = sources_.find_or_insert(key);
  }
  sl_decision d;
  sl_class_state& cs = slots_[slot_of(class_id)];
  sl_cpu_credits* cc = credits_.empty() ? nullptr : &credits_[cpu % credits_.size()];
  sl_sticky_cpu* sc =
      cc ? &sticky_[(cpu % credits_.size()) * SL_MAX_CLASSES + slot_of(class_id)] : nullptr;
  if (!cc) {
    sl_decide(&prof, &m, parsed, class_id, &cs, &boundary_, ss, flow_hit, now_ns, &d);
  } else {
    // As XDP decides with credits: the source's own budget first.
    const int source = ss ? sl_source_take(ss, &cp, now_ns) : SL_SOURCE_HERE;
    if (sl_decide_unlocked(&prof, &m, parsed, class_id, &cs, &boundary_, source, flow_hit, cc,
                           now_ns, &d) ||
        sl_shed_unlocked(&prof, &m, parsed, class_id, &cs, &boundary_, sc, source, flow_hit, now_ns,
                         &d)) {
      unlocked_++;
    } else {
      if (sl_sticky_due(&prof, &cp, &cs, now_ns)) {
        // Every CPU's sheds into the state before the controller reads it.
        sl_sticky_cpu taken{};
        for (std::size_t c = 0; c < credits_.size(); c++)
          sl_sticky_take(&taken, &sticky_[c * SL_MAX_CLASSES + slot_of(class_id)]);
        sl_sticky_merge(&cs, &cp, &taken);
      }
      sl_credit_reclaim(&prof, &m, parsed, class_id, &cs, &boundary_, cc, now_ns);
      sl_decide_source(&prof, &m, parsed, class_id, &cs, &boundary_, nullptr, source, flow_hit,
                       now_ns, &d);
      sl_credit_draw(&prof, &m, parsed, class_id, &cs, &boundary_, cc, now_ns, &d);
    }
    if (source == SL_SOURCE_TAKEN && !sl_source_used(&d)) sl_source_give_back(ss, &cp);
  }
  sl_sticky_settle(&prof, &cp, &cs, &boundary_, now_ns);
  flow_apply_ops(flows_, prof, m, d, by_class, now_ns, *counters_);
  count(d);
  if (meta) *meta = m;
  return d;
}

sl_decision ReferenceModel::process(uint8_t* frame, uint32_t& len, uint64_t now_ns, uint32_t cpu) {
  sl_meta m;
  sl_decision d = decide(frame, len, now_ns, &m, cpu);
  if (d.action == SL_ACTION_RESET) {
    uint32_t n = sl_build_reset(frame, frame + len, &m);
    if (n != 0) {
      len = n;
    } else {
      d.action = SL_ACTION_DROP;
    }
  } else if (d.action == SL_ACTION_MARK) {
    sl_mark_dscp(frame, frame + len, &m, d.mark_dscp);
  }
  return d;
}

void ReferenceModel::observe_inside(const uint8_t* frame, uint32_t len, uint64_t now_ns) {
  auto by_class = [this](const sl_meta& x) { return classify(x); };
  flow_inside(flows_, profile_.prof, boundary_, frame, len, by_class, now_ns, *counters_);
}

void ReferenceModel::count(const sl_decision& d) {
  const uint32_t slot = slot_of(d.class_id);
  counters_->packets[slot][d.verdict][d.reason]++;
  if (d.is_start) counters_->lookups[slot][d.verdict][d.reason]++;
}

void ReferenceModel::apply(CompiledProfile next) {
  SlotAssignment a;
  std::string error;
  // The validator allows no more classes than there are slots.
  if (!book_.assign(next, profile_.prof, ++generation_, &a, &error)) return;
  next.prof = a.prof;
  std::vector<bool> fresh(next.prof.n_classes, false);
  for (uint32_t c : a.fresh) fresh[c] = true;
  for (uint32_t c = 0; c < next.prof.n_classes; c++) {
    if (fresh[c]) continue;  // a new class keeps the slot's state: its first packet initialises it
    const sl_class_params& cp = next.prof.classes[c];
    sl_bucket_clamp(&slots_[cp.state_index & (SL_MAX_CLASSES - 1)].bucket, &cp.bucket);
  }
  book_.give(next, a, *counters_);
  bool resize = next.source_table_size != profile_.source_table_size;
  const bool resize_flows = next.flow_table_size != profile_.flow_table_size;
  const uint16_t credit_cpus = profile_.prof.credit_cpus;
  profile_ = std::move(next);
  profile_.prof.credit_cpus = credit_cpus;  // the dataplane's, not the config's
  src_lpm_ = LpmTable(profile_.src_prefixes);
  dst_lpm_ = LpmTable(profile_.dst_prefixes);
  if (resize) sources_ = SourceTable(profile_.source_table_size);
  if (resize_flows) flows_ = FlowTable(profile_.flow_table_size);
  sl_bucket_clamp(&boundary_.lookups, &profile_.prof.boundary_lookups);
  sl_bucket_clamp(&boundary_.packets, &profile_.prof.boundary_packets);
}

}  // namespace sluice
