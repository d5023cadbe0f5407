/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A per-source budget in one word: the generic cell rate algorithm (GCRA).
 *
 * A token bucket is two words (its tokens and the time of its last refill),
 * so taking a token needs a lock. GCRA keeps one: the theoretical arrival
 * time (TAT), the moment the bucket will be full again. A take at now finds
 * a token when max(TAT, now) + T <= now + burst * T, and moves TAT to
 * max(TAT, now) + T (T: the emission interval, 1 / rate); one
 * compare-and-swap takes a token without a lock (bpf/sources.h).
 *
 * Rounding: time is counted in 1/4 ns (SL_GCRA_SHIFT) and T is rounded up
 * to a whole quarter nanosecond. A source therefore never gets more than
 * burst + rate * t tokens in t seconds (the token bucket's bound), and at
 * most one quarter nanosecond per token fewer: a relative shortfall under
 * rate / (4 * 10^9), 0.025% at 10^6 lookups a second, none at a rate that
 * divides 4 * 10^9 (1, 2, 5, 10, 100, 1000 ... a second).
 *
 * Limits: burst * T is capped at SL_GCRA_LIMIT_MAX (18 years of refill: at
 * 1 lookup a second, a burst of 576 million), so that now + burst * T stays
 * inside 64 bits for clocks below 4 * 10^18 ns (boot time, or a capture's
 * wall-clock time until 2096).
 *
 * Retunes: TAT is what the source owes (TAT - now, in time), so a retune of
 * the rate or burst keeps that debt: a source has burst - debt / T tokens
 * under the new values, never more than the new burst. A debt beyond the
 * new burst's reach (burst x T) by more than SL_GCRA_SLACK_NS is cut back
 * to that reach plus the slack (sl_gcra_settle): the source starts empty,
 * at worst 100 ms late, instead of waiting out a debt a larger burst or a
 * lower rate let it run up. The slack exceeds any clock skew between CPUs
 * (and the coarse clock's tick, at most 100 ms), so a cut never gives a
 * token: a source whose TAT another CPU's later clock wrote is never cut.
 * (DPDK's workers, threads that can be descheduled for longer, pass the
 * latest clock any worker showed: dataplane/dpdk/source_sets.cpp.)
 */
#pragma once

#include "abi.h"

SL_INLINE struct sl_gcra_params sl_gcra_params_make(__u64 rate_per_sec, __u64 burst)
{
	struct sl_gcra_params p;
	__builtin_memset(&p, 0, sizeof(p));
	p.enabled = 1;
	p.rate_per_sec = rate_per_sec;
	/* rate >= 1 and burst <= SL_MAX_BURST (the validator): burst * T
	 * <= 10^9 * 4 * 10^9 < 2^64. A rate of 0 (no config value) gives the
	 * burst once, refilled over the cap's 18 years. */
	if (rate_per_sec == 0) {
		p.emit_u = SL_GCRA_LIMIT_MAX / (burst ? burst : 1);
		p.limit_u = burst ? p.emit_u * burst : 0;
		return p;
	}
	p.emit_u = (SL_GCRA_UNITS_PER_SEC + rate_per_sec - 1) / rate_per_sec;
	p.limit_u = burst * p.emit_u;
	if (p.limit_u > SL_GCRA_LIMIT_MAX)
		p.limit_u = SL_GCRA_LIMIT_MAX;
	return p;
}

/* A fresh source: full (any TAT at or before now is). */
#define SL_GCRA_FULL 0ULL

/* The TAT a take at now_ns leaves, or 0 when the source has no token
 * (a TAT after a take is never 0: it is at least T). */
SL_INLINE __u64 sl_gcra_take_at(__u64 tat, __u64 emit_u, __u64 limit_u, __u64 now_ns)
{
	const __u64 now_u = now_ns << SL_GCRA_SHIFT;
	const __u64 from = tat > now_u ? tat : now_u;
	/* from - now_u is the debt: at most limit_u as of the last take, plus
	 * any clock skew between CPUs; no sum here can overflow. */
	if (from - now_u > limit_u - emit_u || emit_u > limit_u)
		return 0;
	return from + emit_u;
}

SL_INLINE __u64 sl_gcra_after_take(__u64 tat, const struct sl_gcra_params *p, __u64 now_ns)
{
	return sl_gcra_take_at(tat, p->emit_u, p->limit_u, now_ns);
}

/* The TAT a source should hold at now_ns: tat, or its debt cut back after a
 * retune left it beyond the burst's reach (above). Never raises it. */
#define SL_GCRA_SLACK_NS 100000000ULL
SL_INLINE __u64 sl_gcra_settle(__u64 tat, const struct sl_gcra_params *p, __u64 now_ns)
{
	const __u64 cap =
		(now_ns << SL_GCRA_SHIFT) + p->limit_u + (SL_GCRA_SLACK_NS << SL_GCRA_SHIFT);
	return tat > cap ? cap : tat;
}

/* The TAT a give-back leaves: the token a take took, returned (a TAT at or
 * before now is full, whatever it is: the cap holds by itself). */
SL_INLINE __u64 sl_gcra_give_back_at(__u64 tat, __u64 emit_u)
{
	return tat > emit_u ? tat - emit_u : SL_GCRA_FULL;
}

SL_INLINE __u64 sl_gcra_after_give_back(__u64 tat, const struct sl_gcra_params *p)
{
	return sl_gcra_give_back_at(tat, p->emit_u);
}

/* The whole tokens a source has at now_ns (stats, tests). */
SL_INLINE __u64 sl_gcra_whole_tokens(__u64 tat, const struct sl_gcra_params *p, __u64 now_ns)
{
	const __u64 now_u = now_ns << SL_GCRA_SHIFT;
	const __u64 debt = tat > now_u ? tat - now_u : 0;
	return debt >= p->limit_u ? 0 : (p->limit_u - debt) / p->emit_u;
}
