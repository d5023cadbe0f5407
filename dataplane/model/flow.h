/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flow state: which continuations were earned by a flow the edge saw begin.
 *
 * The dataplane owns the table (a bounded LRU per priority partition, memory
 * fixed at start: BPF LRU hash maps in XDP, preallocated tables in DPDK and
 * the reference model); this header says what goes in and what comes out,
 * so that every dataplane makes the same decision:
 *
 *  - an admitted TCP SYN creates an entry (SL_FLOW_SYN, SL_FLOW_SYN_NS); in
 *    inline mode so does a SYN the inside sends, so that its replies verify;
 *    a SYN for a flow already open keeps it open (sl_flow_rewrite);
 *  - a packet from the outside that matches a live entry is *verified*: it
 *    keeps continuation priority and refreshes the entry (SL_FLOW_OPEN,
 *    in inline mode only once the client proved it saw the inside's SYN-ACK,
 *    sl_flow_outside_verifies,
 *    flow_idle_ns); the inside's FIN or RST shortens the life to
 *    SL_FLOW_CLOSING_NS. The outside's are not trusted as much (sluice checks
 *    no sequence numbers, so anyone who knows the flow can forge them): its
 *    FIN is a half-close, the flow goes on; its RST shortens the life too,
 *    but the outside's next packet that is not an RST opens the flow again
 *    (a host that reset its connection sends nothing more on it);
 *  - an ICMP error addressed to the inside host that sent the TCP header it
 *    carries is verified by that header's flow, SL_FLOW_ICMP_MAX times per
 *    flow: path MTU discovery needs one or two, and a forger who knows the
 *    flow gets no more;
 *  - an admitted first fragment that paid a lookup token creates a short
 *    entry (src, dst, proto, IP ID) that verifies its later fragments;
 *  - after a start with an empty table, a learning window admits
 *    continuations of unknown TCP flows and records them (SL_FLOW_LEARNED,
 *    at most flow_learn_max per partition, never refreshed by the outside)
 *    until a packet from the inside confirms them;
 *  - a verified flow's packets from the outside rank above every lookup up
 *    to its packet rate (sl_flow_meter, flow_window_packets in a window of
 *    2^SL_FLOW_METER_SHIFT ns); past it, for the rest of the window, they rank as
 *    its class's lookups do for the packet budget (SL_FLOW_HIT_OVER): one
 *    host flooding its own connection cannot take the boundary from a
 *    higher class.
 *
 * A flow lives in the partition of its class's priority, so a flood in one
 * class can only recycle entries of its own priority. A class that a retune
 * moved keeps looking in its earlier partitions (sl_class_params.flow_parts).
 *
 * Keys are oriented (outer = the host outside the edge), so a packet from
 * either side finds the same entry: outside packets key as they are, inside
 * packets through sl_meta_reverse().
 *
 * Under unverified = "pass" every continuation is trusted: the table would
 * verify nothing, so it is not kept (sl_flows_kept), unless the adaptive
 * boundary reads its backend signal from the flows.
 */
#pragma once

#include "abi.h"
#include "icmp_inner.h"
#include "parse.h"

/* Whether the dataplane keeps flow state for prof: not under unverified =
 * "pass" (no lookups, no entries, no learning window) unless the adaptive
 * boundary needs the flows for its backend signal. */
SL_INLINE int sl_flows_kept(const struct sl_profile *prof)
{
	return prof->unverified != SL_UNVERIFIED_PASS || (prof->flags & SL_PROFILE_ADAPTIVE);
}

/* What a packet from the outside that starts no lookup is looked up by. */
enum sl_flow_lookup {
	SL_FLOW_LOOKUP_NONE = 0, /* nothing: a start, or a protocol without a start we know */
	SL_FLOW_LOOKUP_TCP = 1,	 /* its own TCP flow */
	SL_FLOW_LOOKUP_FRAG = 2, /* the entry of its first fragment */
	SL_FLOW_LOOKUP_ICMP = 3, /* the TCP flow of the header the ICMP error carries */
};

SL_INLINE int sl_flow_lookup_kind(const struct sl_meta *m)
{
	if (m->is_start)
		return SL_FLOW_LOOKUP_NONE;
	if (m->frag == SL_FRAG_LATER)
		return SL_FLOW_LOOKUP_FRAG;
	if (m->l4_proto == SL_IPPROTO_TCP)
		return SL_FLOW_LOOKUP_TCP;
	if (sl_icmp_is_error(m))
		return SL_FLOW_LOOKUP_ICMP;
	return SL_FLOW_LOOKUP_NONE;
}

/* The same packet seen from the other side: addresses and ports swapped. */
SL_INLINE void sl_meta_reverse(const struct sl_meta *m, struct sl_meta *r)
{
	*r = *m;
	__builtin_memcpy(r->src_be, m->dst_be, 16);
	__builtin_memcpy(r->dst_be, m->src_be, 16);
	r->sport = m->dport;
	r->dport = m->sport;
}

/* A fragment as classification sees its later fragments (no ports, and in
 * IPv6 the protocol after the Fragment header), so that the entry a first
 * fragment creates lands in the partition they search. */
SL_INLINE void sl_meta_portless(const struct sl_meta *m, struct sl_meta *r)
{
	*r = *m;
	r->l4_proto = m->frag_proto;
	r->has_ports = 0;
	r->sport = 0;
	r->dport = 0;
}

/* Whether a first fragment charged to a class of priority charged_prio
 * leaves an entry for its later fragments, which search the partition of
 * the class they classify to without ports (later_prio): only when that is
 * the charged priority. Else fragments charged to one priority's budget
 * (a port-matched class, say) would recycle another priority's partition,
 * and take verification from its idle flows. */
SL_INLINE int sl_frag_entry_kept(__u32 charged_prio, __u32 later_prio)
{
	return charged_prio == later_prio;
}

/* A flow key, written in the 8-byte words its hash and compares read: a
 * word read over narrower stores just made waits for them to reach the
 * cache (a store-forwarding stall, ~3 ns each in XDP). */
SL_INLINE void sl_flow_key_make(struct sl_flow_key *k, const struct sl_meta *m, __u16 outer_port,
				__u16 inner_port, __u32 frag_id, __u8 kind, __u8 proto)
{
	__builtin_memcpy(k->outer_be, m->src_be, 16);
	__builtin_memcpy(k->inner_be, m->dst_be, 16);
	/* outer_port, inner_port, vlan_id[2]; frag_id, family, kind, proto, pad */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const __u64 ports = (__u64)outer_port | (__u64)inner_port << 16 |
			    (__u64)m->vlan_id[0] << 32 | (__u64)m->vlan_id[1] << 48;
	const __u64 tail =
		(__u64)frag_id | (__u64)m->family << 32 | (__u64)kind << 40 | (__u64)proto << 48;
#else
	const __u64 ports = (__u64)outer_port << 48 | (__u64)inner_port << 32 |
			    (__u64)m->vlan_id[0] << 16 | (__u64)m->vlan_id[1];
	const __u64 tail = (__u64)frag_id << 32 | (__u64)m->family << 24 | (__u64)kind << 16 |
			   (__u64)proto << 8;
#endif
	__builtin_memcpy(&k->outer_port, &ports, 8);
	__builtin_memcpy(&k->frag_id, &tail, 8);
}

/* Key of the TCP flow of a packet from the outside (m: as it arrived, or
 * reversed from the inside, or the carried header of an ICMP error). */
SL_INLINE void sl_flow_key_tcp(struct sl_flow_key *k, const struct sl_meta *m)
{
	sl_flow_key_make(k, m, m->sport, m->dport, 0, SL_FLOW_KIND_TCP, SL_IPPROTO_TCP);
}

/* Key shared by the fragments of one datagram from the outside. */
SL_INLINE void sl_flow_key_frag(struct sl_flow_key *k, const struct sl_meta *m)
{
	/* a later fragment's l4_proto too */
	sl_flow_key_make(k, m, 0, 0, m->frag_id, SL_FLOW_KIND_FRAG, m->frag_proto);
}

SL_INLINE int sl_flow_live(const struct sl_flow *f, __u64 now_ns)
{
	return now_ns < f->expires_ns;
}

/* sl_decide()'s flow_hit for a live entry. */
SL_INLINE int sl_flow_hit(const struct sl_flow *f)
{
	return f->state == SL_FLOW_LEARNED ? SL_FLOW_HIT_LEARNED : SL_FLOW_HIT;
}

/*
 * The per-flow packet meter: whether one more packet from the outside that
 * live entry f verified is within the flow's packet rate (1), counting it,
 * or past it (0). A fixed window of 2^SL_FLOW_METER_SHIFT ns (16.8 ms)
 * counts up to prof->flow_window_packets (the config's per-second rate
 * times the window, at most SL_FLOW_METER_MAX); a packet in a later window
 * starts it again. A short window keeps what a flow sends at top rank in
 * one go small (17 packets at 1000/s): with 134 ms windows, a flooding
 * flow's 134 went out back to back, below the class's reserve of a small
 * burst, and a live check saw a higher class's SYNs shed. The window is
 * known by its low 4 bits: a flow silent for a multiple of 16 windows
 * (268 ms) to the window finds its old count, at worst ranked as its
 * class's lookups for one window. A packet past the
 * rate writes nothing; one within it writes the entry's two bytes (every
 * CPU's count may miss a few of another's at the same instant: a bound,
 * not a tally; a flow's packets come to one CPU by RSS).
 */
SL_INLINE int sl_flow_meter(struct sl_flow *f, const struct sl_profile *prof, __u64 now_ns)
{
	const __u32 limit = prof->flow_window_packets;
	if (limit == 0)
		return 1;
	const __u16 window = (__u16)(((now_ns >> SL_FLOW_METER_SHIFT) & 0xf) << 12);
	const __u16 meter = f->meter;
	const __u32 count = (meter & 0xf000) == window ? (__u32)(meter & 0x0fff) : 0;
	if (count >= limit)
		return 0;
	f->meter = (__u16)(window | (count + 1));
	return 1;
}

/* sl_decide()'s flow_hit for a packet from the outside that live entry f
 * verified (sl_flow_outside_verifies): its sl_flow_hit, metered
 * (sl_flow_meter) when it is SL_FLOW_HIT. A learned entry's packets rank as
 * their class's lookups already. */
SL_INLINE int sl_flow_hit_metered(struct sl_flow *f, const struct sl_profile *prof, __u64 now_ns)
{
	const int hit = sl_flow_hit(f);
	if (hit == SL_FLOW_HIT && !sl_flow_meter(f, prof, now_ns))
		return SL_FLOW_HIT_OVER;
	return hit;
}

/* The entry an operation of sl_decision.flow_ops writes (one op bit). */
SL_INLINE void sl_flow_make(struct sl_flow *f, __u32 op, const struct sl_profile *prof,
			    __u64 now_ns)
{
	__builtin_memset(f, 0, sizeof(*f));
	if (op == SL_FLOW_OP_CREATE_FRAG) {
		f->state = SL_FLOW_FRAG;
		f->expires_ns = now_ns + SL_FLOW_FRAG_NS;
	} else if (op == SL_FLOW_OP_LEARN) {
		f->state = SL_FLOW_LEARNED;
		f->expires_ns = now_ns + prof->flow_learn_ns;
	} else {
		f->state = SL_FLOW_SYN;
		f->expires_ns = now_ns + SL_FLOW_SYN_NS;
	}
}

/*
 * The backend signal (adaptive boundary, SL_PROFILE_ADAPTIVE, inline mode).
 * An edge sees both directions of every flow it admitted: the time from the
 * outside's first request data to the inside's first response data is the
 * service's own latency (the handshake alone is the kernel's), and it grows
 * with the queue in front of the service. One sample per flow: the rest of
 * a keep-alive flow's requests are not timed (their request and answer can
 * interleave; one per connection is what a surge of new lookups is made of).
 *
 * The outside can forge anything but what it never saw. So a flow counts
 * (its sample, the inside's resets and zero windows on it) only once its
 * client proved it saw the inside's SYN-ACK: its ACK acknowledges that
 * SYN-ACK's sequence number, which a spoofer does not receive (a blind guess
 * of 32 bits). A RST to a SYN (a closed port) and a RST to a forged ACK
 * therefore count nothing, nor does forged request data. A SYN sent again
 * counts when the inside answers it, having left the SYN before it
 * unanswered for as long as a client waits before it retransmits
 * (SL_RT_SYN_AGAIN_NS): a full backlog drops SYNs and takes a retry later,
 * a healthy one answers within milliseconds, and a port or address that
 * never answers (a firewall's silence) counts nothing. An inside packet
 * that confirms a learned flow proves it too (the backend sends on it).
 */
enum sl_rt_phase {
	SL_RT_NONE = 0,	    /* the inside has not answered the SYN (or: not the client's) */
	SL_RT_WAITING = 1,  /* request data passed at rt_req_us, no answer yet */
	SL_RT_DONE = 2,	    /* this flow's sample was taken */
	SL_RT_ANSWERED = 3, /* the inside's SYN-ACK passed; rt_req_us: the ACK that proves it */
	SL_RT_PROVEN = 4,   /* the client acknowledged it; no request data yet */
	SL_RT_RETRIED = 5,  /* the SYN was sent again unanswered: its answer counts (syn_again) */
	SL_RT_INSIDE = 6,   /* the inside opened the flow: its replies need no proof, no sample */
};

/* The entry a SYN the inside sends makes (inline mode): its replies from
 * the outside verify without the SYN-ACK proof an outside SYN's flow needs
 * (sl_flow_outside_verifies; the inside chose to open it). Its rt_phase
 * (SL_RT_INSIDE) also keeps it out of the backend signal. */
SL_INLINE void sl_flow_make_inside(struct sl_flow *f, const struct sl_profile *prof, __u64 now_ns)
{
	sl_flow_make(f, SL_FLOW_OP_CREATE_TCP, prof, now_ns);
	f->rt_phase = SL_RT_INSIDE;
}

/* The inside has not answered the flow's SYN (the first, or one sent again). */
SL_INLINE int sl_rt_unanswered(const struct sl_flow *f)
{
	return f->rt_phase == SL_RT_NONE || f->rt_phase == SL_RT_RETRIED;
}

/* The client has proved the flow: its resets and zero windows count. */
SL_INLINE int sl_rt_proven(const struct sl_flow *f)
{
	return f->rt_phase == SL_RT_PROVEN || f->rt_phase == SL_RT_WAITING ||
	       f->rt_phase == SL_RT_DONE;
}

/* Inline mode (SL_PROFILE_INLINE): a half-open entry an outside SYN made
 * whose client has not proved it saw the inside's SYN-ACK. It verifies
 * nothing from the outside (sl_flow_outside_verifies), and the inside's FIN
 * or RST does not turn it into a closing flow, which would. */
SL_INLINE int sl_flow_unproven(const struct sl_flow *f, const struct sl_profile *prof)
{
	return (prof->flags & SL_PROFILE_INLINE) && f->state == SL_FLOW_SYN &&
	       f->rt_phase != SL_RT_INSIDE && !sl_rt_proven(f);
}

/* An ICMP error the flow's own packet caused (sl_parse_icmp_inner): a hit
 * up to SL_FLOW_ICMP_MAX times in the flow's life, counted on the entry
 * (every CPU's count may miss a few of another's: a bound, not a tally).
 * Never for a half-open flow whose client has not proved the handshake
 * (inline mode, sl_flow_unproven): a forged SYN would otherwise buy its
 * 5-tuple that many errors ranked above every lookup, again with every SYN
 * that made the entry anew. */
SL_INLINE int sl_flow_icmp_hit(struct sl_flow *f, const struct sl_profile *prof)
{
	if (f->icmp_errors >= SL_FLOW_ICMP_MAX || sl_flow_unproven(f, prof))
		return 0;
	f->icmp_errors++;
	return sl_flow_hit(f);
}

/* FIN or RST: the flow ends soon. A learned flow stays learned (a RST, from
 * either side, proves nothing about it: it must not promote it). */
SL_INLINE void sl_flow_close(struct sl_flow *f, __u64 now_ns)
{
	if (f->state != SL_FLOW_CLOSING && f->state != SL_FLOW_RESET &&
	    f->expires_ns > now_ns + SL_FLOW_CLOSING_NS)
		f->expires_ns = now_ns + SL_FLOW_CLOSING_NS;
	if (f->state != SL_FLOW_FRAG && f->state != SL_FLOW_LEARNED)
		f->state = SL_FLOW_CLOSING;
}

/*
 * A verified packet from the outside (m) on live entry f. Returns 1 when f
 * changed. Refreshes are written at most every SL_FLOW_REFRESH_NS (an entry
 * is shared by every CPU). Learned entries are not refreshed from the
 * outside: only the inside confirms them, so a flood cannot keep itself
 * verified.
 */
SL_INLINE int sl_flow_touch(struct sl_flow *f, const struct sl_meta *m,
			    const struct sl_profile *prof, __u64 now_ns)
{
	if (f->state == SL_FLOW_FRAG || m->l4_proto != SL_IPPROTO_TCP || m->frag == SL_FRAG_LATER)
		return 0;
	if (m->tcp_flags & SL_TCP_RST) {
		if (f->state == SL_FLOW_CLOSING || f->state == SL_FLOW_RESET ||
		    (f->state == SL_FLOW_LEARNED && f->expires_ns <= now_ns + SL_FLOW_CLOSING_NS))
			return 0;
		const int learned = f->state == SL_FLOW_LEARNED;
		sl_flow_close(f, now_ns);
		if (!learned)
			f->state = SL_FLOW_RESET;
		return 1;
	}
	/* The outside sends on after its RST: the RST was not its own. (A
	 * FIN from the outside falls through: a half-close.) */
	if (f->state == SL_FLOW_RESET) {
		f->state = SL_FLOW_OPEN;
		f->expires_ns = now_ns + prof->flow_idle_ns;
		return 1;
	}
	if (f->state == SL_FLOW_CLOSING || f->state == SL_FLOW_LEARNED)
		return 0;
	__u64 until = now_ns + prof->flow_idle_ns;
	if (f->state == SL_FLOW_OPEN && until < f->expires_ns + SL_FLOW_REFRESH_NS)
		return 0;
	f->state = SL_FLOW_OPEN;
	f->expires_ns = until;
	return 1;
}

/* Whether an inside packet needs the flow table at all: a SYN it opens, a
 * FIN or RST, (while learned entries can live) a confirmation, or (adaptive
 * boundary) data or a zero window. Everything else on the return path
 * passes without a lookup. */
SL_INLINE int sl_flow_inside_wants(const struct sl_meta *m, const struct sl_profile *prof,
				   const struct sl_boundary_state *bs, __u64 now_ns)
{
	if (!sl_flows_kept(prof) || m->l4_proto != SL_IPPROTO_TCP || m->frag == SL_FRAG_LATER)
		return 0;
	if (m->tcp_flags & (SL_TCP_SYN | SL_TCP_FIN | SL_TCP_RST))
		return 1;
	/* The backend signal (sl_rt_inside): answers and zero windows. */
	if ((prof->flags & SL_PROFILE_ADAPTIVE) && (m->tcp_payload != 0 || m->tcp_window == 0))
		return 1;
	return bs->learn_until_ns != 0 && now_ns < bs->learn_until_ns + prof->flow_learn_ns;
}

/* A packet from the inside (m as sent) on live entry f. Returns the event
 * it caused (SL_FLOW_EV_CONFIRMED) or -1. */
SL_INLINE int sl_flow_touch_inside(struct sl_flow *f, const struct sl_meta *m,
				   const struct sl_profile *prof, __u64 now_ns)
{
	if (m->tcp_flags & (SL_TCP_FIN | SL_TCP_RST)) {
		/* The inside refusing a half-open flow nobody proved (a RST to a
		 * forged ACK, or to a SYN for a closed port) cuts its life but
		 * leaves it half-open: closing, it would verify the outside's
		 * packets for SL_FLOW_CLOSING_NS without the proof. */
		if (sl_flow_unproven(f, prof)) {
			if (f->expires_ns > now_ns + SL_FLOW_CLOSING_NS)
				f->expires_ns = now_ns + SL_FLOW_CLOSING_NS;
			return -1;
		}
		sl_flow_close(f, now_ns);
		return -1;
	}
	if (f->state == SL_FLOW_LEARNED) {
		f->state = SL_FLOW_OPEN;
		f->expires_ns = now_ns + prof->flow_idle_ns;
		f->rt_phase = SL_RT_PROVEN; /* the backend sends on it */
		return SL_FLOW_EV_CONFIRMED;
	}
	return -1;
}

/* The outside's ACK that acknowledges the inside's SYN-ACK (its sequence
 * number + 1, kept when it passed): the client proved it saw the answer. */
SL_INLINE void sl_rt_prove(struct sl_flow *f, const struct sl_meta *m)
{
	if (f->rt_phase == SL_RT_ANSWERED &&
	    (m->tcp_flags & (SL_TCP_ACK | SL_TCP_SYN | SL_TCP_RST)) == SL_TCP_ACK &&
	    m->tcp_ack == f->rt_req_us)
		f->rt_phase = SL_RT_PROVEN;
}

/*
 * Inline mode (SL_PROFILE_INLINE): whether a packet from the outside (m) on
 * live entry f may be verified by it. A half-open entry an outside SYN made
 * (SL_FLOW_SYN) verifies nothing from the outside until its client proved
 * it saw the inside's SYN-ACK (sl_rt_prove: a spoofer, who never receives
 * it, would have to guess 32 bits); till then the outside's packets on it
 * are unverified, and do not open it. Without the proof, one SYN from a
 * forged address paid one lookup token and its 5-tuple's ACKs then ranked
 * above every lookup. A flow the inside opened (SL_RT_INSIDE) needs none,
 * nor does an open, learned or fragment entry, nor host mode, which sees
 * no SYN-ACK. An unproven entry stays half-open when the inside refuses it
 * (sl_flow_touch_inside): the server's RST to the first forged ACK, or to a
 * SYN for a closed port, would otherwise have made it a closing flow that
 * verifies anything for 10 s.
 */
SL_INLINE int sl_flow_outside_verifies(struct sl_flow *f, const struct sl_meta *m,
				       const struct sl_profile *prof)
{
	if (m->l4_proto != SL_IPPROTO_TCP || !sl_flow_unproven(f, prof))
		return 1;
	sl_rt_prove(f, m);
	return sl_rt_proven(f);
}

/* An admitted SYN from the outside finds old, the entry of its flow: a SYN
 * sent again, as a client retransmits, while the inside has not answered
 * the one before it (counted when the inside answers it: sl_rt_inside). A
 * SYN entry is never refreshed: it was written SL_FLOW_SYN_NS before it
 * expires. */
SL_INLINE int sl_rt_syn_again(const struct sl_flow *old, const struct sl_profile *prof,
			      __u64 now_ns)
{
	return (prof->flags & SL_PROFILE_ADAPTIVE) && old->state == SL_FLOW_SYN &&
	       sl_rt_unanswered(old) && sl_flow_live(old, now_ns) &&
	       now_ns + SL_FLOW_SYN_NS >= old->expires_ns + SL_RT_SYN_AGAIN_NS;
}

/* Whether an admitted SYN from the outside (under prof) leaves the live
 * entry old as it is: a forger who knows the 4-tuple must not make a flow
 * half-open (inline mode: verified again only by a handshake proof the
 * server never gives an established connection) after it reset it from the
 * outside (SL_FLOW_RESET: the outside's next packet opens it again), nor a
 * flow the inside opened (its SYN-ACK is verified without a proof), nor
 * (inline) a learned one the inside has not confirmed yet. A client that
 * reconnects on the same ports loses nothing: the entry verifies its
 * handshake as it is. */
SL_INLINE int sl_flow_syn_keeps(const struct sl_flow *old, const struct sl_profile *prof)
{
	return old->state == SL_FLOW_RESET ||
	       (old->state == SL_FLOW_SYN && old->rt_phase == SL_RT_INSIDE) ||
	       (old->state == SL_FLOW_LEARNED && (prof->flags & SL_PROFILE_INLINE));
}

/* What an entry op makes (f) does to the entry its flow already has (old).
 * A SYN that finds its flow open, from a forger who knows the flow or a
 * client reconnecting on the same ports, keeps it open, with its life and
 * its ICMP count: made half-open, it would die SL_FLOW_SYN_NS later, and a
 * forged SYN would take an idle flow's verification away. Only its backend
 * sample starts again (a new connection's first request). A SYN from the
 * outside leaves the entries sl_flow_syn_keeps names as they are too (a
 * forged RST, then a forged SYN, demoted a live inline connection for
 * good). Anything else replaces old: a retransmitted SYN, a flow closing,
 * an expired entry. syn_of: the profile that admitted f when f is a SYN
 * from the outside, else NULL: f is then maybe a SYN sent again
 * (sl_rt_syn_again); a SYN sent again after the inside answered keeps that
 * answer's proof (the client's ACK carries it). */
SL_INLINE void sl_flow_rewrite(struct sl_flow *old, const struct sl_flow *f,
			       const struct sl_profile *syn_of, __u64 now_ns)
{
	const int again = syn_of && sl_rt_syn_again(old, syn_of, now_ns);
	if (f->state == SL_FLOW_SYN && old->state == SL_FLOW_OPEN && sl_flow_live(old, now_ns)) {
		old->rt_phase = SL_RT_NONE;
		return;
	}
	if (syn_of && f->state == SL_FLOW_SYN && sl_flow_live(old, now_ns) &&
	    sl_flow_syn_keeps(old, syn_of))
		return;
	const int answered = f->state == SL_FLOW_SYN && old->state == SL_FLOW_SYN &&
			     old->rt_phase == SL_RT_ANSWERED && sl_flow_live(old, now_ns);
	const __u32 proof = old->rt_req_us;
	*old = *f;
	if (again) {
		old->rt_phase = SL_RT_RETRIED;
	} else if (answered) {
		old->rt_phase = SL_RT_ANSWERED;
		old->rt_req_us = proof;
	}
}

/* An inside packet that opens a connection (SYN without ACK): its flow is
 * created as if an admitted SYN had come from the outside. */
SL_INLINE int sl_flow_inside_opens(const struct sl_meta *m)
{
	return m->l4_proto == SL_IPPROTO_TCP && m->frag != SL_FRAG_LATER &&
	       (m->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK | SL_TCP_RST)) == SL_TCP_SYN;
}
