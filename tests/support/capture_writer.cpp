// SPDX-License-Identifier: Apache-2.0
#include "tests/support/capture_writer.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace sluice::test {

void write_pcap(const std::string& path, const std::vector<CapturedFrame>& frames, int linktype,
                uint32_t snaplen) {
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(linktype, static_cast<int>(snaplen),
                                                      PCAP_TSTAMP_PRECISION_NANO);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  if (!d) {
    pcap_close(dead);
    throw std::runtime_error("cannot write " + path);
  }
  for (const CapturedFrame& f : frames) {
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(f.ts_ns / 1000000000ULL);
    h.ts.tv_usec = static_cast<suseconds_t>(f.ts_ns % 1000000000ULL);  // ns in a NANO dump
    h.len = static_cast<bpf_u_int32>(f.bytes.size());
    h.caplen = std::min<bpf_u_int32>(h.len, snaplen);
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.bytes.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

namespace {

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(v >> (8 * i)));  // little endian
}
void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void block(std::vector<uint8_t>& out, uint32_t type, const std::vector<uint8_t>& body) {
  uint32_t total = static_cast<uint32_t>(12 + body.size());
  put32(out, type);
  put32(out, total);
  out.insert(out.end(), body.begin(), body.end());
  put32(out, total);
}

}  // namespace

void write_pcapng(const std::string& path, const std::vector<CapturedFrame>& frames) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> shb;
  put32(shb, 0x1A2B3C4D);  // byte-order magic
  put16(shb, 1);
  put16(shb, 0);
  put32(shb, 0xffffffff);  // section length unknown
  put32(shb, 0xffffffff);
  block(out, 0x0A0D0D0A, shb);
  std::vector<uint8_t> idb;
  put16(idb, 1);  // LINKTYPE_ETHERNET
  put16(idb, 0);
  put32(idb, 65535);
  block(out, 1, idb);
  for (const CapturedFrame& f : frames) {
    std::vector<uint8_t> epb;
    uint64_t us = f.ts_ns / 1000;
    put32(epb, 0);
    put32(epb, static_cast<uint32_t>(us >> 32));
    put32(epb, static_cast<uint32_t>(us));
    put32(epb, static_cast<uint32_t>(f.bytes.size()));
    put32(epb, static_cast<uint32_t>(f.bytes.size()));
    epb.insert(epb.end(), f.bytes.begin(), f.bytes.end());
    while (epb.size() % 4) epb.push_back(0);
    block(out, 6, epb);
  }
  FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) throw std::runtime_error("cannot write " + path);
  std::fwrite(out.data(), 1, out.size(), fp);
  std::fclose(fp);
}

}  // namespace sluice::test
