/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map values of the XDP program that userspace (dataplane/xdp/) reads and
 * writes too. Kept apart from abi.h because they need <linux/bpf.h>, which
 * clashes with libpcap's headers in the rest of userspace.
 */
#pragma once

#include <linux/bpf.h>

#include "../dataplane/model/abi.h"

/* Revision of the pinned layout's meaning. The pin directory is named after a
 * fingerprint of every pinned map's key and value sizes and this number
 * (xdp_program.cpp), so a change of size moves the pins by itself; bump this
 * when a pinned struct changes meaning without changing size. A sluiced that
 * finds another layout enforcing takes it over with fresh maps (see
 * docs/architecture.md, "Failure states"). */
/* 2: per-source buckets under stripe locks (sl_source_locks), sl_profile.credit_cpus.
 * 3: sl_class_state.taker (was padding).
 * 4: IPv4 prefix arrays (sl_prefix_src, sl_prefix_dst).
 * 5: the per-source table in sets of our own (sl_sources, sl_source_salt).
 * 6: the flow table in sets of our own (sl_flows), one salt for both
 *    tables (sl_table_salt).
 * 7: per-source budgets as one GCRA word (sl_source_state.tat_u).
 * 8: an IPv4 source's set by one mix (sl_key_hash), not three; an IPv4
 *    flow's set by three lanes (sl_flow_hash), not six.
 * 9: each IPv4 prefix array one mmapable value of both slots' blocks
 *    (struct sl_prefix_blocks), not an entry per block; the port masks
 *    likewise (struct sl_port_masks).
 * 10: sl_counters.source_races.
 * 11: sl_flow.meter (the per-flow packet meter) in place of state_index;
 *     rt_phase and icmp_errors share a byte. */
#define SL_PIN_LAYOUT_REV 11

/* Compare-and-swap attempts on a source's word (bpf/sources.h), each
 * failure another CPU's take or give-back of the same source that landed
 * meanwhile: SL_SOURCE_CAS_TRIES in the program's own code, then up to
 * SL_SOURCE_CAS_RETRIES more in a bpf_loop (a source many CPUs take from
 * at once: a carrier NAT's address). Only a take or give-back that loses
 * every one is refused (or dropped), and counted (sl_counters.source_races). */
#define SL_SOURCE_CAS_TRIES   4
#define SL_SOURCE_CAS_RETRIES 4096

/* The IPv4 prefix tables as arrays (dataplane/xdp/prefix_array.hpp): per
 * profile slot, 256 top blocks (the first 16 bits of an address), then up
 * to SL_PREFIX_GROUPS groups (the next 8 bits under a /16 or a /24 that
 * holds a longer prefix). An entry is a class mask, or SL_PREFIX_GROUP and
 * a group's index: class masks of prefixes never hold bit 31 (only the
 * implied default class can sit there, and it matches every address). */
#define SL_PREFIX_GROUPS      2048
#define SL_PREFIX_GROUP	      (1U << 31)
#define SL_PREFIX_SLOT_BLOCKS (256 + SL_PREFIX_GROUPS)
struct sl_prefix_block {
	__u32 e[256];
};
/* Both slots' class masks of each destination port: the one value of
 * sl_ports, 512 KiB. */
struct sl_port_masks {
	__u32 mask[SL_PROFILE_SLOTS][65536];
};

/* Both slots' blocks, slot s's from b[s * SL_PREFIX_SLOT_BLOCKS]: the one
 * value of sl_prefix_src (sl_prefix_dst), 4.5 MiB, page-aligned. */
struct sl_prefix_blocks {
	struct sl_prefix_block b[SL_PROFILE_SLOTS * SL_PREFIX_SLOT_BLOCKS];
};

/* The per-source table (sl_sources): an array of sets of SL_SOURCE_WAYS
 * ways, a source's set picked by its key's hash salted with sl_table_salt
 * (random, kept with the pins: a flood cannot aim its sources at one set
 * without knowing it). A source's budget is one GCRA word (gcra.h), taken
 * by compare-and-swap without a lock; a source enters its set under the
 * lock of the set's stripe (sl_source_locks, by the set's index), in place
 * of the way first in the set's eviction order when the set is full (a
 * source seen once by its last use; one that came back not before its
 * budget is full again: decide.h, sl_source_evict_order). The loader makes
 * 2-4 ways per entry of source_table_size (a power of two of sets), so
 * that a table holding that many sources rarely has a full set. A way is a cache line: CPUs
 * taking tokens of different sources never write the same line. */
#define SL_SOURCE_WAYS 4
struct sl_source_way {
	struct sl_source_key key; /* family 0: an empty way */
	/* 1 once a packet found the way after the one that entered it (0 in
	 * maps pinned before it was used). */
	__u32 returned;
	/* Its last use (a take, a peek, a refusal), written at most once a
	 * millisecond; with returned and the budget, the set's eviction order
	 * (sl_source_evict_order). */
	__u64 used_ns;
	struct sl_source_state state;
	__u8 pad[24];
};
SL_STATIC_ASSERT(sizeof(struct sl_source_way) == 64, "sl_source_way layout");
struct sl_source_set {
	struct sl_source_way way[SL_SOURCE_WAYS];
};

/* The flow table (sl_flows): for each priority partition, a power of two of
 * sets of SL_FLOW_WAYS ways (2-4 ways per entry of the partition's share of
 * flow_table_size), a flow's set picked by its key's hash salted with
 * sl_table_salt. A way is a cache line: the key, then the entry. Eight ways
 * a set, not four: at the partition's nominal size, sets of 4 would recycle
 * ~4% of the live flows (balls in bins: a Poisson(2) tail), sets of 8 ~1%.
 * An entry whose expires_ns is 0 is empty (never written, or removed when a
 * packet found it past its life). A new flow takes the way of its set that expires
 * first: an empty one, else one past its life, else the live entry closest
 * to its end (an eviction). Written without a lock: a CPU claims the way by
 * a compare-and-swap of the key's last word to SL_FLOW_TAIL_CLAIMED (a
 * family no key has, so no packet matches a way while it is written), then
 * publishes the key's last word by another (flows.h, sl_flow_put). */
#define SL_FLOW_WAYS	     8
#define SL_FLOW_TAIL_WORD    5 /* the key's last 8 bytes: frag_id, family, kind, proto, pad */
#define SL_FLOW_TAIL_CLAIMED ((__u64)0xff << 32) /* family 0xff */
struct sl_flow_way {
	struct sl_flow_key key;
	struct sl_flow flow;
};
SL_STATIC_ASSERT(sizeof(struct sl_flow_way) == 64, "sl_flow_way layout");
SL_STATIC_ASSERT(__builtin_offsetof(struct sl_flow_key, family) == SL_FLOW_TAIL_WORD * 8 + 4,
		 "the claim marks the key's family");
struct sl_flow_set {
	struct sl_flow_way way[SL_FLOW_WAYS];
};

/* The XDP dataplane's shared state (one map value behind one lock): a
 * decision updates the boundary and a class at once. */
struct sl_shared_state {
	struct bpf_spin_lock lock;
	__u32 pad;
	/* The DPDK standby's heartbeat (sl_heartbeat.beat_ns) when it last
	 * took over: a beat since means DPDK decided meanwhile, and the flows
	 * it admitted are not in this table (sluice.bpf.c, sl_standby_decides). */
	__u64 standby_beat_ns;
	struct sl_boundary_state boundary;
	struct sl_class_state classes[SL_MAX_CLASSES]; /* by state_index */
#ifdef SL_LAYOUT_VARIANT
	/* Only in the test build of another layout (tests/integration/
	 * failure_policy_test.sh upgrades across it). */
	__u64 variant[2];
#endif
};

/* DPDK standby (inline, af_packet ports): the DPDK sluiced beats this while
 * its workers run; the XDP program on the same kernel interfaces passes
 * every frame to the DPDK ports while the beat is fresh, and enforces the
 * same profile itself once it is older than timeout_ns. */
struct sl_heartbeat {
	__u64 beat_ns;	  /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the last beat */
	__u64 timeout_ns; /* a beat older than this: DPDK is gone, XDP enforces */
};
