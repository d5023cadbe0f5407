/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source keys, ranks and the sticky-shedding controller, the side every
 * lookup runs (sticky_settle.h: the side once a window).
 *
 * When a class must shed part of its demand, it sheds the same sources for a
 * whole epoch: every source gets rank = hash(source, the epoch's salt) in
 * [0, 65536); ranks below the class's threshold reach the budgets, a band
 * just above it takes what they leave over (sl_sticky_filter), the rest is
 * shed. The threshold is placed on the class's demand by rank, counted per
 * epoch, so that the demand under it is what the limiting budget allows
 * (sl_sticky_tick, sl_sticky_settle). A shed source's lookups count for
 * less than an admitted one's: its client may retry each of them
 * (sl_sticky_thin). At an epoch's turn every rank changes at once; the
 * demand by next epoch's ranks, counted ahead, places the new threshold at
 * once.
 */
#pragma once

#include "abi.h"
#include "bucket.h"
#include "rank_hist.h"

#define SL_RANK_MIN 64U /* the threshold never falls below this: nobody is locked out */

SL_INLINE __u64 sl_mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Masks addr (network order) to prefix_len bits in place. len is 4 or 16. */
SL_INLINE void sl_mask_addr(__u8 *addr, __u32 len, __u32 prefix_len)
{
	for (__u32 i = 0; i < 16; i++) {
		if (i >= len)
			break;
		__u32 bit = i * 8;
		if (bit >= prefix_len)
			addr[i] = 0;
		else if (prefix_len - bit < 8)
			addr[i] &= (__u8)(0xff << (8 - (prefix_len - bit)));
	}
}

SL_INLINE void sl_source_key_make(struct sl_source_key *k, const struct sl_meta *m,
				  const struct sl_class_params *cp)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = m->family;
	k->state_index = cp->state_index;
	k->epoch_lo = (__u8)cp->state_epoch; /* a recycled slot does not inherit sources */
	if (m->family == SL_FAMILY_V4) {
		/* The address as one word, masked at once, not byte by byte. */
		const __u32 len = cp->src_prefix_v4 < 32 ? cp->src_prefix_v4 : 32;
		__u32 a, mask = len == 0 ? 0 : 0xffffffffU << (32 - len);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		mask = __builtin_bswap32(mask); /* to the address's network order */
#endif
		__builtin_memcpy(&a, m->src_be, 4);
		a &= mask;
		__builtin_memcpy(k->addr_be, &a, 4);
		k->prefix_len = cp->src_prefix_v4;
		return;
	}
	__builtin_memcpy(k->addr_be, m->src_be, 16);
	k->prefix_len = cp->src_prefix_v6;
	sl_mask_addr(k->addr_be, 16, k->prefix_len);
}

SL_INLINE __u64 sl_key_hash(const struct sl_source_key *k, __u64 salt)
{
	const __u64 tail = (__u64)k->family << 16 | (__u64)k->state_index << 8 | k->prefix_len;
	if (k->family == SL_FAMILY_V4) {
		/* The address and the rest in one word: one mix, not a chain of
		 * three (an IPv4 source's table lookup and rank, ~4 ns in XDP). */
		__u32 a = 0;
		__builtin_memcpy(&a, k->addr_be, 4);
		return sl_mix64(salt ^ ((__u64)a | tail << 32));
	}
	__u64 w0 = 0, w1 = 0;
	__builtin_memcpy(&w0, k->addr_be, 8);
	__builtin_memcpy(&w1, k->addr_be + 8, 8);
	__u64 h = sl_mix64(salt ^ w0);
	h = sl_mix64(h ^ w1);
	return sl_mix64(h ^ tail);
}

/* The sticky epoch that contains now_ns (0 without epochs). Epochs are the
 * same for every source: sources keep their ranks for a whole epoch, so the
 * demand under a threshold does not drift within one (with sources turning
 * over one at a time, it would, by the square root of their number). */
SL_INLINE __u64 sl_sticky_epoch(const struct sl_profile *prof, __u64 now_ns)
{
	return prof->sticky_epoch_ns ? now_ns / prof->sticky_epoch_ns : 0;
}

/* A source's hash under the profile's seed, the same in every epoch. */
SL_INLINE __u64 sl_source_hash(const struct sl_profile *prof, const struct sl_source_key *k)
{
	return sl_key_hash(k, prof->seed);
}

/* Rank of a source (its sl_source_hash) in a sticky epoch, in
 * [0, SL_RANK_ONE): one mix of the hash with the epoch. A lookup counted in
 * two epochs costs one key hash and two mixes (three for IPv4, five for
 * IPv6), not a salted key hash per epoch. */
SL_INLINE __u32 sl_rank_in(__u64 source_hash, __u64 epoch)
{
	return (__u32)(sl_mix64(source_hash ^ (epoch * 0x9e3779b97f4a7c15ULL)) >> 48);
}

#define SL_STICKY_MIN_EVENTS 32	   /* lookups a window needs before it closes early */
#define SL_LEVEL_ONE	     1024U /* fixed-point 1.0 for bucket headroom */
#define SL_AVG_ONE	     16U   /* fixed-point 1.0 for the window averages */

/* Lookups admitted so far at priority prio and above (numerically at most). */
SL_INLINE __u64 sl_taken_from(const struct sl_boundary_state *bs, __u32 prio)
{
	__u64 sum = 0;
	for (__u32 q = 0; q < SL_PRIORITIES; q++)
		if (q <= prio)
			sum += bs->lookups_by_prio[q];
	return sum;
}

/*
 * The threshold, the band and their holds, as shares of the target T (the
 * demand the limiting budget allows, see sl_sticky_settle):
 *  - the threshold moves to the bin start under which the demand is at most
 *    T less a margin (T x 8 / the smaller bucket's burst in tokens, at most
 *    T/16: room for the noise of the arrivals under it, whose refusals would
 *    hit sources at random); it holds while the demand under it is from that
 *    less T/16 up to T;
 *  - the band's top moves to where the demand reaches T + T/32 and holds
 *    from T + T/64 to T + T/16: enough to take up what the sources under the
 *    threshold leave, and at least the source at it;
 *  - the band is admitted while the limiting bucket holds more than a third
 *    of its room above the class's reserve: the sources under the threshold
 *    keep the bottom third as a margin;
 *  - above the band, the next ranks (twice the band's width in rank) are
 *    admitted while the limiting bucket holds more than two thirds of its
 *    room: a boundary that moved (a retune, the adaptive rate) or a higher
 *    priority that took less leaves more than the band takes, and a bucket
 *    left to fill would waste its tokens and then let them through as a
 *    burst. They go to the sources next in rank, not to anyone;
 *  - a full bucket is throwing its refill away: then anyone. With a bucket
 *    of a few tokens (0.1 s of an adaptive rate of 50/s is 5) that is often,
 *    and the ranks above could not take it all.
 */
#define SL_HOLD_DIV	  16
#define SL_TRIM_ONE	  1024
#define SL_TRIM_STEP	  8   /* per window */
#define SL_TRIM_MAX	  256 /* a quarter of the target either way */
#define SL_MARGIN_DIV	  16
#define SL_BAND_DIV	  32
#define SL_BAND_FILL_DIV  3
#define SL_OVERFLOW_NUM	  2
#define SL_OVERFLOW_DEN	  3
#define SL_OVERFLOW_WIDTH 2

/* What per-CPU credits (credit.h) may hold drawn from a bucket: 1% of its
 * burst, when that is enough for a CPU to draw on at all. */
SL_INLINE __u64 sl_credit_slack_nt(const struct sl_profile *prof, const struct sl_bucket_params *p)
{
	/* floor(burst / (100 cpus)) < SL_CREDIT_MIN, without a division by a
	 * value only known at run time (this runs on every sticky filter). */
	if (prof->credit_cpus == 0 ||
	    p->cap_nt / SL_TOKEN < (__u64)SL_CREDIT_MIN * 100 * prof->credit_cpus)
		return 0;
	return p->cap_nt / 100;
}

/* The bucket holds more than num/den of its room above the reserve (a full
 * bucket always does). "Full" is within what credits may hold drawn from
 * it (sl_credit_slack_nt): a bucket that credits draw on is never quite
 * full. */
SL_INLINE int sl_left_over(const struct sl_profile *prof, const struct sl_bucket *b,
			   const struct sl_bucket_params *p, __u64 reserve_nt, __u64 num, __u64 den)
{
	if (!p->enabled)
		return 1;
	__u64 need = p->cap_nt > reserve_nt
			     ? reserve_nt + (p->cap_nt - reserve_nt) / den * num + SL_TOKEN
			     : p->cap_nt;
	const __u64 full = p->cap_nt - sl_credit_slack_nt(prof, p);
	if (need > full)
		need = full;
	return b->tokens_nt >= need && sl_bucket_has(b, reserve_nt);
}

/* Every limiting bucket holds more than num/den of its room. */
SL_INLINE int sl_all_left_over(const struct sl_profile *prof, const struct sl_class_params *cp,
			       const struct sl_class_state *cs, const struct sl_boundary_state *bs,
			       __u64 num, __u64 den)
{
	__u32 prio = cp->priority & (SL_PRIORITIES - 1);
	return sl_left_over(prof, &cs->bucket, &cp->bucket, 0, num, den) &&
	       sl_left_over(prof, &bs->lookups, &prof->boundary_lookups,
			    prof->lookups_reserve_nt[prio], num, den) &&
	       sl_left_over(prof, &bs->packets, &prof->boundary_packets,
			    prof->packets_reserve_nt[prio], num, den);
}

/* The first rank above the band and the ranks that may take what would
 * overflow the buckets: ranks from here on are shed unless a bucket is full
 * (sl_sticky_filter). */
SL_INLINE __u64 sl_overflow_top(__u32 threshold, __u32 band_top)
{
	const __u32 width = band_top > threshold ? band_top - threshold : 0;
	return band_top + (__u64)SL_OVERFLOW_WIDTH * width;
}

#define SL_STICKY_ADMIT 0 /* under the threshold, or tokens left over for its rank */
#define SL_STICKY_SHED	1 /* above the band and what overflows, or too little left over */

/*
 * The rank filter for one lookup of a source of rank `rank`, after
 * sl_sticky_tick: every source under the threshold reaches the budgets and
 * every source above the band is shed, all or none; the band gets the
 * tokens the others leave over, and the ranks above it what would
 * otherwise fill the bucket, so the budgets never sit unused while the
 * class sheds, and the threshold can hold still through the noise of
 * arrivals.
 */
SL_INLINE int sl_sticky_filter(const struct sl_profile *prof, const struct sl_class_params *cp,
			       struct sl_class_state *cs, const struct sl_boundary_state *bs,
			       __u32 rank)
{
	if (rank < cs->threshold)
		return SL_STICKY_ADMIT;
	if (rank >= cs->band_top) {
		/* a bucket about to overflow: the next ranks, in their order */
		if (rank < sl_overflow_top(cs->threshold, cs->band_top) &&
		    sl_all_left_over(prof, cp, cs, bs, SL_OVERFLOW_NUM, SL_OVERFLOW_DEN))
			return SL_STICKY_ADMIT;
		/* a full bucket is throwing its refill away: anyone */
		return sl_all_left_over(prof, cp, cs, bs, 1, 1) ? SL_STICKY_ADMIT : SL_STICKY_SHED;
	}
	return sl_all_left_over(prof, cp, cs, bs, 1, SL_BAND_FILL_DIV) ? SL_STICKY_ADMIT
								       : SL_STICKY_SHED;
}

/* Where a lookup's rank was against the threshold and the band when the
 * rank filter took it (sl_sticky_count). */
#define SL_RANK_BELOW 0 /* below the threshold */
#define SL_RANK_BAND  1 /* in the band or its overflow (sl_overflow_top) */
#define SL_RANK_ABOVE 2 /* above both */

SL_INLINE __u32 sl_rank_where(__u32 rank, __u32 threshold, __u32 band_top)
{
	if (rank < threshold)
		return SL_RANK_BELOW;
	return rank < sl_overflow_top(threshold, band_top) ? SL_RANK_BAND : SL_RANK_ABOVE;
}

/*
 * Counts a lookup that reached the rank filter, once decided, of a source
 * with hash h (sl_source_hash) and rank `rank` in rank_epoch, `where` its
 * rank was (SL_RANK_*): in the window's offered lookups, in the lookups by
 * rank of that epoch and of the next, admitted or not, and in what
 * sl_sticky_thin compares. Atomic adds: lookups shed without the lock
 * (credit.h, sl_shed_unlocked) may count here too, where a dataplane keeps
 * no counts per CPU (sl_sticky_count_cpu).
 */
SL_INLINE void sl_sticky_count(const struct sl_profile *prof, struct sl_class_state *cs, __u64 h,
			       __u64 rank_epoch, __u32 rank, __u32 where, int admitted)
{
	struct sl_rank_hist *by = admitted ? cs->admitted_by_rank : cs->shed_by_rank;
	SL_COUNT_ADD(&cs->window_offered, 1);
	if (where == SL_RANK_BELOW)
		cs->since_below++; /* under the lock: the locked path alone takes these */
	else if (where == SL_RANK_ABOVE)
		SL_COUNT_ADD(&cs->since_above, 1);
	sl_hist_add(&by[rank_epoch & 1], rank);
	if (prof->sticky_epoch_ns)
		sl_hist_add(&by[(rank_epoch + 1) & 1], sl_rank_in(h, rank_epoch + 1));
}

/* What sl_sticky_settle has to do (sl_class_state.settle). */
#define SL_SETTLE_CLOSE 1U /* close the window */
#define SL_SETTLE_TURN	2U /* the epoch turned: place afresh on the new ranks */
#define SL_SETTLE_CLEAR 4U /* forget both histograms (fresh state, epochs skipped) */

/* True when now_ns is in rank epoch `epoch` (nearly always the class's
 * current one): two multiplies, where the epoch of now_ns is a 64-bit
 * division. */
SL_INLINE int sl_sticky_epoch_current(const struct sl_profile *prof, __u64 epoch, __u64 now_ns)
{
	const __u64 len = prof->sticky_epoch_ns;
	if (!len)
		return epoch == 0;
	return now_ns >= epoch * len && now_ns - epoch * len < len;
}

/* True when the controller window that started at window_start_ns has run
 * its length by now_ns. */
SL_INLINE int sl_sticky_window_ran(const struct sl_profile *prof, __u64 window_start_ns,
				   __u64 now_ns)
{
	return now_ns >= window_start_ns + prof->sticky_window_ns;
}

/* A claim to take every CPU's counts (sl_class_state.taker) older than
 * this, in units of 1.024 us, is stale: its holder decides within
 * microseconds, so it is a claim its holder could not release (a program
 * replaced meanwhile), which must not stop the controller. */
#define SL_TAKER_HOLD 1000U

/* Under the lock: true while a claim to take every CPU's counts holds (the
 * claim's own holder releases it before its decision). Clocks of two CPUs a
 * little apart either way still see it held. */
SL_INLINE int sl_sticky_held(const struct sl_class_state *cs, __u64 now_ns)
{
	const __u32 age = (__u32)(now_ns >> 10) - cs->taker;
	return cs->taker != 0 && (age < SL_TAKER_HOLD || age > 0U - SL_TAKER_HOLD);
}

/* Under the lock, by a CPU that found sl_sticky_due and takes every CPU's
 * counts outside it (XDP): 1 when it now holds the claim, 0 when another
 * CPU's holds (that one takes them; this one does not). */
SL_INLINE int sl_sticky_claim(struct sl_class_state *cs, __u64 now_ns)
{
	if (sl_sticky_held(cs, now_ns))
		return 0;
	cs->taker = (__u32)(now_ns >> 10) | 1U;
	return 1;
}

/* Under the lock, by the claim's holder after sl_sticky_merge, in the same
 * hold as its decision, so that its own sl_sticky_tick may close the window
 * with every count it took in. */
SL_INLINE void sl_sticky_release(struct sl_class_state *cs)
{
	cs->taker = 0;
}

/*
 * Before a lookup uses the threshold: turns the epoch over, and says when the
 * controller window has run its length (and, at low rates, seen
 * SL_STICKY_MIN_EVENTS lookups or 4 lengths). sl_sticky_settle does the rest
 * after the decision. It changes nothing while the epoch is current and the
 * window has not run (what the sheds without the lock rely on, credit.h),
 * nor while another CPU holds a claim to take every CPU's counts (its
 * decision ticks after their merge).
 */
SL_INLINE void sl_sticky_tick(const struct sl_profile *prof, struct sl_class_state *cs,
			      __u64 now_ns)
{
	if (sl_sticky_held(cs, now_ns))
		return;
	__u64 epoch = cs->rank_epoch;
	if (!sl_sticky_epoch_current(prof, epoch, now_ns))
		epoch = sl_sticky_epoch(prof, now_ns);
	if (epoch != cs->rank_epoch) {
		cs->settle |= SL_SETTLE_TURN;
		if (epoch != cs->rank_epoch + 1)
			cs->settle |= SL_SETTLE_CLEAR;
		cs->rank_epoch = epoch;
	}
	if (sl_sticky_window_ran(prof, cs->window_start_ns, now_ns) &&
	    (cs->window_offered >= SL_STICKY_MIN_EVENTS || cs->window_offered == 0 ||
	     now_ns >= cs->window_start_ns + 4 * prof->sticky_window_ns))
		cs->settle |= SL_SETTLE_CLOSE;
}
