// SPDX-License-Identifier: Apache-2.0
// The inline edge's failure policy below the daemon: the pass-through
// program forwards or blocks every frame, the XDP standby passes frames to
// DPDK while the heartbeat is fresh and decides them once it is stale, the
// pinned edge record round-trips, and the pin layout name tells builds and
// table sizes apart. tests/integration/failure_policy_test.sh runs all of
// it live.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/xdp/edge.hpp"
#include "dataplane/xdp/xdp_program.hpp"
#include "sluice_passthrough.skel.h"
#include "tests/support/flow_fixtures.hpp"
#include "tests/support/privileges.hpp"
#include "tests/support/profile_from_toml.hpp"
#include "tests/support/scoped_pins.hpp"

namespace sluice {
namespace {

using test::kAck;
using test::kSyn;

int run_passthrough(bool block, bool outside, const std::vector<uint8_t>& frame) {
  sluice_passthrough* skel = sluice_passthrough__open();
  if (skel == nullptr) return -1;
  skel->rodata->sl_block = block ? 1 : 0;
  if (sluice_passthrough__load(skel) != 0) {
    sluice_passthrough__destroy(skel);
    return -1;
  }
  // Port entries point at loopback: a redirect the test run only reports.
  const uint32_t lo = 1;
  for (uint32_t k = 0; k < 2; k++)
    bpf_map_update_elem(bpf_map__fd(skel->maps.sl_pass_tx), &k, &lo, BPF_ANY);
  std::vector<uint8_t> in = frame;
  std::vector<uint8_t> out(frame.size() + 64);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = in.data(), .data_out = out.data(),
              .data_size_in = static_cast<__u32>(in.size()),
              .data_size_out = static_cast<__u32>(out.size()), .repeat = 1);
  const int prog =
      bpf_program__fd(outside ? skel->progs.sl_pass_outside : skel->progs.sl_pass_inside);
  const int rc = bpf_prog_test_run_opts(prog, &run);
  sluice_passthrough__destroy(skel);
  return rc == 0 ? static_cast<int>(run.retval) : -1;
}

TEST(Passthrough, ForwardsEveryFrameBothWaysOrBlocksThem) {
  SLUICE_REQUIRE_ROOT();
  const std::vector<uint8_t> syn = test::seg4("198.18.10.5", 40000, "198.19.0.1", 443, kSyn);
  const std::vector<uint8_t> arp(60, 0xff);  // not IP: still forwarded, untouched
  for (bool outside : {true, false}) {
    EXPECT_EQ(run_passthrough(false, outside, syn), XDP_REDIRECT);
    EXPECT_EQ(run_passthrough(false, outside, arp), XDP_REDIRECT);
    EXPECT_EQ(run_passthrough(true, outside, syn), XDP_DROP);
    EXPECT_EQ(run_passthrough(true, outside, arp), XDP_DROP);
  }
}

// The standby passes every frame up to DPDK's af_packet sockets while the
// beat is fresh, and enforces the profile itself once it is stale.
// Unverified packets dropped: an ACK of no known flow is XDP_DROP when the
// standby decides, XDP_PASS when it stands by; a learning window of
// learn_sec admits it as learned.
CompiledProfile standby_profile(int learn_sec) {
  return test::profile_from_toml(
      "[admission]\nunverified = \"drop\"\nflow_learn_sec = " + std::to_string(learn_sec) + "\n");
}

std::unique_ptr<XdpProgram> load_standby(std::string* error) {
  XdpProgramOptions o;
  o.standby = true;
  o.record_decision = true;
  return XdpProgram::load(o, error);
}

TEST(XdpStandby, PassesWhileTheHeartbeatIsFreshAndEnforcesAfter) {
  SLUICE_REQUIRE_ROOT();
  std::string error;
  auto p = load_standby(&error);
  ASSERT_TRUE(p) << error;
  ASSERT_TRUE(p->write_profile(standby_profile(0), 1, &error)) << error;
  const auto ack = test::seg4("198.18.10.5", 40000, "198.19.0.1", 443, kAck);
  XdpTestResult r;
  ASSERT_TRUE(p->test_run(ack, &r, &error)) << error;
  EXPECT_EQ(r.action, XDP_DROP) << "no beat yet: the standby enforces";
  ASSERT_TRUE(p->beat(5'000'000'000ULL, &error)) << error;
  ASSERT_TRUE(p->test_run(ack, &r, &error)) << error;
  EXPECT_EQ(r.action, XDP_PASS) << "a fresh beat: DPDK handles the frame";
  const uint64_t packets_while_passing = p->stats().classes[0].packets[1][SL_REASON_UNVERIFIED];
  EXPECT_EQ(packets_while_passing, 1u) << "only the first ACK was decided and counted";
  ASSERT_TRUE(p->beat(1, &error)) << error;  // a 1 ns timeout: stale at once
  ASSERT_TRUE(p->test_run(ack, &r, &error)) << error;
  EXPECT_EQ(r.action, XDP_DROP) << "a stale beat: the standby takes over";
}

// Each takeover opens the learning window: DPDK decided while the standby
// stood by, and the flows it admitted are not in the standby's table. (The
// first takeover of fresh state opens it anyway; the second must too.)
TEST(XdpStandby, EveryTakeoverOpensTheLearningWindow) {
  SLUICE_REQUIRE_ROOT();
  std::string error;
  auto p = load_standby(&error);
  ASSERT_TRUE(p) << error;
  // The first takeover without a window (flow_learn_sec = 0): an ACK of a
  // flow DPDK admitted is dropped.
  ASSERT_TRUE(p->write_profile(standby_profile(0), 1, &error)) << error;
  const auto ack = [](uint16_t port) {
    return test::seg4("198.18.10.5", port, "198.19.0.1", 443, kAck);
  };
  XdpTestResult r;
  ASSERT_TRUE(p->beat(1, &error)) << error;  // stale at once: the standby decides
  ASSERT_TRUE(p->test_run(ack(40000), &r, &error)) << error;
  ASSERT_EQ(r.action, XDP_DROP) << "no window: unverified, dropped";
  // A retune to a 60-s window opens none (the state is not fresh)...
  ASSERT_TRUE(p->write_profile(standby_profile(60), 2, &error)) << error;
  ASSERT_TRUE(p->test_run(ack(40001), &r, &error)) << error;
  EXPECT_EQ(r.action, XDP_DROP) << "the same takeover: still no window";
  // ...DPDK runs again (a fresh beat: the standby passes), then stops: the
  // second takeover learns the flows DPDK admitted meanwhile.
  ASSERT_TRUE(p->beat(5'000'000'000ULL, &error)) << error;
  ASSERT_TRUE(p->test_run(ack(40002), &r, &error)) << error;
  ASSERT_EQ(r.action, XDP_PASS) << "DPDK decides";
  ASSERT_TRUE(p->beat(1, &error)) << error;
  ASSERT_TRUE(p->test_run(ack(40002), &r, &error)) << error;
  EXPECT_EQ(r.action, XDP_PASS) << "the second takeover: learned";
  EXPECT_EQ(r.decision.verdict, SL_VERDICT_ADMITTED);
  EXPECT_EQ(r.decision.reason, SL_REASON_CONTINUATION);
  uint64_t learned = 0;
  for (uint32_t prio = 0; prio < SL_PRIORITIES; prio++)
    learned += p->stats().flow_events[prio][SL_FLOW_EV_LEARNED];
  EXPECT_EQ(learned, 1u);
}

TEST(EdgeRecord, RoundTripsThroughItsPin) {
  SLUICE_REQUIRE_ROOT();
  const test::ScopedPins scoped("edge");
  const std::string& pins = scoped.path;
  EdgeRecord r;
  std::string error;
  EXPECT_FALSE(read_edge_record(pins, &r, &error));
  EXPECT_NE(error.find("no edge record"), std::string::npos) << error;
  EdgeRecord w;
  w.state = EdgeState::blocked;
  w.generation = 42;
  w.since_unix_ns = 1'700'000'000'000'000'000ULL;
  w.pid = 1234;
  w.attended = true;
  w.layout = "layout-0123456789abcdef";
  w.last_failure = std::string(500, 'x');  // longer than the record keeps
  w.last_failure_unix_ns = 7;
  ASSERT_TRUE(write_edge_record(pins, w, &error)) << error;
  ASSERT_TRUE(read_edge_record(pins, &r, &error)) << error;
  EXPECT_EQ(r.state, EdgeState::blocked);
  EXPECT_EQ(r.generation, 42u);
  EXPECT_EQ(r.since_unix_ns, w.since_unix_ns);
  EXPECT_EQ(r.pid, 1234);
  EXPECT_TRUE(r.attended);
  EXPECT_EQ(r.layout, w.layout);
  EXPECT_EQ(r.last_failure, std::string(159, 'x'));
  EXPECT_EQ(r.last_failure_unix_ns, 7u);
  EXPECT_EQ(edge_link_state(pins), EdgeState::none) << "no link pinned";
}

TEST(PinLayout, NamesTellTableSizesApart) {
  XdpProgramOptions a;
  XdpProgramOptions b = a;
  EXPECT_EQ(XdpProgram::layout_name(a), XdpProgram::layout_name(b));
  EXPECT_EQ(XdpProgram::layout_name(a).rfind("layout-", 0), 0u);
  b.source_table_size = a.source_table_size * 2;
  EXPECT_NE(XdpProgram::layout_name(a), XdpProgram::layout_name(b));
  b = a;
  b.flow_table_size = a.flow_table_size * 2;
  EXPECT_NE(XdpProgram::layout_name(a), XdpProgram::layout_name(b));
  b = a;
  b.standby = true;  // a knob, not a layout: a standby adopts a plain program's maps
  b.inline_mode = true;
  EXPECT_EQ(XdpProgram::layout_name(a), XdpProgram::layout_name(b));
}

}  // namespace
}  // namespace sluice
