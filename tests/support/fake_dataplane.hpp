// SPDX-License-Identifier: Apache-2.0
// A dataplane for control-plane tests without privileges: it runs the
// reference model on frames the test feeds it, keeps what was applied, can
// be told to refuse the next apply and to report queues and ports.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/dataplane.hpp"
#include "dataplane/reference/reference.hpp"

namespace sluice::test {

class FakeDataplane final : public Dataplane {
 public:
  bool start(const CompiledProfile& profile, uint64_t generation, std::string*) override {
    std::lock_guard<std::mutex> lock(mutex_);
    model_ = std::make_unique<ReferenceModel>(profile);
    generation_ = generation;
    applied_.push_back(generation);
    return true;
  }
  bool apply(const CompiledProfile& profile, uint64_t generation, std::string* error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    apply_calls_++;
    if (refuse_next_ || refusing_) {
      if (generation != generation_) refused_changes_++;
      refuse_next_ = false;
      *error = "refused by the fake dataplane";
      return false;
    }
    model_->apply(profile);
    generation_ = generation;
    applied_.push_back(generation);
    last_profile_ = profile.prof;
    return true;
  }
  DataplaneStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    DataplaneStats s;
    s.mode = "fake";
    s.attach = "none";
    s.generation = generation_;
    s.queues = queues_;
    s.ports = ports_;
    s.healthy = unhealthy_.empty();
    s.unhealthy = unhealthy_;
    if (!model_) return s;
    s.source_table_capacity = model_->sources().capacity();
    s.source_table_entries = model_->sources().size();
    s.source_table_evictions = model_->sources().evictions();
    const CompiledProfile& p = model_->profile();
    for (uint32_t c = 0; c < p.prof.n_classes; c++) {
      ClassStats cs;
      cs.name = p.class_names[c];
      for (int v = 0; v < SL_VERDICT_COUNT; v++)
        for (int r = 0; r < SL_REASON_COUNT; r++) {
          cs.packets[v][r] = model_->counters().packets[c][v][r];
          cs.lookups[v][r] = model_->counters().lookups[c][v][r];
        }
      cs.bucket_tokens = model_->class_state(c).bucket.tokens_nt / SL_TOKEN;
      cs.sticky_threshold = model_->class_state(c).threshold;
      s.classes.push_back(cs);
    }
    return s;
  }
  void stop() override {}
  const char* kind() const override { return "fake"; }
  bool adopted_state() const override { return false; }

  sl_decision feed(const std::vector<uint8_t>& frame, uint64_t now_ns) {
    std::lock_guard<std::mutex> lock(mutex_);
    const sl_decision d = model_->decide(frame.data(), static_cast<uint32_t>(frame.size()), now_ns);
    // A capture sees what the model decided, filtered as a dataplane does
    // (by class name here: the model's class ids are its state slots).
    const std::string& name = model_->profile().class_names[d.class_id];
    if (capturing_ && (capture_.class_name.empty() || capture_.class_name == name)) {
      sl_capture_cfg c{1, SL_CAPTURE_ANY, capture_.verdict_mask, capture_.reason, 1, 0};
      if (sl_capture_wants(&c, 0, d.verdict, d.reason)) {
        CaptureRecord r;
        r.unix_ns = now_ns;
        r.wire_len = static_cast<uint32_t>(frame.size());
        r.bytes.assign(frame.begin(),
                       frame.begin() + std::min<std::size_t>(frame.size(), capture_.snaplen));
        r.class_name = name;
        r.verdict = d.verdict;
        r.reason = d.reason;
        captured_.push_back(std::move(r));
        captured_cv_.notify_all();
      }
    }
    return d;
  }
  bool capture_start(const CaptureFilter& filter, std::string* error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (capturing_) {
      *error = "a capture is running already";
      return false;
    }
    capturing_ = true;
    capture_ = filter;
    captured_cv_.notify_all();
    return true;
  }
  void capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) override {
    std::unique_lock<std::mutex> lock(mutex_);
    captured_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                          [this] { return !captured_.empty(); });
    for (CaptureRecord& r : captured_) out->push_back(std::move(r));
    captured_.clear();
    if (lost != nullptr) *lost = 0;
  }
  void capture_stop() override {
    std::lock_guard<std::mutex> lock(mutex_);
    capturing_ = false;
    captured_cv_.notify_all();
  }
  // Waits until a capture runs (tests feed frames only then).
  bool wait_capturing(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return captured_cv_.wait_for(lock, timeout, [this] { return capturing_; });
  }
  void refuse_next_apply() {
    std::lock_guard<std::mutex> lock(mutex_);
    refuse_next_ = true;
  }
  // Refuses every apply while `on` (a dataplane that cannot take changes
  // for a while).
  void set_refusing(bool on) {
    std::lock_guard<std::mutex> lock(mutex_);
    refusing_ = on;
  }
  // What stats() says of the dataplane's health (healthy when `why` is empty).
  void set_unhealthy(std::string why) {
    std::lock_guard<std::mutex> lock(mutex_);
    unhealthy_ = std::move(why);
  }
  // What stats() reports as the queues and ports of a dataplane that has
  // them (DPDK); none by default, as on XDP.
  void set_queues_and_ports(std::vector<QueueStats> queues, std::vector<PortStats> ports) {
    std::lock_guard<std::mutex> lock(mutex_);
    queues_ = std::move(queues);
    ports_ = std::move(ports);
  }
  // Applies of a new generation (config changes, not share updates) it
  // refused.
  uint64_t refused_changes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return refused_changes_;
  }
  // Every apply asked for, taken or refused.
  uint64_t apply_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return apply_calls_;
  }
  std::vector<uint64_t> applied() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return applied_;
  }
  // The compiled profile of the last apply.
  // The whole profile the last start or apply gave.
  CompiledProfile last_compiled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return model_ ? model_->profile() : CompiledProfile{};
  }
  sl_profile last_profile() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_profile_;
  }

 private:
  mutable std::mutex mutex_;
  std::unique_ptr<ReferenceModel> model_;
  uint64_t generation_ = 0;
  std::vector<uint64_t> applied_;
  sl_profile last_profile_{};
  bool refuse_next_ = false;
  bool refusing_ = false;
  uint64_t refused_changes_ = 0;
  uint64_t apply_calls_ = 0;
  std::vector<QueueStats> queues_;
  std::string unhealthy_;
  std::vector<PortStats> ports_;
  bool capturing_ = false;
  CaptureFilter capture_;
  std::vector<CaptureRecord> captured_;
  std::condition_variable captured_cv_;
};

}  // namespace sluice::test
