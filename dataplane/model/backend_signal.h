/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backend signal's samples (adaptive boundary, SL_PROFILE_ADAPTIVE,
 * inline mode; what it measures and why: flow.h, "The backend signal"):
 * the outside's first request data on a proven flow starts its sample, the
 * inside's first answer ends it into a histogram of answer times, and the
 * inside's resets and zero windows count. Shared by every dataplane and the
 * control plane's controller (the histogram's buckets).
 */
#pragma once

#include "abi.h"
#include "flow.h"

SL_INLINE __u32 sl_rt_now_us(__u64 now_ns)
{
	return (__u32)(now_ns / 1000);
}

/* Histogram bucket of a sample of us microseconds (abi.h, SL_RT_BUCKETS). */
SL_INLINE __u32 sl_rt_bucket(__u64 us)
{
	if (us < 8)
		return (__u32)us;
	__u32 o = 0;
	__u64 v = us;
	if (v >> 32) {
		v >>= 32;
		o += 32;
	}
	if (v >> 16) {
		v >>= 16;
		o += 16;
	}
	if (v >> 8) {
		v >>= 8;
		o += 8;
	}
	if (v >> 4) {
		v >>= 4;
		o += 4;
	}
	if (v >> 2) {
		v >>= 2;
		o += 2;
	}
	if (v >> 1)
		o += 1;
	__u32 b = 8 * (o - 2) + (__u32)((us >> (o - 3)) & 7);
	return b < SL_RT_BUCKETS ? b : SL_RT_BUCKETS - 1;
}

/* Lower edge, in us, of histogram bucket b. */
SL_INLINE __u64 sl_rt_bucket_low(__u32 b)
{
	if (b < 8)
		return b;
	return (__u64)(8 + b % 8) << (b / 8 - 1);
}

/* A verified packet from the outside (m) on live entry f: the ACK that
 * proves the flow, and its first data, which starts the flow's sample.
 * Returns 1 when it did (count it as a request). */
SL_INLINE int sl_rt_outside(struct sl_flow *f, const struct sl_meta *m,
			    const struct sl_profile *prof, __u64 now_ns)
{
	if (!(prof->flags & SL_PROFILE_ADAPTIVE) || m->l4_proto != SL_IPPROTO_TCP ||
	    (m->tcp_flags & (SL_TCP_SYN | SL_TCP_RST)) ||
	    (f->state != SL_FLOW_SYN && f->state != SL_FLOW_OPEN))
		return 0;
	sl_rt_prove(f, m);
	if (f->rt_phase != SL_RT_PROVEN || m->tcp_payload == 0)
		return 0;
	f->rt_phase = SL_RT_WAITING;
	f->rt_req_us = sl_rt_now_us(now_ns);
	return 1;
}

/* A packet from the inside (m as sent) on live entry f: counts its signal
 * into sig (a reset, a zero window, the end of the flow's sample). */
SL_INLINE void sl_rt_inside(struct sl_flow *f, const struct sl_meta *m,
			    const struct sl_profile *prof, __u64 now_ns,
			    struct sl_backend_signal *sig)
{
	if (!(prof->flags & (SL_PROFILE_ADAPTIVE | SL_PROFILE_INLINE)) || f->state == SL_FLOW_FRAG)
		return;
	/* The SYN-ACK's proof: inline mode's verification (sl_flow_outside_
	 * verifies) and the adaptive boundary's signal both need it. */
	if ((m->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK | SL_TCP_RST)) == (SL_TCP_SYN | SL_TCP_ACK)) {
		/* The answer to the client's SYN (the first; one retransmitted
		 * carries the same sequence number). An open flow's: a SYN
		 * reopened it (sl_flow_rewrite). */
		if ((f->state == SL_FLOW_SYN || f->state == SL_FLOW_OPEN) && sl_rt_unanswered(f)) {
			if (f->rt_phase == SL_RT_RETRIED)
				sig->syn_again++;
			f->rt_phase = SL_RT_ANSWERED;
			f->rt_req_us = m->tcp_seq + 1;
		}
		return;
	}
	if (!(prof->flags & SL_PROFILE_ADAPTIVE) || !sl_rt_proven(f))
		return;
	if (m->tcp_flags & SL_TCP_RST) {
		if (f->state != SL_FLOW_CLOSING && f->state != SL_FLOW_RESET)
			sig->resets++;
		return;
	}
	if (m->tcp_window == 0 && !(m->tcp_flags & (SL_TCP_SYN | SL_TCP_FIN)))
		sig->zero_windows++;
	if (m->tcp_payload == 0 || f->rt_phase != SL_RT_WAITING)
		return;
	__u32 us = sl_rt_now_us(now_ns) - f->rt_req_us; /* modulo 2^32 us (71 minutes) */
	f->rt_phase = SL_RT_DONE;
	sig->responses++;
	sig->sum_us += us;
	__u32 b = sl_rt_bucket(us);
	SL_VERIFIER_BARRIER(b); /* the compiler knows b < SL_RT_BUCKETS; the verifier must see it */
	if (b < SL_RT_BUCKETS)
		sig->hist[b]++;
}
