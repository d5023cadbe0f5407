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
 * 4: IPv4 prefix arrays (sl_prefix_src, sl_prefix_dst). */
#define SL_PIN_LAYOUT_REV 4

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

/* A per-source table entry (sl_sources): the source's bucket, padded so
 * that the kernel's element for it (a 48-byte header, the 24-byte key, this
 * value) is 128 bytes: in the table's page-aligned preallocated area each
 * source then has cache lines of its own, and CPUs taking tokens of
 * different sources never write the same line (with 16-byte values two or
 * three sources shared one, and two CPUs shedding two sources' lookups ran
 * at 0.54x of xdp-filter's scaling; docs/performance.md). */
struct sl_source_entry {
	struct sl_source_state state;
	__u8 pad[40];
};
SL_STATIC_ASSERT(sizeof(struct sl_source_entry) == 56, "sl_source_entry layout");

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
