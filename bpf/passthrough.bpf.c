/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an inline edge runs while no sluice program is enforcing
 * (dataplane.when_stopped): from boot until the first start, after
 * `sluiced --detach`, after a failed first start, and while an upgrade's
 * program loads. "forward" bridges every frame between the outside and the
 * inside interface untouched (the edge stays a wire); "block" drops every
 * frame. It is swapped in and out of the same pinned links as the sluice
 * program (one atomic bpf_link_update each way), so no frame falls between
 * the two.
 *
 * This object is the stable part of an upgrade: it has no pinned maps and
 * no layout, so any build of sluiced can install or replace it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u8 sl_block = 0; /* 1: when_stopped = "block" */

/* [0] = inside interface (frames from the outside), [1] = outside interface. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} sl_pass_tx SEC(".maps");

SEC("xdp")
int sl_pass_outside(struct xdp_md *ctx)
{
	if (sl_block)
		return XDP_DROP;
	return bpf_redirect_map(&sl_pass_tx, 0, XDP_DROP);
}

SEC("xdp")
int sl_pass_inside(struct xdp_md *ctx)
{
	if (sl_block)
		return XDP_DROP;
	return bpf_redirect_map(&sl_pass_tx, 1, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
