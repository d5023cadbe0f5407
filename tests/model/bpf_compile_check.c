/* SPDX-License-Identifier: Apache-2.0 */
/* Compiled by `clang -target bpf` in the tests: every model header must build
 * for BPF (no libc, no floats, bounded loops). Not loaded, only compiled. */
#include "abi.h"
#include "backend_signal.h"
#include "bucket.h"
#include "classify.h"
#include "decide.h"
#include "flow.h"
#include "parse.h"
#include "rewrite.h"
#include "sticky.h"
#include "sticky_settle.h"

struct sl_check_args {
  struct sl_profile* prof;
  struct sl_class_state* cs;
  struct sl_boundary_state* bs;
  struct sl_source_state* ss;
  struct sl_decision* d;
  __u64 now;
};

/* A function of its own, as in the XDP program (bpf/sluice.bpf.c): its
 * stack is not the decision's. */
__attribute__((noinline)) int sl_check_settle(struct sl_check_args* a, __u32 cls) {
  if (!a) return 0;
  sl_sticky_settle(a->prof, &a->prof->classes[cls & (SL_MAX_CLASSES - 1)], a->cs, a->bs, a->now);
  return 0;
}

/* The flow lookup of an ICMP error, as the XDP program's own function. */
__attribute__((noinline)) int sl_check_flow(__u8* data, __u8* end, struct sl_meta* m,
                                            struct sl_check_args* a) {
  struct sl_meta inner;
  struct sl_flow_key k;
  struct sl_flow f;
  if (!m || !a || sl_flow_lookup_kind(m) != SL_FLOW_LOOKUP_ICMP ||
      !sl_parse_icmp_inner(data, end, m, &inner))
    return 0;
  sl_flow_key_tcp(&k, &inner);
  sl_flow_make(&f, SL_FLOW_OP_CREATE_TCP, a->prof, a->now);
  return sl_flow_live(&f, a->now) && sl_flow_touch(&f, m, a->prof, a->now);
}

__attribute__((section("xdp"), used)) int sl_check(__u8* data, __u8* end, struct sl_check_args* a) {
  struct sl_meta m;
  int r = sl_parse(data, end, &m);
  __u32 cls = sl_classify(a->prof, &m, 0, 0, 0);
  int hit = sl_check_flow(data, end, &m, a);
  sl_decide(a->prof, &m, r, cls, a->cs, a->bs, a->ss, hit, a->now, a->d);
  sl_check_settle(a, cls);
  if (a->d->action == SL_ACTION_RESET) return (int)sl_build_reset(data, end, &m);
  if (a->d->action == SL_ACTION_MARK) sl_mark_dscp(data, end, &m, a->d->mark_dscp);
  return 0;
}
