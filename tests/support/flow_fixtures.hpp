// SPDX-License-Identifier: Apache-2.0
// The flow-state semantics of the brief as tables: frames from the outside
// (decided) and from the inside (they only feed the flow table), at given
// times, and the decision each outside frame must get. The reference model
// runs them in tests/model/flow_test.cpp, the XDP program against the model
// in tests/xdp/xdp_program_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/model/abi.h"
#include "dataplane/model/parse.h"
#include "tests/support/packet_builder.hpp"
#include "tests/support/traffic.hpp"

namespace sluice::test {

struct FlowStep {
  std::string what;  // the case, for failure messages
  bool inside = false;
  std::vector<uint8_t> frame;
  uint64_t at_ns = 0;
  const char* cls = nullptr;  // outside frames: the expected decision
  int verdict = 0;
  int reason = 0;
  int repeat = 1;  // the same step this many times (flow_fixtures() expands it)
};

struct FlowFixture {
  std::string name;
  std::string toml;
  std::vector<FlowStep> steps;
};

inline constexpr uint64_t kFlowT0 = 1000 * kSecond;

inline const char* kFlowClasses = R"(
[[class]]
name = "checkpoint"
priority = 0
match = { src = ["198.18.10.0/24", "2001:2:0:10::/64"] }
rate_per_sec = 1000
on_shed = "reset"

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15", "2001:2::/48"] }
rate_per_sec = 1
burst = 1
on_shed = "reset"
shed_order = "random"
)";

// kFlowClasses with a rate of the protected class's own: 1/s, a burst of 100.
inline const std::string kFlowClassesRated = [] {
  std::string c = kFlowClasses;
  const std::string from = "rate_per_sec = 1000\n";
  c.replace(c.find(from), from.size(), "rate_per_sec = 1\nburst = 100\n");
  return c;
}();

// A TCP segment from the outside host (src) to the inside one (dst).
inline std::vector<uint8_t> seg4(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                 uint8_t flags, std::size_t payload = 0) {
  return PacketBuilder().ipv4(src, dst).tcp(sport, dport, flags).payload(payload).build();
}
inline std::vector<uint8_t> seg6(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                 uint8_t flags) {
  return PacketBuilder().ipv6(src, dst).tcp(sport, dport, flags).build();
}

// A flood of unknown flows in the learning window, "from" the protected
// class's prefix (priority 0, a packet reserve of 3 of the 10 tokens), may
// use the packet budget only down to the lowest priority's reserve (5): a
// learned flow has proven nothing, and anyone can forge its ACKs from any
// prefix (before, such a flood took the budget down to its class's reserve,
// and a citizen's SYN found none left above priority 5's). The protected
// class still gets in, and its verified continuations may use the budget
// down to zero.
inline std::vector<FlowStep> learning_flood() {
  std::vector<FlowStep> steps;
  const uint64_t t = kFlowT0;
  const char* flood = "198.18.10.77";
  auto ack = [&](uint16_t port, uint8_t flags = kAck) {
    return seg4(flood, port, "198.19.0.1", 80, flags);
  };
  const int A = SL_VERDICT_ADMITTED;
  const int CONT = SL_REASON_CONTINUATION;
  steps.push_back({"an unknown flow's ACK: learned", false, ack(1000), t, "checkpoint", A, CONT});
  steps.push_back({"its RST: admitted, and the flow stays only learned", false,
                   ack(1000, kRst | kAck), t + 1000, "checkpoint", A, CONT});
  for (uint16_t i = 1; i < 4; i++)
    steps.push_back({"another unknown flow #" + std::to_string(i), false,
                     ack(static_cast<uint16_t>(1000 + i)), t + 1000 + i * 1000, "checkpoint", A,
                     CONT});
  steps.push_back({"a new one stops at the lowest priority's reserve, not its class's", false,
                   ack(1009), t + 6000, "checkpoint", SL_VERDICT_SHED, SL_REASON_BOUNDARY_PACKETS});
  steps.push_back({"the reset flow again: likewise", false, ack(1000), t + 7000, "checkpoint",
                   SL_VERDICT_SHED, SL_REASON_BOUNDARY_PACKETS});
  steps.push_back({"a citizen's SYN (priority 5) still gets a packet token", false,
                   seg4("198.18.20.5", 40001, "198.19.0.1", 443, kSyn), t + 8000, "citizen", A,
                   SL_REASON_LOOKUP});
  steps.push_back({"the protected class's SYN too", false,
                   seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn), t + 10'000, "checkpoint", A,
                   SL_REASON_LOOKUP});
  for (int i = 0; i < 4; i++)
    steps.push_back({"its verified ACK #" + std::to_string(i) + " (down to zero)", false,
                     seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck),
                     t + 11'000 + static_cast<uint64_t>(i) * 1000, "checkpoint",
                     i < 3 ? A : SL_VERDICT_SHED, i < 3 ? CONT : SL_REASON_BOUNDARY_PACKETS});
  return steps;
}

// unverified = "pass" without the adaptive boundary: no flow state, so no
// learning window either: unknown flows' continuations (and the SYN's own
// ACK: nothing was written) all pass, down to the packet budget's last
// token (10), as before flow state.
inline std::vector<FlowStep> pass_without_flow_state() {
  std::vector<FlowStep> steps;
  const uint64_t t = kFlowT0;
  const int A = SL_VERDICT_ADMITTED;
  const int CONT = SL_REASON_CONTINUATION;
  steps.push_back({"a citizen SYN: a lookup", false,
                   seg4("198.18.20.5", 999, "198.19.0.1", 80, kSyn), t, "citizen", A,
                   SL_REASON_LOOKUP});
  for (uint16_t i = 0; i < 9; i++)
    steps.push_back({"an unknown flow's ACK #" + std::to_string(i) + ": trusted", false,
                     seg4("198.18.20.5", static_cast<uint16_t>(1000 + i), "198.19.0.1", 80, kAck),
                     t + 1000 + i * 1000U, "citizen", A, CONT});
  steps.push_back({"the packet budget is spent", false,
                   seg4("198.18.20.5", 999, "198.19.0.1", 80, kAck), t + 20'000, "citizen",
                   SL_VERDICT_SHED, SL_REASON_BOUNDARY_PACKETS});
  return steps;
}

// The same segment advertising a zero window.
inline std::vector<uint8_t> zero_window(std::vector<uint8_t> frame) {
  sl_meta m;
  if (sl_parse(frame.data(), frame.data() + frame.size(), &m) == SL_PARSE_OK && m.l4_off != 0) {
    frame[m.l4_off + 14] = 0;
    frame[m.l4_off + 15] = 0;
  }
  return frame;
}

// A segment acknowledging `ack` (seg4's acknowledge 1 with the ACK flag).
inline std::vector<uint8_t> seg4_acking(const char* src, uint16_t sport, const char* dst,
                                        uint16_t dport, uint8_t flags, uint32_t ack,
                                        std::size_t payload = 0) {
  return PacketBuilder()
      .ipv4(src, dst)
      .tcp(sport, dport, flags)
      .ack_number(ack)
      .payload(payload)
      .build();
}

// The adaptive boundary's signal (flow.h, sl_rt_*). Flows whose client
// acknowledged the inside's SYN-ACK (seg4's sequence number 1000: kProof)
// count: flow 1 times its first answer (request data at +1 ms, answered at
// +21 ms: one 20 ms sample; later data of either side adds none), flow 3's
// inside advertises a zero window, flow 4's inside resets it; flow 2's SYN,
// left unanswered, is sent again a second later and then answered. What a
// spoofer who never sees the SYN-ACK can send counts nothing: request data
// and an ACK the backend resets, acknowledging the wrong number (flows 5
// and 9), a SYN sent again sooner than any client retransmits (flow 6), or
// after the inside answered it (flow 7), or to a port that never answers
// (flow 10), a SYN to a closed port (flow 8).
// Counted: requests 1, responses 1, sum 20,000 us, syn_again 1, resets 1,
// zero_windows 1 (flow_test.cpp asserts them; XDP and DPDK count the same).
inline std::vector<FlowStep> backend_signal_steps() {
  const uint64_t t = kFlowT0;
  const uint64_t ms = kSecond / 1000;
  const char* cp = "198.18.10.5";
  const char* srv = "198.19.0.1";
  const int A = SL_VERDICT_ADMITTED;
  const int LOOKUP = SL_REASON_LOOKUP;
  const int CONT = SL_REASON_CONTINUATION;
  const uint8_t kSynAck = kSyn | kAck;
  const uint32_t kProof = 1001;
  auto syn = [&](const char* what, uint16_t port, uint64_t at) {
    return FlowStep{what, false, seg4(cp, port, srv, 443, kSyn), at, "checkpoint", A, LOOKUP};
  };
  auto syn_ack = [&](const char* what, uint16_t port, uint64_t at) {
    return FlowStep{what, true, seg4(srv, 443, cp, port, kSynAck), at, nullptr};
  };
  auto ack = [&](const char* what, uint16_t port, uint32_t acking, std::size_t data, uint64_t at) {
    return FlowStep{what, false,        seg4_acking(cp, port, srv, 443, kAck, acking, data),
                    at,   "checkpoint", A,
                    CONT};
  };
  return {
      syn("flow 1: SYN", 42000, t),
      syn_ack("flow 1: SYN-ACK", 42000, t + ms / 10),
      ack("flow 1: the ACK that proves it, no data: no request yet", 42000, kProof, 0, t + ms / 5),
      ack("flow 1: request data: the sample starts", 42000, kProof, 200, t + ms),
      ack("flow 1: more request data: still the first", 42000, kProof, 200, t + 2 * ms),
      {"flow 1: an ACK from the inside, no data: no answer yet", true,
       seg4(srv, 443, cp, 42000, kAck), t + 3 * ms, nullptr},
      {"flow 1: the first answer: a 20 ms sample", true, seg4(srv, 443, cp, 42000, kAck, 1400),
       t + 21 * ms, nullptr},
      {"flow 1: more answer: no second sample", true, seg4(srv, 443, cp, 42000, kAck, 1400),
       t + 30 * ms, nullptr},
      syn("flow 2: SYN", 42001, t + 40 * ms),
      syn("flow 2: the SYN again, unanswered for a second", 42001, t + 1040 * ms),
      syn_ack("flow 2: answered at last: counted", 42001, t + 1041 * ms),
      syn("flow 3: SYN", 42002, t + 1200 * ms),
      syn_ack("flow 3: SYN-ACK", 42002, t + 1201 * ms),
      ack("flow 3: the ACK that proves it", 42002, kProof, 0, t + 1202 * ms),
      {"flow 3: the inside's zero window", true, zero_window(seg4(srv, 443, cp, 42002, kAck)),
       t + 1300 * ms, nullptr},
      syn("flow 4: SYN", 42003, t + 1400 * ms),
      syn_ack("flow 4: SYN-ACK", 42003, t + 1401 * ms),
      ack("flow 4: the ACK that proves it", 42003, kProof, 0, t + 1402 * ms),
      {"flow 4: the inside resets it", true, seg4(srv, 443, cp, 42003, kRst | kAck), t + 1500 * ms,
       nullptr},
      syn("flow 5: a spoofer's SYN", 42004, t + 1600 * ms),
      syn_ack("flow 5: SYN-ACK (to where the spoofer is not)", 42004, t + 1601 * ms),
      ack("flow 5: request data acknowledging a guess: no request", 42004, 1, 200, t + 1602 * ms),
      {"flow 5: the inside resets the forged ACK: no reset counted", true,
       seg4(srv, 443, cp, 42004, kRst), t + 1603 * ms, nullptr},
      syn("flow 6: SYN", 42005, t + 1700 * ms),
      syn("flow 6: the SYN again half a millisecond later: no client's", 42005,
          t + 1700 * ms + ms / 2),
      syn("flow 7: SYN", 42006, t + 1800 * ms),
      syn_ack("flow 7: SYN-ACK", 42006, t + 1801 * ms),
      syn("flow 7: the SYN again after the inside answered", 42006, t + 2801 * ms),
      syn("flow 8: SYN to a closed port", 42007, t + 2900 * ms),
      {"flow 8: the inside's RST to the SYN", true, seg4(srv, 443, cp, 42007, kRst | kAck),
       t + 2901 * ms, nullptr},
      syn("flow 9: SYN", 42008, t + 3000 * ms),
      syn_ack("flow 9: SYN-ACK", 42008, t + 3001 * ms),
      ack("flow 9: data acknowledging one short of the proof", 42008, kProof - 1, 200,
          t + 3002 * ms),
      {"flow 9: the inside resets it: not counted", true, seg4(srv, 443, cp, 42008, kRst),
       t + 3003 * ms, nullptr},
      syn("flow 10: SYN to a port that never answers", 42009, t + 3100 * ms),
      syn("flow 10: the SYN again a second later, never answered", 42009, t + 4100 * ms),
      syn("flow 10: and again", 42009, t + 6100 * ms),
  };
}

// Inline mode (a [dataplane] with an inside): a half-open flow an outside
// SYN made verifies the outside's packets only once the client acknowledged
// the inside's SYN-ACK (seg4's sequence number 1000: 1001). One SYN from an
// address that never receives the SYN-ACK (a spoofer) buys its 5-tuple's
// ACKs nothing: they are charged (here shed: the SYN took the citizens'
// only token), also after the server resets one of them, or resets the
// SYN (a closed port). A real handshake opens the flow; a flow the inside
// opened needs no proof.
inline std::vector<FlowStep> inline_proof_steps() {
  const uint64_t t = kFlowT0;
  const uint64_t ms = kSecond / 1000;
  const char* spoofed = "198.18.20.77";
  const char* cp = "198.18.10.5";
  const char* srv = "198.19.0.1";
  const int A = SL_VERDICT_ADMITTED;
  const int S = SL_VERDICT_SHED;
  const int LOOKUP = SL_REASON_LOOKUP;
  const int CONT = SL_REASON_CONTINUATION;
  const int UNV = SL_REASON_UNVERIFIED;
  const uint8_t kSynAck = kSyn | kAck;
  FlowStep flood{"an ACK on its 5-tuple acknowledging a guess: unverified, shed",
                 false,
                 seg4_acking(spoofed, 40000, srv, 80, kAck, 12345),
                 t + 2 * ms,
                 "citizen",
                 S,
                 UNV};
  flood.repeat = 20;
  FlowStep after_rst = flood;
  after_rst.what = "the flood after the server's RST: still unverified, shed";
  after_rst.at_ns = t + 3 * ms;
  FlowStep closed_port = flood;
  closed_port.what = "ACKs after the closed port's RST: unverified, shed";
  closed_port.frame = seg4_acking(spoofed, 40001, srv, 81, kAck, 777);
  closed_port.at_ns = t + 2002 * ms;
  // A router's ICMP error about a segment the server sent.
  auto icmp_err = [&](const char* router, std::vector<uint8_t> quoted) {
    return PacketBuilder().ipv4(router, srv).icmp(3).icmp_quote(quoted).build();
  };
  const FlowStep icmp_flood{
      "an ICMP error quoting the SYN-ACK to the forged address: unverified, shed",
      false,
      icmp_err("198.18.20.1", seg4(srv, 80, spoofed, 40000, kSynAck)),
      t + 2 * ms,
      "citizen",
      S,
      UNV,
      3};
  return {
      {"a citizen SYN from an address that receives nothing: a lookup, a half-open flow", false,
       seg4(spoofed, 40000, srv, 80, kSyn), t, "citizen", A, LOOKUP},
      {"the server's SYN-ACK, to the forged address", true, seg4(srv, 80, spoofed, 40000, kSynAck),
       t + ms, nullptr},
      flood,
      icmp_flood,
      {"one with no ACK flag: the same", false, seg4(spoofed, 40000, srv, 80, 0), t + 3 * ms,
       "citizen", S, UNV},
      // The server resets the forged ACKs it gets: the flow's life is cut,
      // but it stays half-open (as a closing flow, it would verify them).
      {"the server resets a forged ACK", true, seg4(srv, 80, spoofed, 40000, kRst), t + 3 * ms,
       nullptr},
      after_rst,
      {"a checkpoint SYN: a lookup", false, seg4(cp, 41000, srv, 443, kSyn), t + 4 * ms,
       "checkpoint", A, LOOKUP},
      {"an ACK of it before any SYN-ACK passed: unverified (admitted: budget left)", false,
       seg4_acking(cp, 41000, srv, 443, kAck, 1001), t + 5 * ms, "checkpoint", A, UNV},
      {"its SYN-ACK", true, seg4(srv, 443, cp, 41000, kSynAck), t + 6 * ms, nullptr},
      {"an ACK of the wrong number: unverified", false,
       seg4_acking(cp, 41000, srv, 443, kAck, 1002), t + 7 * ms, "checkpoint", A, UNV},
      {"the ACK that acknowledges the SYN-ACK: verified, the flow opens", false,
       seg4_acking(cp, 41000, srv, 443, kAck, 1001), t + 8 * ms, "checkpoint", A, CONT},
      {"data then, whatever it acknowledges: verified", false,
       seg4_acking(cp, 41000, srv, 443, kAck, 9999, 100), t + 9 * ms, "checkpoint", A, CONT},
      {"an ICMP error about the proven flow: verified", false,
       icmp_err("198.18.10.1", seg4(srv, 443, cp, 41000, kAck, 1400)), t + 9 * ms, "checkpoint", A,
       CONT},
      {"the server opens a connection", true, seg4(srv, 5555, "198.18.20.9", 80, kSyn), t + 10 * ms,
       nullptr},
      {"its SYN-ACK coming back: verified without a proof", false,
       seg4("198.18.20.9", 80, srv, 5555, kSynAck), t + 11 * ms, "citizen", A, CONT},
      // Whoever knows a flow's 4-tuple can forge its RST and then its SYN:
      // the SYN is a lookup, but the flow is not made half-open again (the
      // server answers an established connection's SYN with an ACK, never
      // the SYN-ACK a proof needs): before, the connection was charged for
      // the rest of its life.
      {"a forged RST on the proven flow: verified, its life cut", false,
       seg4(cp, 41000, srv, 443, kRst), t + 12 * ms, "checkpoint", A, CONT},
      {"then a forged SYN on its 4-tuple: a lookup", false, seg4(cp, 41000, srv, 443, kSyn),
       t + 13 * ms, "checkpoint", A, LOOKUP},
      {"the connection's next data: verified (it sends on after the RST)", false,
       seg4_acking(cp, 41000, srv, 443, kAck, 9999, 100), t + 14 * ms, "checkpoint", A, CONT},
      {"the server opens another connection", true, seg4(srv, 5557, "198.18.10.9", 80, kSyn),
       t + 15 * ms, nullptr},
      {"a forged SYN on its 4-tuple from the outside: a lookup", false,
       seg4("198.18.10.9", 80, srv, 5557, kSyn), t + 16 * ms, "checkpoint", A, LOOKUP},
      {"its SYN-ACK coming back: still verified without a proof", false,
       seg4("198.18.10.9", 80, srv, 5557, kSynAck), t + 17 * ms, "checkpoint", A, CONT},
      {"a forged SYN to a closed port 2 s later: a lookup (the citizens' token back)", false,
       seg4(spoofed, 40001, srv, 81, kSyn), t + 2000 * ms, "citizen", A, LOOKUP},
      {"the closed port's RST-ACK", true, seg4(srv, 81, spoofed, 40001, kRst | kAck), t + 2001 * ms,
       nullptr},
      closed_port,
  };
}

// One host floods its own verified connection (a real handshake, then
// ACKs at line rate): its packets rank above every lookup only up to its
// flow's packet rate (flow_packets_per_sec = 1000: 17 a 16.8 ms window);
// past it they stop at its class's reserve (priority 5: 37 of 100 packet
// tokens), so the protected class's SYN and its verified ACKs still get in.
// The flow's next window ranks it above lookups again.
inline std::vector<FlowStep> flow_over_its_rate_steps() {
  // The start of a meter window (2^24 ns), and 1 us.
  const uint64_t t = ((kFlowT0 >> SL_FLOW_METER_SHIFT) + 1) << SL_FLOW_METER_SHIFT | 1000;
  const uint64_t us = 1000;
  const int A = SL_VERDICT_ADMITTED;
  const int S = SL_VERDICT_SHED;
  const int CONT = SL_REASON_CONTINUATION;
  const auto flood = seg4("198.18.20.5", 5000, "198.19.0.1", 80, kAck);
  const auto cp_ack = seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck);
  return {
      {"a citizen SYN: a lookup, its flow", false,
       seg4("198.18.20.5", 5000, "198.19.0.1", 80, kSyn), t, "citizen", A, SL_REASON_LOOKUP},
      {"the flood's ACK within its flow's rate: a continuation", false, flood, t + 10 * us,
       "citizen", A, CONT, 17},
      {"past its rate: a continuation above priority 5's reserve", false, flood, t + 20 * us,
       "citizen", A, CONT, 45},
      {"past its rate, at priority 5's reserve: shed", false, flood, t + 30 * us, "citizen", S,
       SL_REASON_BOUNDARY_PACKETS, 3},
      {"a checkpoint SYN: a lookup above priority 0's reserve", false,
       seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn), t + 40 * us, "checkpoint", A,
       SL_REASON_LOOKUP},
      {"the checkpoint's verified ACK: below priority 5's reserve", false, cp_ack, t + 50 * us,
       "checkpoint", A, CONT, 10},
      {"the flood's next window: its ACK a continuation again, below any reserve", false, flood,
       t + 17'000 * us, "citizen", A, CONT},
  };
}

// ACKs forged "from" the protected prefix (anyone can craft one) are
// charged as lookups of that class, but held to the lowest priority's
// boundary reserve (43% of 50 lookup tokens, 21.5): they take no token that a
// real lookup of any class could use, and the class's real SYNs still get
// the budget down to zero. Before, they were charged at the class's own
// reserve (0%), and took the whole boundary from its real SYNs.
inline std::vector<FlowStep> forged_from_a_protected_prefix() {
  const uint64_t t = kFlowT0;
  const int A = SL_VERDICT_ADMITTED;
  const int S = SL_VERDICT_SHED;
  const auto forged = seg4("198.18.10.77", 33000, "198.19.0.1", 443, kAck);
  const auto forged6 = seg6("2001:2:0:10::77", 33001, "2001:2:0:99::1", 443, kAck);
  const auto real = seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn);
  return {
      {"a forged ACK: charged, above the lowest priority's reserve", false, forged, t, "checkpoint",
       A, SL_REASON_UNVERIFIED, 20},
      {"an IPv6 one too", false, forged6, t + 1, "checkpoint", A, SL_REASON_UNVERIFIED, 8},
      {"at that reserve: shed", false, forged, t + 2, "checkpoint", S, SL_REASON_UNVERIFIED, 5},
      {"and in IPv6", false, forged6, t + 3, "checkpoint", S, SL_REASON_UNVERIFIED, 5},
      {"the class's real SYNs: the rest of the budget, down to zero", false, real, t + 4,
       "checkpoint", A, SL_REASON_LOOKUP, 22},
      {"then the boundary is spent", false, real, t + 5, "checkpoint", S,
       SL_REASON_BOUNDARY_LOOKUPS},
  };
}

// The same ACKs and the class's own rate (rate_per_sec = 1, burst = 100):
// they take its tokens only above the class's charged reserve (the lowest
// priority's 43% of its burst: 43 tokens), so its real SYNs keep those.
// Before, they spent the class's rate (a check: 103 of 200 real lookups/s
// with a rate of 300/s), and its sticky controller then shed real sources.
inline std::vector<FlowStep> forged_spends_no_protected_rate() {
  const uint64_t t = kFlowT0;
  const int A = SL_VERDICT_ADMITTED;
  const int S = SL_VERDICT_SHED;
  const auto forged = seg4("198.18.10.77", 33000, "198.19.0.1", 443, kAck);
  const auto forged6 = seg6("2001:2:0:10::77", 33001, "2001:2:0:99::1", 443, kAck);
  const auto real = seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn);
  return {
      {"a forged ACK: charged, above the class's charged reserve", false, forged, t, "checkpoint",
       A, SL_REASON_UNVERIFIED, 50},
      {"an IPv6 one too", false, forged6, t + 1, "checkpoint", A, SL_REASON_UNVERIFIED, 7},
      {"at that reserve: shed", false, forged, t + 2, "checkpoint", S, SL_REASON_UNVERIFIED, 5},
      {"and in IPv6", false, forged6, t + 3, "checkpoint", S, SL_REASON_UNVERIFIED, 5},
      {"the class's real SYNs: the reserve, down to zero", false, real, t + 4, "checkpoint", A,
       SL_REASON_LOOKUP, 43},
      {"then the class's rate is spent", false, real, t + 5, "checkpoint", S, SL_REASON_CLASS_RATE},
  };
}

inline std::vector<FlowFixture> flow_fixtures() {
  const std::string base =
      std::string("[admission]\nflow_learn_sec = 0\nflow_idle_tcp_sec = 60\n") + kFlowClasses;
  const uint64_t t = kFlowT0;
  const uint64_t s = kSecond;
  const uint8_t kSynAck = kSyn | kAck;
  const char* cp = "198.18.10.5";
  const char* srv = "198.19.0.1";
  const auto client_ack = seg4(cp, 40000, srv, 443, kAck, 100);
  // What the server sent, as an ICMP error from a router quotes it.
  const auto server_seg = seg4(srv, 443, cp, 40000, kAck, 1400);
  const auto unknown_seg = seg4(srv, 443, cp, 40001, kAck, 1400);
  auto icmp_err = [](const std::vector<uint8_t>& quoted) {
    return PacketBuilder().ipv4("198.18.20.1", "198.19.0.1").icmp(3).icmp_quote(quoted).build();
  };
  auto icmp6_err = [](const std::vector<uint8_t>& quoted) {
    return PacketBuilder().ipv6("2001:2:0:10::1", "2001:2::1").icmp(2).icmp_quote(quoted).build();
  };
  auto frag4 = [](uint16_t id, uint16_t off, bool more) {
    // Later fragments carry the protocol number but no UDP header.
    return PacketBuilder()
        .ipv4("198.18.10.8", "198.19.0.1")
        .fragment(off, more)
        .ip_id(id)
        .udp(5000, 53)
        .payload(64)
        .build();
  };
  auto frag6 = [](uint32_t id, uint16_t off, bool more) {
    return PacketBuilder()
        .ipv6("2001:2:0:10::8", "2001:2::1")
        .fragment(off, more)
        .ip_id(id)
        .udp(5000, 53)
        .payload(64)
        .build();
  };
  // An ACK's fragment from src to 198.19.0.1:443 (the TCP header rides in
  // the first fragment only).
  auto ack_frag4 = [](const char* src, uint16_t id, uint16_t off, bool more) {
    return PacketBuilder()
        .ipv4(src, "198.19.0.1")
        .fragment(off, more)
        .ip_id(id)
        .tcp(40000, 443, kAck)
        .payload(64)
        .build();
  };
  const int A = SL_VERDICT_ADMITTED;
  const int S = SL_VERDICT_SHED;
  const int LOOKUP = SL_REASON_LOOKUP;
  const int CONT = SL_REASON_CONTINUATION;
  const int UNV = SL_REASON_UNVERIFIED;
  std::vector<FlowFixture> all = {
      {"tcp_lifecycle",
       base,
       {{"ACK before any SYN: unverified, charged (admitted: budget left)", false, client_ack, t,
         "checkpoint", A, UNV},
        {"SYN: a lookup, creates the flow", false, seg4(cp, 40000, srv, 443, kSyn), t, "checkpoint",
         A, LOOKUP},
        {"SYN-ACK from the server", true, seg4(srv, 443, cp, 40000, kSynAck), t, nullptr},
        {"ACK of the handshake: verified", false, seg4(cp, 40000, srv, 443, kAck), t + 1000,
         "checkpoint", A, CONT},
        {"data: verified", false, client_ack, t + 2000, "checkpoint", A, CONT},
        {"another source port: unverified", false, seg4(cp, 40002, srv, 443, kAck), t + 3000,
         "checkpoint", A, UNV},
        {"ACK 59 s later: still open (idle 60 s)", false, client_ack, t + 59 * s, "checkpoint", A,
         CONT},
        {"the client's FIN: verified, a half-close (anyone could forge it)", false,
         seg4(cp, 40000, srv, 443, kFin | kAck), t + 60 * s, "checkpoint", A, CONT},
        {"ACK 11 s after the client's FIN: still verified (the server may send on)", false,
         client_ack, t + 71 * s, "checkpoint", A, CONT},
        {"the server's FIN: the flow ends in 10 s", true, seg4(srv, 443, cp, 40000, kFin | kAck),
         t + 72 * s, nullptr},
        {"ACK 9 s after the server's FIN: still verified", false, client_ack, t + 81 * s,
         "checkpoint", A, CONT},
        {"ACK 11 s after the server's FIN: the flow is gone", false, client_ack, t + 83 * s,
         "checkpoint", A, UNV}}},
      {"idle_expiry_and_rst",
       base,
       {{"SYN", false, seg4(cp, 41000, srv, 443, kSyn), t, "checkpoint", A, LOOKUP},
        {"no packet after the SYN for 11 s: the half-open flow expired", false,
         seg4(cp, 41000, srv, 443, kAck), t + 11 * s, "checkpoint", A, UNV},
        {"SYN again", false, seg4(cp, 41000, srv, 443, kSyn), t + 12 * s, "checkpoint", A, LOOKUP},
        {"ACK: open", false, seg4(cp, 41000, srv, 443, kAck), t + 13 * s, "checkpoint", A, CONT},
        {"idle 61 s: expired", false, seg4(cp, 41000, srv, 443, kAck), t + 74 * s, "checkpoint", A,
         UNV},
        {"SYN", false, seg4(cp, 41001, srv, 443, kSyn), t + 80 * s, "checkpoint", A, LOOKUP},
        {"RST: verified", false, seg4(cp, 41001, srv, 443, kRst), t + 81 * s, "checkpoint", A,
         CONT},
        {"ACK 11 s after the RST: gone", false, seg4(cp, 41001, srv, 443, kAck), t + 92 * s,
         "checkpoint", A, UNV},
        // An RST from the outside may be forged: the client's next packet
        // opens the flow again; only the server's RST ends it for good.
        {"SYN", false, seg4(cp, 41002, srv, 443, kSyn), t + 100 * s, "checkpoint", A, LOOKUP},
        {"ACK: open", false, seg4(cp, 41002, srv, 443, kAck), t + 101 * s, "checkpoint", A, CONT},
        {"a forged RST: verified (it may be the client's)", false, seg4(cp, 41002, srv, 443, kRst),
         t + 102 * s, "checkpoint", A, CONT},
        {"the client sends on: the flow is open again", false, seg4(cp, 41002, srv, 443, kAck),
         t + 105 * s, "checkpoint", A, CONT},
        {"20 s after the RST: still open (idle 60 s)", false, seg4(cp, 41002, srv, 443, kAck),
         t + 122 * s, "checkpoint", A, CONT},
        {"the server resets it", true, seg4(srv, 443, cp, 41002, kRst | kAck), t + 123 * s,
         nullptr},
        {"the client's ACK 5 s later: verified, not reopened", false,
         seg4(cp, 41002, srv, 443, kAck), t + 128 * s, "checkpoint", A, CONT},
        {"11 s after the server's RST: gone", false, seg4(cp, 41002, srv, 443, kAck), t + 134 * s,
         "checkpoint", A, UNV},
        // A SYN on an open flow (a forger who knows it, or a reconnect on
        // the same ports) is a lookup, and keeps the flow open: it does not
        // make it a half-open one that dies 10 s later.
        {"SYN", false, seg4(cp, 41003, srv, 443, kSyn), t + 140 * s, "checkpoint", A, LOOKUP},
        {"ACK: open", false, seg4(cp, 41003, srv, 443, kAck), t + 141 * s, "checkpoint", A, CONT},
        {"a SYN on the open flow: a lookup", false, seg4(cp, 41003, srv, 443, kSyn), t + 142 * s,
         "checkpoint", A, LOOKUP},
        {"30 s later: still open (idle 60 s, not a SYN's 10 s)", false,
         seg4(cp, 41003, srv, 443, kAck), t + 172 * s, "checkpoint", A, CONT}}},
      {"unverified_is_charged_to_its_class",
       base,
       {{"citizen SYN takes the class's only token", false,
         seg4("198.18.20.7", 40000, srv, 80, kSyn), t, "citizen", A, LOOKUP},
        {"its ACK needs no token", false, seg4("198.18.20.7", 40000, srv, 80, kAck), t + 1000,
         "citizen", A, CONT},
        {"a spoofed ACK is shed like a lookup (dropped, never reset)", false,
         seg4("198.18.20.7", 40009, srv, 80, kAck), t + 2000, "citizen", S, UNV},
        {"a spoofed ACK from elsewhere: the same", false, seg4("198.18.77.1", 1, srv, 80, kAck),
         t + 3000, "citizen", S, UNV}}},
      {"inside_opens_a_flow",
       base,
       {{"the server opens a connection", true, seg4(srv, 5555, "198.18.20.9", 80, kSyn), t,
         nullptr},
        {"the SYN-ACK coming back is verified", false, seg4("198.18.20.9", 80, srv, 5555, kSynAck),
         t + 1000, "citizen", A, CONT},
        {"a SYN-ACK nobody asked for is not (shed: the citizen bucket is small)", false,
         seg4("198.18.20.9", 80, srv, 5556, kSynAck), t + 2000, "citizen", A, UNV},
        {"and the next one finds the bucket empty", false,
         seg4("198.18.20.9", 80, srv, 5557, kSynAck), t + 3000, "citizen", S, UNV}}},
      {"icmp_errors",
       base,
       {{"SYN", false, seg4(cp, 40000, srv, 443, kSyn), t, "checkpoint", A, LOOKUP},
        {"path MTU error about the server's segment: verified by its flow", false,
         icmp_err(server_seg), t + 1000, "citizen", A, CONT},
        {"an error quoting a flow that does not exist: unverified", false, icmp_err(unknown_seg),
         t + 2000, "citizen", A, UNV},
        {"echo reply: no start we know, unverified", false,
         PacketBuilder().ipv4("198.18.20.1", srv).icmp(0).build(), t + 3000, "citizen", S, UNV},
        // IPv6: a Packet Too Big quoting the server's segment, plain and
        // behind the extension headers the server sent.
        {"IPv6 SYN", false, seg6("2001:2:0:10::5", 40000, "2001:2::1", 443, kSyn), t + 4000,
         "checkpoint", A, LOOKUP},
        {"IPv6 packet too big about the server's segment: verified", false,
         icmp6_err(PacketBuilder()
                       .ipv6("2001:2::1", "2001:2:0:10::5")
                       .tcp(443, 40000, kAck)
                       .payload(1300)
                       .build()),
         t + 5000, "checkpoint", A, CONT},
        {"the same behind destination options and a routing header: verified", false,
         icmp6_err(PacketBuilder()
                       .ipv6("2001:2::1", "2001:2:0:10::5")
                       .ipv6_ext(60, 16)
                       .ipv6_ext(43, 24)
                       .tcp(443, 40000, kAck)
                       .payload(1300)
                       .build()),
         t + 6000, "checkpoint", A, CONT},
        {"behind three extension headers: not walked, unverified", false,
         icmp6_err(PacketBuilder()
                       .ipv6("2001:2::1", "2001:2:0:10::5")
                       .ipv6_ext(0, 8)
                       .ipv6_ext(60, 8)
                       .ipv6_ext(60, 8)
                       .tcp(443, 40000, kAck)
                       .build()),
         t + 7000, "checkpoint", A, UNV},
        {"an error about the flow sent to another inside address: unverified", false,
         PacketBuilder().ipv4("198.18.20.1", "198.19.0.77").icmp(3).icmp_quote(server_seg).build(),
         t + 8 * s, "citizen", A, UNV},
        {"IPv6: the same", false,
         PacketBuilder()
             .ipv6("2001:2:0:10::1", "2001:2::77")
             .icmp(2)
             .icmp_quote(PacketBuilder()
                             .ipv6("2001:2::1", "2001:2:0:10::5")
                             .tcp(443, 40000, kAck)
                             .payload(1300)
                             .build())
             .build(),
         t + 8 * s + 1000, "checkpoint", A, UNV},
        {"errors 2 to 15 about the server's segment: verified", false, icmp_err(server_seg),
         t + 8 * s + 2000, "citizen", A, CONT, 14},
        {"error 16: verified, the last the flow verifies", false, icmp_err(server_seg),
         t + 8 * s + 3000, "citizen", A, CONT},
        {"error 17: unverified (a forger who knows the flow gets no more)", false,
         icmp_err(server_seg), t + 10 * s, "citizen", A, UNV}}},
      {"fragments",
       base,
       {{"first fragment of a UDP datagram: a lookup", false, frag4(77, 0, true), t, "checkpoint",
         A, LOOKUP},
        {"its later fragment: verified", false, frag4(77, 8, true), t + 1000, "checkpoint", A,
         CONT},
        {"a later fragment of another datagram: unverified", false, frag4(78, 8, false), t + 2000,
         "checkpoint", A, UNV},
        {"6 s later the entry expired", false, frag4(77, 16, false), t + 6 * s, "checkpoint", A,
         UNV},
        {"IPv6 first fragment", false, frag6(99, 0, true), t + 7 * s, "checkpoint", A, LOOKUP},
        {"IPv6 later fragment", false, frag6(99, 8, false), t + 7 * s + 1000, "checkpoint", A,
         CONT},
        {"IPv6 later fragment, other id", false, frag6(98, 8, false), t + 7 * s + 2000,
         "checkpoint", A, UNV},
        {"first fragment of an ACK no flow began: unverified, admitted (charged)", false,
         ack_frag4("198.18.10.8", 55, 0, true), t + 8 * s, "checkpoint", A, UNV},
        {"its later fragment earns nothing from it: unverified", false,
         ack_frag4("198.18.10.8", 55, 72, false), t + 8 * s + 1000, "checkpoint", A, UNV},
        // A verified continuation pays no token, so its first fragment
        // writes no entry: else a flood of first fragments on one admitted
        // connection (a new IP ID each) would recycle its priority's
        // partition for free (docs/architecture.md, "Limits").
        {"a SYN: a lookup", false, seg4("198.18.10.9", 40000, "198.19.0.1", 443, kSyn),
         t + 8 * s + 2000, "checkpoint", A, LOOKUP},
        {"its ACK's first fragment: verified", false, ack_frag4("198.18.10.9", 56, 0, true),
         t + 8 * s + 3000, "checkpoint", A, CONT},
        {"the ACK's later fragment: unverified (its first paid nothing)", false,
         ack_frag4("198.18.10.9", 56, 72, false), t + 8 * s + 4000, "checkpoint", A, UNV},
        // Keyed on the Fragment header's next header, which every fragment
        // carries: the first walks on past the options to UDP.
        {"IPv6 first fragment, destination options after the Fragment header", false,
         PacketBuilder()
             .ipv6("2001:2:0:10::8", "2001:2::1")
             .fragment(0, true)
             .ipv6_ext(60, 8)
             .ip_id(97)
             .udp(5000, 53)
             .payload(64)
             .build(),
         t + 9 * s, "checkpoint", A, LOOKUP},
        {"its later fragment: verified", false,
         PacketBuilder()
             .ipv6("2001:2:0:10::8", "2001:2::1")
             .fragment(10, false)
             .ipv6_ext(60, 8)
             .ip_id(97)
             .udp(5000, 53)
             .payload(64)
             .build(),
         t + 9 * s + 1000, "checkpoint", A, CONT}}},
      {"ipv6_vlans_and_other_protocols",
       base,
       {{"IPv6 SYN", false, seg6("2001:2:0:10::5", 40000, "2001:2::1", 443, kSyn), t, "checkpoint",
         A, LOOKUP},
        {"IPv6 ACK: verified", false, seg6("2001:2:0:10::5", 40000, "2001:2::1", 443, kAck),
         t + 1000, "checkpoint", A, CONT},
        {"IPv6 ACK of another flow", false, seg6("2001:2:0:10::5", 40001, "2001:2::1", 443, kAck),
         t + 2000, "checkpoint", A, UNV},
        {"SYN on VLAN 100", false,
         PacketBuilder().vlan(100).ipv4(cp, srv).tcp(42000, 443, kSyn).build(), t + 3000,
         "checkpoint", A, LOOKUP},
        {"the same 5-tuple on VLAN 200 is another flow", false,
         PacketBuilder().vlan(200).ipv4(cp, srv).tcp(42000, 443, kAck).build(), t + 4000,
         "checkpoint", A, UNV},
        {"on VLAN 100: verified", false,
         PacketBuilder().vlan(100).ipv4(cp, srv).tcp(42000, 443, kAck).build(), t + 5000,
         "checkpoint", A, CONT},
        {"GRE has no start the edge understands", false,
         PacketBuilder().ipv4(cp, srv).l4_raw(47, 24).build(), t + 6000, "checkpoint", A, UNV},
        {"ESP neither", false,
         PacketBuilder().ipv6("2001:2:0:10::5", "2001:2::1").l4_raw(50, 24).build(), t + 7000,
         "checkpoint", A, UNV}}},
      // A shed that passes marked pays no token: it earns no entry, or a
      // forger's marked SYN would verify ACKs on its 4-tuple for free.
      {"marked_sheds_earn_nothing",
       std::string("[admission]\nunverified = \"drop\"\nflow_learn_sec = 0\n") + R"(
[[class]]
name = "staff"
priority = 2
match = { src = ["198.18.10.0/24"] }
rate_per_sec = 1
burst = 1
on_shed = "mark"
mark_dscp = 8
)",
       {{"SYN: admitted", false, seg4(cp, 40000, srv, 443, kSyn), t, "staff", A, LOOKUP},
        {"another SYN: shed, passed marked", false, seg4(cp, 40001, srv, 443, kSyn), t + 1000,
         "staff", S, SL_REASON_CLASS_RATE},
        {"the marked SYN's ACK: unverified, dropped", false, seg4(cp, 40001, srv, 443, kAck),
         t + 2000, "staff", S, UNV},
        {"the admitted SYN's ACK: verified", false, seg4(cp, 40000, srv, 443, kAck), t + 3000,
         "staff", A, CONT},
        {"a first fragment: shed, passed marked", false, frag4(60, 0, true), t + 4000, "staff", S,
         SL_REASON_CLASS_RATE},
        {"its later fragment: unverified, dropped", false, frag4(60, 8, false), t + 5000, "staff",
         S, UNV}}},
      // A first fragment's entry goes to the partition of the class its later
      // fragments classify to (no ports), so only when that class has the
      // charged class's priority: else a flood charged to one priority's
      // budget would recycle another priority's flows.
      {"fragment_entries_stay_in_their_priority",
       std::string("[admission]\nflow_learn_sec = 0\n") + R"(
[[class]]
name = "staff"
priority = 2
match = { src = ["198.18.10.0/24"], proto = "udp", dst_ports = [443] }

[[class]]
name = "dns"
priority = 5
match = { proto = "udp", dst_ports = [53] }

[[class]]
name = "citizen"
priority = 5
match = { src = ["198.18.0.0/15"] }
)",
       {{"a first fragment to 443: staff's lookup", false,
         PacketBuilder()
             .ipv4("198.18.10.8", "198.19.0.1")
             .fragment(0, true)
             .ip_id(70)
             .udp(5000, 443)
             .payload(64)
             .build(),
         t, "staff", A, LOOKUP},
        {"its later fragment (citizen, priority 5): unverified, charged", false,
         frag4(70, 8, false), t + 1000, "citizen", A, UNV},
        {"a first fragment to 53: dns's lookup", false, frag4(71, 0, true), t + 2000, "dns", A,
         LOOKUP},
        {"its later fragment (citizen, priority 5 as dns): verified", false, frag4(71, 8, false),
         t + 3000, "citizen", A, CONT}}},
      {"unverified_drop",
       std::string("[admission]\nunverified = \"drop\"\nflow_learn_sec = 0\n") + kFlowClasses,
       {{"unknown ACK: dropped", false, client_ack, t, "checkpoint", S, UNV},
        {"SYN", false, seg4(cp, 40000, srv, 443, kSyn), t + 1000, "checkpoint", A, LOOKUP},
        {"its ACK passes", false, client_ack, t + 2000, "checkpoint", A, CONT}}},
      {"unverified_pass",
       std::string("[admission]\nunverified = \"pass\"\nflow_learn_sec = 0\n") + kFlowClasses,
       {{"unknown ACK: trusted, as before flow state", false, client_ack, t, "checkpoint", A,
         CONT}}},
      {"learning_window",
       std::string("[admission]\nflow_learn_sec = 10\nflow_idle_tcp_sec = 60\n") + kFlowClasses,
       {{"the first packet opens the window", false, seg4(cp, 1, srv, 443, kSyn), t, "checkpoint",
         A, LOOKUP},
        {"an established flow's ACK: admitted and learned", false, client_ack, t + 1 * s,
         "checkpoint", A, CONT},
        {"again: it matches the learned entry", false, client_ack, t + 2 * s, "checkpoint", A,
         CONT},
        {"the server answers: confirmed", true, server_seg, t + 3 * s, nullptr},
        {"another unknown flow, never answered", false, seg4(cp, 50000, srv, 443, kAck), t + 3 * s,
         "checkpoint", A, CONT},
        {"after the window: the confirmed flow is verified", false, client_ack, t + 15 * s,
         "checkpoint", A, CONT},
        {"the unconfirmed one is not", false, seg4(cp, 50000, srv, 443, kAck), t + 15 * s + 1000,
         "checkpoint", A, UNV},
        {"nor a new unknown flow", false, seg4(cp, 50001, srv, 443, kAck), t + 15 * s + 2000,
         "checkpoint", A, UNV}}},
      {"learning_stops_at_the_lowest_reserve",
       // 10 packet tokens; priority 7 keeps 50% back, priority 5 37%,
       // priority 0 6% (at least 3 tokens).
       std::string("[admission]\nflow_learn_sec = 10\n[boundary]\npackets_per_sec = 10\n"
                   "packets_burst = 10\n") +
           kFlowClasses,
       learning_flood()},
      {"pass_keeps_no_flow_state",
       // No learning window under "pass" (it would stop unknown flows at
       // their class's reserve): every continuation down to the last of 10
       // packet tokens, as before flow state.
       std::string("[admission]\nunverified = \"pass\"\nflow_learn_sec = 10\n[boundary]\n"
                   "packets_per_sec = 10\npackets_burst = 10\n") +
           kFlowClasses,
       pass_without_flow_state()},
      {"inline_needs_the_handshake", base + "[dataplane]\noutside = \"eth0\"\ninside = \"eth1\"\n",
       inline_proof_steps()},
      {"flow_over_its_rate_ranks_at_its_class",
       std::string("[admission]\nflow_learn_sec = 0\nflow_packets_per_sec = 1000\n[boundary]\n"
                   "packets_per_sec = 1\npackets_burst = 100\n") +
           kFlowClasses,
       flow_over_its_rate_steps()},
      {"forged_from_a_protected_prefix",
       std::string("[admission]\nflow_learn_sec = 0\n[boundary]\nlookups_per_sec = 1\n"
                   "lookups_burst = 50\n") +
           kFlowClasses,
       forged_from_a_protected_prefix()},
      {"forged_spends_no_protected_rate",
       std::string("[admission]\nflow_learn_sec = 0\n") + kFlowClassesRated,
       forged_spends_no_protected_rate()},
      {"backend_signal",
       std::string("[admission]\nflow_learn_sec = 0\n[boundary]\nlookups_per_sec = 1000\n"
                   "adaptive = true\n") +
           kFlowClasses,
       backend_signal_steps()},
  };
  for (FlowFixture& fx : all) {
    std::vector<FlowStep> steps;
    for (const FlowStep& step : fx.steps)
      for (int i = 0; i < step.repeat; i++) steps.push_back(step);
    fx.steps = std::move(steps);
  }
  return all;
}

}  // namespace sluice::test
