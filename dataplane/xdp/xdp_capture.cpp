// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/xdp_capture.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace sluice {

namespace {

// How long the program samples without a renewal (sl_capture_cfg.until_ns),
// and how often read() renews it: a capture whose sluiced was killed stops
// within the lease.
constexpr uint64_t kLeaseNs = 5'000'000'000ULL;
constexpr uint64_t kRenewNs = 1'000'000'000ULL;

}  // namespace

XdpCapture::~XdpCapture() {
  if (ring_ != nullptr) ring_buffer__free(ring_);
}

int XdpCapture::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<XdpCapture*>(ctx);
  if (size < sizeof(sl_capture_rec)) return 0;
  const auto* r = static_cast<const sl_capture_rec*>(data);
  CaptureRecord rec;
  rec.unix_ns = r->ts_ns + static_cast<uint64_t>(self->clock_offset_ns_);
  rec.wire_len = r->wire_len;
  rec.bytes.assign(r->data, r->data + std::min<uint32_t>(r->cap_len, SL_CAPTURE_SNAP));
  rec.class_name = self->names_[r->class_state & (SL_MAX_CLASSES - 1)];
  rec.verdict = r->verdict;
  rec.reason = r->reason;
  self->pending_.push_back(std::move(rec));
  return 0;
}

bool XdpCapture::start(const CaptureFilter& filter,
                       const std::array<std::string, SL_MAX_CLASSES>& names, int class_slot,
                       std::string* error) {
  if (ring_ != nullptr) {
    *error = "a capture is running already";
    return false;
  }
  sl_capture_cfg cfg{};
  cfg.class_state = SL_CAPTURE_ANY;
  if (!filter.class_name.empty()) {
    if (class_slot < 0) {
      *error = "class \"" + filter.class_name + "\" is not enforced";
      return false;
    }
    cfg.class_state = static_cast<uint32_t>(class_slot);
  }
  names_ = names;
  ring_ = ring_buffer__new(ring_fd_, on_record, this, nullptr);
  if (ring_ == nullptr) {
    *error = std::string("capture ring: ") + std::strerror(errno);
    return false;
  }
  ring_buffer__consume(ring_);  // what an earlier capture left
  pending_.clear();
  const int cpus = libbpf_num_possible_cpus();
  lost_per_cpu_.assign(cpus > 0 ? static_cast<std::size_t>(cpus) : 1, 0);
  const uint32_t key = 0;
  if (cpus <= 0 || bpf_map_update_elem(lost_fd_, &key, lost_per_cpu_.data(), BPF_ANY) != 0) {
    *error = std::string("capture loss counter: ") + std::strerror(cpus < 0 ? -cpus : errno);
    ring_buffer__free(ring_);
    ring_ = nullptr;
    return false;
  }
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  clock_offset_ns_ = (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1000000000LL +
                     (real.tv_nsec - mono.tv_nsec);
  cfg.enabled = 1;
  cfg.verdict_mask = filter.verdict_mask;
  cfg.reason = filter.reason;
  cfg.sample_every = std::max<uint32_t>(filter.sample_every, 1);
  cfg.snaplen = std::clamp<uint32_t>(filter.snaplen, 1, SL_CAPTURE_SNAP);
  cfg.until_ns = clock_() + kLeaseNs;
  const uint32_t zero = 0;
  if (bpf_map_update_elem(cfg_fd_, &zero, &cfg, BPF_ANY) != 0) {
    *error = std::string("capture filter: ") + std::strerror(errno);
    ring_buffer__free(ring_);
    ring_ = nullptr;
    return false;
  }
  cfg_ = cfg;
  return true;
}

void XdpCapture::read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) {
  if (ring_ == nullptr) return;
  const uint64_t now = clock_();
  if (cfg_.until_ns < now + kLeaseNs - kRenewNs) {
    cfg_.until_ns = now + kLeaseNs;
    const uint32_t zero = 0;
    bpf_map_update_elem(cfg_fd_, &zero, &cfg_, BPF_ANY);  // a failure: it ends at its lease
  }
  ring_buffer__poll(ring_, timeout_ms);
  for (CaptureRecord& r : pending_) out->push_back(std::move(r));
  pending_.clear();
  if (lost == nullptr) return;
  const uint32_t key = 0;
  if (bpf_map_lookup_elem(lost_fd_, &key, lost_per_cpu_.data()) != 0) return;
  uint64_t sum = 0;
  for (uint64_t n : lost_per_cpu_) sum += n;
  *lost = sum;
}

void XdpCapture::stop() {
  const uint32_t zero = 0;
  const sl_capture_cfg off{};
  bpf_map_update_elem(cfg_fd_, &zero, &off, BPF_ANY);
  if (ring_ != nullptr) ring_buffer__free(ring_);
  ring_ = nullptr;
  pending_.clear();
}

}  // namespace sluice
