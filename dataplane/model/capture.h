/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capture of decided frames (sluicectl capture), shared by the
 * dataplanes and the control plane: what to sample, set by the control
 * plane while a capture runs (enabled = 0 otherwise: one load and a branch
 * per frame), one sampled frame as a dataplane hands it over, and the
 * filter's test.
 */
#pragma once

#include "abi.h"

#define SL_CAPTURE_SNAP	    256U	/* bytes of a frame kept at most (a power of two) */
#define SL_CAPTURE_ANY	    0xffffffffU /* class_state / reason: any */
#define SL_CAPTURE_ADMITTED 1U		/* verdict_mask bits */
#define SL_CAPTURE_SHED	    2U
struct sl_capture_cfg {
	__u32 enabled;
	__u32 class_state;  /* a class's state slot, or SL_CAPTURE_ANY */
	__u32 verdict_mask; /* SL_CAPTURE_ADMITTED | SL_CAPTURE_SHED */
	__u32 reason;	    /* enum sl_reason, or SL_CAPTURE_ANY */
	__u32 sample_every; /* 1 in N of the matching frames (0 and 1: all) */
	__u32 snaplen;	    /* 1..SL_CAPTURE_SNAP */
	/* XDP: the program samples nothing from this moment on (its clock,
	 * CLOCK_MONOTONIC), so that a capture whose sluiced died (kill -9)
	 * stops by itself; the control plane renews it while it reads. */
	__u64 until_ns;
};
SL_STATIC_ASSERT(sizeof(struct sl_capture_cfg) == 32, "sl_capture_cfg layout");

struct sl_capture_rec {
	__u64 ts_ns;	/* the dataplane's clock (CLOCK_MONOTONIC) */
	__u32 wire_len; /* the frame's length */
	__u32 cap_len;	/* bytes in data */
	__u8 class_state;
	__u8 verdict;
	__u8 reason;
	__u8 pad[5];
	__u8 data[SL_CAPTURE_SNAP];
};
SL_STATIC_ASSERT(sizeof(struct sl_capture_rec) == 24 + SL_CAPTURE_SNAP, "sl_capture_rec layout");

/* Whether a decided frame is one the capture asks for (sampling aside). */
SL_INLINE int sl_capture_wants(const struct sl_capture_cfg *c, __u32 class_state, __u32 verdict,
			       __u32 reason)
{
	return c->enabled && (c->class_state == SL_CAPTURE_ANY || c->class_state == class_state) &&
	       (c->verdict_mask &
		(verdict == SL_VERDICT_SHED ? SL_CAPTURE_SHED : SL_CAPTURE_ADMITTED)) &&
	       (c->reason == SL_CAPTURE_ANY || c->reason == reason);
}
