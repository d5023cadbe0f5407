// SPDX-License-Identifier: Apache-2.0
// `sluicectl capture` on the control state: the request checked, the
// dataplane's decided frames streamed as JSON lines until the count, the
// time or the client ends it.
#include <chrono>
#include <string>
#include <vector>

#include "control/api/change_json.hpp"
#include "control/api/control_state.hpp"
#include "control/log.hpp"
#include "dataplane/common/labels.hpp"

namespace sluice {

using json = nlohmann::json;

void ControlState::capture(const json& request, const Origin& origin,
                           const std::function<bool(const json&)>& emit) {
  auto refused = [&](const std::string& why) { emit({{"ok", false}, {"error", why}}); };
  if (const std::string why = unknown_field(request); !why.empty()) return refused(why);
  auto number = [&](const char* key, uint64_t lo, uint64_t hi, uint64_t fallback,
                    uint64_t* out) -> bool {
    if (!request.contains(key)) {
      *out = fallback;
      return true;
    }
    const json& v = request[key];
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
        v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
      refused(std::string(key) + ": expected an integer in " + std::to_string(lo) + ".." +
              std::to_string(hi));
      return false;
    }
    *out = v.get<uint64_t>();
    return true;
  };
  CaptureFilter filter;
  uint64_t count = 0, seconds = 0, sample = 0, snaplen = 0;
  if (!number("count", 1, 1000000, 100, &count) || !number("seconds", 1, 3600, 60, &seconds) ||
      !number("sample", 1, 1000000, 1, &sample) ||
      !number("snaplen", 1, SL_CAPTURE_SNAP, SL_CAPTURE_SNAP, &snaplen))
    return;
  filter.sample_every = static_cast<uint32_t>(sample);
  filter.snaplen = static_cast<uint32_t>(snaplen);
  if (request.contains("class")) {
    if (!request["class"].is_string()) return refused("class: expected a class name");
    filter.class_name = request["class"].get<std::string>();
    std::lock_guard<std::mutex> lock(mutex_);
    bool known = filter.class_name == "default";
    if (effective_.config)
      for (const ClassConfig& c : effective_.config->classes) known |= c.name == filter.class_name;
    if (!known) return refused("class: no class \"" + filter.class_name + "\" in the config");
  }
  if (request.contains("verdict")) {
    const json& v = request["verdict"];
    if (v == "shed") {
      filter.verdict_mask = SL_CAPTURE_SHED;
    } else if (v == "admitted") {
      filter.verdict_mask = SL_CAPTURE_ADMITTED;
    } else if (v != "any") {
      return refused("verdict: expected \"shed\", \"admitted\" or \"any\"");
    }
  }
  if (request.contains("reason")) {
    const json& v = request["reason"];
    std::string words;
    for (uint32_t r = 0; r < SL_REASON_COUNT; r++) {
      if (v.is_string() && v.get<std::string>() == reason_label(r)) filter.reason = r;
      words += std::string(words.empty() ? "" : ", ") + reason_label(r);
    }
    if (filter.reason == SL_CAPTURE_ANY) return refused("reason: expected one of " + words);
    // Reasons only an admitted packet has: a shed capture of them would
    // wait out its time for nothing.
    if (filter.verdict_mask == SL_CAPTURE_SHED &&
        (filter.reason == SL_REASON_LOOKUP || filter.reason == SL_REASON_CONTINUATION ||
         filter.reason == SL_REASON_NON_IP))
      return refused("reason: " + std::string(reason_label(filter.reason)) +
                     " is never shed; capture it with verdict admitted or any");
  }
  // As a change is (change()): an edge whose links hold no program of ours
  // (after `sluiced --detach`) decides nothing there is to capture.
  if (const DataplaneStats health = dataplane_.stats(); !health.healthy)
    return refused("the dataplane is not enforcing (" + health.unhealthy +
                   "): it decides no packet, so nothing would be captured; restart sluiced to "
                   "take the edge back");
  std::string error;
  if (!dataplane_.capture_start(filter, &error)) return refused("capture: " + error);
  log_event(LogLevel::info, "capture started",
            {{"origin", origin.to_json().dump()}, {"request", request.dump()}});

  uint64_t captured = 0, lost = 0;
  std::string ended = "time";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  static const char kHex[] = "0123456789abcdef";
  std::vector<CaptureRecord> batch;
  bool client = true;
  while (client && captured < count && std::chrono::steady_clock::now() < deadline) {
    batch.clear();
    dataplane_.capture_read(&batch, &lost, 200);
    for (const CaptureRecord& r : batch) {
      if (captured >= count) break;
      std::string hex;
      hex.reserve(r.bytes.size() * 2);
      for (uint8_t b : r.bytes) {
        hex += kHex[b >> 4];
        hex += kHex[b & 15];
      }
      client = emit({{"frame", hex},
                     {"unix_ns", r.unix_ns},
                     {"wire_len", r.wire_len},
                     {"class", r.class_name},
                     {"verdict", verdict_label(r.verdict)},
                     {"reason", reason_label(r.reason)}});
      if (!client) break;
      captured++;
    }
    // A client that went away is noticed at the next frame; with none
    // coming, a hung-up socket is seen here.
    if (client && batch.empty()) client = emit({{"ok", true}, {"waiting", true}});
  }
  dataplane_.capture_stop();
  if (!client) {
    ended = "client";
  } else if (captured >= count) {
    ended = "count";
  }
  log_event(LogLevel::info, "capture ended",
            {{"captured", std::to_string(captured)}, {"ended", ended}});
  if (client)
    emit({{"ok", true}, {"done", true}, {"captured", captured}, {"lost", lost}, {"ended", ended}});
}

}  // namespace sluice
