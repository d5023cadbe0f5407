/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-CPU credits: budget tokens a CPU takes ahead, in chunks, under the
 * state lock, and spends on later packets without taking the lock.
 *
 * With one lock around every decision, two CPUs decide fewer lookups per
 * second than one (docs/performance.md, "Scaling with cores"). A credit is
 * drawn only while every budget it draws from holds far more than all CPUs
 * could draw at once, so near exhaustion every decision is the exact one
 * (sl_decide under the lock), with its priorities and reserves:
 *  - lookups: after an admitted lookup of a class (if sticky, one not
 *    shedding by rank), up to SL_CREDIT_CHUNK tokens from the class bucket,
 *    the boundary lookup budget and the boundary packet budget at once, and
 *    from each at most 1 / (2 (CPUs + 1)) of what it holds above the class's
 *    reserve and 1% of its burst over the CPUs (fewer than SL_CREDIT_MIN:
 *    none, so a small budget is always decided exactly).
 *    A per-source budget is not drawn on: the caller takes the source's own
 *    token first (sl_source_take; by compare-and-swap in XDP);
 *  - continuations: a verified continuation (any continuation where no
 *    flow state is kept, sl_flows_kept) takes nothing but a boundary packet
 *    token, down to zero. Without a packet budget it is decided without the
 *    lock; with one, on the CPU's packet credit: after such a continuation
 *    admitted under the lock, up to SL_CREDIT_CHUNK packet tokens, at most
 *    1 / (2 (CPUs + 1)) of what the bucket holds and 1% of its burst over
 *    the CPUs. Learned flows not yet confirmed, and unverified packets,
 *    are decided under the lock.
 * (XDP checks a credit's life on the kernel's coarse clock: it may be spent
 * up to one tick, 4 ms at HZ=250, past SL_CREDIT_TTL_NS.)
 * Bounds: a credit's tokens leave the buckets when it is drawn, so no bucket
 * ever admits more than rate * t + burst: credits add nothing over the exact
 * decision. All CPUs together hold back at most 1% of a budget's burst per
 * kind of credit drawing on it (each class's lookup credits; the packet
 * budget's continuation credits) and less than half of what it holds above
 * a reserve, so near exhaustion every decision is exact, priorities and
 * reserves included: the most a budget can lag behind the exact decision.
 * Credits
 * not spent within SL_CREDIT_TTL_NS are given back by the next locked
 * decision of that CPU for that class (clamped to the burst); a CPU that
 * sees no more traffic of a class holds its credit until it does. A credit
 * of a class whose state was reset (new state epoch) or of a reset boundary
 * is dropped unspent; a retune that keeps the state lets credits drawn
 * before it be spent for up to SL_CREDIT_TTL_NS.
 *
 * The sticky controller counts a drawn chunk as offered and admitted when it
 * is drawn (and uncounts what is given back), so its window sees the same
 * totals.
 */
#pragma once

#include "abi.h"
#include "bucket.h"
#include "decide.h"
#include "sticky_cpu.h"

SL_INLINE int sl_credit_class_ok(const struct sl_profile *prof, const struct sl_class_params *cp,
				 const struct sl_class_state *cs)
{
	return prof->credit_cpus != 0 &&
	       (cp->shed_order != SL_SHED_STICKY || cs->threshold >= SL_RANK_ONE);
}

SL_INLINE int sl_credit_live(const struct sl_credit *cr, __u32 epoch, __u32 boundary_epoch,
			     __u64 now_ns)
{
	return cr->count != 0 && now_ns < cr->expires_ns && cr->epoch == epoch &&
	       cr->boundary_epoch == boundary_epoch;
}

/* The admitting decision sl_decide makes for a lookup (SL_REASON_LOOKUP),
 * an unverified packet charged as one (SL_REASON_UNVERIFIED) or a
 * continuation (SL_REASON_CONTINUATION; verified when flow_hit) of
 * class_id. */
SL_INLINE void sl_credit_admit(const struct sl_profile *prof, const struct sl_meta *m,
			       __u32 class_id, const struct sl_class_params *cp, __u8 reason,
			       int flow_hit, struct sl_decision *d)
{
	__builtin_memset(d, 0, sizeof(*d));
	d->class_id = (__u8)class_id;
	d->state_index = cp->state_index;
	d->verdict = SL_VERDICT_ADMITTED;
	d->reason = reason;
	d->action = SL_ACTION_PASS;
	d->is_start = reason == SL_REASON_LOOKUP || reason == SL_REASON_UNVERIFIED;
	d->verified = reason == SL_REASON_CONTINUATION &&
				      (flow_hit == SL_FLOW_HIT || flow_hit == SL_FLOW_HIT_OVER)
			      ? (__u8)flow_hit
			      : 0;
	sl_flow_ops(prof, m, d);
}

/* Whether this CPU's credit would decide a lookup of class_id
 * (sl_credit_spend), its source's token taken: a dataplane that can tell a
 * source has a token without taking it (XDP) takes it only then, or when
 * the lock decides. */
SL_INLINE int sl_credit_ready(const struct sl_profile *prof, __u32 class_id,
			      const struct sl_class_state *cs, const struct sl_boundary_state *bs,
			      const struct sl_cpu_credits *cc, __u64 now_ns)
{
	if (prof->credit_cpus == 0 || class_id >= SL_MAX_CLASSES ||
	    bs->epoch != prof->boundary_epoch)
		return 0;
	const struct sl_class_params *cp = &prof->classes[class_id];
	const struct sl_credit *cr = &cc->classes[cp->state_index & (SL_MAX_CLASSES - 1)];
	return cs->epoch == cp->state_epoch && sl_credit_class_ok(prof, cp, cs) &&
	       sl_credit_live(cr, cp->state_epoch, prof->boundary_epoch, now_ns);
}

/* A lookup of class_id (or an unverified packet charged as one) admitted on
 * this CPU's credit, which sl_credit_ready found ready (and its source's
 * token taken). */
SL_INLINE void sl_credit_spend_lookup(const struct sl_profile *prof, const struct sl_meta *m,
				      __u32 class_id, struct sl_cpu_credits *cc,
				      struct sl_decision *d)
{
	const struct sl_class_params *cp = &prof->classes[class_id & (SL_MAX_CLASSES - 1)];
	cc->classes[cp->state_index & (SL_MAX_CLASSES - 1)].count--;
	sl_credit_admit(prof, m, class_id, cp,
			m->is_start ? SL_REASON_LOOKUP : SL_REASON_UNVERIFIED, 0, d);
}

/* Whether a charged packet (an unverified one, under unverified = "charge")
 * decides as a lookup without the lock: no flow of it was found, the
 * learning window (which would admit it as learned) is shut and no retune
 * waits to open it (flows_off). now_ns may lag the exact clock: a late clock
 * only sends more to the lock. */
SL_INLINE int sl_charged_unlocked(const struct sl_profile *prof, const struct sl_boundary_state *bs,
				  int flow_hit, __u64 now_ns)
{
	return !flow_hit && prof->unverified == SL_UNVERIFIED_CHARGE &&
	       now_ns >= SL_READ_ONCE(bs->learn_until_ns) &&
	       (__u32)!sl_flows_kept(prof) == SL_READ_ONCE(bs->flows_off);
}

/* Whether a charged packet of class cp may spend the class's lookup credit.
 * Credits are drawn above the class's own boundary reserves and above 0 in
 * its bucket, and a charged packet is held to the lowest priority's
 * boundary reserves (sl_reserve_prio) and to charged_reserve in its class's
 * bucket (sl_class_reserve_nt): where those are the same, always; else only
 * while the buckets hold a token above those reserves as last written (a
 * lower bound of what the lock would find: refill only adds; another CPU's
 * take since may make it one token high, a bound as the credits' own). Else
 * the lock decides (or sl_shed_unlocked sheds): a flood of forged ACKs that
 * keeps a budget at its reserve never reaches the credit. */
SL_INLINE int sl_charged_on_credit(const struct sl_profile *prof, const struct sl_class_params *cp,
				   const struct sl_class_state *cs,
				   const struct sl_boundary_state *bs)
{
	const __u32 prio = cp->priority & (SL_PRIORITIES - 1);
	const __u64 lookups = prof->lookups_reserve_nt[SL_PRIORITIES - 1];
	const __u64 packets = prof->packets_reserve_nt[SL_PRIORITIES - 1];
	if (cp->bucket.enabled && cp->charged_reserve &&
	    SL_READ_ONCE(cs->bucket.tokens_nt) < sl_class_reserve_nt(cp, 1) + SL_TOKEN)
		return 0;
	if (prof->lookups_reserve_nt[prio] == lookups && prof->packets_reserve_nt[prio] == packets)
		return 1;
	return (!prof->boundary_lookups.enabled ||
		SL_READ_ONCE(bs->lookups.tokens_nt) >= lookups + SL_TOKEN) &&
	       (!prof->boundary_packets.enabled ||
		SL_READ_ONCE(bs->packets.tokens_nt) >= packets + SL_TOKEN);
}

/*
 * Without the lock: decides the packet on this CPU's credit when it can
 * (returns 1 and fills d as sl_decide would have), else returns 0 and the
 * caller decides under the lock. cs and bs are read only (their epochs and
 * the sticky threshold; a stale read only sends the packet to the lock).
 * source: for a lookup of a class with a per-source budget, what the
 * caller's sl_source_take() found; SL_SOURCE_HERE otherwise.
 */
SL_INLINE int sl_credit_spend(const struct sl_profile *prof, const struct sl_meta *m,
			      int parse_result, __u32 class_id, const struct sl_class_state *cs,
			      const struct sl_boundary_state *bs, int source, int flow_hit,
			      struct sl_cpu_credits *cc, __u64 now_ns, struct sl_decision *d)
{
	if (prof->credit_cpus == 0 || parse_result != SL_PARSE_OK || class_id >= SL_MAX_CLASSES ||
	    bs->epoch != prof->boundary_epoch)
		return 0;
	const struct sl_class_params *cp = &prof->classes[class_id];
	/* A lookup, or a packet charged as one (unverified, the learning
	 * window shut: sl_charged_unlocked), on the class's lookup credit. */
	if (m->is_start || sl_charged_unlocked(prof, bs, flow_hit, now_ns)) {
		if ((!m->is_start && !sl_charged_on_credit(prof, cp, cs, bs)) ||
		    !sl_credit_ready(prof, class_id, cs, bs, cc, now_ns) ||
		    (cp->src_bucket.enabled && source != SL_SOURCE_TAKEN))
			return 0;
		sl_credit_spend_lookup(prof, m, class_id, cc, d);
		return 1;
	}
	/* A verified continuation (or any, where no flow state is kept: every
	 * one is trusted, once the boundary state has noted that, so that a
	 * retune back on reopens the learning window) needs a packet token at
	 * most: on the packet credit. Unverified in the learning window, or
	 * learned and not confirmed: the lock. A verified flow past its own
	 * rate ranks as its class's lookups for the packet budget: without
	 * one, as any continuation (with one, the lock, or sl_shed_unlocked). */
	const int over_free = flow_hit == SL_FLOW_HIT_OVER && !prof->boundary_packets.enabled;
	if (flow_hit != SL_FLOW_HIT && !over_free && (sl_flows_kept(prof) || !bs->flows_off))
		return 0;
	if (prof->boundary_packets.enabled) {
		struct sl_credit *pc = &cc->packets;
		if (!sl_credit_live(pc, 0, prof->boundary_epoch, now_ns))
			return 0;
		pc->count--;
	}
	sl_credit_admit(prof, m, class_id, cp, SL_REASON_CONTINUATION, flow_hit, d);
	return 1;
}

/* The most a CPU may draw from a bucket: 1 / (2 (cpus + 1)) of what it
 * holds above reserve_nt, and so little that all CPUs together hold at most
 * 1% of its burst; at most n (a disabled bucket: n). */
SL_INLINE __u32 sl_credit_room(const struct sl_bucket *b, const struct sl_bucket_params *p,
			       __u64 reserve_nt, __u32 cpus, __u32 n)
{
	if (!p->enabled)
		return n;
	if (b->tokens_nt <= reserve_nt)
		return 0;
	__u64 room = (b->tokens_nt - reserve_nt) / SL_TOKEN / (2 * ((__u64)cpus + 1));
	__u64 share = p->cap_nt / SL_TOKEN / (100 * (__u64)cpus);
	if (share < room)
		room = share;
	return room < n ? (__u32)room : n;
}

SL_INLINE void sl_credit_take(struct sl_bucket *b, const struct sl_bucket_params *p, __u32 n)
{
	if (p->enabled)
		b->tokens_nt -= (__u64)n * SL_TOKEN;
}

SL_INLINE void sl_credit_give(struct sl_bucket *b, const struct sl_bucket_params *p, __u32 n)
{
	if (!p->enabled)
		return;
	b->tokens_nt += (__u64)n * SL_TOKEN;
	sl_bucket_clamp(b, p);
}

/*
 * Under the lock, before the exact decision of a packet of class_id on this
 * CPU: gives back what the CPU's packet credit, and for a lookup (or, under
 * unverified = "charge", a packet that may be charged as one) its credit for
 * the class, left unspent when it expired, so that the decision sees those
 * tokens, and forgets a stale one. (An expired credit left with a count
 * blocks the next draw: charged packets alone, not reclaiming it, went to
 * the lock for good.)
 */
SL_INLINE void sl_credit_reclaim(const struct sl_profile *prof, const struct sl_meta *m,
				 int parse_result, __u32 class_id, struct sl_class_state *cs,
				 struct sl_boundary_state *bs, struct sl_cpu_credits *cc,
				 __u64 now_ns)
{
	if (prof->credit_cpus == 0 || parse_result != SL_PARSE_OK || class_id >= SL_MAX_CLASSES)
		return;
	const struct sl_class_params *cp = &prof->classes[class_id];
	const int current = bs->epoch == prof->boundary_epoch;
	/* The packet credit, at any locked decision of this CPU. */
	struct sl_credit *pc = &cc->packets;
	if (pc->count != 0 && !sl_credit_live(pc, 0, prof->boundary_epoch, now_ns)) {
		const __u32 n = pc->count;
		pc->count = 0;
		if (current && pc->boundary_epoch == prof->boundary_epoch)
			sl_credit_give(&bs->packets, &prof->boundary_packets, n);
	}
	if (m->is_start || prof->unverified == SL_UNVERIFIED_CHARGE) {
		struct sl_credit *cr = &cc->classes[cp->state_index & (SL_MAX_CLASSES - 1)];
		if (cr->count == 0 ||
		    sl_credit_live(cr, cp->state_epoch, prof->boundary_epoch, now_ns))
			return;
		const __u32 n = cr->count;
		cr->count = 0;
		if (!current || cr->boundary_epoch != prof->boundary_epoch ||
		    cr->epoch != cp->state_epoch || cs->epoch != cp->state_epoch)
			return; /* drawn from state that was reset since */
		sl_credit_give(&cs->bucket, &cp->bucket, n);
		sl_credit_give(&bs->lookups, &prof->boundary_lookups, n);
		sl_credit_give(&bs->packets, &prof->boundary_packets, n);
		const __u32 counted = cr->counted_prio & (SL_PRIORITIES - 1);
		bs->lookups_by_prio[counted] -= bs->lookups_by_prio[counted] >= n ? n : 0;
		if (cp->shed_order == SL_SHED_STICKY) {
			/* atomic: sheds without the lock add to it meanwhile */
			const __u32 offered = SL_READ_ONCE(cs->window_offered);
			SL_COUNT_ADD(&cs->window_offered, 0U - (offered >= n ? n : offered));
			cs->window_admitted -= cs->window_admitted >= n ? n : cs->window_admitted;
		}
		return;
	}
}

/*
 * Under the lock, after the exact decision d of a lookup (or of a verified
 * continuation): draws a new credit when d admitted it, the CPU holds none
 * for the class (no packet credit), and the budgets have room (see the top
 * of this file).
 */
SL_INLINE void sl_credit_draw(const struct sl_profile *prof, const struct sl_meta *m,
			      int parse_result, __u32 class_id, struct sl_class_state *cs,
			      struct sl_boundary_state *bs, struct sl_cpu_credits *cc, __u64 now_ns,
			      const struct sl_decision *d)
{
	if (prof->credit_cpus == 0 || parse_result != SL_PARSE_OK || class_id >= SL_MAX_CLASSES ||
	    bs->epoch != prof->boundary_epoch || d->verdict != SL_VERDICT_ADMITTED || d->shadow)
		return;
	const struct sl_class_params *cp = &prof->classes[class_id];
	const __u32 cpus = prof->credit_cpus;
	if (m->is_start || d->reason == SL_REASON_UNVERIFIED) { /* a lookup, or charged as one */
		struct sl_credit *cr = &cc->classes[cp->state_index & (SL_MAX_CLASSES - 1)];
		if (cr->count != 0 ||
		    (d->reason != SL_REASON_LOOKUP && d->reason != SL_REASON_UNVERIFIED) ||
		    !sl_credit_class_ok(prof, cp, cs))
			return;
		/* Drawn for a charged packet: from above the lowest priority's
		 * reserves (and the class bucket's charged_reserve), and counted
		 * there, as its exact decision is (sl_reserve_prio); a reclaim
		 * takes it back from where it was counted. (Such a credit, or
		 * one drawn for a lookup, may be spent on the other kind: the
		 * sticky controllers' count is an estimate, off by at most a
		 * chunk.) */
		__u32 n = sl_credit_room(&cs->bucket, &cp->bucket,
					 sl_class_reserve_nt(cp, d->reason == SL_REASON_UNVERIFIED),
					 cpus, SL_CREDIT_CHUNK);
		n = sl_credit_room(&bs->lookups, &prof->boundary_lookups,
				   prof->lookups_reserve_nt[sl_reserve_prio(
					   cp, d->reason == SL_REASON_UNVERIFIED)],
				   cpus, n);
		n = sl_credit_room(&bs->packets, &prof->boundary_packets,
				   prof->packets_reserve_nt[sl_reserve_prio(
					   cp, d->reason == SL_REASON_UNVERIFIED)],
				   cpus, n);
		if (n < SL_CREDIT_MIN)
			return;
		sl_credit_take(&cs->bucket, &cp->bucket, n);
		sl_credit_take(&bs->lookups, &prof->boundary_lookups, n);
		sl_credit_take(&bs->packets, &prof->boundary_packets, n);
		const __u32 counted = sl_reserve_prio(cp, d->reason == SL_REASON_UNVERIFIED);
		bs->lookups_by_prio[counted] += n;
		if (cp->shed_order == SL_SHED_STICKY) {
			SL_COUNT_ADD(&cs->window_offered, n);
			cs->window_admitted += n;
		}
		cr->count = n;
		cr->expires_ns = now_ns + SL_CREDIT_TTL_NS;
		cr->epoch = cp->state_epoch;
		cr->boundary_epoch = prof->boundary_epoch;
		cr->counted_prio = counted;
		return;
	}
	/* A continuation that took only a packet token: the packet credit. */
	struct sl_credit *pc = &cc->packets;
	if (pc->count != 0 || d->reason != SL_REASON_CONTINUATION ||
	    !prof->boundary_packets.enabled || (d->verified != SL_FLOW_HIT && sl_flows_kept(prof)))
		return;
	const __u32 n =
		sl_credit_room(&bs->packets, &prof->boundary_packets, 0, cpus, SL_CREDIT_CHUNK);
	if (n < SL_CREDIT_MIN)
		return;
	sl_credit_take(&bs->packets, &prof->boundary_packets, n);
	pc->count = n;
	pc->expires_ns = now_ns + SL_CREDIT_TTL_NS;
	pc->epoch = 0;
	pc->boundary_epoch = prof->boundary_epoch;
}

/* A limiting bucket that may be "full" for the sticky filter's anyone
 * (sl_left_over(..., 1, 1)), judged on sl_bucket_peek: never says no where
 * the exact refill would say yes. */
SL_INLINE int sl_maybe_full(const struct sl_profile *prof, const struct sl_bucket *b,
			    const struct sl_bucket_params *p, __u64 reserve_nt, __u64 now_ns)
{
	if (!p->enabled)
		return 1;
	struct sl_bucket peeked;
	peeked.tokens_nt = sl_bucket_peek(b, p, now_ns);
	peeked.last_ns = now_ns;
	return sl_left_over(prof, &peeked, p, reserve_nt, 1, 1);
}

/*
 * A verified flow's packet past its own rate (SL_FLOW_HIT_OVER) while the
 * packet budget holds no token above its class's reserve: shed
 * (boundary_packets), as sl_decide_source would, without the lock. One host
 * flooding its own connection keeps the budget at that reserve, so its
 * flood is shed here, not decided one packet at a time under the lock.
 * Returns 0 when the lock must decide (the state of another epoch, the
 * learning window to reopen, or a token above the reserve).
 */
SL_INLINE int sl_shed_over_unlocked(const struct sl_profile *prof, const struct sl_meta *m,
				    __u32 class_id, const struct sl_class_state *cs,
				    const struct sl_boundary_state *bs, __u64 now_ns,
				    struct sl_decision *d)
{
	const struct sl_class_params *cp = &prof->classes[class_id];
	const __u32 prio = cp->priority & (SL_PRIORITIES - 1);
	if (cs->epoch != cp->state_epoch || bs->epoch != prof->boundary_epoch || bs->flows_off ||
	    !prof->boundary_packets.enabled ||
	    sl_bucket_level(&bs->packets, &prof->boundary_packets, 1, now_ns) >=
		    prof->packets_reserve_nt[prio] + SL_TOKEN)
		return 0;
	__builtin_memset(d, 0, sizeof(*d));
	d->class_id = (__u8)class_id;
	d->state_index = cp->state_index;
	d->verified = SL_FLOW_HIT_OVER;
	sl_decision_shed(prof, cp, m, SL_REASON_BOUNDARY_PACKETS, 0, d);
	return 1;
}

/*
 * A lookup (or a packet charged as one) shed without the state lock, as the
 * exact decision would shed it, when the state leaves no doubt; the sheds of
 * a surge then no longer queue for the lock (docs/performance.md):
 *  - a "random" class: the first budget the exact decision checks is short
 *    even with the refill since it was last written (sl_short_budget), so
 *    the others are never reached;
 *  - a "sticky" class that is shedding: the source ranks above everything
 *    the band and the overflow could admit, and some limiting bucket is
 *    short of full even with that refill (so the filter's "anyone when full"
 *    cannot fire), while the sticky epoch and the controller window still
 *    run and nothing waits to be settled (sl_sticky_tick would change
 *    nothing). It is counted as the locked path counts it, the window's
 *    offered lookups and its sheds by rank, into sc: the CPU's own
 *    counts for the class, which every dataplane takes into the state
 *    before the lock when sl_sticky_due (null: into the state). A threshold
 *    read while another CPU closes a window is that window's or the next's,
 *    as a lookup just before or after the close would see.
 * Also only with credits (credit_cpus: without, every decision takes the
 * lock), with current state epochs and, for a charged packet, the learning
 * window shut. now_ns: the exact clock, or one behind it for budgets whose
 * burst holds what their rate earns in the lag (XDP's coarse clock): a late
 * clock misses refill, and sheds a lookup that a token come due since
 * would have admitted, but writes nothing, so that token waits in the
 * bucket for the next lookup. Returns 1 and fills d, else 0 (the lock
 * decides). The caller gives back a source token it took
 * (SL_SOURCE_TAKEN), as after any shed.
 */
SL_INLINE int sl_shed_unlocked(const struct sl_profile *prof, const struct sl_meta *m,
			       int parse_result, __u32 class_id, struct sl_class_state *cs,
			       const struct sl_boundary_state *bs, struct sl_sticky_cpu *sc,
			       int source, int flow_hit, __u64 now_ns, struct sl_decision *d)
{
	if (prof->credit_cpus == 0 || parse_result != SL_PARSE_OK || class_id >= SL_MAX_CLASSES)
		return 0;
	const struct sl_class_params *cp = &prof->classes[class_id];
	const int charged = !m->is_start;
	if (charged && flow_hit == SL_FLOW_HIT_OVER)
		return sl_shed_over_unlocked(prof, m, class_id, cs, bs, now_ns, d);
	if (cs->epoch != cp->state_epoch || bs->epoch != prof->boundary_epoch ||
	    (charged && !sl_charged_unlocked(prof, bs, flow_hit, now_ns)) ||
	    (cp->src_bucket.enabled ? source != SL_SOURCE_TAKEN : source != SL_SOURCE_HERE))
		return 0;
	const __u32 prio = cp->priority & (SL_PRIORITIES - 1);
	__u32 reason = SL_REASON_STICKY;
	if (cp->shed_order != SL_SHED_STICKY) {
		reason = sl_short_budget(prof, cp, cs, bs, sl_reserve_prio(cp, charged),
					 sl_class_reserve_nt(cp, charged), 1, now_ns);
		if (!reason)
			return 0;
	} else {
		const __u32 threshold = SL_READ_ONCE(cs->threshold);
		const __u32 band_top = SL_READ_ONCE(cs->band_top);
		const __u64 rank_epoch = SL_READ_ONCE(cs->rank_epoch);
		if (threshold >= SL_RANK_ONE || SL_READ_ONCE(cs->settle) != 0 ||
		    !sl_sticky_epoch_current(prof, rank_epoch, now_ns) ||
		    sl_sticky_window_ran(prof, SL_READ_ONCE(cs->window_start_ns), now_ns))
			return 0;
		struct sl_source_key k;
		sl_source_key_make(&k, m, cp);
		const __u64 h = sl_source_hash(prof, &k);
		const __u32 rank = sl_rank_in(h, rank_epoch);
		if (rank < sl_overflow_top(threshold, band_top) ||
		    (sl_maybe_full(prof, &cs->bucket, &cp->bucket, 0, now_ns) &&
		     sl_maybe_full(prof, &bs->lookups, &prof->boundary_lookups,
				   prof->lookups_reserve_nt[prio], now_ns) &&
		     sl_maybe_full(prof, &bs->packets, &prof->boundary_packets,
				   prof->packets_reserve_nt[prio], now_ns)))
			return 0;
		if (sc)
			sl_sticky_count_cpu(prof, sc, h, rank_epoch, rank);
		else
			sl_sticky_count(prof, cs, h, rank_epoch, rank, SL_RANK_ABOVE, 0);
	}
	__builtin_memset(d, 0, sizeof(*d));
	d->class_id = (__u8)class_id;
	d->state_index = cp->state_index;
	d->is_start = 1;
	sl_decision_shed(prof, cp, m, charged ? SL_REASON_UNVERIFIED : reason, charged, d);
	sl_flow_ops(prof, m, d);
	return 1;
}

/*
 * What a dataplane with credits decides without the state lock: a frame
 * that did not parse (sl_decide_unparsed), on the CPU's credit
 * (sl_credit_spend), or a lookup its source's own budget
 * refused (nothing shared changes: the class and boundary states are
 * current), a start or a charged packet (a spoofed ACK flood claiming one
 * source costs what a SYN flood from it costs).
 * Returns 0 when the decision needs more: sl_shed_unlocked (on the exact
 * clock), then under the lock sl_credit_reclaim, sl_decide_source and
 * sl_credit_draw.
 */
SL_INLINE int sl_decide_unlocked(const struct sl_profile *prof, const struct sl_meta *m,
				 int parse_result, __u32 class_id, const struct sl_class_state *cs,
				 const struct sl_boundary_state *bs, int source, int flow_hit,
				 struct sl_cpu_credits *cc, __u64 now_ns, struct sl_decision *d)
{
	if (parse_result != SL_PARSE_OK) {
		sl_decide_unparsed(prof, parse_result, class_id, d);
		return 1;
	}
	if (sl_credit_spend(prof, m, parse_result, class_id, cs, bs, source, flow_hit, cc, now_ns,
			    d))
		return 1;
	/* unverified = "drop": a packet of no flow, past the learning window,
	 * is dropped as the lock would (sl_decide_source), touching nothing
	 * shared (a flood of forged ACKs took the state lock for each one). */
	if (!m->is_start && !flow_hit && prof->unverified == SL_UNVERIFIED_DROP &&
	    now_ns >= SL_READ_ONCE(bs->learn_until_ns) &&
	    (__u32)!sl_flows_kept(prof) == SL_READ_ONCE(bs->flows_off) &&
	    class_id < SL_MAX_CLASSES && cs->epoch == prof->classes[class_id].state_epoch &&
	    bs->epoch == prof->boundary_epoch) {
		const struct sl_class_params *cp = &prof->classes[class_id];
		__builtin_memset(d, 0, sizeof(*d));
		d->class_id = (__u8)class_id;
		d->state_index = cp->state_index;
		sl_decision_shed(prof, cp, m, SL_REASON_UNVERIFIED, 0, d);
		sl_flow_ops(prof, m, d);
		return 1;
	}
	if (source != SL_SOURCE_REFUSED || parse_result != SL_PARSE_OK ||
	    class_id >= SL_MAX_CLASSES || cs->epoch != prof->classes[class_id].state_epoch ||
	    bs->epoch != prof->boundary_epoch)
		return 0;
	const int charged = !m->is_start;
	if (charged && !sl_charged_unlocked(prof, bs, flow_hit, now_ns))
		return 0;
	sl_decide_source_refused(prof, m, class_id, charged, d);
	return 1;
}
