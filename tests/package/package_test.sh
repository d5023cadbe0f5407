#!/usr/bin/env bash
# package_contents: the Debian package that scripts/package built (scripts/test
# builds it before ctest) holds everything a box needs, where Debian expects
# it: extracted into a scratch root (dpkg -x), every file is there, the
# conffiles and dependencies are declared, each man page renders (man -l),
# systemd-analyze verify accepts the units (which name the installed binary),
# logrotate accepts its snippet and promtool the alert rules.
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
deb=$(ls "$build"/sluice_*_amd64.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
  echo "FAIL: no $build/sluice_*_amd64.deb; scripts/package builds it (scripts/test runs it first)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
failures=0
check() {  # description, condition (arithmetic)
  if (($2)); then echo "ok: $1"; else echo "FAIL: $1"; failures=$((failures + 1)); fi
}
has() { [[ -e $root/$1 ]] && echo 1 || echo 0; }

version=$(dpkg-deb -f "$deb" Version)
echo "$deb: version $version"
dpkg -x "$deb" "$root/pkg"
dpkg-deb -e "$deb" "$root/control"
p=$root/pkg
for f in usr/bin/sluiced usr/bin/sluicectl \
  lib/systemd/system/sluiced.service lib/systemd/system/sluiced-passthrough.service \
  lib/systemd/system/sluiced@.service lib/systemd/system/sluiced-passthrough@.service \
  usr/share/doc/sluice/fleet.md \
  etc/sluice/sluice.toml etc/logrotate.d/sluice \
  usr/share/man/man8/sluiced.8.gz usr/share/man/man8/sluicectl.8.gz usr/share/man/man5/sluice.toml.5.gz \
  usr/share/sluice/grafana-dashboard.json usr/share/sluice/sluice-alerts.yml \
  usr/share/doc/sluice/copyright usr/share/doc/sluice/changelog.gz usr/share/doc/sluice/runbook.md \
  usr/share/lintian/overrides/sluice; do
  check "the package installs /$f" "$(has "pkg/$f") == 1"
done
check "and not the surge-lab tools" "$(has pkg/usr/bin/sluice-surge) == 0 && $(has pkg/usr/bin/sluice-backend) == 0"
check "/etc/sluice/sluice.toml is config/sluice.toml" \
  "$(cmp -s "$p/etc/sluice/sluice.toml" "$src/config/sluice.toml" && echo 1 || echo 0) == 1"
check "the config files are conffiles" \
  "$(grep -cx -e /etc/sluice/sluice.toml -e /etc/logrotate.d/sluice "$root/control/conffiles") == 2"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in systemd libbpf1 libsystemd0 libtomlplusplus3 libprometheus-cpp-core1.0 libcpp-httplib0.11 librte-eal23; do
  check "it depends on $d" "$(grep -c "\\b$d\\b" <<<"$depends") == 1"
done
check "sluiced --version says $version" "$("$p/usr/bin/sluiced" --version | grep -cx "sluiced $version") == 1"
check "the shipped config is valid" \
  "$("$p/usr/bin/sluiced" --check-config "$p/etc/sluice/sluice.toml" >/dev/null 2>&1 && echo 1 || echo 0) == 1"

for page in man8/sluiced.8.gz man8/sluicectl.8.gz man5/sluice.toml.5.gz; do
  text=$(MANWIDTH=80 man -l "$p/usr/share/man/$page" 2>/dev/null || true)
  check "man -l renders $page ($(wc -l <<<"$text") lines)" \
    "$(grep -c '^NAME' <<<"$text") == 1 && $(wc -l <<<"$text") > 20"
done
ctl_page=$(MANWIDTH=80 man -l "$p/usr/share/man/man8/sluicectl.8.gz" 2>/dev/null)
check "sluicectl(8) documents every subcommand's options (capture --verdict, status --wait, set)" \
  "$(grep -c '^SUBCOMMANDS' <<<"$ctl_page") == 1 && $(grep -c -- '--verdict' <<<"$ctl_page") >= 1 && \
   $(grep -c -- '--wait' <<<"$ctl_page") >= 1 && $(grep -c '^   set$' <<<"$ctl_page") == 1"
toml_page=$(MANWIDTH=100 man -l "$p/usr/share/man/man5/sluice.toml.5.gz" 2>/dev/null)
check "sluice.toml(5) holds the key tables (class.rate_per_sec, boundary.lookups_per_sec)" \
  "$(grep -c 'rate_per_sec' <<<"$toml_page") >= 2 && $(grep -c 'lookups_per_sec' <<<"$toml_page") >= 1"

# systemd-analyze verify against a root holding the package plus what its
# dependencies bring (systemd's targets, /bin/kill).
v=$root/verify
mkdir -p "$v/lib/systemd/system" "$v/bin"
cp -a "$p/." "$v/"
cp -a /lib/systemd/system/*.target "$v/lib/systemd/system/"
cp /bin/kill "$v/bin/"
check "the units name the installed binary" \
  "$(grep -c '^ExecStart=/usr/bin/sluiced ' "$p/lib/systemd/system/sluiced.service") == 1 && \
   $(grep -c '^Type=notify$' "$p/lib/systemd/system/sluiced.service") == 1"
check "the template reads the instance's own file" \
  "$(grep -c '^ExecStart=/usr/bin/sluiced --config /etc/sluice/%i.toml$' "$p/lib/systemd/system/sluiced@.service") == 1"
check "an instance's pass-through reads the instance's own file" \
  "$(grep -c '^ExecStart=/usr/bin/sluiced --config /etc/sluice/%i.toml --install-passthrough$' "$p/lib/systemd/system/sluiced-passthrough@.service") == 1"
for unit in sluiced.service sluiced-passthrough.service sluiced@edge-a.service \
  sluiced-passthrough@edge-a.service; do
  # --man=no: the man pages are checked above (verify would ask the host's man)
  out=$(systemd-analyze verify --man=no --root="$v" "/lib/systemd/system/$unit" 2>&1) && rc=0 || rc=$?
  [[ -n $out ]] && echo "$out"
  check "systemd-analyze verify accepts $unit" "rc == 0"
done
check "logrotate accepts its snippet" \
  "$(logrotate -d "$p/etc/logrotate.d/sluice" >/dev/null 2>&1 && echo 1 || echo 0) == 1"
check "promtool accepts the alert rules" \
  "$(promtool check rules "$p/usr/share/sluice/sluice-alerts.yml" >/dev/null 2>&1 && echo 1 || echo 0) == 1"
# A purge takes the enablement links of the units and of every instance
# (the admin enabled those: no list of them exists), and the logs; it leaves
# other units' links. Run on a scratch root (DPKG_ROOT, as dpkg --root).
f=$root/fake
mkdir -p "$f/etc/systemd/system/multi-user.target.wants" "$f/etc/systemd/system/sysinit.target.wants" \
  "$f/var/log/sluice" "$f/var/lib/sluice/edge-a"
for unit in multi-user.target.wants/sluiced.service sysinit.target.wants/sluiced-passthrough.service \
  multi-user.target.wants/sluiced@edge-a.service multi-user.target.wants/sluiced@edge-b.service \
  sysinit.target.wants/sluiced-passthrough@edge-a.service multi-user.target.wants/other@x.service; do
  ln -s "/lib/systemd/system/${unit##*/}" "$f/etc/systemd/system/$unit"
done
: >"$f/var/log/sluice/sluiced.log"
: >"$f/var/lib/sluice/edge-a/adaptive.json"
DPKG_ROOT=$f sh "$root/control/postrm" purge
left=$(find "$f/etc/systemd/system" -type l -name 'sluiced*' | wc -l)
check "a purge removes every instance's enablement links ($left left)" "left == 0"
check "and leaves other units' links" \
  "$([[ -L $f/etc/systemd/system/multi-user.target.wants/other@x.service ]] && echo 1 || echo 0) == 1"
check "and removes the logs" "$(has fake/var/log/sluice) == 0"
check "and the kept state (seeds, adaptive rates, fleet configs)" "$(has fake/var/lib/sluice) == 0"
# The units' capabilities are what sluiced opens needs: DPDK's af_packet and
# af_xdp ports are AF_PACKET and AF_XDP sockets (CAP_NET_RAW). Checked by
# opening both under each unit's bounding set (sluiced runs as root).
if [[ $EUID -ne 0 && -z ${CI:-} ]]; then
  echo "SKIP: the units' capabilities (dropping a bounding set needs root; CI runs it)"
else for unit in sluiced.service sluiced@.service; do
  caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$p/lib/systemd/system/$unit")
  set=-all
  for c in $caps; do set+=",+$(tr '[:upper:]' '[:lower:]' <<<"${c#CAP_}")"; done
  out=$(setpriv --bounding-set "$set" /usr/bin/python3 -c \
    'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW); socket.socket(44, socket.SOCK_RAW)' 2>&1) &&
    rc=0 || rc=$?
  [[ $rc -ne 0 ]] && echo "$out" | tail -1
  check "$unit's capabilities open AF_PACKET and AF_XDP sockets (rc $rc)" "rc == 0"
done; fi

echo "$failures failed"
exit $((failures > 0))
