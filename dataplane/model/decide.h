/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admission decision: parse -> classify -> budgets -> decision.
 *
 * The dataplane parses (parse.h), looks the addresses up in its LPM tables and
 * classifies (classify.h), resolves the state of the class, the boundary and,
 * for classes with per-source budgets, the source (a new source starts with a
 * full bucket), then calls sl_decide(). sl_decide() never reads a clock,
 * allocates or loops unboundedly; it updates the buckets and the sticky
 * controller it was handed and fills in the decision.
 *
 * Budgets are all-or-nothing: a lookup takes one token from every budget that
 * applies, or from none, so a refusal by one never burns another's token.
 *
 * A packet that starts no lookup ranks as a continuation only when it is
 * verified: the dataplane found a live entry of its flow (flow.h), or the
 * learning window is open. Otherwise it follows profile.unverified: charged
 * as a lookup of its class (reason `unverified`), dropped, or passed.
 */
#pragma once

#include "abi.h"
#include "bucket.h"
#include "flow.h"
#include "gcra.h"
#include "parse.h"
#include "sticky_settle.h"

/* Fresh state: full buckets, everyone admitted by the sticky filter. */
SL_INLINE void sl_class_state_init(struct sl_class_state *cs, const struct sl_class_params *cp,
				   __u64 now_ns)
{
	/* The histograms are cleared by sl_sticky_settle: a memset of that size
	 * is no call BPF has. */
	__builtin_memset(cs, 0, __builtin_offsetof(struct sl_class_state, admitted_by_rank));
	cs->window_offered = 0;
	cs->since_below = 0;
	cs->since_above = 0;
	cs->settle = SL_SETTLE_CLEAR;
	sl_bucket_init(&cs->bucket, &cp->bucket, now_ns);
	cs->threshold = SL_RANK_ONE;
	cs->band_top = SL_RANK_ONE;
	cs->window_start_ns = now_ns;
}

/* Opens the learning window (flow.h) when the flow table missed flows that
 * are live: fresh state, flow state turned back on by a retune, the XDP
 * standby taking over from DPDK (whose flows it did not see). */
SL_INLINE void sl_learning_open(struct sl_boundary_state *bs, const struct sl_profile *prof,
				__u64 now_ns)
{
	bs->learn_until_ns = now_ns + prof->flow_learn_ns;
	__builtin_memset(bs->learned, 0, sizeof(bs->learned));
}

SL_INLINE void sl_boundary_state_init(struct sl_boundary_state *bs, const struct sl_profile *prof,
				      __u64 now_ns)
{
	__builtin_memset(bs, 0, sizeof(*bs));
	sl_bucket_init(&bs->lookups, &prof->boundary_lookups, now_ns);
	sl_bucket_init(&bs->packets, &prof->boundary_packets, now_ns);
	sl_learning_open(bs, prof, now_ns); /* fresh state: an empty flow table */
}

/* charged: an unverified packet charged as a lookup (is_start is 0). */
SL_INLINE void sl_decision_shed(const struct sl_profile *prof, const struct sl_class_params *cp,
				const struct sl_meta *m, __u32 reason, int charged,
				struct sl_decision *d)
{
	d->verdict = SL_VERDICT_SHED;
	d->reason = (__u8)reason;
	__u8 action = cp->on_shed;
	if (!m->is_start && !charged)
		action = SL_ACTION_DROP; /* continuations over the packet budget are dropped */
	else if (action == SL_ACTION_RESET &&
		 !(m->is_start && m->l4_proto == SL_IPPROTO_TCP && m->frag == SL_FRAG_NONE))
		action = SL_ACTION_DROP; /* only a SYN can be answered with a RST */
	d->action = action;
	if (action == SL_ACTION_MARK)
		d->mark_dscp = cp->mark_dscp;
	if (prof->flags & SL_PROFILE_SHADOW) {
		d->verdict = SL_VERDICT_ADMITTED;
		d->action = SL_ACTION_PASS;
		d->shadow = 1;
	}
}

/* Whether a packet is charged as a lookup (and so needs its source's state):
 * starts, and unverified packets under unverified = "charge". flow_hit: the
 * dataplane found a live entry of the packet's flow. The learning window may
 * still verify a packet this calls charged; the source state is then unused. */
SL_INLINE int sl_charged(const struct sl_profile *prof, const struct sl_meta *m, int flow_hit)
{
	return m->is_start || (!flow_hit && prof->unverified == SL_UNVERIFIED_CHARGE);
}

/* The priority whose boundary reserves hold a lookup of class cp: its own,
 * or for a packet charged as one (unverified: anyone can forge it, with a
 * source inside any class's prefixes) the lowest priority's, the largest
 * reserve. Such a flood then takes only boundary tokens that no real lookup
 * of any class would: forged ACKs "from" a priority-0 prefix took the
 * boundary from that class's real SYNs at its priority. */
SL_INLINE __u32 sl_reserve_prio(const struct sl_class_params *cp, int charged)
{
	return charged ? SL_PRIORITIES - 1 : cp->priority & (SL_PRIORITIES - 1);
}

/* The same for the class's own bucket (its rate_per_sec): a packet charged
 * as a lookup takes a class token only above charged_reserve, the lowest
 * priority's lookups_reserve_pct of the class's burst; a real lookup, down
 * to zero. Forged ACKs "from" a protected prefix spent a protected class's
 * own rate: a check's 103 of 200 real lookups/s with a rate of 300/s. Under
 * such a flood the bucket stays at that reserve, and the class's real
 * lookups take the refill below it. */
SL_INLINE __u64 sl_class_reserve_nt(const struct sl_class_params *cp, int charged)
{
	return charged ? (__u64)cp->charged_reserve * SL_TOKEN : 0;
}

/* What an admitted packet leaves in the flow table (nothing when flows are
 * not kept). A shed one leaves nothing, even when it passes marked
 * (on_shed = "mark"): a marked SYN pays no token, and its entry would verify
 * a forger's ACKs on the 4-tuple for free. */
SL_INLINE void sl_flow_ops(const struct sl_profile *prof, const struct sl_meta *m,
			   struct sl_decision *d)
{
	if (d->verdict != SL_VERDICT_ADMITTED || !sl_flows_kept(prof))
		return;
	if (m->is_start && m->l4_proto == SL_IPPROTO_TCP && m->frag != SL_FRAG_LATER)
		d->flow_ops |= SL_FLOW_OP_CREATE_TCP;
	/* Only a first fragment that paid a lookup token (a UDP datagram, an
	 * echo request) earns its later fragments an entry. An unverified one
	 * charged as a lookup earns nothing (docs/architecture.md); nor does a
	 * verified continuation's: it paid nothing, and a flood of first
	 * fragments (a new IP ID each) on one admitted connection would
	 * recycle its priority's partition for free. */
	if (m->frag == SL_FRAG_FIRST && d->reason == SL_REASON_LOOKUP)
		d->flow_ops |= SL_FLOW_OP_CREATE_FRAG;
}

/*
 * The per-source budget (GCRA, gcra.h: one word a source), for a dataplane
 * that takes the source's token outside the state lock (XDP: by
 * compare-and-swap, so that one source's flood never waits for a lock):
 * sl_source_take() before the decision, whose outcome goes to
 * sl_decide_source(); sl_source_used() after it tells whether a taken token
 * was used, else sl_source_give_back().
 */
#define SL_SOURCE_HERE	  0 /* ss (NULL: none) is decided in sl_decide_source() */
#define SL_SOURCE_TAKEN	  1 /* the caller took the source's token */
#define SL_SOURCE_REFUSED 2 /* the caller found the source's bucket empty */
/* A dataplane's note of a peek that found a token, none taken (XDP, DPDK:
 * taken when the lock decides); never passed to the model's functions. */
#define SL_SOURCE_PEEKED 3

/* A source's debt cut back after a retune (gcra.h, sl_gcra_settle). */
SL_INLINE void sl_source_settle(struct sl_source_state *ss, const struct sl_class_params *cp,
				__u64 now_ns)
{
	ss->tat_u = sl_gcra_settle(ss->tat_u, &cp->src_bucket, now_ns);
}

SL_INLINE int sl_source_take(struct sl_source_state *ss, const struct sl_class_params *cp,
			     __u64 now_ns)
{
	sl_source_settle(ss, cp, now_ns);
	const __u64 tat = sl_gcra_after_take(ss->tat_u, &cp->src_bucket, now_ns);
	if (!tat)
		return SL_SOURCE_REFUSED;
	ss->tat_u = tat;
	return SL_SOURCE_TAKEN;
}

/* True when the source's budget is short of a token: sl_source_take()
 * would refuse. Writes nothing (a refusal changes no GCRA state), so a
 * dataplane may ask it of a word it reads once, without a lock. */
SL_INLINE int sl_source_short(const struct sl_source_state *ss, const struct sl_class_params *cp,
			      __u64 now_ns)
{
	return sl_gcra_after_take(SL_READ_ONCE(ss->tat_u), &cp->src_bucket, now_ns) == 0;
}

SL_INLINE int sl_source_used(const struct sl_decision *d)
{
	return d->is_start && d->verdict == SL_VERDICT_ADMITTED && !d->shadow;
}

SL_INLINE void sl_source_give_back(struct sl_source_state *ss, const struct sl_class_params *cp)
{
	ss->tat_u = sl_gcra_after_give_back(ss->tat_u, &cp->src_bucket);
}

/* A source new to its table: a full budget. */
SL_INLINE void sl_source_init(struct sl_source_state *ss)
{
	ss->tat_u = SL_GCRA_FULL;
}

/* How long after its last use a source that came back keeps its way
 * against sources seen once (sl_source_evict_order). */
#define SL_SOURCE_KEEP_NS 1000000000ULL

/* A per-source table way's place in its set's eviction order, for the
 * dataplanes' sets (bpf/sources.h, dataplane/dpdk/source_sets.cpp): a new
 * source takes the way whose order is least. A source seen once (its way
 * entered and never found again: a spoofed flood's, mostly) goes by its
 * last use, used_ns. One that came back (returned) goes by the later of
 * SL_SOURCE_KEEP_NS after its last use and the moment its budget is full
 * again (its GCRA word, tat_u): what it owes is what an eviction would give
 * it back, as it would enter again full. So a flood of sources seen once,
 * however fast it turns the set over, never takes the way of a source that
 * came back and owes tokens or sent in the last second. A source that
 * never comes back within its set's turnover is not told from them. */
SL_INLINE __u64 sl_source_evict_order(__u64 used_ns, __u64 tat_u, __u32 returned)
{
	if (!returned)
		return used_ns;
	const __u64 full_ns = tat_u >> SL_GCRA_SHIFT, kept_ns = used_ns + SL_SOURCE_KEEP_NS;
	return full_ns > kept_ns ? full_ns : kept_ns;
}

/* A bucket's tokens: as they are (refilled by a caller that holds its
 * lock), or, peek, as sl_bucket_peek finds them at now_ns without it. */
SL_INLINE __u64 sl_bucket_level(const struct sl_bucket *b, const struct sl_bucket_params *p,
				int peek, __u64 now_ns)
{
	return peek ? sl_bucket_peek(b, p, now_ns) : b->tokens_nt;
}

/* The reason the first of a lookup's budgets that is short of a token
 * refuses it, in the order the decision checks them (the class, above
 * class_reserve_nt; the boundary's lookups, then packets, above priority
 * prio's reserve); 0 when
 * none is. peek (a reader without the state lock, credit.h): only the first
 * enabled budget is judged, on what sl_bucket_peek finds, never fewer tokens
 * than the truth: "short" is then beyond doubt, and so is the reason (were a
 * later budget short, the first one's shortness would still be unknown). */
SL_INLINE __u32 sl_short_budget(const struct sl_profile *prof, const struct sl_class_params *cp,
				const struct sl_class_state *cs, const struct sl_boundary_state *bs,
				__u32 prio, __u64 class_reserve_nt, int peek, __u64 now_ns)
{
	if (cp->bucket.enabled) {
		if (sl_bucket_level(&cs->bucket, &cp->bucket, peek, now_ns) <
		    class_reserve_nt + SL_TOKEN)
			return SL_REASON_CLASS_RATE;
		if (peek)
			return 0;
	}
	if (prof->boundary_lookups.enabled) {
		if (sl_bucket_level(&bs->lookups, &prof->boundary_lookups, peek, now_ns) <
		    prof->lookups_reserve_nt[prio] + SL_TOKEN)
			return SL_REASON_BOUNDARY_LOOKUPS;
		if (peek)
			return 0;
	}
	if (prof->boundary_packets.enabled &&
	    sl_bucket_level(&bs->packets, &prof->boundary_packets, peek, now_ns) <
		    prof->packets_reserve_nt[prio] + SL_TOKEN)
		return SL_REASON_BOUNDARY_PACKETS;
	return 0;
}

/* The decision for a lookup its source's own budget refuses (charged: an
 * unverified packet charged as a lookup). */
SL_INLINE void sl_decide_source_refused(const struct sl_profile *prof, const struct sl_meta *m,
					__u32 class_id, int charged, struct sl_decision *d)
{
	__builtin_memset(d, 0, sizeof(*d));
	if (class_id >= SL_MAX_CLASSES)
		class_id = prof->n_classes - 1;
	const struct sl_class_params *cp = &prof->classes[class_id];
	d->class_id = (__u8)class_id;
	d->state_index = cp->state_index;
	d->is_start = 1;
	sl_decision_shed(prof, cp, m, charged ? SL_REASON_UNVERIFIED : SL_REASON_PER_SOURCE,
			 charged, d);
	sl_flow_ops(prof, m, d);
}

/* The decision for a frame sl_parse() did not accept (parse_result is not
 * SL_PARSE_OK), in the default class: non-IP frames pass, malformed ones
 * pass or drop by the profile. It touches no budget and no state, so a
 * dataplane decides it without the state lock (sl_decide_unlocked). */
SL_INLINE void sl_decide_unparsed(const struct sl_profile *prof, int parse_result, __u32 class_id,
				  struct sl_decision *d)
{
	__builtin_memset(d, 0, sizeof(*d));
	if (class_id >= SL_MAX_CLASSES)
		class_id = prof->n_classes - 1;
	d->class_id = (__u8)class_id;
	d->state_index = prof->classes[class_id].state_index;
	if (parse_result == SL_PARSE_NON_IP) {
		d->verdict = SL_VERDICT_ADMITTED;
		d->reason = SL_REASON_NON_IP;
		d->action = SL_ACTION_PASS;
		return;
	}
	d->reason = SL_REASON_MALFORMED;
	if (prof->flags & (SL_PROFILE_MALFORMED_PASS | SL_PROFILE_SHADOW)) {
		d->verdict = SL_VERDICT_ADMITTED;
		d->action = SL_ACTION_PASS;
		d->shadow = !(prof->flags & SL_PROFILE_MALFORMED_PASS);
	} else {
		d->verdict = SL_VERDICT_SHED;
		d->action = SL_ACTION_DROP;
	}
}

/*
 * parse_result: what sl_parse() returned. class_id: sl_classify()'s answer for
 * SL_PARSE_OK, the default class (n_classes - 1) otherwise. cs: that class's
 * state. ss: the source's state when the class has a per-source budget and the
 * packet is charged as a lookup (sl_charged), else NULL; source: SL_SOURCE_HERE,
 * or what the caller's sl_source_take() found (ss is then NULL). flow_hit: a
 * live entry of the packet's flow was found (ignored for starts).
 */
SL_INLINE void sl_decide_source(const struct sl_profile *prof, const struct sl_meta *m,
				int parse_result, __u32 class_id, struct sl_class_state *cs,
				struct sl_boundary_state *bs, struct sl_source_state *ss,
				int source, int flow_hit, __u64 now_ns, struct sl_decision *d)
{
	if (parse_result != SL_PARSE_OK) {
		sl_decide_unparsed(prof, parse_result, class_id, d);
		return;
	}
	__builtin_memset(d, 0, sizeof(*d));
	if (class_id >= SL_MAX_CLASSES)
		class_id = prof->n_classes - 1;
	d->class_id = (__u8)class_id;
	const struct sl_class_params *cp = &prof->classes[class_id];
	d->state_index = cp->state_index;

	/* State made for another epoch (fresh maps, a slot handed to a new
	 * class) starts over here, with the packet's clock. */
	if (bs->epoch != prof->boundary_epoch) {
		sl_boundary_state_init(bs, prof, now_ns);
		bs->epoch = prof->boundary_epoch;
	}
	if (cs->epoch != cp->state_epoch) {
		sl_class_state_init(cs, cp, now_ns);
		cs->epoch = cp->state_epoch;
		/* The first sticky window measures from here, not from the
		 * boundary's whole history. */
		cs->window_taken = sl_taken_from(bs, cp->priority & (SL_PRIORITIES - 1));
	}

	/* Flow state back on after a retune (unverified was "pass"): the table
	 * missed the flows opened meanwhile; learn them, as after a start. */
	if (!sl_flows_kept(prof)) {
		if (!bs->flows_off)
			bs->flows_off = 1;
	} else if (bs->flows_off) {
		bs->flows_off = 0;
		sl_learning_open(bs, prof, now_ns);
	}

	sl_bucket_refill(&bs->packets, &prof->boundary_packets, now_ns);
	__u32 prio = cp->priority & (SL_PRIORITIES - 1);

	/* Past this block, a packet that starts no lookup is charged as one. */
	const int charged = !m->is_start;
	if (charged) {
		int verified = flow_hit != 0;
		int learning = flow_hit == SL_FLOW_HIT_LEARNED;
		const int over = flow_hit == SL_FLOW_HIT_OVER;
		/* Learning window: an unknown TCP flow may be one that was running
		 * before the start; admit it and record it, up to the cap. */
		if (!verified && m->l4_proto == SL_IPPROTO_TCP && m->frag != SL_FRAG_LATER &&
		    now_ns < bs->learn_until_ns && bs->learned[prio] < prof->flow_learn_max &&
		    sl_flows_kept(prof)) {
			verified = 1;
			learning = 1;
			d->flow_ops = SL_FLOW_OP_LEARN;
		}
		d->verified = (__u8)(learning ? SL_FLOW_HIT_LEARNED
				     : over   ? SL_FLOW_HIT_OVER
					      : verified);
		if (verified || prof->unverified == SL_UNVERIFIED_PASS) {
			/* Finish work already started: no lookup token, and the whole
			 * packet budget down to zero (above every new lookup's
			 * reserve). One past its packet rate (sl_flow_meter) has had
			 * its share of that rank: it stops at its class's reserve,
			 * so one host flooding its own connection cannot take the
			 * boundary from a higher class. A flow still being learned
			 * has proven nothing yet (anyone can forge its ACKs, from
			 * any class's prefixes): it stops at the lowest priority's
			 * reserve, as a packet charged as a lookup does
			 * (sl_reserve_prio), so a flood in the window takes no
			 * boundary a real lookup of any class would. */
			const __u64 reserve = learning ? prof->packets_reserve_nt[SL_PRIORITIES - 1]
					      : over   ? prof->packets_reserve_nt[prio]
						       : 0;
			if (!prof->boundary_packets.enabled ||
			    sl_bucket_has(&bs->packets, reserve)) {
				if (prof->boundary_packets.enabled)
					sl_bucket_take(&bs->packets);
				d->verdict = SL_VERDICT_ADMITTED;
				d->reason = SL_REASON_CONTINUATION;
				d->action = SL_ACTION_PASS;
				if (d->flow_ops & SL_FLOW_OP_LEARN)
					bs->learned[prio]++;
			} else {
				d->flow_ops = 0;
				sl_decision_shed(prof, cp, m, SL_REASON_BOUNDARY_PACKETS, 0, d);
			}
			sl_flow_ops(prof, m, d);
			return;
		}
		if (prof->unverified == SL_UNVERIFIED_DROP) {
			sl_decision_shed(prof, cp, m, SL_REASON_UNVERIFIED, 0, d);
			sl_flow_ops(prof, m, d);
			return;
		}
		/* Charged: the packet has earned nothing, it is a lookup of its class. */
	}

	d->is_start = 1;
	sl_bucket_refill(&cs->bucket, &cp->bucket, now_ns);
	sl_bucket_refill(&bs->lookups, &prof->boundary_lookups, now_ns);

	/* A source over its own budget is refused first: that is its own doing,
	 * not the class's load, so the sticky controller does not count it. */
	if (cp->src_bucket.enabled &&
	    (source == SL_SOURCE_REFUSED || (source == SL_SOURCE_HERE && ss))) {
		if (source == SL_SOURCE_HERE)
			sl_source_settle(ss, cp, now_ns);
		const int refused = source == SL_SOURCE_REFUSED || sl_source_short(ss, cp, now_ns);
		if (refused) {
			sl_decide_source_refused(prof, m, class_id, charged, d);
			return;
		}
	}

	const int sticky = cp->shed_order == SL_SHED_STICKY;
	__u64 h = 0;
	__u32 rank = 0, where = SL_RANK_BELOW;
	if (sticky) {
		sl_sticky_tick(prof, cs, now_ns);
		struct sl_source_key k;
		sl_source_key_make(&k, m, cp);
		h = sl_source_hash(prof, &k);
		rank = sl_rank_in(h, cs->rank_epoch);
		where = sl_rank_where(rank, cs->threshold, cs->band_top);
		if (cs->threshold < SL_RANK_ONE &&
		    sl_sticky_filter(prof, cp, cs, bs, rank) != SL_STICKY_ADMIT) {
			sl_sticky_count(prof, cs, h, cs->rank_epoch, rank, where, 0);
			sl_decision_shed(prof, cp, m,
					 charged ? SL_REASON_UNVERIFIED : SL_REASON_STICKY, charged,
					 d);
			sl_flow_ops(prof, m, d);
			return;
		}
	}

	const __u32 reason = sl_short_budget(prof, cp, cs, bs, sl_reserve_prio(cp, charged),
					     sl_class_reserve_nt(cp, charged), 0, now_ns);
	/* A charged packet short only of the reserves it is held to is no load
	 * of its class: the sticky controller does not see it (a forged flood
	 * would lower the class's threshold, and shed its real sources by
	 * rank). */
	const int counted = sticky && (!reason || !charged ||
				       sl_short_budget(prof, cp, cs, bs, prio, 0, 0, now_ns));
	if (counted)
		sl_sticky_count(prof, cs, h, cs->rank_epoch, rank, where, !reason);
	if (reason) {
		cs->window_rejected += counted;
		sl_decision_shed(prof, cp, m, charged ? SL_REASON_UNVERIFIED : reason, charged, d);
		sl_flow_ops(prof, m, d);
		return;
	}

	cs->window_admitted += sticky;
	if (source == SL_SOURCE_HERE && ss && cp->src_bucket.enabled)
		sl_source_take(ss, cp, now_ns);
	if (cp->bucket.enabled)
		sl_bucket_take(&cs->bucket);
	if (prof->boundary_lookups.enabled)
		sl_bucket_take(&bs->lookups);
	if (prof->boundary_packets.enabled)
		sl_bucket_take(&bs->packets);
	/* Counted at the priority whose reserves held it: a forged packet
	 * counted at its class's made the sticky controllers below that class
	 * leave it room (a check: forged ACKs from a priority-0 prefix took 500
	 * of a sticky citizen class's 800 lookups/s). sl_reserve_prio(cp,
	 * charged), written so: keeping `charged` live to here took the XDP
	 * program's stack to 528 bytes (of 512). */
	bs->lookups_by_prio[m->is_start ? prio : SL_PRIORITIES - 1]++;
	d->verdict = SL_VERDICT_ADMITTED;
	d->reason = charged ? SL_REASON_UNVERIFIED : SL_REASON_LOOKUP;
	d->action = SL_ACTION_PASS;
	sl_flow_ops(prof, m, d);
}

/* sl_decide_source() with the per-source budget decided here (ss). */
SL_INLINE void sl_decide(const struct sl_profile *prof, const struct sl_meta *m, int parse_result,
			 __u32 class_id, struct sl_class_state *cs, struct sl_boundary_state *bs,
			 struct sl_source_state *ss, int flow_hit, __u64 now_ns,
			 struct sl_decision *d)
{
	sl_decide_source(prof, m, parse_result, class_id, cs, bs, ss, SL_SOURCE_HERE, flow_hit,
			 now_ns, d);
}
