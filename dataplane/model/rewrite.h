/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-place frame rewrites for shed actions:
 *  - sl_build_reset(): turns a TCP SYN into the RST+ACK that answers it, so the
 *    client fails in one round trip instead of waiting on SYN retransmits;
 *  - sl_mark_dscp(): rewrites the DSCP of a packet that is passed marked.
 *
 * Both work on the frame the parser described in *m, touch only bytes inside
 * [data, end) and keep the Ethernet and VLAN headers (MACs swapped for a RST).
 */
#pragma once

#include "abi.h"
#include "parse.h"

SL_INLINE void sl_wr16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

SL_INLINE void sl_wr32(__u8 *p, __u32 v)
{
	p[0] = (__u8)(v >> 24);
	p[1] = (__u8)(v >> 16);
	p[2] = (__u8)(v >> 8);
	p[3] = (__u8)v;
}

/* One's-complement sum of len bytes (len even, <= 64) added to sum; stops at
 * end (the per-word test keeps the BPF verifier convinced). */
SL_INLINE __u32 sl_csum_add(__u32 sum, const __u8 *p, __u32 len, const __u8 *end)
{
	for (__u32 i = 0; i < 64; i += 2) {
		if (i >= len || p + i + 2 > end)
			break;
		sum += sl_rd16(p + i);
	}
	return sum;
}

SL_INLINE __u16 sl_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#define SL_RST_TCP_LEN 20

/*
 * Rewrites the SYN described by *m into a RST+ACK (seq 0, ack = SYN seq + 1)
 * from the SYN's destination to its source, with no IP options, IPv6
 * extension headers, TCP options or payload. Returns the new frame length, or
 * 0 when the frame is not a SYN this can answer (then it is left unchanged).
 */
SL_INLINE __u32 sl_build_reset(__u8 *data, const __u8 *end, const struct sl_meta *m)
{
	if (m->l4_proto != SL_IPPROTO_TCP || !m->is_start || m->frag != SL_FRAG_NONE)
		return 0;
	if (data + SL_ETH_HLEN > end)
		return 0;
	__u32 ip_len = m->family == SL_FAMILY_V4 ? 20 : 40;
	/* l3_off <= 22 (Ethernet + 2 tags); the mask bounds it for the verifier,
	 * which a comparison would not (the compiler may reuse the unbounded copy). */
	__u32 l3 = m->l3_off & 0x3f;
	__u8 *ip = data + l3;
	__u8 *tcp = ip + ip_len;
	/* The SYN had at least these bytes: IP header + 20-byte TCP header. */
	if (tcp + SL_RST_TCP_LEN > end)
		return 0;

	/* Ethernet: answer goes back to whoever sent the SYN. */
	__u8 mac[6];
	__builtin_memcpy(mac, data, 6);
	__builtin_memcpy(data, data + 6, 6);
	__builtin_memcpy(data + 6, mac, 6);

	__u32 pseudo = 0;
	if (m->family == SL_FAMILY_V4) {
		ip[0] = 0x45;
		ip[1] = 0;
		sl_wr16(ip + 2, 20 + SL_RST_TCP_LEN);
		sl_wr16(ip + 4, 0);
		sl_wr16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = SL_IPPROTO_TCP;
		sl_wr16(ip + 10, 0);
		__builtin_memcpy(ip + 12, m->dst_be, 4);
		__builtin_memcpy(ip + 16, m->src_be, 4);
		sl_wr16(ip + 10, sl_csum_fold(sl_csum_add(0, ip, 20, end)));
		pseudo = sl_csum_add(0, ip + 12, 8, end);
	} else {
		sl_wr32(ip, 0x60000000);
		sl_wr16(ip + 4, SL_RST_TCP_LEN);
		ip[6] = SL_IPPROTO_TCP;
		ip[7] = 64;
		__builtin_memcpy(ip + 8, m->dst_be, 16);
		__builtin_memcpy(ip + 24, m->src_be, 16);
		pseudo = sl_csum_add(0, ip + 8, 32, end);
	}
	pseudo += SL_IPPROTO_TCP + SL_RST_TCP_LEN;

	sl_wr16(tcp, m->dport);
	sl_wr16(tcp + 2, m->sport);
	sl_wr32(tcp + 4, 0);
	sl_wr32(tcp + 8, m->tcp_seq + 1);
	tcp[12] = 5 << 4;
	tcp[13] = SL_TCP_RST | SL_TCP_ACK;
	sl_wr16(tcp + 14, 0); /* window */
	sl_wr16(tcp + 16, 0); /* checksum */
	sl_wr16(tcp + 18, 0); /* urgent */
	sl_wr16(tcp + 16, sl_csum_fold(sl_csum_add(pseudo, tcp, SL_RST_TCP_LEN, end)));
	return (__u32)(tcp + SL_RST_TCP_LEN - data);
}

/* Rewrites the DSCP (keeping ECN) and, for IPv4, the header checksum. */
SL_INLINE void sl_mark_dscp(__u8 *data, const __u8 *end, const struct sl_meta *m, __u8 dscp)
{
	__u32 l3 = m->l3_off & 0x3f; /* <= 22; bounded for the verifier */
	__u8 *ip = data + l3;
	if (m->family == SL_FAMILY_V4) {
		if (ip + 20 > end)
			return;
		__u32 ihl = (__u32)(ip[0] & 0x0f) * 4;
		if (ihl < 20 || ihl > 60 || ip + ihl > end)
			return;
		ip[1] = (__u8)((dscp << 2) | (ip[1] & 0x03));
		sl_wr16(ip + 10, 0);
		sl_wr16(ip + 10, sl_csum_fold(sl_csum_add(0, ip, ihl, end)));
	} else if (m->family == SL_FAMILY_V6) {
		if (ip + 40 > end)
			return;
		/* Traffic class spans the low nibble of byte 0 and the high nibble of byte 1. */
		ip[0] = (__u8)((ip[0] & 0xf0) | (dscp >> 2));
		ip[1] = (__u8)(((dscp & 0x03) << 6) | (ip[1] & 0x3f));
	}
}
