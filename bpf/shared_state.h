/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map values of the XDP program that userspace (dataplane/xdp/) reads and
 * writes too. Kept apart from abi.h because they need <linux/bpf.h>, which
 * clashes with libpcap's headers in the rest of userspace.
 */
#pragma once

#include <linux/bpf.h>

#include "../dataplane/model/abi.h"

/* The XDP dataplane's shared state (one map value behind one lock): a
 * decision updates the boundary and a class at once. */
struct sl_shared_state {
	struct bpf_spin_lock lock;
	__u32 pad;
	struct sl_boundary_state boundary;
	struct sl_class_state classes[SL_MAX_CLASSES]; /* by state_index */
};

/* Counter values a state slot had when it was given to its current class, so
 * that a recycled slot's class starts from zero without rewriting per-CPU
 * counters. */
struct sl_counter_base {
	__u64 packets[SL_VERDICT_COUNT][SL_REASON_COUNT];
	__u64 lookups[SL_VERDICT_COUNT][SL_REASON_COUNT];
};
