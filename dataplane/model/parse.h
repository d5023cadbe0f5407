/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frame parser: Ethernet, up to SL_MAX_VLANS tags, IPv4 (options), IPv6 (up to
 * SL_MAX_IPV6_EXT extension headers), TCP, UDP, ICMP, ICMPv6, fragments.
 *
 * Contract: reads only inside [data, end); every read is preceded by a bounds
 * check the BPF verifier can follow. Returns SL_PARSE_NON_IP for frames that are
 * not IP and for the link's own control traffic (sl_link_control,
 * sl_icmpv6_link_control): they pass untouched; SL_PARSE_MALFORMED for
 * truncated or inconsistent headers, SL_PARSE_OK otherwise with *m filled in.
 */
#pragma once

#include "abi.h"

#define SL_ETH_HLEN	       14
#define SL_ETH_P_IPV4	       0x0800
#define SL_ETH_P_IPV6	       0x86DD
#define SL_ETH_P_8021Q	       0x8100
#define SL_ETH_P_8021AD	       0x88A8
#define SL_ETH_P_QINQ1	       0x9100 /* pre-802.1ad QinQ tags, still configured on */
#define SL_ETH_P_QINQ2	       0x9200 /* switches and routers: a tag to them */
#define SL_ETH_P_QINQ3	       0x9300
#define SL_IPPROTO_ICMP	       1
#define SL_IPPROTO_IGMP	       2
#define SL_IPPROTO_TCP	       6
#define SL_IPPROTO_UDP	       17
#define SL_IPPROTO_ICMPV6      58
#define SL_TCP_FIN	       0x01
#define SL_TCP_SYN	       0x02
#define SL_TCP_RST	       0x04
#define SL_TCP_ACK	       0x10
#define SL_ICMP_ECHO_REQUEST   8
#define SL_ICMPV6_ECHO_REQUEST 128

/* True when n bytes at p run past the IP payload (lim) or the frame (end).
 * lim <= end always holds; the second test is for the BPF verifier, which only
 * trusts comparisons with the frame end. */
#define SL_SHORT(p, n, lim, end) ((p) + (n) > (lim) || (p) + (n) > (end))

/* Big-endian fields as one load and a byte swap, where assembling the bytes
 * one by one takes up to ten instructions. BPF: a load of the field's type,
 * as struct headers are read (clang splits a copy of unknown alignment into
 * bytes; the verifier allows unaligned packet access on the architectures
 * with efficient unaligned access XDP runs on). Elsewhere a copy, which the
 * compiler makes one load. */
#ifdef __bpf__
#define SL_LOAD(v, p) ((v) = *(const __typeof__(v) *)(p))
#else
#define SL_LOAD(v, p) __builtin_memcpy(&(v), (p), sizeof(v))
#endif

SL_INLINE __u16 sl_rd16(const __u8 *p)
{
	__u16 v;
	SL_LOAD(v, p);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

SL_INLINE __u32 sl_rd32(const __u8 *p)
{
	__u32 v;
	SL_LOAD(v, p);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

SL_INLINE void sl_meta_clear(struct sl_meta *m)
{
	__builtin_memset(m, 0, sizeof(*m));
}

#define SL_L4_MAX_OFF 0x7fff /* L4 headers start within 32 KiB of the frame start */

/*
 * IPv6 neighbour discovery and MLD from the link itself: its own control
 * traffic, IPv6's ARP, which passes untouched like ARP and is never charged
 * (a flood of anything else must not starve it). Only the link's own: ND
 * (133-137) is sent with hop limit 255, which no router forwards (receivers
 * discard any other, RFC 4861), and MLD (130-132, 143) with hop limit 1 from
 * a link-local or the unspecified source (RFC 2710, RFC 3810). The same
 * types arriving otherwise were routed here: ordinary ICMPv6, held to every
 * budget (before, any host could send a flood of them past all of them).
 */
SL_INLINE int sl_icmpv6_link_control(const struct sl_meta *m)
{
	__u8 t = m->icmp_type;
	if (t >= 133 && t <= 137)
		return m->hop_limit == 255;
	if ((t >= 130 && t <= 132) || t == 143) {
		int link_local = m->src_be[0] == 0xfe && (m->src_be[1] & 0xc0) == 0x80;
		int unspecified = 1;
		for (int i = 0; i < 16; i++)
			unspecified &= m->src_be[i] == 0;
		return m->hop_limit == 1 && (link_local || unspecified);
	}
	return 0;
}

/*
 * The link's own control plane: routing and redundancy protocols sent to
 * groups no router forwards, so they came from the link itself. It passes
 * untouched like ARP and ND and is never charged: a surge must not shed it
 * (an OSPF adjacency through the edge that misses its hellos for 40 s
 * withdraws the routes to the whole boundary). The groups: IPv4's local
 * network control block 224.0.0.0/24 (RFC 5771), IPv6 multicast of
 * interface- or link-local scope, ff01::/16 and ff02::/16 (RFC 4291, flag
 * bits aside). The protocols: IGMP, EIGRP, OSPF, PIM, VRRP (and CARP), and
 * over UDP RIP, RIPng, DHCPv6 to its relays and HSRP; plus IGMP with TTL 1
 * to any group (IGMPv2 reports go to the group itself; IGMP is never
 * forwarded, RFC 2236). Only those: a host on the link can send anything
 * to 224.0.0.1 or ff02::1 (all hosts), and Linux hands a UDP datagram to
 * them to any socket bound to the wildcard address on its port (DNS, NTP,
 * QUIC): ordinary packets, held to every budget. The cost: a host on the
 * outside link can send a flood of these protocols past every budget, as
 * it can ARP.
 */
SL_INLINE int sl_link_scope(const struct sl_meta *m)
{
	const __u8 *d = m->dst_be;
	if (m->family == SL_FAMILY_V4)
		return d[0] == 224 && d[1] == 0 && d[2] == 0;
	return d[0] == 0xff && (d[1] & 0x0f) >= 1 && (d[1] & 0x0f) <= 2;
}

/* A routing or redundancy protocol of the link (IP protocol number). */
SL_INLINE int sl_link_protocol(__u8 proto)
{
	return proto == 2 || proto == 88 || proto == 89 || proto == 103 || proto == 112;
}

/* A UDP port of the link's control plane: RIP 520, RIPng 521, DHCPv6 546
 * and 547, HSRP 1985 and its IPv6 version 2029. */
SL_INLINE int sl_link_udp_port(__u16 port)
{
	return port == 520 || port == 521 || port == 546 || port == 547 || port == 1985 ||
	       port == 2029;
}

SL_INLINE int sl_link_control(const struct sl_meta *m)
{
	if (m->l4_proto == SL_IPPROTO_IGMP && m->hop_limit == 1 && m->family == SL_FAMILY_V4 &&
	    (m->dst_be[0] & 0xf0) == 0xe0)
		return 1;
	if (!sl_link_scope(m))
		return 0;
	if (m->l4_proto == SL_IPPROTO_UDP)
		return sl_link_udp_port(m->dport);
	return sl_link_protocol(m->l4_proto);
}

/*
 * Parses the L4 header at m->l4_off, which must fit in the IP payload ending
 * at offset m->l3_off + m->l3_len. Called only for the first (or only)
 * fragment. Offsets, not pointers, carry the position: the XDP program
 * verifies this as its own function, once, whatever the VLAN tags and IPv6
 * extension headers in front of it (their paths would multiply otherwise).
 */
SL_INLINE int sl_parse_l4_at(const __u8 *data, const __u8 *end, struct sl_meta *m)
{
	__u32 off = m->l4_off;
	__u32 lim = (__u32)m->l3_off + m->l3_len;
	if (off > SL_L4_MAX_OFF)
		return SL_PARSE_MALFORMED;
	SL_VERIFIER_BARRIER(off);
	off &= SL_L4_MAX_OFF;
	const __u8 *l4 = data + off;
#define SL_L4_SHORT(n) (off + (n) > lim || l4 + (n) > end)
	switch (m->l4_proto) {
	case SL_IPPROTO_TCP: {
		if (SL_L4_SHORT(20))
			return SL_PARSE_MALFORMED;
		__u8 doff = (__u8)((l4[12] >> 4) * 4);
		if (doff < 20 || SL_L4_SHORT(doff))
			return SL_PARSE_MALFORMED;
		m->sport = sl_rd16(l4);
		m->dport = sl_rd16(l4 + 2);
		m->tcp_seq = sl_rd32(l4 + 4);
		m->tcp_ack = sl_rd32(l4 + 8);
		m->tcp_flags = l4[13];
		m->tcp_window = sl_rd16(l4 + 14);
		m->tcp_payload = (__u16)(lim - off - doff);
		m->has_ports = 1;
		m->is_start = (m->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN;
		return SL_PARSE_OK;
	}
	case SL_IPPROTO_UDP: {
		if (SL_L4_SHORT(8))
			return SL_PARSE_MALFORMED;
		__u16 ulen = sl_rd16(l4 + 4);
		/* 0 is legal for IPv6 jumbograms only; treat anything shorter than the
		 * header as inconsistent. Fragments carry only part of the datagram. */
		if (ulen < 8 || (m->frag == SL_FRAG_NONE && off + ulen > lim))
			return SL_PARSE_MALFORMED;
		m->sport = sl_rd16(l4);
		m->dport = sl_rd16(l4 + 2);
		m->has_ports = 1;
		m->is_start = 1;
		return sl_link_control(m) ? SL_PARSE_NON_IP : SL_PARSE_OK;
	}
	case SL_IPPROTO_ICMP:
	case SL_IPPROTO_ICMPV6: {
		if (SL_L4_SHORT(4))
			return SL_PARSE_MALFORMED;
		m->icmp_type = l4[0];
		if (m->l4_proto == SL_IPPROTO_ICMPV6 && sl_icmpv6_link_control(m))
			return SL_PARSE_NON_IP;
		m->is_start = m->l4_proto == SL_IPPROTO_ICMP
				      ? m->icmp_type == SL_ICMP_ECHO_REQUEST
				      : m->icmp_type == SL_ICMPV6_ECHO_REQUEST;
		return SL_PARSE_OK;
	}
	default:
		/* Other protocols (GRE, ESP, SCTP...): no start the edge understands. */
		m->is_start = 0;
		return sl_link_control(m) ? SL_PARSE_NON_IP : SL_PARSE_OK;
	}
#undef SL_L4_SHORT
}

/* sl_parse_l3()'s answer when the L4 header at m->l4_off remains to parse. */
#define SL_PARSE_L4_PENDING 3

SL_INLINE int sl_parse_ipv4(const __u8 *data, const __u8 *ip, const __u8 *end, struct sl_meta *m)
{
	if (ip + 20 > end)
		return SL_PARSE_MALFORMED;
	if ((ip[0] >> 4) != 4)
		return SL_PARSE_MALFORMED;
	__u32 ihl = (__u32)(ip[0] & 0x0f) * 4;
	__u16 total = sl_rd16(ip + 2);
	if (ihl < 20 || total < ihl || ip + ihl > end || ip + total > end)
		return SL_PARSE_MALFORMED;
	m->family = SL_FAMILY_V4;
	m->l3_len = total;
	m->dscp = ip[1] >> 2;
	m->hop_limit = ip[8];
	m->l4_proto = ip[9];
	m->frag_proto = ip[9];
	/* Each address one load and one store (BPF: a byte copy otherwise). */
	__u32 src, dst;
	SL_LOAD(src, ip + 12);
	SL_LOAD(dst, ip + 16);
	__builtin_memcpy(m->src_be, &src, 4);
	__builtin_memcpy(m->dst_be, &dst, 4);
	__u16 frag = sl_rd16(ip + 6);
	__u16 offset = frag & 0x1fff;
	m->frag_id = sl_rd16(ip + 4);
	int more = (frag & 0x2000) != 0;
	if (offset != 0)
		m->frag = SL_FRAG_LATER;
	else if (more)
		m->frag = SL_FRAG_FIRST;
	if (m->frag == SL_FRAG_LATER)
		return SL_PARSE_OK; /* no L4 header: continues a lookup */
	/* L4 may only use the bytes the IP header claims (not Ethernet padding). */
	m->l4_off = (__u16)(ip + ihl - data);
	return SL_PARSE_L4_PENDING;
}

SL_INLINE int sl_ipv6_is_ext(__u8 nh)
{
	/* hop-by-hop 0, routing 43, fragment 44, AH 51, destination options 60;
	 * mobility 135, HIP 139, shim6 140. A bit test keeps the verifier's
	 * branch count (and so its state count) low. */
	if (nh < 64)
		return (int)((0x1008180000000001ULL >> nh) & 1);
	return nh == 135 || nh == 139 || nh == 140;
}

#define SL_IPV6_EXT_MAX_OFF 0x3fff /* extension headers must end within 16 KiB */

SL_INLINE int sl_parse_ipv6(const __u8 *data, const __u8 *ip, const __u8 *end, struct sl_meta *m)
{
	if (ip + 40 > end)
		return SL_PARSE_MALFORMED;
	if ((ip[0] >> 4) != 6)
		return SL_PARSE_MALFORMED;
	__u32 payload = sl_rd16(ip + 4);
	const __u8 *pend = ip + 40 + payload;
	if (pend > end)
		return SL_PARSE_MALFORMED;
	m->family = SL_FAMILY_V6;
	m->l3_len = (__u16)(40 + payload);
	m->dscp = (__u8)(((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
	m->hop_limit = ip[7];
	__builtin_memcpy(m->src_be, ip + 8, 16);
	__builtin_memcpy(m->dst_be, ip + 24, 16);

	/* Walk by offset from ip, a scalar the verifier can bound, so that the
	 * states of successive iterations look alike and are pruned. */
	__u8 nh = ip[6];
	__u32 off = 40;
	__u8 frag = SL_FRAG_NONE, frag_headers = 0;
	__u8 walked = 0;
	for (int i = 0; i < SL_MAX_IPV6_EXT; i++) {
		if (!sl_ipv6_is_ext(nh) || frag == SL_FRAG_LATER)
			break;
		/* A hop-by-hop header only right after the IPv6 header, and one
		 * Fragment header at most (RFC 8200, 4.1 and 4.5): hosts drop
		 * anything else, and a second Fragment header would hide which
		 * fragment this is. */
		if ((nh == 0 && walked != 0) || (nh == 44 && frag_headers++ != 0))
			return SL_PARSE_MALFORMED;
		if (off > SL_IPV6_EXT_MAX_OFF)
			return SL_PARSE_MALFORMED;
		off &= SL_IPV6_EXT_MAX_OFF;
		const __u8 *p = ip + off;
		if (SL_SHORT(p, 8, pend, end))
			return SL_PARSE_MALFORMED;
		__u32 len = ((__u32)p[1] + 1) * 8;
		if (nh == 44) {
			/* Fragment header: fixed 8 bytes. */
			__u16 fo = sl_rd16(p + 2);
			frag = (fo & 0xfff8) ? SL_FRAG_LATER : (fo & 1) ? SL_FRAG_FIRST : frag;
			__builtin_memcpy(&m->frag_id, p + 4, 4); /* network order */
			m->frag_proto = p[0];
			len = 8;
		} else if (nh == 51) {
			len = ((__u32)p[1] + 2) * 4; /* AH counts 4-byte words */
		}
		nh = p[0];
		off += len;
		walked++;
		if (off > 40 + payload)
			return SL_PARSE_MALFORMED;
	}
	m->frag = frag;
	m->v6_ext = walked;
	if (frag != SL_FRAG_LATER && sl_ipv6_is_ext(nh))
		return SL_PARSE_MALFORMED; /* more extension headers than we walk */
	m->l4_proto = nh;
	if (frag == SL_FRAG_LATER || nh == 59) /* no L4 header here / no next header */
		return SL_PARSE_OK;
	if (off > SL_IPV6_EXT_MAX_OFF)
		return SL_PARSE_MALFORMED;
	m->l4_off = (__u16)(ip - data) + (__u16)off;
	return SL_PARSE_L4_PENDING;
}

/* sl_parse_l2()'s answer when the IP header at m->l3_off remains to parse. */
#define SL_PARSE_L3_PENDING 4
#define SL_L3_MAX_OFF	    0x1f /* Ethernet + SL_MAX_VLANS tags */

/* A VLAN tag's type: 802.1Q, 802.1ad, and the older QinQ types. Any device
 * behind the edge that reads 0x9100 as a tag would forward the IP packet
 * inside it, so sluice must decide that packet too (passed as non-IP, it
 * would cross the boundary uncharged). */
SL_INLINE int sl_is_vlan_type(__u16 type)
{
	return type == SL_ETH_P_8021Q || type == SL_ETH_P_8021AD || type == SL_ETH_P_QINQ1 ||
	       type == SL_ETH_P_QINQ2 || type == SL_ETH_P_QINQ3;
}

/* Ethernet and VLAN tags: SL_PARSE_L3_PENDING when sl_parse_ip_at() must
 * follow, else the final answer. */
SL_INLINE int sl_parse_l2(const __u8 *data, const __u8 *end, struct sl_meta *m)
{
	sl_meta_clear(m);
	if (data + SL_ETH_HLEN > end)
		return SL_PARSE_MALFORMED;
	__u16 type = sl_rd16(data + 12);
	const __u8 *p = data + SL_ETH_HLEN;
	if (type == SL_ETH_P_IPV4 || type == SL_ETH_P_IPV6) {
		/* Untagged IP, the common case: no tag walk. */
		m->ethertype = type;
		m->l3_off = SL_ETH_HLEN;
		return SL_PARSE_L3_PENDING;
	}
	for (int i = 0; i < SL_MAX_VLANS; i++) {
		if (!sl_is_vlan_type(type))
			break;
		if (p + 4 > end)
			return SL_PARSE_MALFORMED;
		m->vlan_id[i & (SL_MAX_VLANS - 1)] = sl_rd16(p) & 0x0fff;
		type = sl_rd16(p + 2);
		p += 4;
		m->vlans++;
	}
	m->ethertype = type;
	if (sl_is_vlan_type(type))
		return SL_PARSE_MALFORMED; /* deeper tag stacks than we walk */
	m->l3_off = (__u16)(p - data);
	if (type == SL_ETH_P_IPV4 || type == SL_ETH_P_IPV6)
		return SL_PARSE_L3_PENDING;
	return SL_PARSE_NON_IP;
}

/* The IP header at m->l3_off (of m->ethertype): SL_PARSE_L4_PENDING when
 * sl_parse_l4_at() must follow. Offsets again, so that the XDP program
 * verifies the IP walk once for every number of VLAN tags. */
SL_INLINE int sl_parse_ip_at(const __u8 *data, const __u8 *end, struct sl_meta *m)
{
	__u32 off = m->l3_off;
	if (off > SL_L3_MAX_OFF)
		return SL_PARSE_MALFORMED;
	SL_VERIFIER_BARRIER(off);
	off &= SL_L3_MAX_OFF;
	if (m->ethertype == SL_ETH_P_IPV4)
		return sl_parse_ipv4(data, data + off, end, m);
	return sl_parse_ipv6(data, data + off, end, m);
}

SL_INLINE int sl_parse(const __u8 *data, const __u8 *end, struct sl_meta *m)
{
	int r = sl_parse_l2(data, end, m);
	if (r == SL_PARSE_L3_PENDING)
		r = sl_parse_ip_at(data, end, m);
	return r == SL_PARSE_L4_PENDING ? sl_parse_l4_at(data, end, m) : r;
}
