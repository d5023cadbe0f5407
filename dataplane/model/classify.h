/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ordered first-match classification with bit-parallel masks.
 *
 * Each match field is compiled into "which classes accept this value" masks:
 * source and destination prefixes live in LPM tables owned by the dataplane
 * (a BPF LPM trie, or the reference model's table), whose value for a prefix is
 * the OR of the masks of every configured prefix covering it, so one longest-
 * prefix lookup answers for all classes. A class without a constraint on a field
 * sits in that field's any_ mask. The first class (lowest bit) accepting every
 * field wins; the default class accepts everything, so one always does.
 *
 * Cost: two LPM lookups and a handful of table reads, whatever the number of
 * prefixes or classes.
 */
#pragma once

#include "abi.h"

/* Index of the lowest set bit of a non-zero mask, loop-free: BPF has no ctz. */
SL_INLINE __u32 sl_lowest_bit_halving(__u32 x)
{
	__u32 n = 0;
	if ((x & 0xffff) == 0) {
		n += 16;
		x >>= 16;
	}
	if ((x & 0xff) == 0) {
		n += 8;
		x >>= 8;
	}
	if ((x & 0xf) == 0) {
		n += 4;
		x >>= 4;
	}
	if ((x & 0x3) == 0) {
		n += 2;
		x >>= 2;
	}
	if ((x & 0x1) == 0)
		n += 1;
	return n;
}

/* The same in one instruction where the CPU has one (five dependent steps
 * were a fifth of the DPDK worker's classification). */
SL_INLINE __u32 sl_lowest_bit(__u32 x)
{
#ifdef __bpf__
	return sl_lowest_bit_halving(x);
#else
	return (__u32)__builtin_ctz(x);
#endif
}

/*
 * src_hits / dst_hits: value of the LPM lookup of the source / destination
 * (0 when no prefix covers it). port_hits: port_mask[dport] from the profile's
 * port table when the packet has ports, else 0.
 */
SL_INLINE __u32 sl_classify(const struct sl_profile *prof, const struct sl_meta *m, __u32 src_hits,
			    __u32 dst_hits, __u32 port_hits)
{
	__u32 c = (src_hits | prof->any_src_mask) & (dst_hits | prof->any_dst_mask) &
		  (port_hits | prof->any_port_mask) &
		  (prof->proto_mask[m->l4_proto] | prof->any_proto_mask) &
		  (prof->dscp_mask[m->dscp & 63] | prof->any_dscp_mask);
	__u32 valid = prof->n_classes >= 32 ? 0xffffffffU : ((1U << prof->n_classes) - 1);
	c &= valid;
	if (c == 0)
		return prof->n_classes - 1; /* unreachable with a compiled profile; be safe */
	return sl_lowest_bit(c);
}
