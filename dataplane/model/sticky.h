/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source keys, ranks and the sticky-shedding controller.
 *
 * When a class must shed part of its demand, it sheds the same sources for a
 * whole epoch: every source gets rank = hash(source, its epoch's salt) in
 * [0, 65536); ranks below the class's threshold reach the budgets, a band
 * just above it takes what they leave over (sl_sticky_filter), the rest is
 * shed. The threshold adapts once per window (sl_sticky_tick). Each source's
 * epoch rotates its salt at its own phase, so nobody is shut out for long and
 * the admitted set never changes all at once.
 */
#pragma once

#include "abi.h"
#include "bucket.h"

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

/* The source's sticky epoch that contains now_ns (0 without epochs). Every
 * source turns over at its own point of the epoch (a phase drawn from its
 * key), so the admitted set changes a few sources at a time rather than all
 * at once: no jolt to the budgets, and no minute at which every session in
 * progress is cut. */
SL_INLINE __u64 sl_source_epoch(const struct sl_profile *prof, const struct sl_source_key *k,
				__u64 now_ns)
{
	if (!prof->sticky_epoch_ns)
		return 0;
	__u64 phase = sl_key_hash(k, ~prof->seed) % prof->sticky_epoch_ns;
	return (now_ns + phase) / prof->sticky_epoch_ns;
}

/* Rank of a source in its epoch that contains now_ns, in [0, SL_RANK_ONE). */
SL_INLINE __u32 sl_rank(const struct sl_profile *prof, const struct sl_source_key *k, __u64 now_ns)
{
	__u64 salt =
		sl_mix64(prof->seed ^ (sl_source_epoch(prof, k, now_ns) * 0x9e3779b97f4a7c15ULL));
	return (__u32)(sl_key_hash(k, salt) >> 48);
}

#define SL_STICKY_MIN_EVENTS 32	   /* lookups a window needs before it closes early */
#define SL_LEVEL_ONE	     1024U /* fixed-point 1.0 for bucket headroom */

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

/* Tokens (in nanotokens) a budget could have given the class during the
 * window: what it admitted plus what the bucket gained. ~0 when it does not
 * limit the class: unlimited, or full (refill beyond the burst was lost, so
 * the gain says nothing about what the class could have had). */
SL_INLINE __u64 sl_window_capacity(const struct sl_bucket *b, const struct sl_bucket_params *p,
				   __u64 start_nt, __u64 admitted)
{
	if (!p->enabled || b->tokens_nt >= p->cap_nt)
		return ~0ULL;
	/* A retune that lowered the burst cut the tokens above it off: they were
	 * never the class's to use, so the window starts at most full. */
	if (start_nt > p->cap_nt)
		start_nt = p->cap_nt;
	if (admitted > (~0ULL - b->tokens_nt) / SL_TOKEN)
		return ~0ULL; /* more than any bucket holds: not a limit */
	__u64 used = admitted * SL_TOKEN + b->tokens_nt;
	return used > start_nt ? used - start_nt : 0;
}

/* Lookups admitted so far at priorities below (numerically above) prio. */
SL_INLINE __u64 sl_lower_taken(const struct sl_boundary_state *bs, __u32 prio)
{
	__u64 sum = 0;
	for (__u32 q = 0; q < SL_PRIORITIES; q++)
		if (q > prio)
			sum += bs->lookups_by_prio[q];
	return sum;
}

/*
 * The band. Sources under the threshold reach the budgets; the band, the
 * ranks from the threshold to an eighth above it (and at least up to the
 * lowest source seen above it, so that with a few sources the band is the
 * source at the threshold), gets what they leave over. Levels of the
 * limiting bucket, as a share of its room above the class's reserve:
 *  - above 1/3 the band is admitted: the sources under the threshold keep
 *    the bottom third as a margin for the noise of their arrivals;
 *  - above 9/16 anyone is admitted: those tokens would otherwise overflow
 *    (the source at the threshold just turned over to a new rank, say);
 *  - the threshold rises only when two windows in a row end above 17/32
 *    with the band fully admitted;
 *  - refusals of more than 1/8 of what was admitted are heavy: the
 *    threshold falls at once.
 */
#define SL_BAND_DIV	  8
#define SL_BAND_FILL_DIV  3
#define SL_OVERFLOW_LEVEL (SL_LEVEL_ONE * 9 / 16)
#define SL_RISE_LEVEL	  (SL_LEVEL_ONE * 17 / 32)
#define SL_HEAVY_DIV	  8

/* The bucket holds more than a third of its room above the reserve (a full
 * bucket always does). */
SL_INLINE int sl_left_over(const struct sl_bucket *b, const struct sl_bucket_params *p,
			   __u64 reserve_nt)
{
	if (!p->enabled)
		return 1;
	__u64 need = p->cap_nt > reserve_nt
			     ? reserve_nt + (p->cap_nt - reserve_nt) / SL_BAND_FILL_DIV + SL_TOKEN
			     : p->cap_nt;
	if (need > p->cap_nt)
		need = p->cap_nt;
	return b->tokens_nt >= need && sl_bucket_has(b, reserve_nt);
}

SL_INLINE __u32 sl_band_top(const struct sl_class_state *cs)
{
	__u32 top = cs->threshold + cs->threshold / SL_BAND_DIV;
	if (cs->marginal < SL_RANK_ONE && cs->marginal > top)
		top = cs->marginal;
	return top;
}

#define SL_STICKY_ADMIT 0 /* under the threshold, or in the band with tokens left over */
#define SL_STICKY_SHED	1 /* above the band, or in it with too little left over */

/*
 * The rank filter for one lookup of a source of rank `rank`, after
 * sl_sticky_tick: every source under the threshold reaches the budgets and
 * every source above the band is shed, all or none; the band gets the
 * tokens the others leave over, so the budgets never sit unused while the
 * class sheds, and the threshold can hold still through the noise of
 * arrivals.
 */
SL_INLINE int sl_sticky_filter(const struct sl_profile *prof, const struct sl_class_params *cp,
			       struct sl_class_state *cs, const struct sl_boundary_state *bs,
			       __u32 rank)
{
	if (rank < cs->threshold) {
		if (rank + 1 > cs->window_top)
			cs->window_top = rank + 1;
		return SL_STICKY_ADMIT;
	}
	if (rank < cs->window_low) {
		cs->window_low2 = cs->window_low;
		cs->window_low = rank;
	} else if (rank > cs->window_low && rank < cs->window_low2) {
		cs->window_low2 = rank;
	}
	__u32 prio = cp->priority & (SL_PRIORITIES - 1);
	if (rank > sl_band_top(cs)) {
		/* Above the band: shed, unless the tokens would overflow; then
		 * whoever asks gets one, and counts as the band. */
		if (!(sl_headroom(&cs->bucket, &cp->bucket, 0) >= SL_OVERFLOW_LEVEL &&
		      sl_headroom(&bs->lookups, &prof->boundary_lookups,
				  prof->lookups_reserve_nt[prio]) >= SL_OVERFLOW_LEVEL &&
		      (!prof->boundary_packets.enabled ||
		       sl_bucket_has(&bs->packets, prof->packets_reserve_nt[prio])))) {
			cs->window_ranked_out++;
			return SL_STICKY_SHED;
		}
	}
	cs->window_band++;
	if (sl_left_over(&cs->bucket, &cp->bucket, 0) &&
	    sl_left_over(&bs->lookups, &prof->boundary_lookups, prof->lookups_reserve_nt[prio]) &&
	    sl_left_over(&bs->packets, &prof->boundary_packets, prof->packets_reserve_nt[prio]))
		return SL_STICKY_ADMIT;
	cs->window_band_shed++;
	return SL_STICKY_SHED;
}

/*
 * Closes the controller window when it has run its length (and, at low rates,
 * seen SL_STICKY_MIN_EVENTS lookups or 4 lengths). Call before using the
 * threshold for a lookup, after refilling the class and boundary buckets.
 *
 * The threshold moves only when the band cannot take up the difference;
 * holding still otherwise is what keeps the sources under it admitted, and
 * the ones above the band shed, for their whole epoch:
 *  - up, when two windows in a row the band got every lookup it asked for
 *    and the limiting bucket ended above SL_RISE_LEVEL (or at once when a
 *    budget ended the window full: tokens were lost): past the source at
 *    the threshold at least, and the next one becomes it;
 *  - down, when the budgets refused sources under the threshold and the
 *    band got less than a quarter of its lookups, two windows in a row or
 *    once heavily (then at least onto the highest source under it);
 *  - to the target at once in a surge (refusals, and the target below 3/4
 *    of the threshold);
 *  - with nobody above it, toward the target; two windows in a row with the
 *    budgets full: it doubles; after eight idle windows everyone is
 *    admitted again.
 *
 * The target sets the size of a step (an eighth of the way to it, at least
 * 1/64 of the threshold; a quarter of the threshold when tokens were lost):
 *   target = capacity of the window / lookups offered in it,
 * where the capacity of a budget is what the class took from it plus what the
 * bucket gained (exactly the refill for the class bucket; for the shared
 * boundary the refill less what classes of the same or higher priority took,
 * since whatever lower priorities took this class could have had), and the
 * offered count includes lookups the rank filter shed, so the estimate does
 * not depend on the threshold it corrects; it is nudged by up to 1/8 to hold
 * the limiting bucket half full (the boundary: above this priority's
 * reserve).
 */
SL_INLINE void sl_sticky_tick(const struct sl_profile *prof, const struct sl_class_params *cp,
			      struct sl_class_state *cs, const struct sl_boundary_state *bs,
			      __u64 now_ns)
{
	__u64 window = prof->sticky_window_ns;
	if (now_ns < cs->window_start_ns + window)
		return;
	if (cs->window_offered < SL_STICKY_MIN_EVENTS &&
	    now_ns < cs->window_start_ns + 4 * window && cs->window_offered > 0)
		return;

	__u32 prio = cp->priority & (SL_PRIORITIES - 1);
	__u64 level = sl_headroom(&cs->bucket, &cp->bucket, 0);
	__u64 boundary =
		sl_headroom(&bs->lookups, &prof->boundary_lookups, prof->lookups_reserve_nt[prio]);
	int full = cs->window_rejected == 0 && level >= SL_LEVEL_ONE && boundary >= SL_LEVEL_ONE;
	cs->full_windows = full ? cs->full_windows + 1 : 0;

	__u64 target = SL_RANK_ONE;
	__u64 nudge = level;
	int known = 0; /* the budgets limited the class: the target means something */
	if (cs->window_offered > 0) {
		__u64 cap = sl_window_capacity(&cs->bucket, &cp->bucket, cs->window_class_nt,
					       cs->window_admitted);
		/* The class outranks lower priorities: what they took was its for the taking. */
		__u64 lower = sl_lower_taken(bs, prio) - cs->window_lower_taken;
		__u64 cap_b =
			sl_window_capacity(&bs->lookups, &prof->boundary_lookups,
					   cs->window_boundary_nt, cs->window_admitted + lower);
		if (cap_b < cap) {
			cap = cap_b;
			nudge = boundary; /* above this priority's reserve */
		}
		if (cap != ~0ULL) {
			known = 1;
			/* capacity in 2^-10 tokens: enough precision, no overflow */
			target = (cap / (SL_TOKEN >> 10)) * SL_RANK_ONE /
				 ((__u64)cs->window_offered << 10);
			/* -1/8 .. +1/8 to hold the limiting bucket half full */
			target = target + target * nudge / (4 * SL_LEVEL_ONE) - target / 8;
		}
		if (target > SL_RANK_ONE)
			target = SL_RANK_ONE;
	}

	__u64 thr = cs->threshold;
	const __u64 old = thr;
	const __u32 top = cs->window_top; /* rank + 1 */
	const __u32 band = cs->window_band, band_shed = cs->window_band_shed;
	__u64 step = thr / 64 + 1;
	if (now_ns >= cs->window_start_ns + 8 * window && cs->window_rejected == 0) {
		thr = SL_RANK_ONE;
	} else if (cs->full_windows >= 2) {
		thr *= 2;
	} else if (cs->window_offered == 0) {
		/* nothing to learn from */
	} else if (cs->window_rejected > 0) {
		const int heavy = cs->window_rejected * SL_HEAVY_DIV > cs->window_admitted;
		const int starved = band == 0 || 4 * band_shed > 3 * band;
		cs->pressure = starved ? (cs->pressure < 0 ? cs->pressure - 1 : -1) : 0;
		if (4 * target < 3 * thr) {
			thr = target; /* a surge: refusals and far too open */
			cs->pressure = 0;
		} else if (starved && (heavy || cs->pressure <= -2)) {
			if (target < thr && (thr - target) / 8 > step)
				step = (thr - target) / 8;
			thr = thr > step ? thr - step : 0;
			if (heavy && top != 0 && top - 1 < thr)
				thr = top - 1; /* the highest source under it is at it now */
			cs->pressure = 0;
		}
	} else if (band + cs->window_ranked_out == 0) {
		thr = target > thr ? thr + (target - thr) / 8 : thr - (thr - target) / 8;
		cs->pressure = 0;
	} else if ((band > 0 && band_shed > 0) || nudge < SL_RISE_LEVEL) {
		cs->pressure = 0; /* the band is taking what is left over: hold */
	} else {
		cs->pressure = cs->pressure > 0 ? cs->pressure + 1 : 1;
		if (cs->pressure >= 2 || !known) {
			if (known && target > thr && (target - thr) / 8 > step)
				step = (target - thr) / 8;
			if (!known && thr / 4 > step)
				step = thr / 4;
			if (step > thr / 2 + 1)
				step = thr / 2 + 1;
			thr += step;
			if (band > 0 && cs->marginal < SL_RANK_ONE && thr <= cs->marginal)
				thr = cs->marginal + 1;
			cs->pressure = 0;
		}
	}
	if (thr > SL_RANK_ONE)
		thr = SL_RANK_ONE;
	if (thr < SL_RANK_MIN)
		thr = SL_RANK_MIN;

	/* The source at the new threshold: the lowest rank at or above it this
	 * window saw (the next one when it rose past the lowest), or the highest
	 * source under the old one when it fell onto it. */
	if (cs->window_low >= thr)
		cs->marginal = cs->window_low;
	else if (cs->window_low2 >= thr && cs->window_low2 < SL_RANK_ONE)
		cs->marginal = cs->window_low2;
	else
		cs->marginal = SL_RANK_ONE;
	if (thr < old && top != 0 && top - 1 >= thr && top - 1 < cs->marginal)
		cs->marginal = top - 1;
	cs->threshold = (__u32)thr;
	cs->window_start_ns = now_ns;
	cs->window_class_nt = cs->bucket.tokens_nt;
	cs->window_boundary_nt = bs->lookups.tokens_nt;
	cs->window_lower_taken = sl_lower_taken(bs, prio);
	cs->window_offered = 0;
	cs->window_admitted = 0;
	cs->window_rejected = 0;
	cs->window_low = SL_RANK_ONE;
	cs->window_low2 = SL_RANK_ONE;
	cs->window_top = 0;
	cs->window_band = 0;
	cs->window_band_shed = 0;
	cs->window_ranked_out = 0;
}
