/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the XDP program's tables in sets of our own (sl_sources, sl_flows:
 * shared_state.h) take from the loader (dataplane/xdp/table_sets.cpp), and
 * the hash that picks a key's set.
 */
#pragma once

#include <linux/bpf.h>

#include "abi.h"
#include "sticky.h"

/* Knobs, set by the loader before load. */
/* The per-source table's sets less one (a power of two less one). */
const volatile __u32 sl_source_set_mask = SL_SOURCES_DEFAULT / 2 - 1;
/* Sets of each priority partition of sl_flows, less one (a power of two less one). */
const volatile __u32 sl_flow_set_mask = SL_FLOWS_DEFAULT / SL_PRIORITIES / 4 - 1;
/* The salt of both tables' set indexes (the loader: the one sl_table_salt
 * keeps for these pins, else a new random one), so that a flood cannot aim
 * its keys at one set without knowing it. */
const volatile __u64 sl_table_salt_value = 0;

/* Word `lane` of a key, mixed with that lane's salt. A flow key's hash is
 * the sum of its six words' lanes: the mixes run side by side, where a
 * chain of six would wait on each other. (The per-source table's 20-byte
 * key takes sl_key_hash: one mix for IPv4, a chain of three for IPv6, which
 * as lanes measured no faster.) */
static __always_inline __u64 sl_set_lane(__u64 word, __u32 lane)
{
	return sl_mix64(word ^ (sl_table_salt_value + lane * 0x9e3779b97f4a7c15ULL));
}
