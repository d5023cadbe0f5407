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

/* Rank of a source in the epoch that contains now_ns, in [0, SL_RANK_ONE). */
SL_INLINE __u32 sl_rank(const struct sl_profile *prof, const struct sl_source_key *k, __u64 now_ns)
{
	__u64 epoch = prof->sticky_epoch_ns ? now_ns / prof->sticky_epoch_ns : 0;
	__u64 salt = sl_mix64(prof->seed ^ (epoch * 0x9e3779b97f4a7c15ULL));
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

/*
 * Closes the controller window when it has run its length (and, at low rates,
 * seen SL_STICKY_MIN_EVENTS budget outcomes or 4 lengths). Call before using
 * the threshold for a lookup, after refilling the class and boundary buckets.
 *
 * The threshold must hold still for sources to be treated consistently, so it
 * follows a smoothed estimate rather than one window's luck:
 *   target = capacity of the window / lookups offered in it,
 * where the capacity of a budget is what the class took from it plus what the
 * bucket gained (exactly the refill for the class bucket; for the shared
 * boundary the refill less what classes of the same or higher priority took,
 * since whatever lower priorities took this class could have had), and the
 * offered count includes lookups the rank filter shed, so the estimate does
 * not depend on the threshold it corrects. The target is nudged by up to 1/8
 * to hold the limiting bucket half full (the boundary: above this priority's
 * reserve), which keeps a margin for the noise of arrivals without wasting
 * capacity; the threshold moves an eighth of the way to it each window.
 * Two events move it at once:
 *  - a surge: the budgets refused lookups and the target is below 3/4 of
 *    the threshold: it drops to the target;
 *  - the end of one: two windows in a row ended with the budgets full and
 *    nothing refused: it doubles.
 * After eight idle windows everyone is admitted again.
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

	__u64 thr = cs->threshold;
	if (now_ns >= cs->window_start_ns + 8 * window && cs->window_rejected == 0) {
		thr = SL_RANK_ONE;
	} else if (cs->full_windows >= 2) {
		thr *= 2;
	} else if (cs->window_offered > 0) {
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
		__u64 target = SL_RANK_ONE;
		if (cap != ~0ULL) {
			/* capacity in 2^-10 tokens: enough precision, no overflow */
			target = (cap / (SL_TOKEN >> 10)) * SL_RANK_ONE /
				 ((__u64)cs->window_offered << 10);
			/* -1/8 .. +1/8 to hold the limiting bucket half full */
			target = target + target * nudge / (4 * SL_LEVEL_ONE) - target / 8;
		}
		if (target > SL_RANK_ONE)
			target = SL_RANK_ONE;
		if (cs->window_rejected > 0 && 4 * target < 3 * thr)
			thr = target; /* a surge: refusals and far too open */
		else
			thr = target > thr ? thr + (target - thr) / 8 : thr - (thr - target) / 8;
	}
	if (thr > SL_RANK_ONE)
		thr = SL_RANK_ONE;
	if (thr < SL_RANK_MIN)
		thr = SL_RANK_MIN;
	cs->threshold = (__u32)thr;
	cs->window_start_ns = now_ns;
	cs->window_class_nt = cs->bucket.tokens_nt;
	cs->window_boundary_nt = bs->lookups.tokens_nt;
	cs->window_lower_taken = sl_lower_taken(bs, prio);
	cs->window_offered = 0;
	cs->window_admitted = 0;
	cs->window_rejected = 0;
}
