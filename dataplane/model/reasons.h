/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one list of reasons behind every verdict. It feeds the C enum used by the
 * model, the BPF and DPDK counter arrays and the Prometheus `reason` label.
 *
 * APPEND ONLY: the number of a reason is part of the counter layout shared with
 * pinned BPF maps and dashboards. Never renumber, never reuse a number.
 *
 *   X(ENUM_SUFFIX, number, "label", meaning)
 */
#pragma once

#define SL_REASONS(X)                                                                              \
	X(LOOKUP, 0, "lookup", "a new lookup that every budget had room for")                      \
	X(CONTINUATION, 1, "continuation", "a packet of a lookup already started")                 \
	X(NON_IP, 2, "non_ip",                                                                     \
	  "not IP (ARP, LLDP...), IPv6 ND/MLD or the link's routing protocols, passed untouched")  \
	X(MALFORMED, 3, "malformed", "truncated or inconsistent headers")                          \
	X(CLASS_RATE, 4, "class_rate", "the class bucket was empty")                               \
	X(PER_SOURCE, 5, "per_source", "the source's own bucket was empty")                        \
	X(STICKY, 6, "sticky", "the source ranks above the class's admission threshold")           \
	X(BOUNDARY_LOOKUPS, 7, "boundary_lookups",                                                 \
	  "the boundary lookup budget was at this priority's reserve")                             \
	X(BOUNDARY_PACKETS, 8, "boundary_packets",                                                 \
	  "the boundary packet budget was at this priority's reserve")                             \
	X(QUEUE_FULL, 9, "queue_full", "a priority queue was full (DPDK)")                         \
	X(QUEUE_DELAY, 10, "queue_delay", "waited longer than max_queue_delay (DPDK)")             \
	X(UNVERIFIED, 11, "unverified",                                                            \
	  "continues no flow the edge saw begin: charged as a lookup of its class, or dropped")

enum sl_reason {
#define SL_REASON_ENUM(name, num, label, doc) SL_REASON_##name = (num),
	SL_REASONS(SL_REASON_ENUM)
#undef SL_REASON_ENUM
		SL_REASON_COUNT
};

/* Verdicts are the other counter dimension: a reason may appear under both (a
 * malformed packet passed by `malformed = "pass"`, or a would-be shed admitted in
 * shadow mode, is counted as admitted with the reason it would have been shed for). */
#define SL_VERDICTS(X)                                                                             \
	X(ADMITTED, 0, "admitted")                                                                 \
	X(SHED, 1, "shed")

enum sl_verdict {
#define SL_VERDICT_ENUM(name, num, label) SL_VERDICT_##name = (num),
	SL_VERDICTS(SL_VERDICT_ENUM)
#undef SL_VERDICT_ENUM
		SL_VERDICT_COUNT
};
