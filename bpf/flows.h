/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP program's flow table driver: the BPF twin of the C++ helpers in
 * dataplane/common/flow_table.hpp (same model calls, same events), on the
 * sets of sl_flows (shared_state.h). Below capacity it behaves like the
 * reference's exact LRU; near it, a full set recycles the entry that
 * expires first, where the reference recycles the partition's least
 * recently used.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "classify.h"
#include "backend_signal.h"
#include "flow.h"
#include "table_sets.h"

__attribute__((noinline)) int sl_parse_xdp(struct xdp_md *ctx, struct sl_meta *m);

static __always_inline __u32 sl_lpm(void *trie, __u32 slot, const struct sl_meta *m,
				    const __u8 *addr)
{
	struct sl_lpm_key k = {
		.prefixlen = SL_LPM_KEY_BITS(m->family == SL_FAMILY_V4 ? 32 : 128),
		.slot = (__u8)slot,
		.family = m->family,
	};
	__builtin_memcpy(k.addr_be, addr, 16);
	__u32 *hit = bpf_map_lookup_elem(trie, &k);
	return hit ? *hit : 0;
}

/* The IPv4 prefix array's answer for addr (dataplane/xdp/prefix_array.hpp):
 * a top block entry, and a group's for each level a longer prefix starts.
 * Every index stays below both slots' blocks: base <= SL_PREFIX_SLOT_BLOCKS,
 * a group's 256 + (e & (SL_PREFIX_GROUPS - 1)) < SL_PREFIX_SLOT_BLOCKS. */
static __always_inline __u32 sl_prefix_v4(void *blocks, __u32 slot, const __u8 *addr)
{
	__u32 a = sl_rd32(addr), zero = 0;
	const struct sl_prefix_blocks *t = bpf_map_lookup_elem(blocks, &zero);
	if (!t)
		return 0;
	__u32 base = (slot & 1) * SL_PREFIX_SLOT_BLOCKS;
	__u32 e = t->b[base + (a >> 24)].e[(a >> 16) & 255];
	if (!(e & SL_PREFIX_GROUP))
		return e;
	e = t->b[base + 256 + (e & (SL_PREFIX_GROUPS - 1))].e[(a >> 8) & 255];
	if (!(e & SL_PREFIX_GROUP))
		return e;
	return t->b[base + 256 + (e & (SL_PREFIX_GROUPS - 1))].e[a & 255];
}

/* The class of a parsed packet in profile slot `slot`, masked to a valid index. */
static __always_inline __u32 sl_classify_xdp(const struct sl_profile *prof, __u32 slot,
					     const struct sl_meta *m)
{
	__u32 src = 0, dst = 0, port = 0;
	const int v4 = m->family == SL_FAMILY_V4;
	if (prof->flags & SL_PROFILE_USES_SRC)
		src = v4 && (prof->flags & SL_PROFILE_SRC_V4_ARRAY)
			      ? sl_prefix_v4(&sl_prefix_src, slot, m->src_be)
			      : sl_lpm(&sl_lpm_src, slot, m, m->src_be);
	if (prof->flags & SL_PROFILE_USES_DST)
		dst = v4 && (prof->flags & SL_PROFILE_DST_V4_ARRAY)
			      ? sl_prefix_v4(&sl_prefix_dst, slot, m->dst_be)
			      : sl_lpm(&sl_lpm_dst, slot, m, m->dst_be);
	if (m->has_ports && (prof->flags & SL_PROFILE_USES_PORTS)) {
		__u32 zero = 0;
		const struct sl_port_masks *pm = bpf_map_lookup_elem(&sl_ports, &zero);
		port = pm ? pm->mask[slot & 1][m->dport] : 0;
	}
	return sl_classify(prof, m, src, dst, port) & (SL_MAX_CLASSES - 1);
}

static __always_inline __u8 sl_flow_parts_of(const struct sl_profile *prof, __u32 cls)
{
	return prof->classes[cls & (SL_MAX_CLASSES - 1)].flow_parts;
}

static __always_inline __u32 sl_prio_of(const struct sl_profile *prof, __u32 cls)
{
	return prof->classes[cls & (SL_MAX_CLASSES - 1)].priority & (SL_PRIORITIES - 1);
}

static __always_inline void sl_flow_event(__u32 prio, __u32 ev)
{
	__u32 zero = 0;
	struct sl_counters *cnt = bpf_map_lookup_elem(&sl_counters, &zero);
	if (cnt)
		cnt->flow_events[prio & (SL_PRIORITIES - 1)][ev % SL_FLOW_EV_COUNT]++;
}

static __always_inline struct sl_backend_signal *sl_backend_signal_xdp(void)
{
	__u32 zero = 0;
	struct sl_counters *cnt = bpf_map_lookup_elem(&sl_counters, &zero);
	return cnt ? &cnt->backend : 0;
}

/* A flow key's hash (table_sets.h): its six words' lanes. An IPv4 key's
 * addresses fill half of their words each (the other words zero): both in
 * one lane, three in all (a SYN's flow write and a continuation's lookup
 * ~3 ns cheaper). */
static __always_inline __u64 sl_flow_hash(const struct sl_flow_key *k)
{
	const __u64 *w = (const __u64 *)k;
	if (k->family == SL_FAMILY_V4) {
		__u32 outer, inner;
		__builtin_memcpy(&outer, k->outer_be, 4);
		__builtin_memcpy(&inner, k->inner_be, 4);
		return sl_set_lane((__u64)outer << 32 | inner, 0) + sl_set_lane(w[4], 4) +
		       sl_set_lane(w[5], 5);
	}
	__u64 h = 0;
#pragma unroll
	for (__u32 i = 0; i < sizeof(*k) / 8; i++)
		h += sl_set_lane(w[i], i);
	return h;
}

/* Whether a way holds k (both 8-byte aligned: six loads each). A way being
 * written holds no key (its last word: SL_FLOW_TAIL_CLAIMED). */
static __always_inline int sl_flow_is(const struct sl_flow_way *w, const struct sl_flow_key *k)
{
	const __u64 *a = (const __u64 *)&w->key, *b = (const __u64 *)k;
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

/* The set of partition prio that a key of this hash belongs in. */
static __always_inline struct sl_flow_set *sl_flow_set_of(__u32 prio, __u64 hash)
{
	__u32 idx = (prio & (SL_PRIORITIES - 1)) * (sl_flow_set_mask + 1) +
		    ((__u32)hash & sl_flow_set_mask);
	return bpf_map_lookup_elem(&sl_flows, &idx);
}

/* The live entry of k in one of the partitions of parts; an entry past its
 * life met on the way is removed (emptied: its expires_ns to 0, by a
 * compare-and-swap, so that one CPU counts it). *part_of receives the
 * partition. */
static __always_inline struct sl_flow *sl_flow_find(__u32 parts, const struct sl_flow_key *k,
						    __u64 now, __u32 *part_of)
{
	const __u64 hash = sl_flow_hash(k);
	for (__u32 p = 0; p < SL_PRIORITIES; p++) {
		if (!(parts & (1U << p)))
			continue;
		struct sl_flow_set *set = sl_flow_set_of(p, hash);
		if (!set)
			continue;
#pragma unroll
		for (__u32 i = 0; i < SL_FLOW_WAYS; i++) {
			struct sl_flow_way *w = &set->way[i];
			if (!sl_flow_is(w, k))
				continue;
			const __u64 expires = SL_READ_ONCE(w->flow.expires_ns);
			if (expires == 0)
				continue;
			if (now < expires) {
				*part_of = p;
				return &w->flow;
			}
			if (__sync_val_compare_and_swap(&w->flow.expires_ns, expires, 0) == expires)
				sl_flow_event(p, SL_FLOW_EV_EXPIRED);
		}
	}
	return 0;
}

/* Writes f for k. An entry already there (a retransmitted SYN: retries are
 * what a surge is made of) is rewritten in place. A new flow takes the way
 * of its set that expires first and no other CPU is writing: it claims the
 * way (a compare-and-swap of the key's last word; lost to another CPU: the
 * flow goes unrecorded, as an LRU map's failed insert), writes the entry
 * with no life (no packet verifies by it meanwhile), then the key, and
 * publishes the key's last word. The entry it takes, if any, is counted:
 * evicted when live, expired when past its life (as the reference counts a
 * recycled one), so that the events account for every entry
 * (XdpProgram::stats: created + learned - expired - evicted).
 * outside_syn: f is an admitted SYN's (marked as sent again when the one
 * before went unanswered). */
static __always_inline void sl_flow_put(const struct sl_profile *prof, __u32 prio,
					const struct sl_flow_key *k, const struct sl_flow *f,
					__u32 ev, __u64 now, int outside_syn)
{
	__u32 part = prio & (SL_PRIORITIES - 1);
	struct sl_flow_set *set = sl_flow_set_of(part, sl_flow_hash(k));
	if (!set)
		return;
#pragma unroll
	for (__u32 i = 0; i < SL_FLOW_WAYS; i++) {
		struct sl_flow_way *w = &set->way[i];
		if (sl_flow_is(w, k) && SL_READ_ONCE(w->flow.expires_ns) != 0) {
			/* not a new entry: no event */
			sl_flow_rewrite(&w->flow, f, outside_syn ? prof : 0, now);
			return;
		}
	}
	__u32 v = SL_FLOW_WAYS;
	__u64 first_end = ~0ULL;
#pragma unroll
	for (__u32 i = 0; i < SL_FLOW_WAYS; i++) {
		struct sl_flow_way *w = &set->way[i];
		const __u64 expires = SL_READ_ONCE(w->flow.expires_ns);
		const __u64 tail = SL_READ_ONCE(((const __u64 *)&w->key)[SL_FLOW_TAIL_WORD]);
		if (tail != SL_FLOW_TAIL_CLAIMED && expires < first_end) {
			v = i;
			first_end = expires;
		}
	}
	if (v >= SL_FLOW_WAYS)
		return; /* every way being written by another CPU */
	struct sl_flow_way *w = &set->way[v & (SL_FLOW_WAYS - 1)];
	__u64 *tail = &((__u64 *)&w->key)[SL_FLOW_TAIL_WORD];
	const __u64 seen = SL_READ_ONCE(*tail);
	if (seen == SL_FLOW_TAIL_CLAIMED ||
	    __sync_val_compare_and_swap(tail, seen, SL_FLOW_TAIL_CLAIMED) != seen)
		return;
	/* Its old end taken by an exchange: a CPU that found the old key an
	 * instant before may be ending it (sl_flow_find's compare-and-swap to
	 * 0), and exactly one of the two counts it (both did: sluice_flows ran
	 * low by one each time). */
	const __u64 old_end = __sync_lock_test_and_set(&w->flow.expires_ns, 0);
	const __u64 *from = (const __u64 *)k;
	__u64 *to = (__u64 *)&w->key;
#pragma unroll
	for (__u32 i = 0; i < SL_FLOW_TAIL_WORD; i++)
		to[i] = from[i];
	w->flow.state = f->state;
	w->flow.rt_phase = f->rt_phase;
	w->flow.icmp_errors = f->icmp_errors;
	w->flow.meter = f->meter;
	w->flow.rt_req_us = f->rt_req_us;
	w->flow.expires_ns = f->expires_ns;
	__sync_val_compare_and_swap(tail, SL_FLOW_TAIL_CLAIMED, from[SL_FLOW_TAIL_WORD]);
	sl_flow_event(part, ev);
	if (old_end != 0)
		sl_flow_event(part, now < old_end ? SL_FLOW_EV_EVICTED : SL_FLOW_EV_EXPIRED);
}

/* BPF functions take five arguments: the profile slot and the class travel
 * in one. */
#define SL_SLOT_CLASS(slot, cls) ((slot) << 16 | (cls))

/* Whether a packet from the outside that starts no lookup is verified by a
 * live flow (refreshing it): sl_decide()'s flow_hit. Global: verified on its
 * own. */
__attribute__((noinline)) int sl_flow_verify_xdp(struct xdp_md *ctx, const struct sl_profile *prof,
						 __u32 slot_cls, const struct sl_meta *m, __u64 now)
{
	__u32 zero = 0;
	struct sl_flow_scratch *sc = bpf_map_lookup_elem(&sl_scratch, &zero);
	if (!prof || !m || !sc)
		return 0;
	__u32 slot = (slot_cls >> 16) & 1, cls = slot_cls & (SL_MAX_CLASSES - 1);
	struct sl_flow_key *key = &sc->key;
	__u32 parts = sl_flow_parts_of(prof, cls);
	__u32 part = 0;
	int kind = sl_flow_lookup_kind(m);
	if (kind == SL_FLOW_LOOKUP_TCP) {
		sl_flow_key_tcp(key, m);
	} else if (kind == SL_FLOW_LOOKUP_FRAG) {
		sl_flow_key_frag(key, m);
	} else if (kind == SL_FLOW_LOOKUP_ICMP) {
		struct sl_meta *inner = &sc->meta;
		if (!sl_parse_icmp_inner((__u8 *)(long)ctx->data, (__u8 *)(long)ctx->data_end, m,
					 inner))
			return 0;
		sl_flow_key_tcp(key, inner);
		parts = sl_flow_parts_of(prof, sl_classify_xdp(prof, slot & 1, inner));
		struct sl_flow *hit = sl_flow_find(parts, key, now, &part);
		return hit ? sl_flow_icmp_hit(hit, prof) : 0;
	} else {
		return 0;
	}
	struct sl_flow *f = sl_flow_find(parts, key, now, &part);
	if (!f || !sl_flow_outside_verifies(f, m, prof))
		return 0;
	int hit = sl_flow_hit_metered(f, prof, now);
	if (hit == SL_FLOW_HIT_OVER)
		sl_flow_event(sl_prio_of(prof, cls), SL_FLOW_EV_OVER_RATE);
	sl_flow_touch(f, m, prof, now);
	if (sl_rt_outside(f, m, prof, now)) {
		struct sl_backend_signal *sig = sl_backend_signal_xdp();
		if (sig)
			sig->requests++;
	}
	return hit;
}

/* What a decision asks of the flow table (sl_decision.flow_ops). */
__attribute__((noinline)) int sl_flow_apply_xdp(const struct sl_profile *prof, __u32 slot_cls,
						const struct sl_meta *m, __u32 flow_ops, __u64 now)
{
	__u32 zero = 0;
	struct sl_flow_scratch *sc = bpf_map_lookup_elem(&sl_scratch, &zero);
	if (!prof || !m || !sc)
		return 0;
	struct sl_flow_key *key = &sc->key;
	struct sl_flow *f = &sc->flow;
	__u32 slot = (slot_cls >> 16) & 1, cls = slot_cls & (SL_MAX_CLASSES - 1);
	if (flow_ops & (SL_FLOW_OP_CREATE_TCP | SL_FLOW_OP_LEARN)) {
		__u32 op = (flow_ops & SL_FLOW_OP_LEARN) ? SL_FLOW_OP_LEARN : SL_FLOW_OP_CREATE_TCP;
		sl_flow_key_tcp(key, m);
		sl_flow_make(f, op, prof, now);
		sl_flow_put(prof, sl_prio_of(prof, cls), key, f,
			    op == SL_FLOW_OP_LEARN ? SL_FLOW_EV_LEARNED : SL_FLOW_EV_CREATED, now,
			    op == SL_FLOW_OP_CREATE_TCP);
	}
	if (flow_ops & SL_FLOW_OP_CREATE_FRAG) {
		struct sl_meta *later = &sc->meta;
		sl_meta_portless(m, later);
		__u32 lc = sl_classify_xdp(prof, slot & 1, later);
		if (!sl_frag_entry_kept(sl_prio_of(prof, cls), sl_prio_of(prof, lc)))
			return 0;
		sl_flow_key_frag(key, m);
		sl_flow_make(f, SL_FLOW_OP_CREATE_FRAG, prof, now);
		sl_flow_put(prof, sl_prio_of(prof, lc), key, f, SL_FLOW_EV_CREATED, now, 0);
	}
	return 0;
}

/* A frame from the inside (inline mode): a SYN it opens creates its flow,
 * FIN/RST close one, and it confirms learned flows. Never changes the frame. */
__attribute__((noinline)) int sl_flow_inside_xdp(struct xdp_md *ctx, const struct sl_profile *prof,
						 __u32 slot, const struct sl_boundary_state *bs,
						 __u64 now)
{
	if (!prof || !bs)
		return 0;
	struct sl_meta m;
	if (sl_parse_xdp(ctx, &m) != SL_PARSE_OK)
		return 0;
	if (!sl_flow_inside_wants(&m, prof, bs, now))
		return 0;
	__u32 zero = 0;
	struct sl_flow_scratch *sc = bpf_map_lookup_elem(&sl_scratch, &zero);
	if (!sc)
		return 0;
	struct sl_meta *r = &sc->meta;
	sl_meta_reverse(&m, r);
	__u32 cls = sl_classify_xdp(prof, slot & 1, r);
	struct sl_flow_key *key = &sc->key;
	sl_flow_key_tcp(key, r);
	if (sl_flow_inside_opens(&m)) {
		sl_flow_make_inside(&sc->flow, prof, now);
		sl_flow_put(prof, sl_prio_of(prof, cls), key, &sc->flow, SL_FLOW_EV_CREATED, now,
			    0);
		return 0;
	}
	__u32 part = 0;
	struct sl_flow *f = sl_flow_find(sl_flow_parts_of(prof, cls), key, now, &part);
	if (!f)
		return 0;
	struct sl_backend_signal *sig = sl_backend_signal_xdp();
	if (sig)
		sl_rt_inside(f, &m, prof, now, sig);
	int ev = sl_flow_touch_inside(f, &m, prof, now);
	if (ev >= 0)
		sl_flow_event(part, (__u32)ev);
	return 0;
}
