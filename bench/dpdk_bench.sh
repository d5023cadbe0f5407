#!/usr/bin/env bash
# DPDK packets/s on one worker core, side by side in one run: dpdk-testpmd's
# io and 5tswap forwarding and sluice's fast path, on the same capture (SYNs
# and UDP lookups from 4096 sources, IPv4 and IPv6) and the same vdevs:
# net_pcap infinite_rx=1 in, net_null (no-rx) out. Rounds are interleaved
# and the median kept, so a noisy neighbour hits every configuration alike.
#
# Configurations: testpmd io, 5tswap (1 core, and 2 cores for the machine's
# own scaling); sluice (a) 10 prefixes, (b) 100k prefixes, (c) 100k +
# per-source buckets, on 1 worker, and (c2) = (c) on 2 workers (one per-source
# table both share); (d) 10 prefixes on 2 workers; and the
# same without a packet budget (no priority queues) on 1 and 2 workers;
# and the flow table's cost: (g) = (a) on a capture of verified ACKs (flow
# hits), (h) = (a) on spoofed ACKs (misses, charged as lookups); and (a)-(d),
# (g), (h) again with flow state off (unverified = "pass": no flow table,
# every continuation trusted, as in the first wave). And the floor under (a)
# (`dpdk_bench floor`, bench/dpdk_floor.cpp): the least worker that decides
# (a)'s lookups, with a ring for its admitted packets and without (as (e)).
#
# --baseline BIN adds (a), (b), (c) and (c2) run by another dpdk_bench binary
# (a build of an older commit, say) to every round, for a before/after in
# one run.
#
# Usage: bench/dpdk_bench.sh [--rounds 3] [--seconds 2] [--baseline BIN]   (as root)
# Needs build/bench/dpdk_bench (cmake --build build --target dpdk_bench) and
# dpdk-testpmd. Every process is bounded in time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SLUICE_BUILD_DIR:-$root/build}
bench=$build/bench/dpdk_bench
rounds=3
seconds=2
baseline=
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --baseline) baseline=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--baseline BIN]" >&2; exit 2 ;;
  esac
  shift
done
if [[ $(id -u) -ne 0 ]]; then
  echo "dpdk_bench.sh: needs root (DPDK)" >&2
  exit 77
fi
for tool in "$bench" "$(command -v dpdk-testpmd || true)" ${baseline:+"$baseline"}; do
  if [[ ! -x $tool ]]; then
    echo "dpdk_bench.sh: missing ${tool:-dpdk-testpmd}" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/sluice-dpdk-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A second copy of each capture with other sources, for a second rx queue:
# RSS gives each queue its own flows.
capture=$work/bench.pcap capture2=$work/bench2.pcap
"$bench" capture --out "$capture" --frames 4096 --sources 4096
"$bench" capture --out "$capture2" --frames 4096 --sources 4096 --first-source 4096
"$bench" capture --out "$work/verified.pcap" --frames 4096 --sources 512 --kind verified
"$bench" capture --out "$work/verified2.pcap" --frames 4096 --sources 512 --kind verified --first-source 512
"$bench" capture --out "$work/spoofed.pcap" --frames 4096 --sources 4096 --kind spoofed
"$bench" capture --out "$work/spoofed2.pcap" --frames 4096 --sources 4096 --kind spoofed --first-source 4096

# The same EAL resources for everyone: no hugepages, 1 GB, the main lcore
# floating over both CPUs and forwarding core k on the k-th CPU from the
# end (sluice's default lcore map, dataplane/dpdk/eal.cpp).
ncpu=$(nproc)
lcore_map() {  # workers -> --lcores=...
  local map="0@(0-$((ncpu - 1)))" w
  for ((w = 0; w < $1; w++)); do map+=",$((w + 1))@$((ncpu - 1 - w % ncpu))"; done
  echo "--lcores=$map"
}

# testpmd MODE CORES: mean Rx pps of the outside port over $seconds stats
# periods after the first second. Without --stats-period, testpmd (not
# interactive) waits for Enter on stdin and stops forwarding at EOF, after a
# few bursts: run from a script with no terminal it "stalls" after ~100
# packets. With --stats-period it forwards until SIGINT.
testpmd() {
  local mode=$1 cores=$2 log=$work/testpmd-$1-$2.log pcap="" q
  for ((q = 0; q < cores; q++)); do pcap+=",rx_pcap=$( ((q % 2)) && echo "$capture2" || echo "$capture")"; done
  timeout -s INT -k 5 $((seconds + 20)) dpdk-testpmd "$(lcore_map "$cores")" \
    --no-huge --no-pci -m 1024 --no-shconf --log-level=lib.eal:warning \
    --vdev "net_pcap_bench_out$pcap,infinite_rx=1" --vdev net_null_bench_in,no-rx=1 -- \
    --forward-mode="$mode" --nb-cores="$cores" --rxq="$cores" --txq="$cores" \
    --total-num-mbufs=65536 --stats-period 1 </dev/null >"$log" 2>&1 &
  local pid=$! need=$((seconds + 2))
  # Print 1 comes right after start (no rate yet), print 2 covers the
  # first second (skipped, as sluice's warm-up); then $seconds samples.
  while kill -0 "$pid" 2>/dev/null &&
    (($(grep -c 'NIC statistics for port 0' "$log" || true) < need)); do
    sleep 0.2
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || true
  awk -v skip=2 -v n="$seconds" '
    /NIC statistics for port/ { match($0, /port [0-9]+/); port = substr($0, RSTART + 5, RLENGTH - 5) + 0 }
    /Rx-pps:/ && port == 0 { if (++seen > skip && seen <= skip + n) { sum += $2; k++ } }
    END { if (k == n) printf "%.0f 1\n", sum / k; else print "nan 0" }' "$log"
}

# [CAPTURE=file CAPTURE2=file] sluice NAME ARGS...: "pps out_pps all_admitted"
sluice() {
  local name=$1 log=$work/sluice-$1.log rc=0
  shift
  timeout -s INT -k 5 $((seconds + 30)) "${BENCH:-$bench}" run --capture "${CAPTURE:-$capture}" "${CAPTURE2:-$capture2}" --seconds "$seconds" \
    "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0 && rc != 2)); then
    echo "nan nan 0"
    echo "sluice $name failed (exit $rc):" >&2
    cat "$log" >&2
    return
  fi
  grep '^sluice dpdk' -A2 "$log" | sed 's/^/    /' >&2
  sed -n 's/^RESULT pps=\([0-9]*\) out_pps=\([0-9]*\) all_admitted=\([01]\).*/\1 \2 \3/p' "$log"
}

# floor NAME ARGS...: the yardstick on the first capture (one rx queue).
floor() {
  local name=$1 log=$work/floor-$1.log rc=0
  shift
  timeout -s INT -k 5 $((seconds + 30)) "$bench" floor --capture "$capture" --seconds "$seconds" \
    "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    echo "nan nan 0"
    echo "floor $name failed (exit $rc):" >&2
    cat "$log" >&2
    return
  fi
  grep '^floor dpdk' "$log" | sed 's/^/    /' >&2
  sed -n 's/^RESULT pps=\([0-9]*\) out_pps=\([0-9]*\) all_admitted=\([01]\).*/\1 \2 \3/p' "$log"
}

names=(io 5tswap 5tswap-2 floor floor-e a b c c2 d e f g h a-off b-off c-off d-off g-off h-off)
[[ -n $baseline ]] && names+=(a-base b-base c-base c2-base)
declare -A label=(
  [a-base]="(a) by the --baseline build"
  [b-base]="(b) by the --baseline build"
  [c-base]="(c) by the --baseline build"
  [c2-base]="(c2) by the --baseline build"
  [io]="testpmd io, 1 core"
  [5tswap]="testpmd 5tswap, 1 core"
  [5tswap-2]="testpmd 5tswap, 2 cores"
  [floor]="floor under (a): least worker, a ring"
  [floor-e]="floor under (e): least worker, no ring"
  [a]="sluice (a) 10 prefixes, 1 worker"
  [b]="sluice (b) 100k prefixes, 1 worker"
  [c]="sluice (c) 100k + per-source, 1 worker"
  [c2]="sluice (c2) = (c), 2 workers"
  [d]="sluice (d) 10 prefixes, 2 workers"
  [e]="sluice (e) = (a), no packet budget"
  [f]="sluice (f) = (d), no packet budget"
  [g]="sluice (g) = (a), verified ACKs (flow hits)"
  [h]="sluice (h) = (a), spoofed ACKs (charged)"
  [a-off]="(a), flow state off"
  [b-off]="(b), flow state off"
  [c-off]="(c), flow state off"
  [d-off]="(d), flow state off"
  [g-off]="(g), flow state off (ACKs trusted)"
  [h-off]="(h), flow state off (ACKs trusted)"
)
declare -A samples out_samples full
measure() {  # name -> "pps out_pps full"
  case $1 in
    io) testpmd io 1 | awk '{print $1, $1, $2}' ;;
    5tswap) testpmd 5tswap 1 | awk '{print $1, $1, $2}' ;;
    5tswap-2) testpmd 5tswap 2 | awk '{print $1, $1, $2}' ;;
    floor) floor floor --queue on ;;
    floor-e) floor floor-e --queue off ;;
    a) sluice a --prefixes 10 --per-source off --workers 1 ;;
    b) sluice b --prefixes 100000 --per-source off --workers 1 ;;
    c) sluice c --prefixes 100000 --per-source on --workers 1 ;;
    c2) sluice c2 --prefixes 100000 --per-source on --workers 2 ;;
    d) sluice d --prefixes 10 --per-source off --workers 2 ;;
    e) sluice e --prefixes 10 --per-source off --workers 1 --packet-budget off ;;
    f) sluice f --prefixes 10 --per-source off --workers 2 --packet-budget off ;;
    g) CAPTURE=$work/verified.pcap CAPTURE2=$work/verified2.pcap sluice g --prefixes 10 --per-source off --workers 1 ;;
    h) CAPTURE=$work/spoofed.pcap CAPTURE2=$work/spoofed2.pcap sluice h --prefixes 10 --per-source off --workers 1 ;;
    a-off) sluice a-off --prefixes 10 --per-source off --workers 1 --flow-state off ;;
    b-off) sluice b-off --prefixes 100000 --per-source off --workers 1 --flow-state off ;;
    c-off) sluice c-off --prefixes 100000 --per-source on --workers 1 --flow-state off ;;
    d-off) sluice d-off --prefixes 10 --per-source off --workers 2 --flow-state off ;;
    g-off) CAPTURE=$work/verified.pcap CAPTURE2=$work/verified2.pcap sluice g-off --prefixes 10 --per-source off --workers 1 --flow-state off ;;
    h-off) CAPTURE=$work/spoofed.pcap CAPTURE2=$work/spoofed2.pcap sluice h-off --prefixes 10 --per-source off --workers 1 --flow-state off ;;
    a-base) BENCH=$baseline sluice a-base --prefixes 10 --per-source off --workers 1 ;;
    b-base) BENCH=$baseline sluice b-base --prefixes 100000 --per-source off --workers 1 ;;
    c-base) BENCH=$baseline sluice c-base --prefixes 100000 --per-source on --workers 1 ;;
    c2-base) BENCH=$baseline sluice c2-base --prefixes 100000 --per-source on --workers 2 ;;
  esac
}
start=$SECONDS
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  for n in "${names[@]}"; do
    read -r pps out ok < <(measure "$n")
    printf '  %-40s %8.2f Mpps\n' "${label[$n]}" "$(awk -v p="$pps" 'BEGIN{print p/1e6}')" >&2
    samples[$n]+="$pps "
    out_samples[$n]+="$out "
    full[$n]=$(( ${full[$n]:-1} && ok ))
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
base=$(median <<<"${samples[5tswap]}")
one=$(median <<<"${samples[a]}")
one_e=$(median <<<"${samples[e]}")
echo
echo "Packets/s, net_pcap infinite_rx -> net_null, $(nproc) CPUs, median of $rounds interleaved rounds"
echo "of ${seconds} s windows (after 1 s warm-up); capture: 4096 frames, 4096 sources (a second rx queue: 4096 others)."
echo
echo "| configuration | rx Mpps (median) | rounds | out Mpps | vs testpmd 5tswap | every packet admitted |"
echo "| --- | --- | --- | --- | --- | --- |"
for n in "${names[@]}"; do
  m=$(median <<<"${samples[$n]}")
  o=$(median <<<"${out_samples[$n]}")
  each=$(awk '{for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " / " : ""), $i / 1e6}' \
    <<<"${samples[$n]}")
  case $n in io|5tswap*) adm="(forwards all)" ;; *) adm=$([[ ${full[$n]} == 1 ]] && echo yes || echo "NO (shed)") ;; esac
  awk -v l="${label[$n]}" -v m="$m" -v o="$o" -v b="$base" -v e="$each" -v a="$adm" \
    'BEGIN { printf "| %s | %.2f | %s | %.2f | %.2fx | %s |\n", l, m / 1e6, e, o / 1e6, m / b, a }'
done
echo
awk -v a="$one" -v b="$base" 'BEGIN { printf "target sluice (a) >= 0.80x testpmd 5tswap: %.2fx, %s\n", a / b, (a / b >= 0.8 ? "met" : "MISSED") }'
awk -v f="$(median <<<"${samples[floor]}")" -v a="$one" -v b="$base" \
  'BEGIN { printf "the floor under (a): %.2fx testpmd 5tswap; sluice (a) is %.2fx of the floor\n", f / b, a / f }'
awk -v d="$(median <<<"${samples[d]}")" -v od="$(median <<<"${out_samples[d]}")" -v a="$one" \
  -v f="$(median <<<"${samples[f]}")" -v e="$one_e" \
  -v t1="$base" -v t2="$(median <<<"${samples[5tswap-2]}")" 'BEGIN {
    printf "1 -> 2 workers: sluice rx %.2fx (out %.2fx of 1 worker), without packet budget %.2fx; testpmd 5tswap %.2fx\n",
      d / a, od / a, f / e, t2 / t1 }'
# Each round's own 1 -> 2 worker scaling against testpmd's of the same round
# (this shared VM's rates drift between rounds): the median of those.
round_scaling() {  # TWO ONE: median over rounds of (TWO/ONE) / (5tswap-2/5tswap)
  paste <(tr ' ' '\n' <<<"${samples[$1]}") <(tr ' ' '\n' <<<"${samples[$2]}") \
    <(tr ' ' '\n' <<<"${samples[5tswap-2]}") <(tr ' ' '\n' <<<"${samples[5tswap]}") |
    awk 'NF == 4 && $2 > 0 && $3 > 0 { print ($1 / $2) / ($3 / $4) }' | median
}
awk -v d="$(round_scaling d a)" -v f="$(round_scaling f e)" 'BEGIN {
  printf "sluice 1 -> 2 scaling vs testpmd 5tswap 1 -> 2, median of each round'"'"'s ratio: %.2fx with packet budget (target >= 0.90x: %s), %.2fx without\n",
    d, (d >= 0.9 ? "met" : "MISSED"), f }'
awk -v c2="$(round_scaling c2 c)" 'BEGIN {
  printf "per-source (c -> c2), the same ratio: %.2fx\n", c2 }'
echo "total run time: $((SECONDS - start)) s"
