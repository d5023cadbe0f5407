// SPDX-License-Identifier: Apache-2.0
// A small pcapng writer (libpcap reads pcapng but cannot write it): one
// section, one Ethernet interface with nanosecond timestamps, and Enhanced
// Packet Blocks that carry a comment (opt_comment), which tcpdump skips and
// tshark shows (`-e frame.comment`).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sluice::cli {

class PcapngWriter {
 public:
  // Opens `path` for writing and writes the section and interface headers;
  // false + *error when it cannot.
  bool open(const std::string& path, uint32_t snaplen, const std::string& application,
            std::string* error);
  ~PcapngWriter();
  // One packet: `bytes` as captured (at most snaplen), `wire_len` its length
  // on the wire, `comment` in the block's opt_comment. False on a write error.
  // Each block reaches the file (or pipe) as it is written: a capture
  // stopped at any time leaves whole blocks that tcpdump reads.
  bool write(uint64_t unix_ns, uint32_t wire_len, const std::vector<uint8_t>& bytes,
             const std::string& comment);
  bool close();
  // Why the last write or close failed ("No space left on device").
  const std::string& error() const { return error_; }

 private:
  bool put(const std::vector<uint8_t>& block);
  std::FILE* file_ = nullptr;
  bool to_stdout_ = false;  // opened as "-"
  std::string error_;
};

}  // namespace sluice::cli
