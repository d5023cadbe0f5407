/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-operation costs for the scaling model in docs/performance.md, measured
 * by BPF_PROG_TEST_RUN from one CPU and from two at once (bench/xdp_bench
 * --part ops). Every program does its operation SL_OPS times on a value
 * shared by all CPUs (or, for the per-CPU rows, on the CPU's own), so the
 * operation outweighs the test run's own cost; the benchmark subtracts the
 * empty program and divides by SL_OPS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SL_OPS 8

struct shared {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 tokens;
	__u64 last;
	__u64 tat; /* GCRA: theoretical arrival time, ns */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shared);
} ops_shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ops_cpu SEC(".maps");

SEC("xdp")
int op_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* The shape of today's decision: lock, update two words, unlock. */
SEC("xdp")
int op_spin_lock(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct shared *s = bpf_map_lookup_elem(&ops_shared, &zero);
	if (!s)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < SL_OPS; i++) {
		bpf_spin_lock(&s->lock);
		s->tokens += 1;
		s->last = i;
		bpf_spin_unlock(&s->lock);
	}
	return XDP_PASS;
}

SEC("xdp")
int op_atomic_add(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct shared *s = bpf_map_lookup_elem(&ops_shared, &zero);
	if (!s)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < SL_OPS; i++)
		__sync_fetch_and_add(&s->tokens, 1);
	return XDP_PASS;
}

/* One compare-and-swap attempt (read, then swap in the value plus one). */
SEC("xdp")
int op_cmpxchg(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct shared *s = bpf_map_lookup_elem(&ops_shared, &zero);
	if (!s)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < SL_OPS; i++) {
		__u64 old = *(volatile __u64 *)&s->tokens;
		__sync_val_compare_and_swap(&s->tokens, old, old + 1);
	}
	return XDP_PASS;
}

/* A GCRA take (the single-CAS exact bucket): tat' = max(tat, now) + T,
 * admitted while tat' - now <= tau; a lost race retries (at most 4 times). */
SEC("xdp")
int op_gcra(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct shared *s = bpf_map_lookup_elem(&ops_shared, &zero);
	if (!s)
		return XDP_ABORTED;
	__u64 now = bpf_ktime_get_ns();
	const __u64 interval = 1, tau = 1ULL << 62; /* everything admitted */
#pragma unroll
	for (int i = 0; i < SL_OPS; i++) {
		for (int attempt = 0; attempt < 4; attempt++) {
			__u64 tat = *(volatile __u64 *)&s->tat;
			__u64 next = (tat > now ? tat : now) + interval;
			if (next - now > tau)
				break;
			if (__sync_val_compare_and_swap(&s->tat, tat, next) == tat)
				break;
		}
	}
	return XDP_PASS;
}

/* A per-CPU token cache's common case: a decrement of the CPU's own value. */
SEC("xdp")
int op_percpu(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&ops_cpu, &zero);
	if (!c)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < SL_OPS; i++)
		*(volatile __u64 *)c -= 1;
	return XDP_PASS;
}

/* Map lookups, hits of 8 keys the benchmark wrote before the runs, each
 * key's entry in cache after the first round: the least any per-source
 * entry (a 20-byte key, as struct sl_source_key) or prefix match costs. */
struct ops_key {
	__u8 addr[16];
	__u32 rest;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ops_key);
	__type(value, __u64);
} ops_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ops_key);
	__type(value, __u64);
} ops_hash SEC(".maps");

struct ops_lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct ops_lpm_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ops_lpm SEC(".maps");

#define LOOKUP_PROG(name, map)                                                                     \
	SEC("xdp")                                                                                 \
	int name(struct xdp_md *ctx)                                                               \
	{                                                                                          \
		__u64 found = 0;                                                                   \
		_Pragma("unroll") for (int i = 0; i < SL_OPS; i++)                                 \
		{                                                                                  \
			struct ops_key k = {.addr = {198, 18, 0, (__u8)i}};                        \
			found += bpf_map_lookup_elem(&map, &k) != 0;                               \
		}                                                                                  \
		return found == SL_OPS ? XDP_PASS : XDP_ABORTED;                                   \
	}

LOOKUP_PROG(op_lru_lookup, ops_lru)
LOOKUP_PROG(op_hash_lookup, ops_hash)

/* 10 prefixes (198.18.k.0/24), looked up with /32 keys inside them. */
SEC("xdp")
int op_lpm_lookup(struct xdp_md *ctx)
{
	__u64 found = 0;
#pragma unroll
	for (int i = 0; i < SL_OPS; i++) {
		struct ops_lpm_key k = {.prefixlen = 32,
					.addr = __builtin_bswap32(0xc6120000 | (i << 8) | 7)};
		found += bpf_map_lookup_elem(&ops_lpm, &k) != 0;
	}
	return found == SL_OPS ? XDP_PASS : XDP_ABORTED;
}

#define CLOCK_PROG(name, helper)                                                                   \
	SEC("xdp")                                                                                 \
	int name(struct xdp_md *ctx)                                                               \
	{                                                                                          \
		__u32 zero = 0;                                                                    \
		__u64 *c = bpf_map_lookup_elem(&ops_cpu, &zero);                                   \
		if (!c)                                                                            \
			return XDP_ABORTED;                                                        \
		_Pragma("unroll") for (int i = 0; i < SL_OPS; i++) * (volatile __u64 *)c +=        \
			helper();                                                                  \
		return XDP_PASS;                                                                   \
	}

CLOCK_PROG(op_ktime, bpf_ktime_get_ns)
CLOCK_PROG(op_ktime_boot, bpf_ktime_get_boot_ns)
CLOCK_PROG(op_ktime_coarse, bpf_ktime_get_coarse_ns)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
