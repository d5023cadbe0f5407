/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source keys, ranks and the sticky-shedding controller.
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
	__builtin_memcpy(k->addr_be, m->src_be, 16);
	k->family = m->family;
	k->state_index = cp->state_index;
	k->epoch_lo = (__u8)cp->state_epoch; /* a recycled slot does not inherit sources */
	k->prefix_len = m->family == SL_FAMILY_V4 ? cp->src_prefix_v4 : cp->src_prefix_v6;
	sl_mask_addr(k->addr_be, m->family == SL_FAMILY_V4 ? 4 : 16, k->prefix_len);
}

SL_INLINE __u64 sl_key_hash(const struct sl_source_key *k, __u64 salt)
{
	__u64 w0 = 0, w1 = 0;
	__builtin_memcpy(&w0, k->addr_be, 8);
	__builtin_memcpy(&w1, k->addr_be + 8, 8);
	__u64 h = sl_mix64(salt ^ w0);
	h = sl_mix64(h ^ w1);
	return sl_mix64(h ^ ((__u64)k->family << 16 | (__u64)k->state_index << 8 | k->prefix_len));
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
 * two epochs costs one key hash and two mixes (five), not a salted key hash
 * per epoch (eight). */
SL_INLINE __u32 sl_rank_in(__u64 source_hash, __u64 epoch)
{
	return (__u32)(sl_mix64(source_hash ^ (epoch * 0x9e3779b97f4a7c15ULL)) >> 48);
}

#define SL_STICKY_MIN_EVENTS 32	   /* lookups a window needs before it closes early */
#define SL_LEVEL_ONE	     1024U /* fixed-point 1.0 for bucket headroom */
#define SL_AVG_ONE	     16U   /* fixed-point 1.0 for the window averages */

#define SL_KEEP_ONE 65536U
#define SL_KEEP_MIN 1024U /* a lookup not admitted weighs at least 1/64 */

/* The weight of a lookup not admitted in the demand (sl_sticky_thin). */
SL_INLINE __u64 sl_keep(const struct sl_class_state *cs)
{
	return cs->keep ? cs->keep : SL_KEEP_ONE;
}

/* Headroom of a bucket for a class: tokens above the class's reserve as a
 * share of what it could hold above it, in [0, SL_LEVEL_ONE]. */
SL_INLINE __u64 sl_headroom(const struct sl_bucket *b, const struct sl_bucket_params *p,
			    __u64 reserve_nt)
{
	if (!p->enabled)
		return SL_LEVEL_ONE;
	if (b->tokens_nt <= reserve_nt || p->cap_nt <= reserve_nt)
		return 0;
	/* Scale down first: nanotoken counts times 1024 could overflow 64 bits. */
	__u64 above = (b->tokens_nt - reserve_nt) >> 20;
	__u64 room = (p->cap_nt - reserve_nt) >> 20;
	if (room == 0)
		return SL_LEVEL_ONE;
	__u64 level = above * SL_LEVEL_ONE / room;
	return level > SL_LEVEL_ONE ? SL_LEVEL_ONE : level;
}

/* A new window's rate off by half from the average (or no average yet):
 * a surge starts or ends; the average starts over from it. */
SL_INLINE int sl_off_by_half(__u64 x, __u64 avg)
{
	return 2 * x < avg || x > 2 * avg;
}

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

/*
 * Places the threshold and the band's top on the demand by rank of the
 * current epoch (sl_sticky_estimate), for the share capacity / avg_offered
 * of it corrected by the trim; `room`: the smaller bucket's burst in tokens
 * (the margin). With `hold`, each stays where it is while within its hold
 * (above); a new epoch's ranks move both.
 */
SL_INLINE void sl_sticky_place(struct sl_class_state *cs, __u64 room, int hold)
{
	const struct sl_rank_hist *h = &cs->estimate;
	const __u64 total = sl_hist_total(h);
	/* the lookups offered, each at its weight, as in the estimate */
	const __u64 admitted =
		cs->avg_admitted < cs->avg_offered ? cs->avg_admitted : cs->avg_offered;
	const __u64 offered = admitted + ((cs->avg_offered - admitted) * sl_keep(cs) >> 16);
	if (offered == 0 || total == 0)
		return; /* nothing known about the demand: stay */
	if (cs->capacity >= offered) {
		cs->threshold = SL_RANK_ONE;
		cs->band_top = SL_RANK_ONE;
		return;
	}
	/* share in 2^-16 (< 1), total < 2^36: no overflow */
	const __u64 share = (cs->capacity << 16) / offered;
	__u64 t = total * share >> 16;
	t = t * (__u64)(SL_TRIM_ONE + cs->trim) / SL_TRIM_ONE;
	/* The sources under the threshold leave the bucket a margin for the
	 * noise of their arrivals: refusals would hit them at random. */
	const __u64 under_t = t - (room >= 8 * SL_MARGIN_DIV ? t * 8 / room : t / SL_MARGIN_DIV);

	__u64 under = sl_hist_below(h, cs->threshold);
	if (!hold || cs->threshold >= SL_RANK_ONE || under > t ||
	    under + t / SL_HOLD_DIV < under_t) {
		/* the bin where the demand passes under_t */
		__u32 r = sl_hist_rank_at(h, under_t + 1);
		if (total <= t)
			cs->threshold = SL_RANK_ONE;
		else
			cs->threshold =
				r > (1U << SL_RANK_BIN_SHIFT) ? r - (1U << SL_RANK_BIN_SHIFT) : 0;
		if (cs->threshold < SL_RANK_MIN)
			cs->threshold = SL_RANK_MIN;
		hold = 0;
	}
	if (cs->threshold >= SL_RANK_ONE) {
		cs->band_top = SL_RANK_ONE;
		return;
	}
	under = sl_hist_below(h, cs->band_top);
	if (!hold || cs->band_top <= cs->threshold || under < t + t / (2 * SL_BAND_DIV) ||
	    under > t + 2 * t / SL_BAND_DIV) {
		__u32 top = sl_hist_rank_at(h, t + t / SL_BAND_DIV);
		if (top <= cs->threshold)
			top = cs->threshold + (1U << SL_RANK_BIN_SHIFT);
		cs->band_top = top > SL_RANK_ONE ? SL_RANK_ONE : top;
	}
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

/*
 * A class shedding by rank: what a lookup not admitted weighs in the demand
 * (cs->keep), against an admitted one. A client whose lookup is shed (or
 * refused) may retry it at once, and again while it is shed: its lookups
 * while shed are what it asks once admitted times its retries. Counted in
 * full, they would weigh its rank that many times, and a threshold placed
 * on them would stop short of every shed source whose retries outweigh what
 * the target has left: the rest of the budget would go to whoever's retry
 * came when the bucket was full, at random.
 *
 * The ranks are a hash of the source, so the demand per rank is the same
 * below the threshold (sources whose lookups are admitted: a client's
 * request counts once there, retried or not) and above what the band and
 * the overflow admit (sources only shed, with every retry): the ratio of
 * the lookups per rank counted in the two is the weight that makes them
 * equal (sl_sticky_fold). It is taken at a window's close once both have
 * SL_STICKY_MIN_EVENTS (over one window or more). keep moves half the way
 * down to 3/2 of it, or an eighth of the way up, and stays at most 1. Open loop the ratio is 1,
 * give or take where a few sources' ranks fall: with 100 sources it stays 0.65-0.7 for a whole
 * epoch at times, which the 3/2 leaves out. A weight too high only slows
 * the threshold on its way up (a shed source counts 3/2 of what it asks);
 * one too low would overshoot, and the refusals under the threshold make
 * retries there too. Returns 1 when it used the counts (or dropped them),
 * 0 to go on counting.
 */
/* Forgets what sl_sticky_thin would compare. */
SL_INLINE void sl_sticky_thin_forget(struct sl_class_state *cs)
{
	cs->thin_below = 0;
	cs->thin_above = 0;
	cs->thin_n_below = 0;
	cs->thin_n_above = 0;
}

SL_INLINE int sl_sticky_thin(struct sl_class_state *cs)
{
	const __u32 n_below = cs->thin_n_below, n_above = cs->thin_n_above;
	if (n_below < SL_STICKY_MIN_EVENTS || n_above < SL_STICKY_MIN_EVENTS) {
		if ((n_below | n_above) < 1U << 30)
			return 0;
		/* one side empty that long: start over */
	} else {
		/* 3/2 x (below / threshold) / (above / (SL_RANK_ONE - top)), in
		 * 2^-16; thin_below < 2^30 x 2^16 (the start over above, and one
		 * window's lookups at most past it) */
		__u64 want = (cs->thin_below * 3 << 15) / cs->thin_above;
		if (want > SL_KEEP_ONE)
			want = SL_KEEP_ONE;
		if (want < SL_KEEP_MIN)
			want = SL_KEEP_MIN;
		/* Up by an eighth only: refusals under the threshold (a threshold
		 * a little high, a burst) make retries there too, for a moment. */
		const __u64 keep = sl_keep(cs);
		const __u64 next = want > keep ? keep + (want - keep + 7) / 8
					       : keep - (keep - want + 1) / 2; /* to it */
		cs->keep = next >= SL_KEEP_ONE ? 0 : (__u32)next;
	}
	sl_sticky_thin_forget(cs);
	return 1;
}

/*
 * Under the lock, before the threshold or the band moves (sl_sticky_settle):
 * what sl_sticky_thin compares, from the lookups counted since the last
 * fold, each side by the other's width under this threshold and band, so
 * that counts under different ones add up. Nothing to compare when nothing
 * is shed, or the overflow reaches the top rank.
 */
SL_INLINE void sl_sticky_fold(struct sl_class_state *cs)
{
	const __u32 below = cs->since_below;
	const __u32 above = SL_READ_ONCE(cs->since_above);
	cs->since_below = 0;
	SL_COUNT_ADD(&cs->since_above, 0U - above);
	const __u64 top = sl_overflow_top(cs->threshold, cs->band_top);
	if (cs->threshold >= SL_RANK_ONE || cs->threshold == 0 || top >= SL_RANK_ONE)
		return;
	cs->thin_below += (__u64)below * (SL_RANK_ONE - top);
	cs->thin_above += (__u64)above * cs->threshold;
	cs->thin_n_below += below;
	cs->thin_n_above += above;
}

/* The demand by rank of the current epoch the threshold is placed on: the
 * lookups admitted, and those not, each at its weight (sl_sticky_thin).
 * Both are kept apart for the whole epoch, so that a new weight applies to
 * everything counted before. */
SL_INLINE void sl_sticky_estimate(struct sl_class_state *cs)
{
	const struct sl_rank_hist *admitted = &cs->admitted_by_rank[cs->rank_epoch & 1];
	const struct sl_rank_hist *shed = &cs->shed_by_rank[cs->rank_epoch & 1];
	const __u64 keep = sl_keep(cs);
	/* In quarters of a lookup (only the shape matters to sl_sticky_place):
	 * a bin of a few sheds at a small weight does not round to nothing.
	 * Within SL_BIN_FULL, so that 16 bins fit a group's sum. */
	SL_LOOP
	for (__u32 i = 0; i < SL_RANK_BINS; i++) {
		const __u64 bin = ((__u64)admitted->bin[i] << 2) + (shed->bin[i] * keep >> 14);
		cs->estimate.bin[i] = bin < SL_BIN_FULL ? (__u32)bin : SL_BIN_FULL;
	}
	sl_hist_regroup(&cs->estimate);
}

/*
 * Closes the window sl_sticky_tick found over, and places the threshold.
 * Every dataplane calls it after the decision of a lookup of a sticky class
 * (under the state lock): apart from the decision, its histogram walks do not
 * make the XDP program's verification too long (a global BPF function).
 *
 * Each window gives the capacity of the limiting budget (its rate as
 * configured now: a retune or the adaptive boundary moves it at once; for
 * the shared boundary, less what other classes of the same or higher
 * priority take from it, since whatever lower priorities took this class
 * could have had) and the lookups offered and admitted (including those the
 * rank filter shed, so the estimate does not depend on the threshold it
 * sets), both per second and averaged over windows (weight 1/16; a window
 * off by half replaces the averages: a surge starts or ends). They give the
 * share of the demand to admit, each lookup not admitted at its weight
 * (sl_sticky_thin), corrected by the trim, and sl_sticky_place puts the
 * threshold where the demand under it is that share, less a margin
 * (everyone, when it is all of it). After eight windows without a refusal
 * everyone is admitted again.
 */
SL_INLINE void sl_sticky_settle(const struct sl_profile *prof, const struct sl_class_params *cp,
				struct sl_class_state *cs, const struct sl_boundary_state *bs,
				__u64 now_ns)
{
	const __u32 flags = cs->settle;
	if (!flags)
		return;
	cs->settle = 0;
	/* Sheds without the lock may add to it meanwhile: they count in the
	 * next window. */
	const __u32 window_offered = SL_READ_ONCE(cs->window_offered);
	if (flags & SL_SETTLE_CLEAR) {
		cs->keep = 0; /* epochs skipped: as a state made afresh */
		sl_sticky_thin_forget(cs);
		sl_hist_clear(&cs->admitted_by_rank[0]);
		sl_hist_clear(&cs->admitted_by_rank[1]);
		sl_hist_clear(&cs->shed_by_rank[0]);
		sl_hist_clear(&cs->shed_by_rank[1]);
	} else if (flags & SL_SETTLE_TURN) {
		/* The old epoch's counts make way for the one after the new. */
		sl_hist_clear(&cs->admitted_by_rank[(cs->rank_epoch + 1) & 1]);
		sl_hist_clear(&cs->shed_by_rank[(cs->rank_epoch + 1) & 1]);
	}
	int place = (flags & SL_SETTLE_TURN) && cs->threshold < SL_RANK_ONE ? 2 : 0;

	const __u32 prio = cp->priority & (SL_PRIORITIES - 1);
	/* Room of the smaller bucket, in tokens (above this priority's reserve). */
	__u64 room = ~0ULL;
	if (cp->bucket.enabled)
		room = cp->bucket.cap_nt / SL_TOKEN;
	if (prof->boundary_lookups.enabled &&
	    prof->boundary_lookups.cap_nt > prof->lookups_reserve_nt[prio] &&
	    (prof->boundary_lookups.cap_nt - prof->lookups_reserve_nt[prio]) / SL_TOKEN < room)
		room = (prof->boundary_lookups.cap_nt - prof->lookups_reserve_nt[prio]) / SL_TOKEN;

	const __u64 window = prof->sticky_window_ns;
	const int closing = (flags & SL_SETTLE_CLOSE) != 0;
	if (closing && now_ns >= cs->window_start_ns + 8 * window && cs->window_rejected == 0) {
		cs->threshold = SL_RANK_ONE; /* idle: everyone again */
		cs->band_top = SL_RANK_ONE;
		cs->avg_offered = 0;
		cs->avg_others = 0;
		cs->avg_admitted = 0;
		cs->trim = 0;
		cs->keep = 0;
		sl_sticky_thin_forget(cs);
		place = 0;
	} else if (closing && window_offered > 0) {
		/* Rates (per second, x SL_AVG_ONE) of the window: the lookups
		 * offered, and what other classes of the same or higher priority
		 * took from the boundary. */
		__u64 us = (now_ns - cs->window_start_ns) / 1000;
		if (us == 0)
			us = 1;
		const __u64 offered = (__u64)window_offered * SL_AVG_ONE * 1000000 / us;
		const __u64 admitted = (__u64)cs->window_admitted * SL_AVG_ONE * 1000000 / us;
		__u64 others = sl_taken_from(bs, prio) - cs->window_taken;
		others = others > cs->window_admitted ? others - cs->window_admitted : 0;
		others = others < (1ULL << 32) ? others * SL_AVG_ONE * 1000000 / us : ~0ULL >> 8;
		if (sl_off_by_half(offered, cs->avg_offered) ||
		    sl_off_by_half(others, cs->avg_others)) {
			cs->avg_offered = offered;
			cs->avg_others = others;
			cs->avg_admitted = admitted;
		} else {
			cs->avg_offered = cs->avg_offered - cs->avg_offered / 16 + offered / 16;
			cs->avg_others = cs->avg_others - cs->avg_others / 16 + others / 16;
			cs->avg_admitted = cs->avg_admitted - cs->avg_admitted / 16 + admitted / 16;
		}
		__u64 level = sl_headroom(&cs->bucket, &cp->bucket, 0);
		__u64 cap = cp->bucket.enabled ? cp->bucket.rate_per_sec * SL_AVG_ONE : ~0ULL;
		if (prof->boundary_lookups.enabled) {
			__u64 b = prof->boundary_lookups.rate_per_sec * SL_AVG_ONE;
			b = b > cs->avg_others ? b - cs->avg_others : 0;
			if (b < cap) {
				cap = b;
				/* above this priority's reserve */
				level = sl_headroom(&bs->lookups, &prof->boundary_lookups,
						    prof->lookups_reserve_nt[prio]);
			}
		}
		cs->capacity = cap == ~0ULL ? cs->avg_offered : cap; /* ~0: nothing limits it */
		/* What the estimates miss (retries of the shed, say; a bucket too
		 * small for the arrivals' bursts) shows as admitting less than
		 * the capacity, or as refusals under the threshold while admitting
		 * it all. The trim corrects the target for it. */
		if (cs->threshold < SL_RANK_ONE) {
			/* short of it while the limiting bucket holds a third of its
			 * room above the reserve: the class, not higher priorities,
			 * left those tokens */
			const int short_of = cs->avg_admitted < cs->capacity - cs->capacity / 32 &&
					     level >= SL_LEVEL_ONE / 3;
			if (short_of && cs->avg_admitted < cs->capacity - cs->capacity / 8)
				cs->trim += 4 * SL_TRIM_STEP; /* far short: catch up faster */
			else if (short_of || (cs->window_rejected == 0 && level >= SL_LEVEL_ONE))
				cs->trim += SL_TRIM_STEP;
			else if ((__u64)cs->window_rejected * 64 > cs->window_admitted)
				cs->trim -= SL_TRIM_STEP;
			if (cs->trim > SL_TRIM_MAX)
				cs->trim = SL_TRIM_MAX;
			if (cs->trim < -SL_TRIM_MAX)
				cs->trim = -SL_TRIM_MAX;
		}
		if (!place && (cs->threshold < SL_RANK_ONE || cs->window_rejected > 0))
			place = 1;
	}
	/* The lookups counted since by the threshold and band they were counted
	 * under (before they move), and the weight of the lookups not admitted. */
	sl_sticky_fold(cs);
	if (closing)
		sl_sticky_thin(cs);
	if (place) {
		sl_sticky_estimate(cs);
		sl_sticky_place(cs, room, place == 1);
	}
	if (!closing)
		return;
	cs->window_start_ns = now_ns;
	cs->window_taken = sl_taken_from(bs, prio);
	SL_COUNT_ADD(&cs->window_offered, 0U - window_offered);
	cs->window_admitted = 0;
	cs->window_rejected = 0;
}
