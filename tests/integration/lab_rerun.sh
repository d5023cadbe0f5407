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
