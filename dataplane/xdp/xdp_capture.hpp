// SPDX-License-Identifier: Apache-2.0
// sluicectl capture on XDP: the filter goes to the program's sl_capture_cfg
// map, sampled frames come back through its sl_capture_ring (a BPF ring
// buffer) and are read here, on the control thread. Not thread-safe: its
// owner (XdpProgram) serialises the calls.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/dataplane.hpp"

struct ring_buffer;

namespace sluice {

class XdpCapture {
 public:
  // The program's sl_capture_cfg, sl_capture_ring and sl_capture_lost map
  // descriptors, and its clock (CLOCK_MONOTONIC, or the tests' fake one).
  XdpCapture(int cfg_fd, int ring_fd, int lost_fd, std::function<uint64_t()> clock)
      : cfg_fd_(cfg_fd), ring_fd_(ring_fd), lost_fd_(lost_fd), clock_(std::move(clock)) {}
  ~XdpCapture();
  XdpCapture(const XdpCapture&) = delete;
  XdpCapture& operator=(const XdpCapture&) = delete;

  // `names`: the class names by state slot (the slot book); `class_slot`:
  // the slot of filter.class_name in the profile in force (SlotBook::slot_of;
  // ignored without a class), -1 when no class of it has that name.
  bool start(const CaptureFilter& filter, const std::array<std::string, SL_MAX_CLASSES>& names,
             int class_slot, std::string* error);
  // Frames delivered since the last read; *lost (when not null): frames this
  // capture wanted but the ring had no room for, since it started. Renews
  // the capture's lease (sl_capture_cfg.until_ns): a capture nobody reads for
  // 5 s (its sluiced killed) stops sampling by itself.
  void read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms);
  void stop();

 private:
  static int on_record(void* ctx, void* data, size_t size);

  int cfg_fd_;
  int ring_fd_;
  int lost_fd_;
  std::function<uint64_t()> clock_;
  ring_buffer* ring_ = nullptr;
  std::vector<CaptureRecord> pending_;  // delivered since the last read
  std::vector<uint64_t> lost_per_cpu_;  // sl_capture_lost's value, one per possible CPU
  std::array<std::string, SL_MAX_CLASSES> names_;
  sl_capture_cfg cfg_{};         // the filter in force, with its lease
  int64_t clock_offset_ns_ = 0;  // CLOCK_MONOTONIC (the program's clock) to Unix time
};

}  // namespace sluice
