/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sticky class's demand by rank (struct sl_rank_hist): bins of
 * 2^SL_RANK_BIN_SHIFT ranks, summed in groups, counted per epoch and walked
 * by the controller (sticky.h) to place its threshold and band.
 */
#pragma once

#include "abi.h"

/* Demand by rank (struct sl_rank_hist): one bin, atomically (lookups shed
 * without the lock count here too); the groups are summed by sl_hist_regroup. */
#define SL_BIN_FULL (1U << 27) /* enough to know the shape; 16 bins fit a group */
SL_INLINE __u32 sl_rank_bin(__u32 rank)
{
	return (rank >> SL_RANK_BIN_SHIFT) & (SL_RANK_BINS - 1);
}

SL_INLINE void sl_hist_add(struct sl_rank_hist *h, __u32 rank)
{
	__u32 b = sl_rank_bin(rank);
	if (h->bin[b] >= SL_BIN_FULL)
		return;
	SL_COUNT_ADD(&h->bin[b], 1);
}

/* Loops over the histograms stay loops in BPF: unrolled, their sums spill
 * past the 512-byte stack. */
#ifdef __clang__
#define SL_LOOP _Pragma("clang loop unroll(disable)")
#else
#define SL_LOOP
#endif

/* Word by word: a memset of this size is no call BPF has. */
SL_INLINE void sl_hist_clear(struct sl_rank_hist *h)
{
	volatile __u64 *w = (volatile __u64 *)h;
	SL_LOOP
	for (__u32 i = 0; i < sizeof(*h) / 8; i++)
		w[i] = 0;
}

/* The groups' sums of their bins, before a walk (sl_sticky_settle). */
SL_INLINE void sl_hist_regroup(struct sl_rank_hist *h)
{
	SL_LOOP
	for (__u32 g = 0; g < SL_RANK_GROUPS; g++) {
		__u32 sum = 0;
		SL_LOOP
		for (__u32 i = 0; i < SL_RANK_GROUP; i++)
			sum += h->bin[(g * SL_RANK_GROUP + i) & (SL_RANK_BINS - 1)];
		h->group[g] = sum;
	}
}

SL_INLINE __u64 sl_hist_total(const struct sl_rank_hist *h)
{
	__u64 sum = 0;
	SL_LOOP
	for (__u32 g = 0; g < SL_RANK_GROUPS; g++)
		sum += h->group[g];
	return sum;
}

/* 1 when a < b, for values below 2^63, without a branch: the verifier walks
 * the loops below once, not once per way out of them. */
SL_INLINE __u64 sl_less(__u64 a, __u64 b)
{
	return (a - b) >> 63;
}

/* Demand of the ranks below r (rounded down to a bin's start). */
SL_INLINE __u64 sl_hist_below(const struct sl_rank_hist *h, __u32 r)
{
	const __u64 bins = r >= SL_RANK_ONE ? SL_RANK_BINS : r >> SL_RANK_BIN_SHIFT;
	const __u64 groups = bins / SL_RANK_GROUP; /* whole groups under r */
	__u64 sum = 0;
	SL_LOOP
	for (__u32 g = 0; g < SL_RANK_GROUPS; g++)
		sum += h->group[g] & -sl_less(g, groups);
	SL_LOOP
	for (__u32 i = 0; i < SL_RANK_GROUP; i++)
		sum += h->bin[(groups * SL_RANK_GROUP + i) & (SL_RANK_BINS - 1)] &
		       -sl_less(i, bins % SL_RANK_GROUP);
	return sum;
}

/* The lowest bin start r with at least `amount` of demand below it;
 * SL_RANK_ONE when all of it is less. */
SL_INLINE __u32 sl_hist_rank_at(const struct sl_rank_hist *h, __u64 amount)
{
	/* Groups, then bins of the next group, whose demand up to and
	 * including them is still short of amount (prefix sums only grow). */
	__u64 sum = 0, groups = 0, before = 0;
	SL_LOOP
	for (__u32 g = 0; g < SL_RANK_GROUPS; g++) {
		sum += h->group[g];
		const __u64 short_of = sl_less(sum, amount);
		groups += short_of;
		before += h->group[g] & -short_of;
	}
	__u64 bins = 0;
	sum = before;
	SL_LOOP
	for (__u32 i = 0; i < SL_RANK_GROUP; i++) {
		sum += h->bin[(groups * SL_RANK_GROUP + i) & (SL_RANK_BINS - 1)];
		bins += sl_less(sum, amount);
	}
	if (groups >= SL_RANK_GROUPS)
		return SL_RANK_ONE;
	return (__u32)(groups * SL_RANK_GROUP + bins + 1) << SL_RANK_BIN_SHIFT;
}
