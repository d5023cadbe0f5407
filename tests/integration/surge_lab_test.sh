#!/usr/bin/env bash
# surge_lab_short: the short surge-lab scenario (scripts/surge-lab --short)
# with no admission and with sluice inline in each dataplane (XDP, DPDK on
# af_packet vdevs), at 10 C. Asserts that behind sluice checkpoint success >= 99%, backend goodput >= 90% of C, failures
# answered (reset) within 10 ms p99 and convergence within 1 s of the step;
# and that without sluice the collapse is visible.
#
# Usage: surge_lab_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
if [[ $(id -u) -ne 0 ]]; then
  if [[ -n "${CI:-}" ]]; then
    echo "FAIL: needs root (network namespaces, XDP); CI runs as root" >&2
    exit 1
  fi
  echo "SKIP: needs root for network namespaces and XDP (outside CI)"
  exit 77
fi
dataplanes=${SLUICE_LAB_DATAPLANES:-xdp dpdk}  # the ones this build has
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
SLUICE_BUILD_DIR=$build timeout 280 "$src/scripts/surge-lab" --short --configs "none $dataplanes" --out "$out"
/usr/bin/python3 - "$out/results.json" $dataplanes <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"]
n = r["none-10x"]
fails = 0
def check(what, ok):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    fails += 0 if ok else 1
assert n["status"] == "ran", n.get("status")
for dp in sys.argv[2:]:
    x = r[f"{dp}-10x"]
    assert x["status"] == "ran", (dp, x.get("status"))
    check(f"sluice {dp}: checkpoint success {x['checkpoint_success_pct']:.2f}% >= 99%", x["checkpoint_success_pct"] >= 99)
    check(f"sluice {dp}: backend goodput {x['backend_goodput_pct_of_C']:.1f}% of C >= 90%", x["backend_goodput_pct_of_C"] >= 90)
    fp = x["failure_p99_ms"]["citizen"]
    check(f"sluice {dp}: failure p99 {fp} ms < 10 ms (resets)", fp is not None and fp < 10)
    kinds = x["failures_by_kind"]
    check(f"sluice {dp}: failures are resets ({kinds})", kinds["reset"] >= 0.99 * sum(kinds.values()))
    check(f"sluice {dp}: converged within 1 s of the step ({x['converge_s']})", x["converge_s"] is not None and x["converge_s"] < 1)
check(f"no admission: collapse visible (checkpoint {n['checkpoint_success_pct']:.1f}%, goodput "
      f"{n['backend_goodput_pct_of_C']:.1f}% of C)",
      n["checkpoint_success_pct"] < 80 or n["backend_goodput_pct_of_C"] < 70)
sys.exit(1 if fails else 0)
PY
