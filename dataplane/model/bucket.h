/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token buckets in integer nanotokens with time passed in (monotonic ns).
 *
 * Exactness: a bucket refilled at rate r from a burst b never admits more than
 * b + r * t tokens over t seconds; nothing is lost to rounding because refill is
 * elapsed_ns * r nanotokens and one token is SL_TOKEN nanotokens.
 */
#pragma once

#include "abi.h"

/* Compiles user units into bucket parameters. rate <= SL_MAX_RATE_PER_SEC and
 * burst <= SL_MAX_BURST are the caller's (the validator's) contract. */
SL_INLINE struct sl_bucket_params sl_bucket_params_make(__u64 rate_per_sec, __u64 burst)
{
	struct sl_bucket_params p;
	__builtin_memset(&p, 0, sizeof(p));
	p.enabled = 1;
	p.rate_per_sec = rate_per_sec;
	p.cap_nt = burst * SL_TOKEN;
	p.full_after_ns = rate_per_sec ? (p.cap_nt + rate_per_sec - 1) / rate_per_sec : ~0ULL;
	return p;
}

/* A bucket starts full. */
SL_INLINE void sl_bucket_init(struct sl_bucket *b, const struct sl_bucket_params *p, __u64 now_ns)
{
	b->tokens_nt = p->cap_nt;
	b->last_ns = p->enabled ? now_ns : 0; /* see sl_bucket_refill */
}

/* Adds the tokens earned since the last refill. Time going backwards (clock
 * skew between CPUs, reordered captures) earns nothing and is not recorded. */
SL_INLINE void sl_bucket_refill(struct sl_bucket *b, const struct sl_bucket_params *p, __u64 now_ns)
{
	/* A budget that is switched off is not counted; switched on again (a
	 * retune), it starts full, as a new budget does. */
	if (!p->enabled) {
		b->last_ns = 0;
		return;
	}
	if (now_ns <= b->last_ns) {
		/* No time earned (or a clock behind another CPU's), but a retune
		 * may have shrunk the burst: never above it (the reference model
		 * clamps at the retune, sl_bucket_clamp; the dataplanes here). */
		if (b->tokens_nt > p->cap_nt)
			b->tokens_nt = p->cap_nt;
		return;
	}
	__u64 elapsed = now_ns - b->last_ns;
	/* elapsed < ceil(cap/rate) so elapsed * rate < cap + rate: no overflow. */
	__u64 tokens =
		elapsed >= p->full_after_ns ? p->cap_nt : b->tokens_nt + elapsed * p->rate_per_sec;
	/* Tokens before the time (sl_bucket_peek reads them the other way round). */
	b->tokens_nt = tokens > p->cap_nt ? p->cap_nt : tokens;
	SL_STORE_ORDER();
	b->last_ns = now_ns;
}

/* The tokens a refill at now_ns would find, without writing the bucket:
 * for a reader outside the lock that its writers hold. Never fewer than the
 * exact refill (a torn read pairs the newer tokens with the older time, and
 * so counts some refill twice: sl_bucket_refill stores the tokens first,
 * this loads the time first, each in that order: abi.h's SL_STORE_ORDER and
 * SL_LOAD_ORDER). */
SL_INLINE __u64 sl_bucket_peek(const struct sl_bucket *b, const struct sl_bucket_params *p,
			       __u64 now_ns)
{
	const __u64 last = SL_READ_ONCE(b->last_ns);
	SL_LOAD_ORDER();
	const __u64 tokens = SL_READ_ONCE(b->tokens_nt);
	if (now_ns <= last)
		return tokens;
	const __u64 elapsed = now_ns - last;
	if (elapsed >= p->full_after_ns)
		return p->cap_nt;
	const __u64 sum = tokens + elapsed * p->rate_per_sec;
	return sum > p->cap_nt ? p->cap_nt : sum;
}

/* The whole tokens a reader (stats, metrics) finds in a bucket at now_ns:
 * refilled to then, as the next decision would; full when its state was
 * not made yet (made: 0; a fresh state starts full). */
SL_INLINE __u64 sl_bucket_whole_tokens(const struct sl_bucket *b, const struct sl_bucket_params *p,
				       int made, __u64 now_ns)
{
	if (!p->enabled)
		return 0;
	if (!made)
		return p->cap_nt / SL_TOKEN;
	return sl_bucket_peek(b, p, now_ns) / SL_TOKEN;
}

/* True when the bucket holds a whole token above reserve_nt. */
SL_INLINE int sl_bucket_has(const struct sl_bucket *b, __u64 reserve_nt)
{
	return b->tokens_nt >= reserve_nt + SL_TOKEN;
}

SL_INLINE void sl_bucket_take(struct sl_bucket *b)
{
	b->tokens_nt -= SL_TOKEN;
}

/* A bucket whose parameters changed keeps its level, clamped to the new burst. */
SL_INLINE void sl_bucket_clamp(struct sl_bucket *b, const struct sl_bucket_params *p)
{
	if (b->tokens_nt > p->cap_nt)
		b->tokens_nt = p->cap_nt;
}
