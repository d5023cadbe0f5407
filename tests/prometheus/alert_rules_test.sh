#!/usr/bin/env bash
# alert_rules: the shipped alert rules are valid (promtool check rules) and
# every alert fires and stays quiet as intended (promtool test rules), and
# each has its line in docs/runbook.md.
# Usage: alert_rules_test.sh SOURCE_DIR
set -euo pipefail
src=$1
rules=$src/config/prometheus/sluice-alerts.yml
promtool check rules "$rules"
promtool test rules "$src/tests/prometheus/sluice-alerts_test.yml"
missing=0
for alert in $(sed -n 's/^ *- alert: *//p' "$rules"); do
  if ! grep -q "^### $alert\$" "$src/docs/runbook.md"; then
    echo "FAIL: docs/runbook.md has no '### $alert' section" >&2
    missing=$((missing + 1))
  fi
  if ! grep -q "alertname: $alert\$" "$src/tests/prometheus/sluice-alerts_test.yml"; then
    echo "FAIL: tests/prometheus/sluice-alerts_test.yml does not test $alert" >&2
    missing=$((missing + 1))
  fi
done
exit $((missing > 0))
