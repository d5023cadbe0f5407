/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor under target (c) with tables of our own (docs/performance.md,
 * "The floor under the single-CPU targets"): the least work any XDP program
 * must do to decide an IPv4 lookup of a class with per-source budgets, with
 * every table an array the verifier inlines instead of a kernel hash map:
 *  - parse Ethernet, IPv4 (no options) and UDP or TCP;
 *  - the class: one read of a DIR-16 prefix array (sluice's arrays need one
 *    to three, dataplane/xdp/prefix_array.hpp);
 *  - the source's budget: an open-addressed table (a multiplicative hash of
 *    the source and class, one slot, a tag compare; a new source claims the
 *    slot with one compare-and-swap) and a GCRA take (one compare-and-swap
 *    of the theoretical arrival time), on the coarse clock;
 *  - the class and boundary budgets: a decrement of the CPU's own credit;
 *  - an admitted SYN: its flow written into an open-addressed flow array;
 *    a TCP continuation: verified there (no budget);
 *  - the CPU's own verdict counter.
 * Every packet is admitted (as in the benchmark's sluice rows). What it
 * leaves out is what sluice's semantics add: IPv6, VLAN tags, options and
 * fragments, sticky ranks, epochs, eviction by age, reserves, captures.
 * Not a dataplane: a yardstick, run by bench/xdp_bench --part single.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FLOOR_SOURCES 65536 /* a power of two */
#define FLOOR_FLOWS   65536

struct floor_source {
	__u64 tag;    /* source address | class << 32 | 1 << 40: 0 is empty */
	__u64 tat;    /* GCRA: theoretical arrival time, ns */
	__u64 pad[6]; /* a cache line each, as sluice pads its entries */
};

struct floor_flow {
	__u64 tag; /* the 5-tuple's hash, | 1: 0 is empty */
	__u64 expires_ns;
};

struct floor_cpu {
	__u64 credit; /* the class's and the boundary's tokens, drawn ahead */
	__u64 verdicts[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} floor_prefix16 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOOR_SOURCES);
	__type(key, __u32);
	__type(value, struct floor_source);
} floor_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOOR_FLOWS);
	__type(key, __u32);
	__type(value, struct floor_flow);
} floor_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floor_cpu);
} floor_cpus SEC(".maps");

#define FLOOR_GOLDEN	  0x9E3779B97F4A7C15ULL
#define FLOOR_INTERVAL_NS 1000ULL      /* 10^6 lookups/s per source */
#define FLOOR_TAU_NS	  (1ULL << 40) /* a burst no benchmark spends */

SEC("xdp")
int floor_c(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	int start;
	__u32 ports;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end)
			return XDP_PASS;
		start = 1;
		ports = *(__u32 *)udp;
	} else if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > end)
			return XDP_PASS;
		start = tcp->syn && !tcp->ack;
		ports = *(__u32 *)tcp;
	} else {
		return XDP_PASS;
	}
	const __u32 saddr = ip->saddr;
	__u32 top = bpf_ntohl(saddr) >> 16;
	__u32 *cls = bpf_map_lookup_elem(&floor_prefix16, &top);
	if (!cls)
		return XDP_PASS;
	__u32 zero = 0;
	struct floor_cpu *cpu = bpf_map_lookup_elem(&floor_cpus, &zero);
	if (!cpu)
		return XDP_PASS;
	const __u64 now = bpf_ktime_get_coarse_ns();
	int admitted = 1;
	if (start) {
		const __u64 tag = (__u64)saddr | (__u64)(*cls & 0xff) << 32 | 1ULL << 40;
		__u32 slot = (__u32)((tag * FLOOR_GOLDEN) >> 48);
		struct floor_source *s = bpf_map_lookup_elem(&floor_sources, &slot);
		if (!s)
			return XDP_PASS;
		__u64 seen = *(volatile __u64 *)&s->tag;
		if (seen != tag && __sync_val_compare_and_swap(&s->tag, seen, tag) == seen)
			s->tat = now; /* a new source: a full bucket */
		const __u64 tat = *(volatile __u64 *)&s->tat;
		const __u64 next = (tat > now ? tat : now) + FLOOR_INTERVAL_NS;
		admitted = next - now <= FLOOR_TAU_NS &&
			   __sync_val_compare_and_swap(&s->tat, tat, next) == tat;
		if (admitted)
			cpu->credit--;
	}
	if (ip->protocol == IPPROTO_TCP) {
		const __u64 h = (((__u64)saddr << 32 | ip->daddr) ^ (__u64)ports * FLOOR_GOLDEN) *
				FLOOR_GOLDEN;
		__u32 slot = (__u32)(h >> 48);
		struct floor_flow *f = bpf_map_lookup_elem(&floor_flows, &slot);
		if (!f)
			return XDP_PASS;
		if (admitted && start) {
			f->tag = h | 1;
			f->expires_ns = now + 10000000000ULL;
		} else if (!start) {
			/* a continuation: verified by its flow, else dropped */
			admitted = f->tag == (h | 1) && now < f->expires_ns;
		}
	}
	cpu->verdicts[admitted & 1]++;
	return admitted ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
