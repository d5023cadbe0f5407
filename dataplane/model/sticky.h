/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source keys, ranks and the sticky-shedding controller.
 *
 * When a class must shed part of its demand, it sheds the same sources for a
 * whole epoch: every source gets rank = hash(source, epoch salt) in [0, 65536)
 * and only ranks below the class's threshold reach the budgets. The threshold
 * adapts once per window (see sl_sticky_tick). Epochs rotate the salt so
 * nobody is shut out for long.
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

/* The sticky epoch that contains now_ns (0 without epochs). */
SL_INLINE __u64 sl_sticky_epoch(const struct sl_profile *prof, __u64 now_ns)
{
	return prof->sticky_epoch_ns ? now_ns / prof->sticky_epoch_ns : 0;
}

/* Rank of a source in the epoch that contains now_ns, in [0, SL_RANK_ONE). */
SL_INLINE __u32 sl_rank(const struct sl_profile *prof, const struct sl_source_key *k, __u64 now_ns)
{
	__u64 salt = sl_mix64(prof->seed ^ (sl_sticky_epoch(prof, now_ns) * 0x9e3779b97f4a7c15ULL));
	return (__u32)(sl_key_hash(k, salt) >> 48);
}

#define SL_STICKY_MIN_EVENTS 32	   /* budget outcomes a window needs before it closes early */
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

/* A bucket has tokens left over for the source at the threshold: more than
 * halfway from the class's reserve to the burst (a full bucket always does).
 * The lower half is the sources under the threshold's margin for the noise
 * of their arrivals; what rises above it would otherwise be lost. */
SL_INLINE int sl_left_over(const struct sl_bucket *b, const struct sl_bucket_params *p,
			   __u64 reserve_nt)
{
	if (!p->enabled)
		return 1;
	__u64 need = p->cap_nt > reserve_nt ? reserve_nt + (p->cap_nt - reserve_nt) / 2 + SL_TOKEN
					     : p->cap_nt;
	if (need > p->cap_nt)
		need = p->cap_nt;
	return b->tokens_nt >= need && sl_bucket_has(b, reserve_nt);
}

#define SL_STICKY_ADMIT	   0 /* the source ranks under the threshold */
#define SL_STICKY_MARGINAL 1 /* the source at the threshold: admitted from what is left over */
#define SL_STICKY_SHED	   2 /* the source ranks above the threshold */

/*
 * The rank filter for one lookup of a source of rank `rank`, after
 * sl_sticky_tick. Every source under the threshold is admitted to the
 * budgets, every source above it is shed, all or none, except the source at
 * the threshold (the lowest rank at or above it the last window saw, or a
 * lower one seen since): it gets the tokens the others leave over, so the
 * budgets never sit unused for want of a source, and granularity never costs
 * more than that one source's share.
 */
SL_INLINE int sl_sticky_filter(const struct sl_profile *prof, const struct sl_class_params *cp,
			       struct sl_class_state *cs, const struct sl_boundary_state *bs,
			       __u32 rank, __u64 now_ns)
{
	__u32 epoch = (__u32)sl_sticky_epoch(prof, now_ns);
	if (cs->rank_epoch != epoch) { /* new ranks: nobody is known to be at the threshold */
		cs->rank_epoch = epoch;
		cs->marginal = SL_RANK_ONE;
		cs->window_next = SL_RANK_ONE;
		cs->window_top = 0;
	}
	if (rank < cs->threshold) {
		if (rank + 1 > cs->window_top)
			cs->window_top = rank + 1;
		return SL_STICKY_ADMIT;
	}
	if (cs->marginal == SL_RANK_ONE || rank > cs->marginal) {
		if (rank < cs->window_next)
			cs->window_next = rank;
		cs->window_ranked_out++;
		return SL_STICKY_SHED;
	}
	if (rank < cs->marginal) { /* a lower source: it is the one at the threshold now */
		if (cs->marginal < cs->window_next)
			cs->window_next = cs->marginal;
		cs->marginal = rank;
	}
	cs->window_marginal++;
	__u32 prio = cp->priority & (SL_PRIORITIES - 1);
	if (sl_left_over(&cs->bucket, &cp->bucket, 0) &&
	    sl_left_over(&bs->lookups, &prof->boundary_lookups, prof->lookups_reserve_nt[prio]) &&
	    sl_left_over(&bs->packets, &prof->boundary_packets, prof->packets_reserve_nt[prio]))
		return SL_STICKY_ADMIT;
	cs->window_marginal_shed++;
	return SL_STICKY_SHED;
}

/*
 * Closes the controller window when it has run its length (and, at low rates,
 * seen SL_STICKY_MIN_EVENTS budget outcomes or 4 lengths). Call before using
 * the threshold for a lookup, after refilling the class and boundary buckets.
 *
 * The controller is work-conserving: it sheds by rank only what the budgets
 * cannot take, and checks each window what the class actually got.
 *
 * An estimate sets the scale:
 *   target = capacity of the window / lookups offered in it,
 * where the capacity of a budget is what the class took from it plus what the
 * bucket gained (exactly the refill for the class bucket; for the shared
 * boundary the refill less what classes of the same or higher priority took,
 * since whatever lower priorities took this class could have had), and the
 * offered count includes lookups the rank filter shed, so the estimate does
 * not depend on the threshold it corrects. The target is nudged by up to 1/8
 * to hold the limiting bucket half full (the boundary: above this priority's
 * reserve), the level above which the source at the threshold is admitted.
 *
 * The outcome of the window then moves the threshold:
 *  - the budgets refused sources under the threshold: far too open (the
 *    target is below 3/4 of the threshold, a surge) it drops to the target;
 *    otherwise an eighth of the way to it, and when the refusals were more
 *    than 1/32 of what was admitted, at least to the highest source under it
 *    (that source becomes the one at the threshold);
 *  - the budgets refused nobody and the source at the threshold was shed
 *    some: it is taking what is left over, and the threshold holds;
 *  - otherwise the budgets can take more: the threshold rises an eighth of
 *    the way to the target when that is higher (or follows it down when
 *    nobody was shed at all), and past the source at the threshold if that
 *    source asked and got everything: the next source becomes the one at
 *    the threshold;
 *  - two windows in a row with the budgets full: it doubles; after eight
 *    idle windows everyone is admitted again.
 */
SL_INLINE void sl_sticky_tick(const struct sl_profile *prof, const struct sl_class_params *cp,
			      struct sl_class_state *cs, const struct sl_boundary_state *bs,
			      __u64 now_ns)
{
	__u64 window = prof->sticky_window_ns;
	if (now_ns < cs->window_start_ns + window)
		return;
	__u32 events = cs->window_admitted + cs->window_rejected;
	if (events < SL_STICKY_MIN_EVENTS && now_ns < cs->window_start_ns + 4 * window &&
	    cs->window_offered > 0)
		return;

	__u32 prio = cp->priority & (SL_PRIORITIES - 1);
	__u64 level = sl_headroom(&cs->bucket, &cp->bucket, 0);
	__u64 boundary =
		sl_headroom(&bs->lookups, &prof->boundary_lookups, prof->lookups_reserve_nt[prio]);
	int full = cs->window_rejected == 0 && level >= SL_LEVEL_ONE && boundary >= SL_LEVEL_ONE;
	cs->full_windows = full ? cs->full_windows + 1 : 0;

	__u64 target = SL_RANK_ONE;
	if (cs->window_offered > 0) {
		__u64 cap = sl_window_capacity(&cs->bucket, &cp->bucket, cs->window_class_nt,
					       cs->window_admitted);
		/* The class outranks lower priorities: what they took was its for the taking. */
		__u64 lower = sl_lower_taken(bs, prio) - cs->window_lower_taken;
		__u64 cap_b =
			sl_window_capacity(&bs->lookups, &prof->boundary_lookups,
					   cs->window_boundary_nt, cs->window_admitted + lower);
		__u64 nudge = level;
		if (cap_b < cap) {
			cap = cap_b;
			nudge = boundary; /* above this priority's reserve */
		}
		if (cap != ~0ULL) {
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
	if (now_ns >= cs->window_start_ns + 8 * window && cs->window_rejected == 0) {
		thr = SL_RANK_ONE;
	} else if (cs->full_windows >= 2) {
		thr *= 2;
	} else if (cs->window_offered == 0) {
		/* nothing to learn from */
	} else if (cs->window_rejected > 0) {
		if (4 * target < 3 * thr) {
			thr = target; /* a surge: refusals and far too open */
		} else {
			if (target < thr)
				thr -= (thr - target) / 8;
			if (top != 0 && top - 1 < thr && cs->window_rejected * 32 > cs->window_admitted)
				thr = top - 1;
		}
	} else if (cs->window_marginal_shed == 0 || 16 * cs->window_marginal < cs->window_admitted) {
		/* Nobody refused, and the source at the threshold got all it
		 * asked for (the budgets can take more), or is too small to take
		 * up what the others leave: follow the estimate. */
		thr = target > thr ? thr + (target - thr) / 8 : thr - (thr - target) / 8;
		if (cs->window_marginal > 0 && cs->marginal < SL_RANK_ONE && thr <= cs->marginal)
			thr = cs->marginal + 1;
	}
	/* else the source at the threshold is taking what is left over: hold. */
	if (thr > SL_RANK_ONE)
		thr = SL_RANK_ONE;
	if (thr < SL_RANK_MIN)
		thr = SL_RANK_MIN;

	/* Who is at the threshold now: the lowest source above the old one seen
	 * in the window when it rose (or when nobody was known), the highest
	 * source under it when it fell onto it; otherwise nobody until a window
	 * has seen who is. */
	if (thr > old || cs->marginal == SL_RANK_ONE)
		cs->marginal = cs->window_next >= thr ? cs->window_next : SL_RANK_ONE;
	else if (thr < old)
		cs->marginal = top != 0 && top - 1 == thr ? (__u32)thr : SL_RANK_ONE;
#ifdef SL_STICKY_TRACE
	fprintf(stderr, "t=%.1f thr %llu->%llu tgt %llu off %u adm %u rej %u marg %u/%u shed %u out %u lvl %llu\n",
		now_ns / 1e9, (unsigned long long)old, (unsigned long long)thr, (unsigned long long)target,
		cs->window_offered, cs->window_admitted, cs->window_rejected, cs->window_marginal,
		cs->marginal, cs->window_marginal_shed, cs->window_ranked_out, (unsigned long long)level);
#endif
	cs->threshold = (__u32)thr;
	cs->window_start_ns = now_ns;
	cs->window_class_nt = cs->bucket.tokens_nt;
	cs->window_boundary_nt = bs->lookups.tokens_nt;
	cs->window_lower_taken = sl_lower_taken(bs, prio);
	cs->window_offered = 0;
	cs->window_admitted = 0;
	cs->window_rejected = 0;
	cs->window_next = SL_RANK_ONE;
	cs->window_top = 0;
	cs->window_marginal = 0;
	cs->window_marginal_shed = 0;
	cs->window_ranked_out = 0;
}
