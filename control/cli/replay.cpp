// SPDX-License-Identifier: Apache-2.0
#include "control/cli/replay.hpp"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <sstream>
#include <vector>

#include "dataplane/common/lpm.hpp"
#include "dataplane/model/parse.h"
#include "dataplane/reference/reference.hpp"

namespace sluice {

void ReplayStats::add(const ReplayStats& o) {
  packets += o.packets;
  packets_admitted += o.packets_admitted;
  packets_shed += o.packets_shed;
  lookups += o.lookups;
  admitted += o.admitted;
  shed += o.shed;
  for (const auto& [k, v] : o.shed_by_reason) shed_by_reason[k] += v;
  for (const auto& [k, v] : o.lookups_shed_by_reason) lookups_shed_by_reason[k] += v;
  for (const auto& [k, v] : o.admitted_by_reason) admitted_by_reason[k] += v;
}

ReplayResult summarize(const CompiledProfile& profile, const sl_counters& counters) {
  ReplayResult result;
  for (uint32_t c = 0; c < profile.prof.n_classes; c++) {
    ReplayStats s;
    for (uint32_t r = 0; r < SL_REASON_COUNT; r++) {
      uint64_t pa = counters.packets[c][SL_VERDICT_ADMITTED][r];
      uint64_t ps = counters.packets[c][SL_VERDICT_SHED][r];
      uint64_t la = counters.lookups[c][SL_VERDICT_ADMITTED][r];
      uint64_t ls = counters.lookups[c][SL_VERDICT_SHED][r];
      s.packets += pa + ps;
      s.packets_admitted += pa;
      s.packets_shed += ps;
      s.lookups += la + ls;
      s.admitted += la;
      s.shed += ls;
      if (ps) s.shed_by_reason[reason_label(r)] += ps;
      if (ls) s.lookups_shed_by_reason[reason_label(r)] += ls;
      if (pa) s.admitted_by_reason[reason_label(r)] += pa;
    }
    result.totals.add(s);
    result.classes.emplace_back(profile.class_names[c], std::move(s));
  }
  for (uint32_t p = 0; p < SL_PRIORITIES; p++)
    result.learned += counters.flow_events[p][SL_FLOW_EV_LEARNED];
  result.learn_sec = profile.prof.flow_learn_ns / SL_NS_PER_SEC;
  return result;
}

namespace {

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

// The link types replay reads. The model parses Ethernet frames, so a
// capture of another link type gets an Ethernet header made up for each
// packet (zero addresses, the packet's protocol as the EtherType); what the
// model decides does not depend on MAC addresses.
enum class Link { ethernet, sll, sll2, raw, ipv4, ipv6 };

std::optional<Link> link_of(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
      return Link::ethernet;
    case DLT_LINUX_SLL:  // tcpdump -i any (libpcap < 1.10, or -y LINUX_SLL)
      return Link::sll;
    case DLT_LINUX_SLL2:  // tcpdump -i any
      return Link::sll2;
    case DLT_RAW:  // IPv4 or IPv6 by the version nibble (tun devices, some exports)
      return Link::raw;
    case DLT_IPV4:
      return Link::ipv4;
    case DLT_IPV6:
      return Link::ipv6;
    default:
      return std::nullopt;
  }
}

// The Ethernet frame for one captured packet of a non-Ethernet link into
// *frame. A packet too short for its link header becomes a frame too short
// for Ethernet's, which the model counts as malformed.
void as_ethernet(Link link, const u_char* data, uint32_t len, std::vector<uint8_t>* frame) {
  uint32_t header = 0;
  uint16_t ethertype = 0;
  const auto too_short = [&] { frame->assign(data, data + std::min<uint32_t>(len, 13)); };
  switch (link) {
    case Link::ethernet:
      return;
    case Link::sll:  // 16 bytes: packet type, ARPHRD, address length, address, protocol
      if (len < 16) return too_short();
      header = 16;
      ethertype = static_cast<uint16_t>(data[14] << 8 | data[15]);
      break;
    case Link::sll2:  // 20 bytes: protocol first, then interface index, ARPHRD, ...
      if (len < 20) return too_short();
      header = 20;
      ethertype = static_cast<uint16_t>(data[0] << 8 | data[1]);
      break;
    case Link::raw:
      if (len < 1) return too_short();
      ethertype = (data[0] >> 4) == 6 ? 0x86dd : 0x0800;
      break;
    case Link::ipv4:
      ethertype = 0x0800;
      break;
    case Link::ipv6:
      ethertype = 0x86dd;
      break;
  }
  frame->assign(14, 0);
  (*frame)[12] = static_cast<uint8_t>(ethertype >> 8);
  (*frame)[13] = static_cast<uint8_t>(ethertype);
  frame->insert(frame->end(), data + header, data + len);
}

// True for a frame a Linux cooked capture marks as sent by the capturing
// host (packet type PACKET_OUTGOING: SLL's first two bytes, SLL2's 11th),
// or as its loopback's (ARPHRD_LOOPBACK: SLL's bytes 3-4, SLL2's 9-10;
// `tcpdump -i any` takes lo too, both ways): neither arrived at an edge.
bool never_at_edge(Link link, const u_char* data, uint32_t caplen) {
  constexpr unsigned kOutgoing = 4, kLoopback = 772;
  if (link == Link::sll)
    return caplen >= 4 && ((data[0] << 8 | data[1]) == kOutgoing ||
                           static_cast<unsigned>(data[2] << 8 | data[3]) == kLoopback);
  if (link == Link::sll2)
    return caplen >= 11 &&
           (data[10] == kOutgoing || static_cast<unsigned>(data[8] << 8 | data[9]) == kLoopback);
  return false;
}

// Whether a frame parsed into m (its missing bytes read as zeros when the
// snap length cut it; sl_parse sets the family once the IP header parses,
// whatever follows) holds its whole IP source address within its first
// `captured` bytes: the servers' frames are told by it, also when the snap
// cut a header after it.
bool source_captured(const sl_meta& m, uint32_t captured) {
  if (m.family == SL_FAMILY_V4) return m.l3_off + 16u <= captured;
  if (m.family == SL_FAMILY_V6) return m.l3_off + 24u <= captured;
  return false;
}

// The bytes of a parsed frame the decision reads as headers: up to the end
// of the L4 header the model parses (of the IP header for a later
// fragment, of the Ethernet header and tags for non-IP). A frame malformed
// once its missing bytes read as zeros had a header cut (or none whole).
uint32_t header_bytes(int parsed, const sl_meta& m) {
  if (parsed == SL_PARSE_MALFORMED) return UINT32_MAX;
  if (m.l4_off != 0) {
    switch (m.l4_proto) {
      case SL_IPPROTO_TCP:
        return m.l4_off + 20u;
      case SL_IPPROTO_UDP:
      case SL_IPPROTO_ICMP:
      case SL_IPPROTO_ICMPV6:
        return m.l4_off + 8u;
      default:
        return m.l4_off;
    }
  }
  if (m.family == SL_FAMILY_V4) return m.l3_off + 20u;
  if (m.family == SL_FAMILY_V6) return m.l3_off + 40u;
  return m.l3_off;
}

// How long a capture that is not a regular file (a FIFO, /dev/stdin from
// `tcpdump -w -`) may take to send its first bytes. After them it streams
// for as long as its writer writes; a FIFO no writer opens is refused.
constexpr int kFirstBytesTimeoutMs = 5000;

// The capture, open for libpcap ("-" is stdin, as libpcap and tcpdump -r
// read it); nullptr with *error set.
std::FILE* open_capture(const std::string& path, std::string* error) {
  const std::string file = path == "-" ? "/dev/stdin" : path;
  struct stat st {};
  const bool regular = ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | (regular ? 0 : O_NONBLOCK));
  if (fd < 0) {
    *error = path + ": cannot read capture: " + std::strerror(errno);
    return nullptr;
  }
  if (!regular) {
    pollfd p{fd, POLLIN, 0};
    int ready;
    while ((ready = ::poll(&p, 1, kFirstBytesTimeoutMs)) < 0 && errno == EINTR) {
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (ready <= 0 || flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      *error =
          path + ": cannot read capture: " +
          (ready == 0 ? "nothing arrived within " + std::to_string(kFirstBytesTimeoutMs / 1000) +
                            " s (a pipe whose writer did not start)"
                      : std::string(std::strerror(errno)));
      ::close(fd);
      return nullptr;
    }
  }
  std::FILE* f = ::fdopen(fd, "rb");
  if (f == nullptr) {
    *error = path + ": cannot read capture: " + std::strerror(errno);
    ::close(fd);
  }
  return f;
}

}  // namespace

std::optional<ReplayResult> replay_pcap(const CompiledProfile& profile, const std::string& path,
                                        std::string* error,
                                        const std::vector<LpmEntry>& return_src) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::FILE* file = open_capture(path, error);
  if (file == nullptr) return std::nullopt;
  // libpcap closes the file with the handle; when it refuses it, here.
  std::unique_ptr<pcap_t, PcapCloser> pcap(
      pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf));
  if (!pcap) {
    std::fclose(file);
    *error = path + ": cannot read capture: " + errbuf;
    return std::nullopt;
  }
  const int dlt = pcap_datalink(pcap.get());
  const std::optional<Link> link = link_of(dlt);
  if (!link) {
    const char* name = pcap_datalink_val_to_name(dlt);
    *error = path + ": link type " + std::to_string(dlt) + " (" + (name ? name : "unknown") +
             ") is not supported; replay reads Ethernet (EN10MB), Linux cooked captures "
             "(LINUX_SLL, LINUX_SLL2: tcpdump -i any) and raw IP (RAW, IPV4, IPV6)";
    return std::nullopt;
  }
  try {
    // With the servers' frames (return_src) replay is an inline edge, which
    // sees their SYN-ACKs; without, a host-mode one (flow.h, SL_PROFILE_INLINE).
    CompiledProfile as_edge = profile;
    if (return_src.empty())
      as_edge.prof.flags &= ~SL_PROFILE_INLINE;
    else
      as_edge.prof.flags |= SL_PROFILE_INLINE;
    ReferenceModel model(as_edge);
    const LpmTable servers(return_src);
    pcap_pkthdr* hdr = nullptr;
    const u_char* captured = nullptr;
    std::vector<uint8_t> frame, wire;
    uint64_t outgoing = 0, snapped = 0, headers_cut = 0, oversized = 0;
    int rc;
    while ((rc = pcap_next_ex(pcap.get(), &hdr, &captured)) == 1) {
      uint64_t now_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * SL_NS_PER_SEC +
                        static_cast<uint64_t>(hdr->ts.tv_usec);  // nanoseconds (precision NANO)
      const bool sent = never_at_edge(*link, captured, hdr->caplen);
      const u_char* data = captured;
      uint32_t len = hdr->caplen;
      if (*link != Link::ethernet) {
        as_ethernet(*link, captured, hdr->caplen, &frame);
        data = frame.data();
        len = static_cast<uint32_t>(frame.size());
      }
      sl_meta m;
      bool from_server = false;  // with return_src: a frame of the servers'
      if (hdr->len > hdr->caplen && len < SL_ETH_HLEN) {
        snapped++;  // its Ethernet header cut (decided: malformed)
        headers_cut++;
      } else if (hdr->len > hdr->caplen) {
        // Shortened by the snap length: the packet as it was on the wire,
        // unless the snap cut a header the decision reads.
        snapped++;
        uint64_t on_wire = uint64_t{len} + (hdr->len - hdr->caplen);
        if (on_wire > kMaxWireFrame) {
          oversized++;
          on_wire = std::max<uint64_t>(len, kMaxWireFrame);
        }
        wire.assign(data, data + len);
        wire.resize(on_wire, 0);
        const int parsed = sl_parse(wire.data(), wire.data() + wire.size(), &m);
        // The IP header parsed (family set) even where its L4 header, cut,
        // did not.
        from_server = !return_src.empty() && source_captured(m, len) &&
                      servers.lookup(m.family, m.src_be) != 0;
        if (header_bytes(parsed, m) <= len) {
          data = wire.data();
          len = static_cast<uint32_t>(wire.size());
        } else {
          headers_cut++;
        }
      } else if (!return_src.empty()) {
        from_server = sl_parse(data, data + len, &m) == SL_PARSE_OK &&
                      servers.lookup(m.family, m.src_be) != 0;
      }
      // The servers' frames are the return path, seen, never decided (one
      // whose snap cut a header the model reads is not seen either).
      if (from_server) {
        model.observe_inside(data, len, now_ns);
        continue;
      }
      if (sent) {  // neither arriving from outside nor the servers' answer
        outgoing++;
        continue;
      }
      model.decide(data, len, now_ns);
    }
    if (rc == PCAP_ERROR) {
      // Truncated or damaged, or a pcapng libpcap cannot read to the end
      // (interfaces of different link types: split it with editcap first).
      *error = path + ": cannot read the capture to its end: " + pcap_geterr(pcap.get());
      return std::nullopt;
    }
    ReplayResult result = summarize(profile, model.counters());
    result.outgoing = outgoing;
    result.snapped = snapped;
    result.headers_cut = headers_cut;
    result.oversized = oversized;
    return result;
  } catch (const std::bad_alloc&) {
    *error = "not enough memory for the reference model's tables (admission.flow_table_size " +
             std::to_string(profile.flow_table_size) + ", admission.source_table_size " +
             std::to_string(profile.source_table_size) + ")";
    return std::nullopt;
  }
}

namespace {

nlohmann::json stats_json(const ReplayStats& s) {
  return {
      {"packets", s.packets},
      {"packets_admitted", s.packets_admitted},
      {"packets_shed", s.packets_shed},
      {"lookups", s.lookups},
      {"admitted", s.admitted},
      {"shed", s.shed},
      {"shed_by_reason", s.shed_by_reason},
      {"lookups_shed_by_reason", s.lookups_shed_by_reason},
      {"admitted_by_reason", s.admitted_by_reason},
  };
}

std::string reasons_text(const std::map<std::string, uint64_t>& m) {
  std::string out;
  for (const auto& [k, v] : m) {
    if (!out.empty()) out += ' ';
    out += k + "=" + std::to_string(v);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

nlohmann::json to_json(const ReplayResult& result) {
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& [name, s] : result.classes) classes[name] = stats_json(s);
  return {{"classes", classes},
          {"totals", stats_json(result.totals)},
          {"outgoing_skipped", result.outgoing},
          {"snapped", result.snapped},
          {"headers_cut", result.headers_cut},
          {"oversized", result.oversized},
          {"learning_window_sec", result.learn_sec},
          {"learned_flows", result.learned}};
}

std::string to_table(const ReplayResult& result) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-16s %10s %10s %10s %10s %10s  %s\n", "class", "packets",
                "pkt_shed", "lookups", "admitted", "shed", "shed by reason (packets)");
  out << line;
  auto row = [&](const std::string& name, const ReplayStats& s) {
    std::snprintf(
        line, sizeof(line), "%-16s %10llu %10llu %10llu %10llu %10llu  ", name.c_str(),
        static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(s.packets_shed),
        static_cast<unsigned long long>(s.lookups), static_cast<unsigned long long>(s.admitted),
        static_cast<unsigned long long>(s.shed));
    out << line << reasons_text(s.shed_by_reason) << '\n';
  };
  for (const auto& [name, s] : result.classes) row(name, s);
  row("total", result.totals);
  if (result.outgoing != 0)
    out << result.outgoing
        << " frames sent by the capturing host or on its loopback (Linux cooked capture) were "
           "not decided\n";
  if (result.snapped != 0)
    out << result.snapped << " frames shortened by the capture's snap length were decided as sent"
        << (result.headers_cut != 0 ? ", except " + std::to_string(result.headers_cut) +
                                          " whose headers it cut (counted malformed)"
                                    : std::string())
        << "\n";
  if (result.learned != 0)
    out << result.learned << " unknown TCP flows were trusted as learned: replay starts with an "
        << "empty flow table, as an edge does at a fresh start, and learns for flow_learn_sec ("
        << result.learn_sec
        << " s) from the first packet; --no-learning replays as an edge already running\n";
  if (result.oversized != 0)
    out << result.oversized << " records claimed a wire length over " << kMaxWireFrame
        << " bytes (a corrupt capture?): decided at that length\n";
  return out.str();
}

}  // namespace sluice
