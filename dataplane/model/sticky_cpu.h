/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sticky controller's counts of lookups shed without the lock (credit.h,
 * sl_shed_unlocked): each CPU counts into its own struct sl_sticky_cpu, and
 * the controller takes every CPU's counts into the class state when it
 * reads them (a window closes, an epoch turns, a state is made afresh).
 * Where the take runs outside the lock (XDP), one CPU at a time does it
 * (sl_sticky_claim, sticky.h).
 */
#pragma once

#include "sticky.h"

/*
 * sl_sticky_count for a lookup shed without the lock: into this CPU's own
 * counts (struct sl_sticky_cpu), where a surge's sheds on every CPU write no
 * cache line another CPU writes. Atomic adds all the same (uncontended): the
 * controller takes the counts from another CPU (sl_sticky_take).
 */
SL_INLINE void sl_sticky_count_cpu(const struct sl_profile *prof, struct sl_sticky_cpu *sc, __u64 h,
				   __u64 rank_epoch, __u32 rank)
{
	SL_COUNT_ADD(&sc->offered, 1);
	SL_COUNT_ADD(&sc->bin[rank_epoch & 1][sl_rank_bin(rank)], 1);
	if (prof->sticky_epoch_ns) {
		const __u32 next = sl_rank_bin(sl_rank_in(h, rank_epoch + 1));
		SL_COUNT_ADD(&sc->bin[(rank_epoch + 1) & 1][next], 1);
	}
}

/*
 * Before a lookup of class cp takes the lock: true when the controller may
 * read its counts there (sl_sticky_tick: the epoch turned or the window ran;
 * a settle waits) or the class's state is about to be made afresh (any
 * class's), so that every CPU's counts must be taken into the state first
 * (sl_sticky_take, then sl_sticky_merge under the lock; where the take runs
 * outside the lock, by one CPU at a time: sl_sticky_claim). Rare: about
 * once a window.
 */
SL_INLINE int sl_sticky_due(const struct sl_profile *prof, const struct sl_class_params *cp,
			    const struct sl_class_state *cs, __u64 now_ns)
{
	/* A state made afresh drops whatever the CPUs counted for the slot,
	 * whichever class it is for now: counts of a sticky class the slot
	 * held before must not reach a class made sticky later. */
	if (SL_READ_ONCE(cs->epoch) != cp->state_epoch)
		return 1;
	return cp->shed_order == SL_SHED_STICKY &&
	       (SL_READ_ONCE(cs->settle) != 0 ||
		!sl_sticky_epoch_current(prof, SL_READ_ONCE(cs->rank_epoch), now_ns) ||
		sl_sticky_window_ran(prof, SL_READ_ONCE(cs->window_start_ns), now_ns));
}

/*
 * Takes one CPU's counts (sc) into acc, each word swapped for 0 (the CPU
 * counts on into what is left, for the next time). Without the lock: the
 * counts of every CPU are taken first, then merged.
 */
SL_INLINE void sl_sticky_take(struct sl_sticky_cpu *acc, struct sl_sticky_cpu *sc)
{
	if (SL_READ_ONCE(sc->offered))
		acc->offered += SL_COUNT_TAKE(&sc->offered);
	__u64 *from = &sc->bin[0][0], *to = &acc->bin[0][0];
	SL_LOOP
	for (__u32 i = 0; i < 2 * SL_RANK_BINS; i++) {
		if (!SL_READ_ONCE(from[i]))
			continue;
		to[i] += SL_COUNT_TAKE(&from[i]);
	}
}

/* Under the lock: adds what sl_sticky_take took into the class's state, as
 * sl_sticky_count would have counted it (bins stop at SL_BIN_FULL). Counts
 * taken while the state waits to be made afresh (a retune that resets the
 * class: sl_sticky_due takes them before) are dropped with it. */
SL_INLINE void sl_sticky_merge(struct sl_class_state *cs, const struct sl_class_params *cp,
			       const struct sl_sticky_cpu *acc)
{
	if (cs->epoch != cp->state_epoch)
		return; /* made afresh at this decision */
	SL_COUNT_ADD(&cs->window_offered, (__u32)acc->offered);
	SL_COUNT_ADD(&cs->since_above, (__u32)acc->offered); /* every one above (credit.h) */
	SL_LOOP
	for (__u32 i = 0; i < 2 * SL_RANK_BINS; i++) {
		const __u64 v = acc->bin[(i / SL_RANK_BINS) & 1][i & (SL_RANK_BINS - 1)];
		if (!v)
			continue;
		__u32 *bin = &cs->shed_by_rank[(i / SL_RANK_BINS) & 1].bin[i & (SL_RANK_BINS - 1)];
		const __u32 room = *bin < SL_BIN_FULL ? SL_BIN_FULL - *bin : 0;
		SL_COUNT_ADD(bin, v < room ? (__u32)v : room);
	}
}
