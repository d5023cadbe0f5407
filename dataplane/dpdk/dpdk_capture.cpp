// SPDX-License-Identifier: Apache-2.0
// sluicectl capture on the DPDK dataplane: the workers sample the frames a
// filter picks into a ring (sl_capture_rec, dataplane/model/abi.h), read here.
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>

#include "dataplane/dpdk/dpdk_impl.hpp"

namespace sluice {

using dpdk::Engine;
using dpdk::Snapshot;

// sluicectl capture. The ring is made at the first capture and kept until
// the dataplane stops: a worker may still hold it for a burst after the
// capture is disarmed.
bool DpdkDataplane::capture_start(const CaptureFilter& filter, std::string* error) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  Engine& e = im.engine;
  if (!im.launched) {
    *error = "the dpdk dataplane is not running";
    return false;
  }
  if (e.sample_armed.load()) {
    *error = "a capture is running already";
    return false;
  }
  if (im.capture_token && !im.quiescent_since(*im.capture_token, dpdk::kRetireWait)) {
    *error = "a worker has not polled since the last capture stopped (stalled); try again";
    return false;
  }
  im.capture_token.reset();
  sl_capture_cfg cfg{};
  cfg.class_state = SL_CAPTURE_ANY;
  if (!filter.class_name.empty()) {
    const Snapshot* live = e.snapshot.load(std::memory_order_acquire);  // freed under im.mutex
    const int slot = live ? im.book.slot_of(live->profile.prof, filter.class_name) : -1;
    if (slot < 0) {
      *error = "class \"" + filter.class_name + "\" is not enforced";
      return false;
    }
    cfg.class_state = static_cast<uint32_t>(slot);
  }
  if (e.sample_ring == nullptr) {
    e.sample_ring = rte_ring_create_elem("sl_capture", sizeof(sl_capture_rec), 16384, SOCKET_ID_ANY,
                                         RING_F_SC_DEQ);
    if (e.sample_ring == nullptr) {
      *error = std::string("capture ring: ") + rte_strerror(rte_errno);
      return false;
    }
  }
  sl_capture_rec stale;
  while (rte_ring_sc_dequeue_elem(e.sample_ring, &stale, sizeof(stale)) == 0) {
  }
  cfg.enabled = 1;
  cfg.verdict_mask = filter.verdict_mask;
  cfg.reason = filter.reason;
  cfg.sample_every = std::max<uint32_t>(filter.sample_every, 1);
  cfg.snaplen = std::clamp<uint32_t>(filter.snaplen, 1, SL_CAPTURE_SNAP);
  e.sample_cfg = cfg;
  e.sample_lost.store(0);
  timespec real{};
  clock_gettime(CLOCK_REALTIME, &real);
  im.capture_offset_ns = static_cast<int64_t>(real.tv_sec) * 1000000000LL + real.tv_nsec -
                         static_cast<int64_t>(e.tsc_ns(rte_rdtsc()));
  for (uint32_t i = 0; i < SL_MAX_CLASSES; i++) im.capture_names[i] = im.book.names[i];
  e.sample_armed.store(true, std::memory_order_release);
  return true;
}

void DpdkDataplane::capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) {
  Impl& im = *impl_;
  Engine& e = im.engine;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(im.mutex);
      if (e.sample_ring == nullptr) return;
      sl_capture_rec r;
      bool got = false;
      while (rte_ring_sc_dequeue_elem(e.sample_ring, &r, sizeof(r)) == 0) {
        got = true;
        CaptureRecord rec;
        rec.unix_ns = r.ts_ns + static_cast<uint64_t>(im.capture_offset_ns);
        rec.wire_len = r.wire_len;
        rec.bytes.assign(r.data, r.data + std::min<uint32_t>(r.cap_len, SL_CAPTURE_SNAP));
        rec.class_name = im.capture_names[r.class_state & (SL_MAX_CLASSES - 1)];
        rec.verdict = r.verdict;
        rec.reason = r.reason;
        out->push_back(std::move(rec));
      }
      if (lost != nullptr) *lost = e.sample_lost.load();
      if (got) return;
    }
    if (std::chrono::steady_clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void DpdkDataplane::capture_stop() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  im.engine.sample_armed.store(false);
  // A worker that saw the capture armed may still be sampling its burst:
  // the next capture_start waits until every worker passed a quiescent
  // point, so that it neither rewrites sample_cfg under it nor gets its
  // frame.
  if (im.launched) {
    im.capture_token = rte_rcu_qsbr_start(im.engine.qsv);
    if (im.quiescent_since(*im.capture_token, dpdk::kRetireWait)) im.capture_token.reset();
  }
}

}  // namespace sluice
