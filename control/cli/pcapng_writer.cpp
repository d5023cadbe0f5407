// SPDX-License-Identifier: Apache-2.0
#include "control/cli/pcapng_writer.hpp"

#include <cerrno>
#include <cstring>

namespace sluice::cli {
namespace {

// Blocks are written in the host's byte order; the section header's magic
// tells readers which that is.
void u16(std::vector<uint8_t>& b, uint16_t v) {
  b.insert(b.end(), reinterpret_cast<const uint8_t*>(&v), reinterpret_cast<const uint8_t*>(&v) + 2);
}
void u32(std::vector<uint8_t>& b, uint32_t v) {
  b.insert(b.end(), reinterpret_cast<const uint8_t*>(&v), reinterpret_cast<const uint8_t*>(&v) + 4);
}
void pad4(std::vector<uint8_t>& b) {
  while (b.size() % 4 != 0) b.push_back(0);
}
void option(std::vector<uint8_t>& b, uint16_t code, const void* value, uint16_t len) {
  u16(b, code);
  u16(b, len);
  const auto* v = static_cast<const uint8_t*>(value);
  b.insert(b.end(), v, v + len);
  pad4(b);
}
// Type, total length (front and back) around a body.
std::vector<uint8_t> block(uint32_t type, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> b;
  const uint32_t total = static_cast<uint32_t>(body.size()) + 12;
  u32(b, type);
  u32(b, total);
  b.insert(b.end(), body.begin(), body.end());
  u32(b, total);
  return b;
}

constexpr uint32_t kSectionHeader = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescription = 1;
constexpr uint32_t kEnhancedPacket = 6;
constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kLinktypeEthernet = 1;

}  // namespace

bool PcapngWriter::open(const std::string& path, uint32_t snaplen, const std::string& application,
                        std::string* error) {
  // "-": standard output, as tcpdump -w - (for `| tshark -r -`).
  to_stdout_ = path == "-";
  file_ = to_stdout_ ? stdout : std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    *error = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  std::vector<uint8_t> shb;
  u32(shb, 0x1A2B3C4D);  // byte-order magic
  u16(shb, 1);           // version 1.0
  u16(shb, 0);
  u32(shb, 0xFFFFFFFF);  // section length: not given
  u32(shb, 0xFFFFFFFF);
  option(shb, kShbUserAppl, application.data(), static_cast<uint16_t>(application.size()));
  u32(shb, 0);  // opt_endofopt
  std::vector<uint8_t> idb;
  u16(idb, kLinktypeEthernet);
  u16(idb, 0);
  u32(idb, snaplen);
  const uint8_t nanoseconds = 9;  // timestamps in 10^-9 s
  option(idb, kIfTsresol, &nanoseconds, 1);
  u32(idb, 0);
  if (!put(block(kSectionHeader, shb)) || !put(block(kInterfaceDescription, idb))) {
    *error = path + ": cannot write: " + std::strerror(errno);
    return false;
  }
  return true;
}

bool PcapngWriter::write(uint64_t unix_ns, uint32_t wire_len, const std::vector<uint8_t>& bytes,
                         const std::string& comment) {
  std::vector<uint8_t> epb;
  u32(epb, 0);  // interface 0
  u32(epb, static_cast<uint32_t>(unix_ns >> 32));
  u32(epb, static_cast<uint32_t>(unix_ns));
  u32(epb, static_cast<uint32_t>(bytes.size()));
  u32(epb, wire_len);
  epb.insert(epb.end(), bytes.begin(), bytes.end());
  pad4(epb);
  option(epb, kOptComment, comment.data(), static_cast<uint16_t>(comment.size()));
  u32(epb, 0);
  return put(block(kEnhancedPacket, epb));
}

bool PcapngWriter::put(const std::vector<uint8_t>& block) {
  // Each block goes at once, in one write: down a pipe the reader sees
  // every frame as it is captured, and a file stopped at any time (^C, a
  // kill) holds whole blocks. A capture is sampled: a write per frame.
  if (file_ == nullptr) return false;
  if (std::fwrite(block.data(), 1, block.size(), file_) == block.size() && std::fflush(file_) == 0)
    return true;
  error_ = std::strerror(errno);
  return false;
}

bool PcapngWriter::close() {
  if (file_ == nullptr) return true;
  const bool ok = to_stdout_ ? std::fflush(file_) == 0 : std::fclose(file_) == 0;
  if (!ok) error_ = std::strerror(errno);
  file_ = nullptr;
  return ok;
}

PcapngWriter::~PcapngWriter() { close(); }

}  // namespace sluice::cli
