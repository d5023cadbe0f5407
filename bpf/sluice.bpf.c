/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sluice's XDP dataplane: a thin entry around the shared admission model
 * (dataplane/model/). Parse, look the addresses up in the LPM tries of the
 * live profile slot, classify, verify a continuation against the flow table
 * (flows.h), resolve the per-source budget (sources.h), decide on the CPU's credit or
 * under the state lock (credit.h), record the flow the decision opened,
 * count per CPU, then act: pass (host mode) or redirect to the inside
 * interface (inline mode), drop, answer a SYN with a RST+ACK
 * (XDP_TX), or mark the DSCP. XDP cannot queue, so the budgets and reserves
 * are enforced per packet; the DPDK dataplane adds the priority queues.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "classify.h"
#include "credit.h"
#include "decide.h"
#include "flows.h"
#include "parse.h"
#include "rewrite.h"
#include "sources.h"
#include "table_sets.h"

/* Knobs, set by the loader before load. */
const volatile __u8 sl_inline = 0;	    /* admitted -> sl_tx[SL_TX_INSIDE], else XDP_PASS */
const volatile __u8 sl_fake_clock = 0;	    /* tests: time from sl_clock */
const volatile __u8 sl_record_decision = 0; /* tests: last decision to sl_last */
const volatile __u8 sl_standby = 0;	    /* DPDK standby: pass while sl_heartbeat is fresh */
/* The coarse clock's tick (the loader: CLOCK_MONOTONIC_COARSE's resolution,
 * at most 100 ms); 0: source buckets always refill from the exact clock. */
const volatile __u64 sl_coarse_tick_ns = 0;

static __always_inline __u64 sl_fake_now(void)
{
	__u32 zero = 0;
	__u64 *t = bpf_map_lookup_elem(&sl_clock, &zero);
	return t ? *t : 0;
}

/* The exact clock: every bucket refill, sticky window and backend sample
 * is measured on it. */
static __always_inline __u64 sl_now(void)
{
	return sl_fake_clock ? sl_fake_now() : bpf_ktime_get_ns();
}

/* The same clock as of the last tick (bpf_ktime_get_coarse_ns: never ahead
 * of sl_now(), behind it by less than one tick, 4 ms at HZ=250), ten times
 * cheaper on a kvm-clock VM (docs/performance.md). Only for what needs no
 * exact time: a credit's 1 ms life and flow lifetimes of seconds, on the
 * path that decides a packet without a budget refill. */
static __always_inline __u64 sl_now_coarse(void)
{
	return sl_fake_clock ? sl_fake_now() : bpf_ktime_get_coarse_ns();
}

/* A bucket may be refilled or judged on the coarse clock when its burst
 * holds what its rate earns in a tick: the refill the coarse clock does not
 * show yet comes a tick later, none lost to the cap. A smaller burst (1000/s
 * with a burst of 1) would lose most of it: the exact clock. A source's
 * bucket then gets its rate, and at most rate x tick more in any window
 * than on the exact clock; the profile fixes which clock a bucket sees. */
static __always_inline int sl_coarse_ok(const struct sl_bucket_params *p)
{
	/* rate <= 10^9 and tick <= 10^8 (the loader): no overflow. */
	return !p->enabled ||
	       (sl_coarse_tick_ns != 0 && p->rate_per_sec * sl_coarse_tick_ns <= p->cap_nt);
}

/* The same for a source's GCRA budget (gcra.h): its burst holds a tick's
 * worth (tick <= burst / rate). */
static __always_inline int sl_gcra_coarse_ok(const struct sl_gcra_params *p)
{
	return !p->enabled ||
	       (sl_coarse_tick_ns != 0 && (sl_coarse_tick_ns << SL_GCRA_SHIFT) <= p->limit_u);
}

/* The sheds without the lock (credit.h) judge the class's and the
 * boundary's lookup budgets on the coarse clock when all of them may be:
 * they write nothing, so the refill a late clock misses stays in the bucket
 * for the next lookup after the tick (decided under the lock, on the exact
 * clock); a lookup shed so would have had a token that came due in the
 * tick's last moments, and the next one gets it. */
static __always_inline int sl_shed_coarse(const struct sl_profile *prof,
					  const struct sl_class_params *cp)
{
	return sl_coarse_ok(&cp->bucket) && sl_coarse_ok(&prof->boundary_lookups) &&
	       sl_coarse_ok(&prof->boundary_packets);
}

/* DPDK standby: true while the DPDK sluiced that loaded this program beats,
 * so its af_packet ports see every frame (XDP_PASS). */
static __always_inline int sl_dpdk_alive(__u64 *beat_ns)
{
	*beat_ns = 0;
	if (!sl_standby)
		return 0;
	__u32 zero = 0;
	struct sl_heartbeat *hb = bpf_map_lookup_elem(&sl_heartbeat, &zero);
	if (!hb)
		return 0;
	*beat_ns = hb->beat_ns;
	return bpf_ktime_get_ns() - *beat_ns < hb->timeout_ns;
}

/* The standby decides (DPDK's beat is stale). If DPDK beat since the last
 * time it did, DPDK decided meanwhile and admitted flows this table never
 * saw: their continuations would be unverified. Learn them, as at a start.
 * Once per takeover; the state's clock, under its lock. */
__attribute__((noinline)) static int
sl_standby_decides(struct sl_shared_state *st, const struct sl_profile *prof, __u64 beat_ns)
{
	if (!st || !prof)
		return 0;
	__u64 now = sl_now();
	bpf_spin_lock(&st->lock);
	if (st->standby_beat_ns != beat_ns) {
		st->standby_beat_ns = beat_ns;
		sl_learning_open(&st->boundary, prof, now);
	}
	bpf_spin_unlock(&st->lock);
	return 0;
}

/* Where an admitted frame goes: the inside interface (inline) or the host. */
static __always_inline int sl_admitted(void)
{
	if (sl_inline)
		return bpf_redirect_map(&sl_tx, SL_TX_INSIDE, XDP_DROP);
	return XDP_PASS;
}

/* Global (separately verified) functions keep the verifier's state count in
 * check: the parser's branches are not multiplied by the decision's. They
 * take the context, never packet pointers, and are checked for any meta.
 * The IP layer and L4 in one (a third function for L4 verified no fewer
 * instructions: 712,182 with it, 698,006 without, and cost a call). */
__attribute__((noinline)) int sl_parse_ip_xdp(struct xdp_md *ctx, struct sl_meta *m)
{
	if (!m)
		return SL_PARSE_MALFORMED;
	__u8 *data = (__u8 *)(long)ctx->data, *end = (__u8 *)(long)ctx->data_end;
	int r = sl_parse_ip_at(data, end, m);
	return r == SL_PARSE_L4_PENDING ? sl_parse_l4_at(data, end, m) : r;
}

/* sl_parse() in two separately verified parts: the branches of IP and L4
 * are not multiplied by every path through the VLAN tags before them. */
__attribute__((noinline)) int sl_parse_xdp(struct xdp_md *ctx, struct sl_meta *m)
{
	if (!m)
		return SL_PARSE_MALFORMED;
	int r = sl_parse_l2((__u8 *)(long)ctx->data, (__u8 *)(long)ctx->data_end, m);
	return r == SL_PARSE_L3_PENDING ? sl_parse_ip_xdp(ctx, m) : r;
}

/* The outside frame's parse. IPv4 without options, untagged or under one
 * 802.1Q tag (the common frames), is parsed here, inline: by the model's
 * own steps at fixed offsets (sl_parse_l2's walk of the tag, sl_parse_ipv4,
 * sl_parse_l4_at), so its meta is the general parser's. Every other frame
 * goes to sl_parse_xdp, whose two calls cost a UDP lookup 3-4 ns and an
 * admitted SYN 3-7 (values the program keeps are spilled around them;
 * docs/performance.md). */
static __always_inline int sl_parse_outside(struct xdp_md *ctx, struct sl_meta *m)
{
	__u8 *data = (__u8 *)(long)ctx->data, *end = (__u8 *)(long)ctx->data_end;
	if (data + SL_ETH_HLEN + 4 + 20 > end)
		return sl_parse_xdp(ctx, m);
	if (sl_rd16(data + 12) == SL_ETH_P_8021Q &&
	    sl_rd16(data + SL_ETH_HLEN + 2) == SL_ETH_P_IPV4 && data[SL_ETH_HLEN + 4] == 0x45) {
		/* One 802.1Q tag: sl_parse_l2's walk of it. */
		sl_meta_clear(m);
		m->vlan_id[0] = sl_rd16(data + SL_ETH_HLEN) & 0x0fff;
		m->vlans = 1;
		m->ethertype = SL_ETH_P_IPV4;
		m->l3_off = SL_ETH_HLEN + 4;
		int r = sl_parse_ipv4(data, data + SL_ETH_HLEN + 4, end, m);
		return r == SL_PARSE_L4_PENDING ? sl_parse_l4_at(data, end, m) : r;
	}
	if (sl_rd16(data + 12) != SL_ETH_P_IPV4 || data[SL_ETH_HLEN] != 0x45)
		return sl_parse_xdp(ctx, m);
	sl_meta_clear(m);
	m->ethertype = SL_ETH_P_IPV4;
	m->l3_off = SL_ETH_HLEN;
	int r = sl_parse_ipv4(data, data + SL_ETH_HLEN, end, m);
	return r == SL_PARSE_L4_PENDING ? sl_parse_l4_at(data, end, m) : r;
}

/* Rewrites a SYN into its RST+ACK; returns the new frame length or 0. */
__attribute__((noinline)) int sl_reset_xdp(struct xdp_md *ctx, const struct sl_meta *m)
{
	if (!m)
		return 0;
	return (int)sl_build_reset((__u8 *)(long)ctx->data, (__u8 *)(long)ctx->data_end, m);
}

/* Hands a decided frame to a running capture: 1 in sample_every of those
 * it asks for, the first snaplen bytes, into sl_capture_ring (a full ring
 * loses the frame, counted in sl_capture_lost, not the decision), until the
 * capture's lease runs out (until_ns: its sluiced stopped renewing it). */
__attribute__((noinline)) int sl_capture_xdp(struct xdp_md *ctx, const struct sl_capture_cfg *c,
					     __u32 what, __u64 now)
{
	/* what: class state slot | verdict << 8 | reason << 16 (five arguments at most) */
	if (!c || now >= c->until_ns)
		return 0;
	if (c->sample_every > 1 && bpf_get_prandom_u32() % c->sample_every != 0)
		return 0;
	struct sl_capture_rec *r = bpf_ringbuf_reserve(&sl_capture_ring, sizeof(*r), 0);
	if (!r) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&sl_capture_lost, &zero);
		if (lost)
			(*lost)++;
		return 0;
	}
	__u32 wire = (__u32)(ctx->data_end - ctx->data);
	__u32 len = wire < c->snaplen ? wire : c->snaplen;
	if (len > SL_CAPTURE_SNAP)
		len = SL_CAPTURE_SNAP;
	/* 1..SL_CAPTURE_SNAP (a power of two) by a mask the verifier follows
	 * into bpf_xdp_load_bytes, whatever the compiler made of the clamps. */
	len = ((len - 1) & (SL_CAPTURE_SNAP - 1)) + 1;
	r->ts_ns = now;
	r->wire_len = wire;
	r->class_state = (__u8)what;
	r->verdict = (__u8)(what >> 8);
	r->reason = (__u8)(what >> 16);
	r->cap_len = 0;
	if (bpf_xdp_load_bytes(ctx, 0, r->data, len) == 0)
		r->cap_len = len;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

__attribute__((noinline)) int sl_mark_xdp(struct xdp_md *ctx, const struct sl_meta *m, __u32 dscp)
{
	if (!m)
		return 0;
	sl_mark_dscp((__u8 *)(long)ctx->data, (__u8 *)(long)ctx->data_end, m, (__u8)dscp);
	return 0;
}

/* sl_sticky_settle under the state lock. Global: its walks of the demand
 * histograms are verified once, not on every path of the decision. */
__attribute__((noinline)) int sl_sticky_settle_xdp(__u32 slot_cls, __u64 now)
{
	__u32 zero = 0, slot = (slot_cls >> 16) & 1;
	const struct sl_profile *prof = bpf_map_lookup_elem(&sl_profiles, &slot);
	struct sl_shared_state *st = bpf_map_lookup_elem(&sl_state, &zero);
	if (!prof || !st)
		return 0;
	const struct sl_class_params *cp = &prof->classes[slot_cls & (SL_MAX_CLASSES - 1)];
	bpf_spin_lock(&st->lock);
	sl_sticky_settle(prof, cp, &st->classes[cp->state_index & (SL_MAX_CLASSES - 1)],
			 &st->boundary, now);
	bpf_spin_unlock(&st->lock);
	return 0;
}

#define SL_MAX_CPUS 8192 /* NR_CPUS at most; bpf_loop stops past the last possible CPU */

/* One CPU's counts of class state slot `si`, taken into this CPU's scratch
 * (a bpf_loop callback over the CPUs: 1 stops it past the last). */
static long sl_sticky_take_cpu(__u32 cpu, void *arg)
{
	__u32 zero = 0, si = *(__u32 *)arg & (SL_MAX_CLASSES - 1);
	struct sl_sticky_cpu *taken = bpf_map_lookup_elem(&sl_sticky_taken, &zero);
	struct sl_sticky_cpu *sc = bpf_map_lookup_percpu_elem(&sl_sticky_cpus, &si, cpu);
	if (!taken || !sc)
		return 1;
	sl_sticky_take(taken, sc);
	return 0;
}

/* Before the lock, when sl_sticky_due: every CPU's sticky sheds made without
 * the lock, into the class's state (sl_sticky_take on each CPU's counts, then
 * sl_sticky_merge under the lock), by one CPU at a time: the one whose
 * sl_sticky_claim holds. Returns 1 when this CPU took them: it releases the
 * claim in its decision's hold, before its tick (until then no CPU's tick
 * closes the window, whose counts this CPU holds). A helper call cannot be
 * made under the lock, hence the scratch. Global: verified once. */
__attribute__((noinline)) int sl_sticky_take_xdp(__u32 slot_cls, __u64 now)
{
	__u32 zero = 0, slot = (slot_cls >> 16) & 1;
	const struct sl_profile *prof = bpf_map_lookup_elem(&sl_profiles, &slot);
	struct sl_shared_state *st = bpf_map_lookup_elem(&sl_state, &zero);
	struct sl_sticky_cpu *taken = bpf_map_lookup_elem(&sl_sticky_taken, &zero);
	if (!prof || !st || !taken)
		return 0;
	const struct sl_class_params *cp = &prof->classes[slot_cls & (SL_MAX_CLASSES - 1)];
	struct sl_class_state *cs = &st->classes[cp->state_index & (SL_MAX_CLASSES - 1)];
	bpf_spin_lock(&st->lock);
	const int claimed = sl_sticky_claim(cs, now);
	/* The state the counts are taken for: made afresh meanwhile (a retune
	 * that reset the class), it gets none of them. */
	const __u32 epoch = cs->epoch;
	bpf_spin_unlock(&st->lock);
	if (!claimed)
		return 0;
	volatile __u64 *w = (volatile __u64 *)taken;
	SL_LOOP
	for (__u32 i = 0; i < sizeof(*taken) / 8; i++)
		w[i] = 0;
	__u32 si = cp->state_index;
	bpf_loop(SL_MAX_CPUS, sl_sticky_take_cpu, &si, 0);
	bpf_spin_lock(&st->lock);
	if (cs->epoch == epoch)
		sl_sticky_merge(cs, cp, taken);
	bpf_spin_unlock(&st->lock);
	return 1;
}

SEC("xdp")
int sl_xdp_outside(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 beat_ns;

	if (sl_dpdk_alive(&beat_ns))
		return XDP_PASS;
	struct sl_active *act = bpf_map_lookup_elem(&sl_active, &zero);
	if (!act)
		return sl_admitted();
	__u32 slot = act->slot & 1;
	const struct sl_profile *prof = bpf_map_lookup_elem(&sl_profiles, &slot);
	struct sl_shared_state *st = bpf_map_lookup_elem(&sl_state, &zero);
	struct sl_counters *cnt = bpf_map_lookup_elem(&sl_counters, &zero);
	if (!prof || !st || !cnt || prof->n_classes == 0 || prof->n_classes > SL_MAX_CLASSES)
		return sl_admitted(); /* no profile yet: fail open */
	if (sl_standby && SL_READ_ONCE(st->standby_beat_ns) != beat_ns)
		sl_standby_decides(st, prof, beat_ns);

	struct sl_meta m;
	int parsed = sl_parse_outside(ctx, &m);
	__u32 cls = prof->n_classes - 1;
	if (parsed == SL_PARSE_OK)
		cls = sl_classify_xdp(prof, slot, &m);
	cls &= SL_MAX_CLASSES - 1;
	const struct sl_class_params *cp = &prof->classes[cls];
	/* The coarse clock until something needs the exact one (a budget's
	 * refill under the lock, a bucket with a small burst), then the exact
	 * one for the rest of the packet. The adaptive boundary's backend
	 * samples (flows.h) always need it. */
	int exact = (prof->flags & SL_PROFILE_ADAPTIVE) != 0;
	__u64 now = exact ? sl_now() : sl_now_coarse();

	int flow_hit = 0;
	if (parsed == SL_PARSE_OK && !m.is_start && sl_flows_kept(prof))
		flow_hit = sl_flow_verify_xdp(ctx, prof, SL_SLOT_CLASS(slot, cls), &m, now);

	struct sl_decision d;
	__u32 si = cp->state_index & (SL_MAX_CLASSES - 1);
	struct sl_class_state *cs = &st->classes[si];
	struct sl_cpu_credits *cc = bpf_map_lookup_elem(&sl_credits, &zero);

	/* The source's own budget first, by compare-and-swap: its token
	 * taken where this CPU's credit could admit the lookup, else only
	 * looked at (peeked: it has one), so that a lookup the class then sheds
	 * without the lock writes nothing; the token is taken when the lock
	 * decides. */
	int source = SL_SOURCE_HERE, d_done = 0;
	if (parsed == SL_PARSE_OK && sl_charged(prof, &m, flow_hit) && cp->src_bucket.enabled) {
		if (!exact && !sl_gcra_coarse_ok(&cp->src_bucket)) {
			now = sl_now();
			exact = 1;
		}
		const int ready =
			cc &&
			(m.is_start || (sl_charged_unlocked(prof, &st->boundary, flow_hit, now) &&
					sl_charged_on_credit(prof, cp, cs, &st->boundary))) &&
			sl_credit_ready(prof, cls, cs, &st->boundary, cc, now);
		source = sl_source_xdp(prof, cls, &m, now,
				       ready ? SL_SOURCE_OP_TAKE : SL_SOURCE_OP_PEEK);
		if (ready && source == SL_SOURCE_TAKEN) {
			sl_credit_spend_lookup(prof, &m, cls, cc, &d);
			d_done = 1;
		} else if (source == SL_SOURCE_TAKEN) {
			source = SL_SOURCE_PEEKED;
		}
	}

	/* On this CPU's credit when it has one (credit.h); a start its source
	 * refuses needs nothing shared either, nor a shed the state leaves no
	 * doubt about (sl_shed_coarse: on which clock); else under the lock,
	 * on the exact clock. (A peeked source's lookup has no credit to
	 * spend: sl_credit_ready said so.) */
	if (!d_done)
		d_done = cc && source != SL_SOURCE_PEEKED &&
			 sl_decide_unlocked(prof, &m, parsed, cls, cs, &st->boundary, source,
					    flow_hit, cc, now, &d);
	if (!d_done && cc) {
		if (!exact && !sl_shed_coarse(prof, cp)) {
			now = sl_now();
			exact = 1;
		}
		/* A sticky class's sheds count into this CPU's own counts (the
		 * key a copy: si, spilled for the call, would lose its bounds). */
		__u32 key = si;
		SL_VERIFIER_BARRIER(key);
		struct sl_sticky_cpu *sc = cp->shed_order == SL_SHED_STICKY
						   ? bpf_map_lookup_elem(&sl_sticky_cpus, &key)
						   : NULL;
		d_done = sl_shed_unlocked(prof, &m, parsed, cls, cs, &st->boundary, sc,
					  source == SL_SOURCE_PEEKED ? SL_SOURCE_TAKEN : source,
					  flow_hit, now, &d);
	}
	/* The lock decides, with the token taken (another CPU may have taken
	 * the last one meanwhile: then refused by it, as the take says). */
	if (!d_done && source == SL_SOURCE_PEEKED)
		source = sl_source_xdp(prof, cls, &m, now, SL_SOURCE_OP_TAKE_PEEKED);
	if (!d_done) {
		if (!exact) {
			now = sl_now();
			exact = 1;
		}
		const int took = cc && sl_sticky_due(prof, cp, cs, now) &&
				 sl_sticky_take_xdp(SL_SLOT_CLASS(slot, cls), now);
		bpf_spin_lock(&st->lock);
		if (took)
			sl_sticky_release(cs);
		if (cc)
			sl_credit_reclaim(prof, &m, parsed, cls, cs, &st->boundary, cc, now);
		sl_decide_source(prof, &m, parsed, cls, cs, &st->boundary, 0, source, flow_hit, now,
				 &d);
		if (cc)
			sl_credit_draw(prof, &m, parsed, cls, cs, &st->boundary, cc, now, &d);
		bpf_spin_unlock(&st->lock);
		if (cs->settle)
			sl_sticky_settle_xdp(SL_SLOT_CLASS(slot, cls), now);
	}
	if (source == SL_SOURCE_TAKEN && !sl_source_used(&d))
		sl_source_xdp(prof, cls, &m, now, SL_SOURCE_OP_GIVE_BACK);
	if (d.flow_ops)
		sl_flow_apply_xdp(prof, SL_SLOT_CLASS(slot, cls), &m, d.flow_ops, now);

	__u32 verdict = d.verdict & 1;
	__u32 reason = d.reason < SL_REASON_COUNT ? d.reason : SL_REASON_MALFORMED;
	cnt->packets[si][verdict][reason]++;
	if (d.is_start)
		cnt->lookups[si][verdict][reason]++;
	if (sl_record_decision)
		bpf_map_update_elem(&sl_last, &zero, &d, BPF_ANY);
	const struct sl_capture_cfg *cap = bpf_map_lookup_elem(&sl_capture_cfg, &zero);
	if (cap && sl_capture_wants(cap, si, verdict, reason))
		sl_capture_xdp(ctx, cap, si | verdict << 8 | reason << 16, exact ? now : sl_now());

	switch (d.action) {
	case SL_ACTION_DROP:
		return XDP_DROP;
	case SL_ACTION_RESET: {
		int old_len = (int)(ctx->data_end - ctx->data);
		int len = sl_reset_xdp(ctx, &m);
		if (len <= 0 || bpf_xdp_adjust_tail(ctx, len - old_len))
			return XDP_DROP;
		return XDP_TX;
	}
	case SL_ACTION_MARK:
		sl_mark_xdp(ctx, &m, d.mark_dscp);
		break;
	default:
		break;
	}
	return sl_admitted();
}

/* Inline mode return path: whatever comes back from the inside goes straight
 * back out, untouched and uncounted; on the way it may open, close or
 * confirm a flow (flows.h). */
SEC("xdp")
int sl_xdp_inside(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 beat_ns;
	if (sl_dpdk_alive(&beat_ns))
		return XDP_PASS;
	struct sl_active *act = bpf_map_lookup_elem(&sl_active, &zero);
	if (act) {
		__u32 slot = act->slot & 1;
		const struct sl_profile *prof = bpf_map_lookup_elem(&sl_profiles, &slot);
		struct sl_shared_state *st = bpf_map_lookup_elem(&sl_state, &zero);
		/* Flow lifetimes only, on the coarse clock; the backend's
		 * answer times (adaptive) on the exact one. */
		if (prof && st && prof->n_classes > 0 && prof->n_classes <= SL_MAX_CLASSES &&
		    sl_flows_kept(prof))
			sl_flow_inside_xdp(ctx, prof, slot, &st->boundary,
					   (prof->flags & SL_PROFILE_ADAPTIVE) ? sl_now()
									       : sl_now_coarse());
	}
	return bpf_redirect_map(&sl_tx, SL_TX_OUTSIDE, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
