// SPDX-License-Identifier: Apache-2.0
// Writes test captures: classic pcap through libpcap, and pcapng by hand
// (libpcap reads pcapng but cannot write it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::test {

struct CapturedFrame {
  uint64_t ts_ns;
  std::vector<uint8_t> bytes;
};

// Nanosecond-precision pcap with the given link type (1 = Ethernet); frames
// longer than snaplen are cut to it, as a capture's snap length cuts them
// (the wire length recorded whole).
void write_pcap(const std::string& path, const std::vector<CapturedFrame>& frames, int linktype = 1,
                uint32_t snaplen = 65535);

// pcapng: one section, one Ethernet interface with microsecond resolution.
void write_pcapng(const std::string& path, const std::vector<CapturedFrame>& frames);

}  // namespace sluice::test
