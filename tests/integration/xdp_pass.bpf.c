/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lab helper: an XDP program that passes everything, attached to the far
 * ends of the edge's veths. A veth delivers frames that XDP redirects or
 * transmits into it (XDP_REDIRECT, XDP_TX) promptly only when its peer runs
 * XDP: with GRO alone, an XDP_TX'd RST waits for the next frame.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sl_lab_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
