/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMP errors and the packet they carry: which ICMP messages are errors,
 * and the TCP header an error quotes, read as a packet of its flow from the
 * outside, so that the flow table (flow.h) can verify the error by the
 * flow it is about.
 */
#pragma once

#include "abi.h"
#include "parse.h"

SL_INLINE int sl_icmp_is_error(const struct sl_meta *m)
{
	__u8 t = m->icmp_type;
	if (m->l4_proto == SL_IPPROTO_ICMP) /* unreachable, quench, redirect, time, parameter */
		return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
	if (m->l4_proto == SL_IPPROTO_ICMPV6) /* unreachable, too big, time, parameter */
		return t >= 1 && t <= 4;
	return 0;
}

#define SL_ICMP_INNER_EXT      2    /* extension headers walked in a carried IPv6 header */
#define SL_ICMP_INNER_MAX      4095 /* ... which must end within 4 KiB of it */
#define SL_ICMP_INNER_MAX_MASK 0xfff

/* The first n bytes of two addresses are equal (n: 4 or 16; a loop the
 * verifier bounds). */
SL_INLINE int sl_addr_eq(const __u8 *a, const __u8 *b, __u32 n)
{
	__u8 diff = 0;
	for (__u32 i = 0; i < 16; i++)
		if (i < n)
			diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * The packet an ICMP error carries, turned into the meta of a packet of the
 * same flow from the outside: the carried header was sent by the inside
 * host, so its destination is the outer host. Only TCP headers (flows we
 * track) are taken, and only from an error addressed to the host that sent
 * them (a forged one sent to any other address verifies nothing). Returns 1
 * when *r is filled, 0 otherwise.
 */
SL_INLINE int sl_parse_icmp_inner(const __u8 *data, const __u8 *end, const struct sl_meta *m,
				  struct sl_meta *r)
{
	/* Offsets, as in sl_parse_l4_at(): the carried header starts 8 bytes
	 * into the ICMP message and must lie inside the IP payload. */
	__u32 off = (__u32)m->l4_off + 8;
	__u32 lim = (__u32)m->l3_off + m->l3_len;
	if (m->l4_off == 0 || off > SL_L4_MAX_OFF)
		return 0;
	SL_VERIFIER_BARRIER(off);
	off &= SL_L4_MAX_OFF;
	const __u8 *ip = data + off;
	*r = *m;
	r->l4_proto = SL_IPPROTO_TCP;
	r->has_ports = 1;
	r->frag = SL_FRAG_NONE;
	r->is_start = 0;
	if (m->family == SL_FAMILY_V4) {
		if (off + 20 > lim || ip + 20 > end || (ip[0] >> 4) != 4 || ip[9] != SL_IPPROTO_TCP)
			return 0;
		__u32 ihl = (__u32)(ip[0] & 0x0f) * 4;
		if (ihl < 20 || off + ihl + 4 > lim || ip + ihl + 4 > end)
			return 0;
		const __u8 *l4 = ip + ihl;
		if (!sl_addr_eq(ip + 12, m->dst_be, 4))
			return 0;
		__builtin_memset(r->src_be, 0, 16);
		__builtin_memset(r->dst_be, 0, 16);
		__builtin_memcpy(r->src_be, ip + 16, 4); /* the carried packet's destination */
		__builtin_memcpy(r->dst_be, ip + 12, 4);
		r->sport = sl_rd16(l4 + 2);
		r->dport = sl_rd16(l4);
		return 1;
	}
	if (off + 40 > lim || ip + 40 > end || (ip[0] >> 4) != 6)
		return 0;
	/* The carried TCP header may follow extension headers the inside host
	 * sent (hop-by-hop 0, routing 43, destination options 60: a fragment
	 * header would mean a fragment, which the edge does not verify). */
	__u8 nh = ip[6];
	__u32 at = 40; /* the carried L4 header, from ip */
	for (int i = 0; i < SL_ICMP_INNER_EXT; i++) {
		if (nh != 0 && nh != 43 && nh != 60)
			break;
		const __u8 *p = ip + at;
		if (off + at + 8 > lim || p + 8 > end)
			return 0;
		nh = p[0];
		at += ((__u32)p[1] + 1) * 8;
		if (at > SL_ICMP_INNER_MAX)
			return 0;
		SL_VERIFIER_BARRIER(at);
		at &= SL_ICMP_INNER_MAX_MASK;
	}
	const __u8 *l4 = ip + at;
	if (nh != SL_IPPROTO_TCP || off + at + 4 > lim || l4 + 4 > end)
		return 0;
	if (!sl_addr_eq(ip + 8, m->dst_be, 16))
		return 0;
	__builtin_memcpy(r->src_be, ip + 24, 16);
	__builtin_memcpy(r->dst_be, ip + 8, 16);
	r->sport = sl_rd16(l4 + 2);
	r->dport = sl_rd16(l4);
	return 1;
}
