#!/bin/bash
# Writes a help2man include with a SUBCOMMANDS section: every subcommand
# `sluicectl --help` lists, with its own --help (options, defaults, ranges),
# so that sluicectl(8) documents what an operator types, not only the
# top-level flags. Usage: subcommands.sh SLUICECTL OUT
set -euo pipefail
ctl=$1
out=$2
# roff: backslashes escaped, minus signs as \-, no line may start with a
# control character ('.' or "'").
roff() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
# Lines over 70 columns (man indents them 7 more): an "option  description"
# line puts its description under the 30-column description margin, and the
# text is folded at word boundaries under its own indentation.
wrap() {
  awk -v W=70 '
  function fold(pad, text,   n, w, i, cur) {
    n = split(text, w, " "); cur = pad
    for (i = 1; i <= n; i++) {
      if (cur != pad && length(cur) + 1 + length(w[i]) > W) { print cur; cur = pad }
      cur = (cur == pad) ? cur w[i] : cur " " w[i]
    }
    if (cur != pad) print cur
  }
  {
    if (length($0) <= W) { print; next }
    match($0, /^ */); lead = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
    if (match(rest, /  +/) && RSTART > 1) {
      print lead substr(rest, 1, RSTART - 1)
      fold(sprintf("%30s", ""), substr(rest, RSTART + RLENGTH))
    } else {
      fold(lead, rest)
    }
  }'
}
subs=$("$ctl" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
if [[ -z $subs ]]; then
  echo "subcommands.sh: $ctl --help lists no subcommands" >&2
  exit 1
fi
{
  echo "[SUBCOMMANDS]"
  echo "Each subcommand takes the global options above and its own:"
  for s in $subs; do
    help=$("$ctl" "$s" --help)
    echo ".SS \"$s\""
    # The description (filled text), then the usage and options as printed,
    # long lines folded (wrap).
    sed -n '/^Usage: /q;p' <<<"$help" | roff
    echo ".PP"
    echo ".nf"
    # The usage line names the build path of the binary: use its name.
    sed -n '/^Usage: /,$p' <<<"$help" | sed -e "s|^Usage: [^ ]*sluicectl|Usage: sluicectl|" |
      wrap | roff
    echo ".fi"
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
