/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every structure that crosses a boundary (control plane -> dataplane, userspace
 * <-> BPF maps, model <-> its callers) is declared here once, with fixed-width
 * types, explicit padding and sizes checked at compile time. Byte order is in
 * the field name when it is not host order (`_be`).
 *
 * This header compiles as C++20 and as C under `clang -target bpf`.
 */
#pragma once

#include <linux/types.h>

#ifdef __cplusplus
#define SL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define SL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#include "reasons.h"

/* Model functions are inlined into the BPF program: the verifier forbids
 * calls while the state lock is held, and inlining keeps the entry flat. */
#ifdef __bpf__
#define SL_INLINE static inline __attribute__((always_inline))
/* Keeps the compiler from folding a bound check into another register than
 * the one the verifier then sees used (so the mask after it stays). */
#define SL_VERIFIER_BARRIER(x) asm volatile("" : "+r"(x))
#else
#define SL_INLINE	       static inline
#define SL_VERIFIER_BARRIER(x) ((void)0)
#endif

/* Shared state that decisions outside the state lock read or count into
 * (credit.h, sl_shed_unlocked): a load the compiler makes once, where
 * written; the order of two stores a reader without the lock relies on
 * (SL_STORE_ORDER between them) and of its two loads (SL_LOAD_ORDER); an
 * atomic add of a count, and the count taken (swapped for 0) by another CPU.
 * In C++ the orders are release and acquire fences: no instruction on x86,
 * a barrier on arm64. In BPF they are compiler barriers: x86's JIT keeps
 * both orders; BPF has no fence instruction (an arm64 host would need BPF's
 * load-acquire and store-release, newer than Debian 12's clang). */
#ifdef __bpf__
#define SL_READ_ONCE(x)	   (*(const volatile __typeof__(x) *)&(x))
#define SL_STORE_ORDER()   asm volatile("" ::: "memory")
#define SL_LOAD_ORDER()	   asm volatile("" ::: "memory")
#define SL_COUNT_ADD(p, n) __sync_fetch_and_add((p), (n))
#define SL_COUNT_TAKE(p)   __sync_lock_test_and_set((p), 0)
#else
#define SL_READ_ONCE(x)	   __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SL_STORE_ORDER()   __atomic_thread_fence(__ATOMIC_RELEASE)
#define SL_LOAD_ORDER()	   __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define SL_COUNT_ADD(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define SL_COUNT_TAKE(p)   __atomic_exchange_n((p), 0, __ATOMIC_RELAXED)
#endif

#define SL_MAX_CLASSES	32 /* class masks are __u32; the implied default is one of them */
#define SL_PRIORITIES	8  /* 0 = highest .. 7 = lowest */
#define SL_MAX_VLANS	2  /* 802.1Q / 802.1ad tags the parser walks */
#define SL_MAX_IPV6_EXT 8  /* IPv6 extension headers walked before giving up (malformed) */
#define SL_NS_PER_SEC	1000000000ULL
#define SL_TOKEN	1000000000ULL /* one token in nanotokens: refill is exact integer arithmetic */
#define SL_RANK_ONE	65536U	      /* sticky threshold that admits every rank */
#define SL_MAX_RATE_PER_SEC                                                                        \
	1000000000ULL /* validation bound: keeps elapsed*rate inside 64 bits                       \
		       */
#define SL_MAX_BURST 1000000000ULL
/* Per-source table entries (admission.source_table_size): default and range. */
#define SL_SOURCES_DEFAULT 65536
#define SL_SOURCES_MIN	   1024
#define SL_SOURCES_MAX	   16777216
/* Flow table entries, all priority partitions (admission.flow_table_size). */
#define SL_FLOWS_DEFAULT 262144
#define SL_FLOWS_MIN	 (8 * 1024) /* 1024 per priority partition */
#define SL_FLOWS_MAX	 134217728
SL_STATIC_ASSERT(SL_FLOWS_MIN % SL_PRIORITIES == 0 && SL_FLOWS_DEFAULT % SL_PRIORITIES == 0,
		 "flow tables split evenly into one partition per priority");
/* Flow table (flow.h): one partition per priority. Lives fixed here, keys in config. */
#define SL_FLOW_SYN_NS	   (10ULL * SL_NS_PER_SEC) /* an admitted SYN until its flow's next packet */
#define SL_FLOW_CLOSING_NS (10ULL * SL_NS_PER_SEC) /* after a FIN or RST */
#define SL_FLOW_ICMP_MAX   16 /* ICMP errors a flow verifies in its life (flow.h) */
#define SL_FLOW_FRAG_NS	   (5ULL * SL_NS_PER_SEC) /* the later fragments of an admitted first one */
#define SL_FLOW_REFRESH_NS (1ULL * SL_NS_PER_SEC) /* an entry is rewritten at most this often */
/* The per-flow packet meter (flow.h, sl_flow_meter): windows of 2^24 ns
 * (16.8 ms), at most 4095 packets counted in one. */
#define SL_FLOW_METER_SHIFT 24
#define SL_FLOW_METER_MAX   4095

enum sl_action {
	SL_ACTION_PASS = 0,  /* forward unchanged */
	SL_ACTION_DROP = 1,  /* discard */
	SL_ACTION_RESET = 2, /* rewrite the SYN into a RST+ACK and send it back out */
	SL_ACTION_MARK = 3,  /* forward with the class's mark_dscp */
};

enum sl_shed_order {
	SL_SHED_STICKY = 0, /* shed the same sources for an epoch */
	SL_SHED_RANDOM = 1, /* shed whichever lookup finds the bucket empty */
};

enum sl_family {
	SL_FAMILY_NONE = 0,
	SL_FAMILY_V4 = 4,
	SL_FAMILY_V6 = 6,
};

enum sl_parse_result {
	SL_PARSE_OK = 0,
	SL_PARSE_NON_IP = 1,
	SL_PARSE_MALFORMED = 2,
};

/* What sluice does with a packet that continues no flow it saw begin. */
enum sl_unverified {
	SL_UNVERIFIED_CHARGE = 0, /* a lookup of its class: every budget applies (default) */
	SL_UNVERIFIED_DROP = 1,	  /* dropped */
	SL_UNVERIFIED_PASS = 2,	  /* trusted as a continuation (partial views of the traffic) */
};

enum sl_frag {
	SL_FRAG_NONE = 0,  /* not fragmented */
	SL_FRAG_FIRST = 1, /* offset 0, more fragments follow: L4 header present */
	SL_FRAG_LATER = 2, /* offset > 0: no L4 header, continues a lookup */
};

/* What the parser learned about one frame. Addresses keep network order; IPv4
 * uses the first 4 bytes and leaves the rest zero. */
struct __attribute__((aligned(8))) sl_meta { /* 8: parse clears it in 8-byte stores */
	__u8 src_be[16];
	__u8 dst_be[16];
	__u16 l3_off;	 /* bytes from the frame start to the IP header */
	__u16 l4_off;	 /* bytes from the frame start to the L4 header (0 if none) */
	__u16 l3_len;	 /* IP total length claimed by the header (v6: 40 + payload) */
	__u16 sport;	 /* host order; 0 when the protocol has no ports */
	__u16 dport;	 /* host order */
	__u16 ethertype; /* innermost, host order */
	__u32 tcp_seq;	 /* host order, for building a RST */
	__u8 family;	 /* enum sl_family */
	__u8 l4_proto;	 /* IP protocol number of the upper layer (after v6 extensions) */
	__u8 dscp;	 /* 0..63 */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 frag;	/* enum sl_frag */
	__u8 vlans;	/* tags walked, 0..SL_MAX_VLANS */
	__u8 has_ports; /* sport/dport are valid */
	__u8 is_start;	/* starts a lookup (TCP SYN w/o ACK, UDP, ICMP echo request) */
	__u8 v6_ext;	/* IPv6 extension headers walked */
	__u8 hop_limit; /* IPv6 hop limit, IPv4 TTL */
	/* A fragment's protocol as every fragment of its datagram carries it:
	 * IPv4's protocol; IPv6: the Fragment header's next header (a later
	 * fragment's l4_proto, where the first walks on to the upper layer). */
	__u8 frag_proto;
	__u16 vlan_id[SL_MAX_VLANS]; /* VIDs of the tags walked, outer first, host order */
	__u32 frag_id;		     /* IP identification of a fragment (v4: 16 bits), host order */
	__u16 tcp_payload;	     /* TCP data bytes in this packet (first or only fragment) */
	__u16 tcp_window;	     /* TCP window field as sent (unscaled), host order */
	__u32 tcp_ack;		     /* TCP acknowledgment number, host order (flow.h, sl_rt_*) */
};
SL_STATIC_ASSERT(sizeof(struct sl_meta) == 80, "sl_meta layout");

/* A token bucket's compiled parameters. Tokens are counted in nanotokens
 * (SL_TOKEN per token) so that refill = elapsed_ns * rate_per_sec is exact. */
struct sl_bucket_params {
	__u64 rate_per_sec;  /* tokens added per second */
	__u64 cap_nt;	     /* burst * SL_TOKEN */
	__u64 full_after_ns; /* elapsed time that refills an empty bucket: ceil(cap_nt / rate) */
	__u32 enabled;	     /* 0 = unlimited (the bucket is not consulted) */
	__u32 pad;
};
SL_STATIC_ASSERT(sizeof(struct sl_bucket_params) == 32, "sl_bucket_params layout");

/* A per-source budget (gcra.h): one word a source, taken by one
 * compare-and-swap. Time in 1/4 ns. */
#define SL_GCRA_SHIFT	      2
#define SL_GCRA_UNITS_PER_SEC (SL_NS_PER_SEC << SL_GCRA_SHIFT)
#define SL_GCRA_LIMIT_MAX     (1ULL << 61)
struct sl_gcra_params {
	__u64 emit_u;	    /* emission interval, 1 / rate: ceil(4 * 10^9 / rate) */
	__u64 limit_u;	    /* burst * emit_u (at most SL_GCRA_LIMIT_MAX): a full source's reach */
	__u64 rate_per_sec; /* as configured */
	__u32 enabled;	    /* 0 = no per-source budget */
	__u32 pad;
};
SL_STATIC_ASSERT(sizeof(struct sl_gcra_params) == 32, "sl_gcra_params layout");

struct sl_bucket {
	__u64 tokens_nt;
	__u64 last_ns; /* time of the last refill; never moves backwards */
};
SL_STATIC_ASSERT(sizeof(struct sl_bucket) == 16, "sl_bucket layout");

struct sl_class_params {
	struct sl_bucket_params bucket;	  /* lookups of the whole class */
	struct sl_gcra_params src_bucket; /* lookups of one source within the class */
	__u8 priority;			  /* 0..7 */
	__u8 on_shed;			  /* enum sl_action */
	__u8 shed_order;		  /* enum sl_shed_order */
	__u8 mark_dscp;			  /* DSCP written by SL_ACTION_MARK */
	__u8 src_prefix_v4;		  /* source key: mask IPv4 sources to this length */
	__u8 src_prefix_v6;		  /* source key: mask IPv6 sources to this length */
	__u8 state_index;		  /* slot of the class's state and counters: stable
					   * across profile swaps for a class keeping its name */
	__u8 flow_parts;       /* flow table partitions (bit = priority) that may hold this class's
				* flows: its priority, plus the ones it had before a retune moved it */
	__u32 state_epoch;     /* the slot's state is (re)initialised by the first packet that
				* finds a different epoch in it: a slot given to a new class */
	__u32 charged_reserve; /* tokens of bucket a packet charged as a lookup leaves: the
				* lowest priority's lookups_reserve_pct of its burst */
};
SL_STATIC_ASSERT(sizeof(struct sl_class_params) == 80, "sl_class_params layout");

#define SL_PROFILE_SHADOW	  (1U << 0) /* admit everything, count what would be shed */
#define SL_PROFILE_MALFORMED_PASS (1U << 1) /* forward malformed packets instead of dropping */
/* Which tables classification needs: a dataplane skips the lookups of a
 * field no class constrains (the answer could not change the class). */
#define SL_PROFILE_USES_SRC   (1U << 2)
#define SL_PROFILE_USES_DST   (1U << 3)
#define SL_PROFILE_USES_PORTS (1U << 4)
/* Adaptive boundary (inline mode): measure the backend signal on the
 * return path (flow.h, sl_rt_*). */
#define SL_PROFILE_ADAPTIVE (1U << 5)
/* Set by the XDP loader, read only by its program: the IPv4 source /
 * destination prefixes of this slot are in the prefix arrays too, which
 * answer IPv4 lookups in place of the trie (bpf/shared_state.h). */
#define SL_PROFILE_SRC_V4_ARRAY (1U << 6)
#define SL_PROFILE_DST_V4_ARRAY (1U << 7)
/* Inline mode: the edge sees the return path, so a half-open flow the
 * outside's SYN made verifies the outside's packets only once its client
 * proved it saw the inside's SYN-ACK (flow.h, sl_flow_outside_verifies). */
#define SL_PROFILE_INLINE (1U << 8)

/* The compiled profile: every user unit validated and converted once by the
 * control plane. Both dataplanes and the reference model consume exactly this. */
struct sl_profile {
	__u32 n_classes; /* including the default class, which is always the last one */
	__u32 flags;	 /* SL_PROFILE_* */
	__u64 seed;	 /* salt for sticky ranks */
	__u64 sticky_epoch_ns;
	__u64 sticky_window_ns;
	struct sl_bucket_params boundary_lookups;
	struct sl_bucket_params boundary_packets;
	__u64 lookups_reserve_nt[SL_PRIORITIES]; /* a lookup of priority p needs more than this left
						  */
	__u64 packets_reserve_nt[SL_PRIORITIES]; /* same for the packet budget; continuations need 0
						  */
	/* Classification. A class whose match lacks a field is in that field's any_ mask. */
	__u32 any_src_mask;
	__u32 any_dst_mask;
	__u32 any_port_mask;
	__u32 any_dscp_mask;
	__u32 any_proto_mask;
	__u32 boundary_epoch; /* as state_epoch, for the boundary state */
	/* Flow state (flow.h). */
	__u64 flow_idle_ns;   /* life of an open TCP flow after its last packet */
	__u64 flow_learn_ns;  /* learning window after a start with an empty flow table */
	__u32 flow_learn_max; /* learned flows per partition and window */
	/* Packets from the outside a verified flow ranks as a continuation
	 * for in one meter window (sl_flow_meter); 0: every one. */
	__u32 flow_window_packets;
	__u32 pad_flow;
	__u8 unverified; /* enum sl_unverified */
	__u8 pad;
	__u16 credit_cpus; /* CPUs that may hold credits (credit.h); 0: every decision under the
			      lock */
	__u32 proto_mask[256];
	__u32 dscp_mask[64];
	struct sl_class_params classes[SL_MAX_CLASSES];
};
SL_STATIC_ASSERT(sizeof(struct sl_profile) % 8 == 0, "sl_profile layout");

/* Lookups that reached a sticky class's rank filter, by rank: SL_RANK_BINS
 * bins of SL_RANK_ONE / SL_RANK_BINS ranks, and their sums by group of
 * SL_RANK_GROUP bins (so that a walk over them takes two short loops; summed
 * when the controller settles, so that a lookup counts into one word). */
#define SL_RANK_BIN_SHIFT 8
#define SL_RANK_BINS	  (SL_RANK_ONE >> SL_RANK_BIN_SHIFT)
#define SL_RANK_GROUP	  16
#define SL_RANK_GROUPS	  (SL_RANK_BINS / SL_RANK_GROUP)
struct sl_rank_hist {
	__u32 group[SL_RANK_GROUPS];
	__u32 bin[SL_RANK_BINS];
};
SL_STATIC_ASSERT(sizeof(struct sl_rank_hist) == 1088, "sl_rank_hist layout");

/* One CPU's (one DPDK worker's) counts of the lookups of a sticky class it
 * shed without the state lock (credit.h, sl_shed_unlocked), kept apart so
 * that a surge's sheds on every CPU write no shared cache line: the
 * window's offered lookups and the bins by rank epoch parity, as
 * sl_class_state's `shed_by_rank` (their ranks are above what the band and
 * the overflow admit). The controller takes every CPU's counts into the class's
 * state before it reads them (sticky_cpu.h, sl_sticky_take, sl_sticky_merge). */
struct sl_sticky_cpu {
	__u64 offered; /* 64-bit words: BPF swaps no 32-bit ones before -mcpu=v3 */
	__u64 bin[2][SL_RANK_BINS];
};
SL_STATIC_ASSERT(sizeof(struct sl_sticky_cpu) == 4104, "sl_sticky_cpu layout");

/* Per-class mutable state. */
struct sl_class_state {
	struct sl_bucket bucket;
	/* Sticky controller (sticky.h, sticky_settle.h): one window of observations. */
	__u64 window_start_ns;
	__u64 window_taken; /* lookups admitted at this priority and above when the window opened */
	__u32 threshold;    /* ranks below this are admitted to the budgets; SL_RANK_ONE = all */
	__u32 band_top;	    /* ranks from the threshold to this take what is left over */
	__u32 window_admitted; /* lookups that reached the rank filter in this window, admitted */
	__u32 window_rejected; /* of those, refused by the class or boundary budgets */
	__u32 epoch;	       /* sl_class_params.state_epoch this state was made for */
	/* Weight of a lookup not admitted in the demand, in 2^-16 (sticky_settle.h,
	 * sl_sticky_thin); 0: 1, as an admitted one. */
	__u32 keep;
	/* Per second, x SL_AVG_ONE (sticky_settle.h); averages over windows. */
	__u64 avg_offered;  /* lookups that reached the rank filter */
	__u64 avg_others;   /* boundary lookups other classes of this priority or above took */
	__u64 avg_admitted; /* lookups admitted */
	__u64 capacity;	    /* lookups the limiting budget can give the class */
	/* Lookups that reached the rank filter by rank in the sticky epoch
	 * rank_epoch ([rank_epoch & 1]) and by the ranks their sources will have
	 * in the next one, admitted and not apart. */
	__u64 rank_epoch;
	__u32 settle; /* SL_SETTLE_* for sl_sticky_settle (sticky_settle.h) */
	__s32 trim;   /* correction of the target, in 1/1024 of it (sticky_settle.h) */
	/* What sl_sticky_thin compares, since it last set the weight: the
	 * lookups below the threshold times the ranks above the overflow's
	 * top, and those above it times the ranks below the threshold, each by
	 * the threshold and band they were counted under (sl_sticky_fold); and
	 * how many lookups of each. */
	__u64 thin_below;
	__u64 thin_above;
	__u32 thin_n_below;
	__u32 thin_n_above;
	struct sl_rank_hist admitted_by_rank[2];
	struct sl_rank_hist shed_by_rank[2];
	/* The demand by rank the threshold is placed on (sl_sticky_estimate). */
	struct sl_rank_hist estimate;
	/* Lookups that reached the rank filter in this window: apart from what
	 * lookups shed without the lock read (sl_shed_unlocked), which every
	 * such lookup would otherwise take from the other CPUs' caches. */
	__u32 window_offered;
	/* Lookups from sources below the threshold (admitted or refused), and
	 * from sources above what the band and the overflow admit
	 * (sl_overflow_top), since the last sl_sticky_fold. */
	__u32 since_below;
	__u32 since_above;
	/* A CPU taking every CPU's sticky counts outside the lock (XDP: a
	 * helper cannot be called under it) holds this from its claim to its
	 * decision: the time of the claim, ns >> 10, | 1 (sl_sticky_claim); 0
	 * when free. While it holds, sl_sticky_tick changes nothing, so that no
	 * window closes and no epoch turns with counts outside the state. Not
	 * reset with the state. DPDK and the reference take under the lock and
	 * never claim. */
	__u32 taker;
};
SL_STATIC_ASSERT(sizeof(struct sl_class_state) == 5584, "sl_class_state layout");

struct sl_boundary_state {
	struct sl_bucket lookups;
	struct sl_bucket packets;
	/* Lookups admitted per priority since start (all classes): tells a class
	 * how much of the shared budget went to priorities it outranks. */
	__u64 lookups_by_prio[SL_PRIORITIES];
	__u32 epoch;	 /* sl_profile.boundary_epoch this state was made for */
	__u32 flows_off; /* the last decision's profile kept no flow state (sl_flows_kept) */
	/* Learning window (flow.h): continuations of unknown flows are admitted
	 * and learned until this time, at most flow_learn_max per partition;
	 * opened again when a retune turns flow state back on. */
	__u64 learn_until_ns;
	__u32 learned[SL_PRIORITIES];
};
SL_STATIC_ASSERT(sizeof(struct sl_boundary_state) == 144, "sl_boundary_state layout");

#define SL_CREDIT_CHUNK	 1024U	    /* tokens a CPU draws at most at once */
#define SL_CREDIT_MIN	 4U	    /* fewer than this: not worth it, decide under the lock */
#define SL_CREDIT_TTL_NS 1000000ULL /* 1 ms */

/* Per-CPU credits (credit.h): tokens a CPU drew ahead from the shared budgets. */
struct sl_credit {
	__u64 expires_ns;     /* given back by the CPU's next locked decision after this */
	__u32 count;	      /* lookups it may still admit */
	__u32 epoch;	      /* the class's state_epoch it was drawn under */
	__u32 boundary_epoch; /* the profile's boundary_epoch it was drawn under */
	__u32 counted_prio;   /* the priority whose lookups_by_prio counted it when drawn */
};
SL_STATIC_ASSERT(sizeof(struct sl_credit) == 24, "sl_credit layout");

struct sl_cpu_credits {
	struct sl_credit classes[SL_MAX_CLASSES]; /* lookups, by state_index */
	struct sl_credit packets; /* boundary packet tokens for continuations (epoch 0) */
};

/* Key of the per-source table: the source masked to the class's prefix length. */
struct sl_source_key {
	__u8 addr_be[16];
	__u8 family;
	__u8 state_index; /* the class's state slot */
	__u8 prefix_len;
	__u8 epoch_lo; /* low byte of the slot's state_epoch */
};
SL_STATIC_ASSERT(sizeof(struct sl_source_key) == 20, "sl_source_key layout");

struct sl_source_state {
	__u64 tat_u; /* gcra.h: when the source's budget is full again, 1/4 ns */
};

/* What a flow table lookup found (sl_decide's flow_hit). */
#define SL_FLOW_HIT	    1 /* a live entry the edge saw begin, or confirmed */
#define SL_FLOW_HIT_LEARNED 2 /* a live entry the learning window made, not confirmed */
#define SL_FLOW_HIT_OVER    3 /* SL_FLOW_HIT, past its flow's packet rate (flow.h, sl_flow_meter) */

/* What the dataplane must write to its flow table after a decision. */
#define SL_FLOW_OP_CREATE_TCP  (1U << 0) /* an admitted SYN: a new flow */
#define SL_FLOW_OP_CREATE_FRAG (1U << 1) /* a first fragment that paid a token: its later ones */
#define SL_FLOW_OP_LEARN       (1U << 2) /* learning window: record an unknown flow */

struct sl_decision {
	__u8 class_id;	  /* index in the profile */
	__u8 state_index; /* the class's state and counter slot */
	__u8 verdict;	  /* enum sl_verdict */
	__u8 reason;	  /* enum sl_reason */
	__u8 action;	  /* enum sl_action */
	__u8 is_start;	  /* counts as a lookup (a start, or an unverified packet charged as one) */
	__u8 shadow;	  /* shadow mode turned a shed into an admit */
	__u8 mark_dscp;	  /* for SL_ACTION_MARK */
	__u8 flow_ops;	  /* SL_FLOW_OP_* */
	__u8 verified;	  /* SL_FLOW_HIT: continues a flow the edge saw begin; SL_FLOW_HIT_LEARNED:
			   * a flow the learning window admitted, not confirmed yet */
	__u8 pad[6];
};
SL_STATIC_ASSERT(sizeof(struct sl_decision) == 16, "sl_decision layout");

/* Flow table key, oriented: `outer` is the host outside the edge (the
 * client), `inner` the host behind it, whichever of them sent the packet.
 * TCP flows use the ports; fragment entries use proto and frag_id instead. */
#define SL_FLOW_KIND_TCP  1
#define SL_FLOW_KIND_FRAG 2
struct __attribute__((aligned(8))) sl_flow_key { /* 8: written and hashed in words */
	__u8 outer_be[16];
	__u8 inner_be[16];
	__u16 outer_port; /* host order; 0 for fragments */
	__u16 inner_port;
	__u16 vlan_id[SL_MAX_VLANS];
	__u32 frag_id;
	__u8 family;
	__u8 kind; /* SL_FLOW_KIND_* */
	__u8 proto;
	__u8 pad;
};
SL_STATIC_ASSERT(sizeof(struct sl_flow_key) == 48, "sl_flow_key layout");
SL_STATIC_ASSERT(__builtin_offsetof(struct sl_flow_key, outer_port) == 32 &&
			 __builtin_offsetof(struct sl_flow_key, frag_id) == 40 &&
			 __builtin_offsetof(struct sl_flow_key, family) == 44,
		 "sl_flow_key_make writes these words");

enum sl_flow_state {
	SL_FLOW_SYN = 1,     /* an admitted SYN (or one the inside sent), no later packet yet */
	SL_FLOW_OPEN = 2,    /* packets after the SYN seen */
	SL_FLOW_CLOSING = 3, /* FIN or RST seen */
	SL_FLOW_LEARNED = 4, /* learning window, not confirmed by the other direction yet */
	SL_FLOW_FRAG = 5,    /* later fragments of a first fragment that paid a token */
	SL_FLOW_RESET = 6,   /* an RST from the outside: ends soon, unless the outside sends on */
};

struct sl_flow {
	__u64 expires_ns;
	__u8 state; /* enum sl_flow_state */
	/* Two fields in one byte (a CPU's write of one may undo another CPU's
	 * write of the other at the same instant: an ICMP error counted
	 * twice, or a proof or backend sample lost, charging the flow). */
	__u8 rt_phase : 3;    /* enum sl_rt_phase: the backend signal of this flow */
	__u8 icmp_errors : 5; /* ICMP errors it verified (flow.h, SL_FLOW_ICMP_MAX) */
	/* The packets from the outside it verified in the meter's current
	 * window (low 12 bits), and that window's low 4 bits (flow.h,
	 * sl_flow_meter). */
	__u16 meter;
	/* When its first request data passed, in us (low 32 bits); before, while
	 * rt_phase is SL_RT_ANSWERED, the acknowledgment number that proves the
	 * client saw the inside's SYN-ACK (its sequence number + 1). */
	__u32 rt_req_us;
};
SL_STATIC_ASSERT(sizeof(struct sl_flow) == 16, "sl_flow layout");

/*
 * The backend signal of the adaptive boundary (flow.h, sl_rt_*): per
 * admitted TCP flow whose client proved it saw the inside's SYN-ACK, the
 * time from the first data the outside sends to the first data the inside
 * answers with, plus the inside's resets and zero windows on such flows, and
 * the SYNs the outside sent again, the one before left unanswered for at
 * least SL_RT_SYN_AGAIN_NS, that the inside then answered. Samples go in a histogram
 * of 8 buckets per octave of microseconds (9% wide): bucket b < 8 holds b
 * us; above, octave o = b / 8 + 2 starts at (8 + b % 8) << (o - 3) us.
 */
#define SL_RT_BUCKETS 192 /* up to 2^25 us (33 s); the last bucket holds the rest */
/* A SYN sent again sooner than this after the first is no client's
 * retransmission (the initial RTO is 1 s, RFC 6298; Linux's least is 200 ms). */
#define SL_RT_SYN_AGAIN_NS (200ULL * SL_NS_PER_SEC / 1000)
struct sl_backend_signal {
	__u64 requests;	    /* proven flows whose first request data passed (a sample began) */
	__u64 responses;    /* first response data after it (a sample ended) */
	__u64 sum_us;	    /* of the samples */
	__u64 resets;	    /* RSTs the inside sent on a proven flow */
	__u64 zero_windows; /* inside packets of a proven flow advertising a zero window */
	__u64 syn_again;    /* SYNs sent again over an unanswered one, then answered */
	__u64 hist[SL_RT_BUCKETS];
};

/* Flow table events, counted per CPU / lcore (sluice_flow_events_total). */
#define SL_FLOW_EVENTS(X)                                                                          \
	X(CREATED, 0, "created",                                                                   \
	  "a flow entry made by an admitted SYN, first fragment or inside SYN")                    \
	X(EXPIRED, 1, "expired", "an entry found past its life and removed")                       \
	X(EVICTED, 2, "evicted", "an entry recycled by the table's LRU before it expired")         \
	X(LEARNED, 3, "learned", "an unknown flow recorded during the learning window")            \
	X(CONFIRMED, 4, "confirmed", "a learned flow confirmed by the other direction")            \
	X(OVER_RATE, 5, "over_rate",                                                               \
	  "a packet of a verified flow past the flow's packet rate, ranked as its class's "        \
	  "lookups")

enum sl_flow_event {
#define SL_FLOW_EVENT_ENUM(name, num, label, doc) SL_FLOW_EV_##name = (num),
	SL_FLOW_EVENTS(SL_FLOW_EVENT_ENUM)
#undef SL_FLOW_EVENT_ENUM
		SL_FLOW_EV_COUNT
};

/* Key of the LPM tries holding source / destination prefixes of both profile
 * slots: prefixlen counts slot (8) + family (8) + address bits. */
struct sl_lpm_key {
	__u32 prefixlen;
	__u8 slot;
	__u8 family;
	__u8 addr_be[16];
	__u8 pad[2];
};
SL_STATIC_ASSERT(sizeof(struct sl_lpm_key) == 24, "sl_lpm_key layout");
#define SL_LPM_KEY_BITS(addr_bits) (16 + (addr_bits))
#define SL_PROFILE_SLOTS	   2
#define SL_LPM_MAX_ENTRIES	   524288 /* prefixes of both slots, per trie (allocated on demand) */

/* Which profile slot the dataplane reads; the control plane fills the other
 * slot, then flips this (one aligned 32-bit store). */
struct sl_active {
	__u32 slot;
	__u32 pad;
	__u64 generation;
};
SL_STATIC_ASSERT(sizeof(struct sl_active) == 16, "sl_active layout");

/* Name of the class that owns a state slot, for counters, metrics and for a
 * restarted daemon to find the state of its classes again. The config
 * validator allows 1..SL_CLASS_NAME_MAX characters and every dataplane keeps
 * them all: a name of exactly SL_CLASS_NAME_MAX characters fills the array
 * with no NUL (readers use strnlen). */
#define SL_CLASS_NAME_MAX 32
struct sl_class_name {
	char name[SL_CLASS_NAME_MAX];
};
SL_STATIC_ASSERT(sizeof(struct sl_class_name) == 32, "sl_class_name layout");

/* Counters by class state slot (sl_class_params.state_index), verdict and
 * reason (per CPU / per lcore, summed on read). */
struct sl_counters {
	__u64 packets[SL_MAX_CLASSES][SL_VERDICT_COUNT][SL_REASON_COUNT];
	__u64 lookups[SL_MAX_CLASSES][SL_VERDICT_COUNT][SL_REASON_COUNT];
	/* Sources entered in the per-source table (XDP), and those of them
	 * that took the way of another source (a full set): occupancy is
	 * inserts - evictions. Entries are never deleted, only recycled. */
	__u64 source_inserts;
	__u64 source_evictions;
	/* Takes and give-backs of a source's token that lost every one of
	 * their compare-and-swap tries to other CPUs' (XDP, bpf/sources.h): a
	 * take so lost refuses its lookup, which a sequential budget may have
	 * admitted; a give-back so lost leaves the token spent. */
	__u64 source_races;
	/* Flow table events by priority partition (enum sl_flow_event). */
	__u64 flow_events[SL_PRIORITIES][SL_FLOW_EV_COUNT];
	/* The backend signal, counted only with SL_PROFILE_ADAPTIVE. */
	struct sl_backend_signal backend;
};

/* Counter values a state slot had when it was given to its current class, so
 * that a recycled slot's class starts from zero without rewriting per-CPU
 * (per-lcore) counters (the slot book, dataplane/common/slot_book.hpp). */
struct sl_counter_base {
	__u64 packets[SL_VERDICT_COUNT][SL_REASON_COUNT];
	__u64 lookups[SL_VERDICT_COUNT][SL_REASON_COUNT];
};
