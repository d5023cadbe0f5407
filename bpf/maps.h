/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP program's maps: one definition each, names as macros so userspace
 * (dataplane/xdp/) and the program agree. Every map is pinned by name under
 * the configured bpffs directory, so the program keeps enforcing the last
 * good profile if sluiced dies, and a restarted sluiced adopts the state.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "shared_state.h"
#include "../dataplane/model/capture.h"

/* Which profile slot is live, and its generation. Written last by a retune. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_active);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_active SEC(".maps");

/* Compiled profiles, double-buffered: the slot named by sl_active is live. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_PROFILE_SLOTS);
	__type(key, __u32);
	__type(value, struct sl_profile);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_profiles SEC(".maps");

/* Classes accepting each destination port, both slots in one value (as
 * the prefix arrays below: one inlined lookup, then a plain read), written
 * by the loader through a mapping of it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct sl_port_masks);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ports SEC(".maps");

/* A prefix table of both profile slots, one per direction (libbpf needs a
 * definition per map): an LPM trie of prefixes -> classes accepting them
 * (covering masks included), and for IPv4 the same answers as arrays
 * (SL_PREFIX_SLOT_BLOCKS per slot), used when a slot's profile flags them.
 * The arrays of both slots are one map value: one inlined lookup, then one
 * to three plain reads (a lookup per level kept each level's index waiting
 * on a store and a reload: docs/performance.md). The loader writes a slot's
 * blocks through a mapping of the value (BPF_F_MMAPABLE), not the others'. */
#define SL_LPM_TRIE_MAP(name)                                                                      \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                                               \
		__uint(max_entries, SL_LPM_MAX_ENTRIES);                                           \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__type(key, struct sl_lpm_key);                                                    \
		__type(value, __u32);                                                              \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")
#define SL_PREFIX_ARRAY_MAP(name)                                                                  \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                  \
		__uint(max_entries, 1);                                                            \
		__uint(map_flags, BPF_F_MMAPABLE);                                                 \
		__type(key, __u32);                                                                \
		__type(value, struct sl_prefix_blocks);                                            \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

SL_LPM_TRIE_MAP(sl_lpm_src);
SL_LPM_TRIE_MAP(sl_lpm_dst);
SL_PREFIX_ARRAY_MAP(sl_prefix_src);
SL_PREFIX_ARRAY_MAP(sl_prefix_dst);

/* Boundary and class buckets and sticky controllers (struct sl_shared_state),
 * behind one lock: a decision updates several of them at once. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_shared_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_state SEC(".maps");

/* Owner of each class state slot (written by the control plane). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sl_class_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_class_names SEC(".maps");

/* Per-source buckets in sets (shared_state.h): bounded, so spoofed floods
 * recycle entries. The loader sets the number of sets (and the program's
 * sl_source_set_mask). Mmapable only for its page-aligned values: each way
 * then is one cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_SOURCES_DEFAULT / 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct sl_source_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_sources SEC(".maps");

/* The salt of the per-source and flow tables' set indexes, kept with the
 * tables for the next load (which reads it from the pin and gives it to the
 * program as sl_table_salt_value); the program does not read it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_table_salt SEC(".maps");

/* The flow table (dataplane/model/flow.h) in sets of our own
 * (shared_state.h): the priority partitions one after another, each
 * sl_flow_set_mask + 1 sets (the loader sizes it), so a flood of one
 * priority recycles only its own flows. Mmapable only for its
 * page-aligned values: each way then is one cache line. Pinned with the
 * rest: a restart keeps flows. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SL_FLOWS_DEFAULT / 4);
	__type(key, __u32);
	__type(value, struct sl_flow_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_flows SEC(".maps");

/* Per-CPU scratch space of the flow functions: the BPF stack (512 bytes for
 * a whole call chain) cannot hold a second meta and a key on top of the
 * entry's. Not pinned: nothing in it outlives a packet. */
struct sl_flow_scratch {
	struct sl_meta meta;
	struct sl_flow_key key __attribute__((aligned(8)));
	struct sl_flow flow;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_flow_scratch);
} sl_scratch SEC(".maps");

/* Locks of the per-source table's sets (sl_sources), striped by the set's
 * index, one cache line each: a source enters its set under its stripe's
 * lock, outside the state lock. Its budget's tokens need none (one GCRA
 * word, taken by compare-and-swap: bpf/sources.h, sl_source_xdp). */
#define SL_SOURCE_LOCKS 1024
struct sl_source_lock {
	struct bpf_spin_lock lock;
	__u32 pad[15];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_SOURCE_LOCKS);
	__type(key, __u32);
	__type(value, struct sl_source_lock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_source_locks SEC(".maps");

/* Per-CPU credits (credit.h): budget tokens each CPU drew ahead. Not pinned:
 * a new program starts without any (what an old one held is lost, at most
 * SL_CREDIT_CHUNK per CPU and budget). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_cpu_credits);
} sl_credits SEC(".maps");

/* Per-CPU counts of the sticky lookups each CPU shed without the lock, by
 * class state slot (sticky.h, sl_sticky_count_cpu), and the scratch they are
 * taken into before the lock (sl_sticky_take_xdp). Not pinned: a new
 * program starts without any (what an old one had not yet taken is lost,
 * at most one controller window's sheds). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sl_sticky_cpu);
} sl_sticky_cpus SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_sticky_cpu);
} sl_sticky_taken SEC(".maps");

/* Counters by class state slot, verdict and reason; per CPU, summed on read. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_counters SEC(".maps");

/* Inline mode egress: [0] = inside interface (outside program's admitted
 * traffic), [1] = outside interface (the inside program's return path).
 * Not pinned: each sluiced fills its own, and a program left running after a
 * crash keeps the one it was loaded with. */
#define SL_TX_INSIDE  0
#define SL_TX_OUTSIDE 1
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} sl_tx SEC(".maps");

/* Test clock (ns), read instead of bpf_ktime_get_ns() when sl_fake_clock is set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sl_clock SEC(".maps");

/* Last decision, written when sl_record_decision is set (tests). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_decision);
} sl_last SEC(".maps");

/* Counter values a state slot had when it was given to its current class
 * (struct sl_counter_base; written and read by userspace only). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sl_counter_base);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_counter_base SEC(".maps");

/* DPDK standby heartbeat (struct sl_heartbeat), read when sl_standby is set.
 * Not pinned: each DPDK sluiced beats the program it loaded. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_heartbeat);
} sl_heartbeat SEC(".maps");

/* Capture (sluicectl capture): the filter the control plane sets while a
 * capture runs, and the ring the sampled frames go to. Not pinned: a capture
 * belongs to the sluiced that runs it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_capture_cfg);
} sl_capture_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* 4 MiB: ~14,000 frames */
} sl_capture_ring SEC(".maps");

/* Frames a running capture wanted but found sl_capture_ring full for (the
 * control plane zeroes it when a capture starts). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sl_capture_lost SEC(".maps");
