# shellcheck shell=bash
# Sourced by the surge-lab tests (surge_lab_test.sh, adaptive_lab_test.sh).
# The machine is shared (2 CPUs, CI): a run whose checks miss is run once
# more, alone (lab --only TAG), and the checks run again over every run;
# both are printed. More than MAX missed runs are not noise: they fail at
# once. Needs the caller's lab() and checks() (which writes the tags of the
# runs that missed, one a line, to $out/missed) and $out.
# Usage: rerun_missed MAX
rerun_missed() {
  local max=$1 missed tag
  [[ -s $out/missed ]] || return 0
  missed=$(cat "$out/missed")
  if (($(wc -l <<<"$missed") > max)); then
    echo "FAIL: $(wc -l <<<"$missed") runs missed: not the noise of a shared machine"
    return 1
  fi
  for tag in $missed; do
    echo "--- $tag missed: run once more, alone"
    lab --only "$tag"
  done
  echo "--- the checks again, with those runs repeated"
  checks
  [[ ! -s $out/missed ]]
}

# lab_timeout: seconds the next lab run may take, at most 420, so that the
# test ends (and the lab cleans up its namespaces and pins) before ctest's
# TIMEOUT of 600 kills the test's shell and leaves a lab running orphaned
# next to the next test. Fails when less than 30 s are left.
lab_timeout() {
  local left=$((570 - SECONDS))
  ((left > 420)) && left=420
  if ((left < 30)); then
    echo "FAIL: ${SECONDS} s spent: no time left for another lab run under ctest's 600 s" >&2
    return 1
  fi
  echo "$left"
}
