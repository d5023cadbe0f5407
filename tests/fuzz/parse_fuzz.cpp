// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the parser, the decision and the rewrites on arbitrary
// bytes. ASan catches any read or write outside the frame.
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/model/classify.h"
#include "dataplane/model/decide.h"
#include "dataplane/model/flow.h"
#include "dataplane/model/parse.h"
#include "dataplane/model/rewrite.h"

namespace {

sl_profile make_profile() {
  sl_profile p{};
  p.n_classes = 2;
  p.any_src_mask = p.any_dst_mask = p.any_port_mask = p.any_dscp_mask = p.any_proto_mask = 3;
  p.sticky_epoch_ns = 60 * SL_NS_PER_SEC;
  p.sticky_window_ns = 100000000;
  p.boundary_lookups = sl_bucket_params_make(1000, 10);
  p.boundary_packets = sl_bucket_params_make(100000, 100);
  p.classes[0].bucket = sl_bucket_params_make(5, 1);
  p.classes[0].on_shed = SL_ACTION_RESET;
  p.classes[0].src_prefix_v4 = 24;
  p.classes[0].src_prefix_v6 = 48;
  p.classes[1].on_shed = SL_ACTION_MARK;
  p.classes[1].mark_dscp = 10;
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sl_profile prof = make_profile();
  static sl_class_state cs[2];
  static sl_boundary_state bs;
  static uint64_t now = 0;
  if (now == 0) {
    sl_class_state_init(&cs[0], &prof.classes[0], 1);
    sl_class_state_init(&cs[1], &prof.classes[1], 1);
    sl_boundary_state_init(&bs, &prof, 1);
  }
  now += 1000;
  std::vector<uint8_t> frame(data, data + size);  // exact size: ASan sees overruns
  sl_meta m;
  int r = sl_parse(frame.data(), frame.data() + frame.size(), &m);
  uint32_t cls = sl_classify(&prof, &m, 0, 0, m.has_ports ? 1 : 0);
  sl_source_state ss;
  sl_source_init(&ss);
  sl_decision d;
  // The carried header of an ICMP error is parsed from the same exact-size
  // frame: ASan sees any read past it.
  sl_meta inner;
  int hit = 0;
  if (r == SL_PARSE_OK && sl_flow_lookup_kind(&m) == SL_FLOW_LOOKUP_ICMP)
    hit = sl_parse_icmp_inner(frame.data(), frame.data() + frame.size(), &m, &inner);
  sl_decide(&prof, &m, r, cls, &cs[cls], &bs, &ss, hit, now, &d);
  sl_sticky_settle(&prof, &prof.classes[cls], &cs[cls], &bs, now);
  if (r == SL_PARSE_OK) {
    uint32_t n = sl_build_reset(frame.data(), frame.data() + frame.size(), &m);
    if (n > frame.size()) __builtin_trap();
    sl_meta m2;
    std::vector<uint8_t> again(data, data + size);
    sl_parse(again.data(), again.data() + again.size(), &m2);
    sl_mark_dscp(again.data(), again.data() + again.size(), &m2, 46);
  }
  return 0;
}
