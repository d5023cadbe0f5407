/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Source keys, ranks and the sticky-shedding controller.
 *
 * When a class must shed part of its demand, it sheds the same sources for a
 * whole epoch: every source gets rank = hash(source, epoch salt) in [0, 65536)
 * and only ranks below the class's threshold reach the budgets. The threshold
 * adapts once per window: cut to the fraction the budgets accepted when they
 * refused some lookups, probed upwards when they refused none. Epochs rotate
 * the salt so nobody is shut out for long.
 */
#pragma once

#include "abi.h"
#include "bucket.h"

#define SL_RANK_MIN 64U /* the threshold never falls below this: nobody is locked out */

static inline __u64 sl_mix64(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Masks addr (network order) to prefix_len bits in place. len is 4 or 16. */
static inline void sl_mask_addr(__u8 *addr, __u32 len, __u32 prefix_len)
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

static inline void sl_source_key_make(struct sl_source_key *k, const struct sl_meta *m,
				      const struct sl_class_params *cp, __u32 class_id)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->addr_be, m->src_be, 16);
	k->family = m->family;
	k->class_id = (__u8)class_id;
	k->prefix_len = m->family == SL_FAMILY_V4 ? cp->src_prefix_v4 : cp->src_prefix_v6;
	sl_mask_addr(k->addr_be, m->family == SL_FAMILY_V4 ? 4 : 16, k->prefix_len);
}

static inline __u64 sl_key_hash(const struct sl_source_key *k, __u64 salt)
{
	__u64 w0 = 0, w1 = 0;
	__builtin_memcpy(&w0, k->addr_be, 8);
	__builtin_memcpy(&w1, k->addr_be + 8, 8);
	__u64 h = sl_mix64(salt ^ w0);
	h = sl_mix64(h ^ w1);
	return sl_mix64(h ^ ((__u64)k->family << 16 | (__u64)k->class_id << 8 | k->prefix_len));
}

/* Rank of a source in the epoch that contains now_ns, in [0, SL_RANK_ONE). */
static inline __u32 sl_rank(const struct sl_profile *prof, const struct sl_source_key *k,
			    __u64 now_ns)
{
	__u64 epoch = prof->sticky_epoch_ns ? now_ns / prof->sticky_epoch_ns : 0;
	__u64 salt = sl_mix64(prof->seed ^ (epoch * 0x9e3779b97f4a7c15ULL));
	return (__u32)(sl_key_hash(k, salt) >> 48);
}

/* Closes the controller window when it has run its length. Call before using
 * the threshold for a lookup. */
static inline void sl_sticky_tick(const struct sl_profile *prof, const struct sl_class_params *cp,
				  struct sl_class_state *cs, __u64 now_ns)
{
	if (now_ns < cs->window_start_ns + prof->sticky_window_ns)
		return;
	__u64 thr = cs->threshold;
	if (now_ns >= cs->window_start_ns + 8 * prof->sticky_window_ns &&
	    cs->window_rejected == 0) {
		thr = SL_RANK_ONE; /* idle for a while: start over admitting everyone */
	} else if (cs->window_rejected > 0 && cs->window_passed > 0) {
		/* Keep the fraction of ranks the budgets accepted, less a 1/32 margin so
		 * that the boundary sources are not refused half of the time. */
		__u64 ok = cs->window_passed - cs->window_rejected;
		thr = thr * ok / cs->window_passed;
		thr -= thr / 32;
	} else if (cs->window_rejected == 0 &&
		   (!cp->bucket.enabled || cs->bucket.tokens_nt >= cp->bucket.cap_nt)) {
		/* Nothing refused and the class bucket is full: there is room, probe. */
		__u64 step = thr / 64;
		thr += step > SL_RANK_ONE / 1024 ? step : SL_RANK_ONE / 1024;
	}
	if (thr > SL_RANK_ONE)
		thr = SL_RANK_ONE;
	if (thr < SL_RANK_MIN)
		thr = SL_RANK_MIN;
	cs->threshold = (__u32)thr;
	cs->window_start_ns = now_ns;
	cs->window_passed = 0;
	cs->window_rejected = 0;
}
