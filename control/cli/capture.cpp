// SPDX-License-Identifier: Apache-2.0
#include "control/cli/capture.hpp"

#include <signal.h>

#include <iostream>
#include <vector>

#include "control/api/api_client.hpp"
#include "control/cli/cli_common.hpp"
#include "control/cli/pcapng_writer.hpp"

namespace sluice::cli {
namespace {

bool unhex(const std::string& hex, std::vector<uint8_t>* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

// Set by SIGINT and SIGTERM while a capture runs: it ends as if its count
// or time were reached (the file closed whole, the summary printed), as
// tcpdump's does.
volatile int interrupted = 0;

void on_interrupt(int) { interrupted = 1; }

// The summary line (standard error): frames written, where, and why the
// capture ended.
void summary(uint64_t written, const std::string& file, const std::string& ended, uint64_t lost) {
  std::cerr << "captured " << written << " frames to "
            << (file == "-" ? std::string("standard output") : file) << " (" << ended
            << (lost ? ", " + std::to_string(lost) + " lost by the dataplane" : std::string())
            << ")\n";
}

}  // namespace

int capture(const std::string& socket, const CaptureArgs& a) {
  std::string error;
  auto client = ApiClient::connect(socket, &error);
  if (!client) {
    std::cerr << "sluicectl: " << error << "\n";
    return kUnreachable;
  }
  json request = {{"op", "capture"},      {"verdict", a.verdict}, {"count", a.count},
                  {"seconds", a.seconds}, {"sample", a.sample},   {"snaplen", a.snaplen}};
  if (!a.class_name.empty()) request["class"] = a.class_name;
  if (!a.reason.empty()) request["reason"] = a.reason;
  // The first line comes with the first frame (or a "waiting" line within
  // a fraction of a second, or the refusal).
  auto line = client->call(request, &error, 10000);
  if (line && !line->value("ok", true)) {
    std::cerr << "sluicectl: " << line->value("error", "capture refused") << "\n";
    return line->value("starting", false) || line->value("busy", false) ? kUnreachable : kRejected;
  }
  PcapngWriter out;
  if (!out.open(a.file, static_cast<uint32_t>(a.snaplen), "sluicectl capture", &error)) {
    std::cerr << "sluicectl: " << error << "\n";
    return kRejected;
  }
  uint64_t written = 0;
  std::vector<uint8_t> bytes;
  // No SA_RESTART: the wait for the next line wakes at the signal.
  struct sigaction stop {};
  stop.sa_handler = on_interrupt;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  for (; line; line = client->next(&error, 10000, &interrupted)) {
    const json& l = *line;
    if (l.contains("done")) {
      if (!out.close()) {
        std::cerr << "sluicectl: " << a.file << ": cannot write: " << out.error() << "\n";
        return kRejected;
      }
      summary(written, a.file, l.value("ended", std::string()) + " reached",
              l.value("lost", uint64_t{0}));
      return kOk;
    }
    if (!l.contains("frame")) continue;  // "waiting": nothing sampled in a while
    if (!l["frame"].is_string() || !unhex(l["frame"].get<std::string>(), &bytes)) {
      std::cerr << "sluicectl: sluiced sent a frame that is not hex\n";
      return kRejected;
    }
    const std::string comment = "class=" + l.value("class", std::string()) +
                                " verdict=" + l.value("verdict", std::string()) +
                                " reason=" + l.value("reason", std::string());
    if (!out.write(l.value("unix_ns", uint64_t{0}), l.value("wire_len", uint32_t{0}), bytes,
                   comment)) {
      std::cerr << "sluicectl: " << a.file << ": cannot write: " << out.error() << "\n";
      return kRejected;
    }
    written++;
  }
  if (interrupted) {  // closing the connection ends the capture in sluiced
    const bool closed = out.close();
    summary(written, a.file, "interrupted", 0);
    if (!closed) std::cerr << "sluicectl: " << a.file << ": cannot write: " << out.error() << "\n";
    return closed ? kOk : kRejected;
  }
  out.close();
  std::cerr << "sluicectl: " << error << " (" << written << " frames written to " << a.file
            << ")\n";
  return kUnreachable;
}

}  // namespace sluice::cli
