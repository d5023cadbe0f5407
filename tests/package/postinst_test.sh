#!/usr/bin/env bash
# postinst_upgrade: what a package upgrade restarts. The shipped postinst,
# its paths moved under a scratch root, runs against fake systemctl and
# deb-systemd-invoke (which log what they are asked) and the real sluiced
# --check-config: a running XDP edge is restarted (hitless), one in mode
# "auto" too when sluicectl status says it runs XDP; one whose config the
# new build refuses, and a DPDK one, are not, each with
# a message that says why and what to do; a stopped one is not; a fresh
# install restarts nothing.
# Usage: postinst_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
failures=0
check() {  # description, condition (arithmetic)
  if (($2)); then echo "ok: $1"; else echo "FAIL: $1"; failures=$((failures + 1)); fi
}

mkdir -p "$root/etc/sluice" "$root/run/systemd/system" "$root/bin"
sed -e 's|^mode = "auto"|mode = "xdp"|' "$src/config/sluice.toml" >"$root/etc/sluice/sluice.toml"
sed -e 's|^mode = "auto"|mode = "dpdk"|' "$src/config/sluice.toml" >"$root/etc/sluice/fast.toml"
for name in auto-xdp auto-dpdk; do
  sed -e "s|^socket = \"/run/sluice/control.sock\"|socket = \"/run/sluice/$name.sock\"|" \
    "$src/config/sluice.toml" >"$root/etc/sluice/$name.toml"
done
{
  cat "$root/etc/sluice/sluice.toml"
  printf '\n[boundary.extra]\nunknown_key = 1\n'
} >"$root/etc/sluice/bad.toml"
cp "$root/etc/sluice/sluice.toml" "$root/etc/sluice/idle.toml"

cat >"$root/bin/systemctl" <<FAKE
#!/bin/sh
echo "systemctl \$*" >>"$root/calls"
case "\$*" in
"list-units --state=active --plain --no-legend sluiced.service sluiced@*.service")
  # sluiced@idle (stopped) is not active: not listed
  printf '%s loaded active running x\n' sluiced.service sluiced@bad.service \
    sluiced@fast.service sluiced@auto-xdp.service sluiced@auto-dpdk.service
  ;;
esac
exit 0
FAKE
cat >"$root/bin/deb-systemd-invoke" <<FAKE
#!/bin/sh
echo "deb-systemd-invoke \$*" >>"$root/calls"
FAKE
# sluicectl status: what the running sluiced in mode "auto" says it runs.
cat >"$root/bin/sluicectl" <<'FAKE'
#!/bin/sh
case "$*" in
"--socket /run/sluice/auto-xdp.sock status") echo "sluiced: xdp (native) outside eth0, inside eth1" ;;
"--socket /run/sluice/auto-dpdk.sock status") echo "sluiced: dpdk (1 workers) outside eth0, inside eth1" ;;
*) exit 1 ;;
esac
FAKE
ln -s "$build/control/sluiced" "$root/bin/sluiced"
chmod +x "$root/bin/systemctl" "$root/bin/deb-systemd-invoke" "$root/bin/sluicectl"
sed -e "s|/etc/sluice|$root/etc/sluice|g" -e "s|/run/systemd/system|$root/run/systemd/system|g" \
  "$src/packaging/postinst" >"$root/postinst"

restarted() { grep -c "^deb-systemd-invoke try-restart $1\$" "$root/calls" || true; }

# An upgrade (configure with the old version).
: >"$root/calls"
PATH=$root/bin:$PATH sh "$root/postinst" configure 0.0.9 2>"$root/err" && rc=0 || rc=$?
cat "$root/err"
check "postinst exits 0" "$rc == 0"
check "the running XDP edge is restarted" "$(restarted sluiced.service) == 1"
check "the edge whose config the new build refuses is not" "$(restarted sluiced@bad.service) == 0"
check "... and the message names its file and the error" \
  "$(grep -c "refuses $root/etc/sluice/bad.toml" "$root/err") == 1 && \
   $(grep -c 'boundary.extra: unknown key' "$root/err") == 1"
check "the DPDK edge is not restarted" "$(restarted sluiced@fast.service) == 0"
check "nor the one in mode auto that runs DPDK" "$(restarted sluiced@auto-dpdk.service) == 0"
check "the one in mode auto that runs XDP is" "$(restarted sluiced@auto-xdp.service) == 1"
check "... each with the advice to restart it in a quiet minute" \
  "$(grep -c 'restart is not hitless' "$root/err") == 2"
check "a stopped instance is not started" "$(restarted sluiced@idle.service) == 0"

# A fresh install: nothing restarted.
: >"$root/calls"
PATH=$root/bin:$PATH sh "$root/postinst" configure 2>/dev/null
check "a fresh install restarts nothing" "$(grep -c deb-systemd-invoke "$root/calls" || true) == 0"

echo "$failures failure(s)"
((failures == 0))
