/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sticky controller's side that runs once a window (sticky.h has the
 * side every lookup runs): the weight of the lookups not admitted, the
 * placement of the threshold and the band on the demand by rank, and the
 * window's close (sl_sticky_settle), which every dataplane calls after the
 * decision of a lookup of a sticky class, under the state lock.
 */
#pragma once

#include "sticky.h"

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

/* Forgets what sl_sticky_thin would compare. */
SL_INLINE void sl_sticky_thin_forget(struct sl_class_state *cs)
{
	cs->thin_below = 0;
	cs->thin_above = 0;
	cs->thin_n_below = 0;
	cs->thin_n_above = 0;
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
 * below the threshold (sources whose lookups reach the budgets: admitted,
 * a client retries nothing) and above what the band and the overflow admit
 * (sources only shed, with every retry): the ratio of the lookups per rank
 * counted in the two is the weight that makes them equal (sl_sticky_fold).
 * It is taken at a window's close once both have SL_STICKY_MIN_EVENTS (over
 * one window or more). keep moves half the way down to 3/2 of it, or an
 * eighth of the way up, and stays at most 1. Open loop the ratio is 1, give
 * or take where a few sources' ranks fall: with 100 sources it stays at
 * 0.65-0.7 for a whole epoch at times, which the 3/2 leaves out. A weight
 * too high only slows the threshold on its way up (a shed source counts 3/2
 * of what it asks); one too low would overshoot, and the refusals under the
 * threshold are retried too (they count below: the weight moves up slowly).
 * Returns 1 when it used the counts (or dropped them), 0 to go on counting.
 */
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
