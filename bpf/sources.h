/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP program's per-source table driver: a lookup's source found in the
 * sets of sl_sources (shared_state.h), entered under its set's stripe lock
 * when new, and its GCRA budget (dataplane/model/gcra.h) taken, peeked at or
 * given back by compare-and-swap. The BPF twin of
 * dataplane/common/source_table.hpp (same model calls).
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "decide.h"
#include "sticky.h"
#include "table_sets.h"

/* How stale a refused source's last use may get before a refusal writes it
 * (its way's eviction order): 1 ms. */
#define SL_SOURCE_USE_NS 1000000ULL

/* Whether a way holds key (both 8-byte aligned: three loads each). */
static __always_inline int sl_source_is(const struct sl_source_way *w,
					const struct sl_source_key *key)
{
	const __u64 *a = (const __u64 *)w, *b = (const __u64 *)key;
	return a[0] == b[0] && a[1] == b[1] && ((const __u32 *)a)[4] == ((const __u32 *)b)[4];
}

/* The way of the set that holds key, or SL_SOURCE_WAYS. */
static __always_inline __u32 sl_source_find(const struct sl_source_set *set,
					    const struct sl_source_key *key)
{
#pragma unroll
	for (__u32 i = 0; i < SL_SOURCE_WAYS; i++)
		if (sl_source_is(&set->way[i], key))
			return i;
	return SL_SOURCE_WAYS;
}

/* The way a source new to the set takes: an empty one, else the first in
 * the set's eviction order (decide.h, sl_source_evict_order). */
static __always_inline __u32 sl_source_victim(const struct sl_source_set *set)
{
	__u32 v = 0;
	__u64 least = ~0ULL;
#pragma unroll
	for (__u32 i = 0; i < SL_SOURCE_WAYS; i++) {
		const struct sl_source_way *w = &set->way[i];
		if (w->key.family == 0)
			return i;
		const __u64 order = sl_source_evict_order(SL_READ_ONCE(w->used_ns),
							  SL_READ_ONCE(w->state.tat_u),
							  SL_READ_ONCE(w->returned));
		if (order < least) {
			least = order;
			v = i;
		}
	}
	return v;
}

#define SL_SOURCE_OP_TAKE	 0
#define SL_SOURCE_OP_GIVE_BACK	 1 /* the token an earlier take took; returns 0 */
#define SL_SOURCE_OP_PEEK	 2 /* whether a take would find a token; takes none */
#define SL_SOURCE_OP_TAKE_PEEKED 3 /* a take after this packet's own peek */

/* Tests: the tries a take or give-back makes in the program's own code,
 * 1..SL_SOURCE_CAS_TRIES, and in the bpf_loop after them,
 * 0..SL_SOURCE_CAS_RETRIES (shared_state.h): fewer lose more races (the
 * loader). */
const volatile __u32 sl_source_cas_tries = SL_SOURCE_CAS_TRIES;
const volatile __u32 sl_source_cas_retries = SL_SOURCE_CAS_RETRIES;

/* One compare-and-swap try of a take or give-back at the source in `way`,
 * whose budget is (emit_u, limit_u) (gcra.h): 1 when it decided, with
 * *result SL_SOURCE_TAKEN or SL_SOURCE_REFUSED (0 for a give-back); 0 when
 * another CPU's write landed first. */
static __always_inline int sl_source_try(struct sl_source_way *way, __u64 emit_u, __u64 limit_u,
					 __u64 now, int give_back, __s8 *result)
{
	const __u64 tat = SL_READ_ONCE(way->state.tat_u);
	const __u64 next = give_back ? sl_gcra_give_back_at(tat, emit_u)
				     : sl_gcra_take_at(tat, emit_u, limit_u, now);
	if (!next && !give_back) {
		*result = SL_SOURCE_REFUSED;
		return 1;
	}
	if (__sync_val_compare_and_swap(&way->state.tat_u, tat, next) != tat)
		return 0;
	*result = give_back ? 0 : SL_SOURCE_TAKEN;
	return 1;
}

/* The bpf_loop's context, packed (the whole call chain has BPF's 512 bytes
 * of stack, and the program takes most of them): the way by its set and
 * number, not a pointer (the callback finds it again), and the budget's two
 * words. */
struct sl_source_retry {
	__u64 now;
	__u64 emit_u;
	__u64 limit_u;
	__u32 set;
	__u8 way;
	__u8 give_back;
	__s8 result; /* -1: every try lost */
	__u8 pad;
};

static long sl_source_retry_cb(__u32 i, void *arg)
{
	struct sl_source_retry *r = arg;
	struct sl_source_set *set = bpf_map_lookup_elem(&sl_sources, &r->set);
	if (!set)
		return 1;
	return sl_source_try(&set->way[r->way & (SL_SOURCE_WAYS - 1)], r->emit_u, r->limit_u,
			     r->now, r->give_back, &r->result);
}

/* A take or a give-back of the source in way w of set `set`: GCRA (gcra.h),
 * by compare-and-swap of its one word. One that loses every try is counted
 * (sl_counters.source_races). The first tries are the program's own code
 * (the common case: one); a source many CPUs take from at once goes on in a
 * bpf_loop, so that 64 CPUs on one carrier NAT's address do not refuse its
 * lookups for lost races while it has tokens. */
static __always_inline int sl_source_cas(struct sl_source_way *way, __u32 set, __u32 w,
					 const struct sl_class_params *cp, __u64 now, int give_back)
{
	const __u64 emit_u = cp->src_bucket.emit_u, limit_u = cp->src_bucket.limit_u;
	__s8 result = -1;
#pragma unroll
	for (__u32 i = 0; i < SL_SOURCE_CAS_TRIES; i++) {
		if (i >= sl_source_cas_tries)
			break;
		if (sl_source_try(way, emit_u, limit_u, now, give_back, &result))
			return result;
	}
	struct sl_source_retry r = {
		.now = now,
		.emit_u = emit_u,
		.limit_u = limit_u,
		.set = set,
		.way = (__u8)w,
		.give_back = (__u8)give_back,
		.result = -1,
	};
	if (sl_source_cas_retries)
		bpf_loop(sl_source_cas_retries, sl_source_retry_cb, &r, 0);
	if (r.result >= 0)
		return r.result;
	__u32 zero = 0;
	struct sl_counters *cnt = bpf_map_lookup_elem(&sl_counters, &zero);
	if (cnt)
		cnt->source_races++;
	return give_back ? 0 : SL_SOURCE_REFUSED;
}

/* A lookup's source budget (sl_sources, created full): SL_SOURCE_TAKEN or
 * SL_SOURCE_REFUSED (decide.h), or SL_SOURCE_HERE when the table cannot be
 * read (no per-source limit). The token is taken (or given back) by one
 * compare-and-swap of the source's word, without a lock; a refusal writes
 * nothing. Peek: SL_SOURCE_TAKEN when the source has a token, none taken (a
 * shed that only needed to know writes nothing). A source new to its set
 * enters it under the lock of the set's stripe (sl_source_locks): in place
 * of the source first in its set's eviction order when the set is full
 * (sl_source_victim), counted as an eviction. A CPU that found the
 * source's way an instant before another CPU gave it to a new source takes
 * (or gives back) that source's token: once, at worst, from a fresh full
 * budget. */
__attribute__((noinline)) int sl_source_xdp(const struct sl_profile *prof, __u32 cls,
					    const struct sl_meta *m, __u64 now, int op)
{
	const int give_back = op == SL_SOURCE_OP_GIVE_BACK;
	if (!prof || !m)
		return SL_SOURCE_HERE;
	const struct sl_class_params *cp = &prof->classes[cls & (SL_MAX_CLASSES - 1)];
	struct sl_source_key key __attribute__((aligned(8)));
	sl_source_key_make(&key, m, cp);
	__u32 zero = 0;
	__u32 index = (__u32)sl_key_hash(&key, sl_table_salt_value) & sl_source_set_mask;
	struct sl_source_set *set = bpf_map_lookup_elem(&sl_sources, &index);
	if (!set)
		return SL_SOURCE_HERE;
	__u32 w = sl_source_find(set, &key);
	int entered = 0;
	if (w >= SL_SOURCE_WAYS) {
		if (give_back)
			return 0; /* its way went to another source meanwhile */
		__u32 stripe = index & (SL_SOURCE_LOCKS - 1);
		struct sl_source_lock *sl = bpf_map_lookup_elem(&sl_source_locks, &stripe);
		if (!sl)
			return SL_SOURCE_HERE;
		int evicted = 0;
		bpf_spin_lock(&sl->lock);
		w = sl_source_find(set, &key);
		if (w >= SL_SOURCE_WAYS) {
			w = sl_source_victim(set);
			struct sl_source_way *v = &set->way[w & (SL_SOURCE_WAYS - 1)];
			evicted = v->key.family != 0;
			entered = 1;
			/* Its budget before its key: a CPU that matches the
			 * key reads the fresh budget. */
			sl_source_init(&v->state);
			v->used_ns = now;
			v->returned = 0;
			SL_STORE_ORDER();
			__builtin_memcpy(&v->key, &key, sizeof(key));
		}
		bpf_spin_unlock(&sl->lock);
		if (entered) {
			struct sl_counters *cnt = bpf_map_lookup_elem(&sl_counters, &zero);
			if (cnt) {
				cnt->source_inserts++;
				cnt->source_evictions += evicted;
			}
		}
	}
	struct sl_source_way *way = &set->way[w & (SL_SOURCE_WAYS - 1)];
	/* Still in use: a flood of new sources must not take its way (and
	 * give it a full budget). Written once per SL_SOURCE_USE_NS at most,
	 * not by every packet. */
	if (now - SL_READ_ONCE(way->used_ns) > SL_SOURCE_USE_NS)
		way->used_ns = now;
	/* Came back: a packet after the one that entered it (not this
	 * packet's own second call, a take after its peek or a give-back). */
	if (!entered && (op == SL_SOURCE_OP_TAKE || op == SL_SOURCE_OP_PEEK) &&
	    !SL_READ_ONCE(way->returned))
		way->returned = 1;
	SL_LOAD_ORDER();
	/* A debt a retune left beyond the burst's reach, cut back (gcra.h):
	 * once, by whichever CPU's compare-and-swap lands first. */
	const __u64 tat = SL_READ_ONCE(way->state.tat_u);
	const __u64 settled = sl_gcra_settle(tat, &cp->src_bucket, now);
	if (settled != tat)
		__sync_val_compare_and_swap(&way->state.tat_u, tat, settled);
	if (op == SL_SOURCE_OP_PEEK)
		return sl_source_short(&way->state, cp, now) ? SL_SOURCE_REFUSED : SL_SOURCE_TAKEN;
	return sl_source_cas(way, index, w, cp, now, give_back);
}
