#!/usr/bin/env bash
# Command-line contract of sluiced --check-config and sluicectl replay:
# exit codes, the FILE:LINE:COL: key: message format, JSON output, and clear
# errors for bad arguments. Usage: cli_test.sh BUILD_DIR SOURCE_DIR [SLUICE_WITH_DPDK]
set -uo pipefail
build=$1
src=$2
dpdk=${3:-OFF}  # SLUICE_WITH_DPDK
sluiced=$build/control/sluiced
sluicectl=$build/control/sluicectl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() {  # name, expected exit code, command...; output in $tmp/out
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>&1
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL $name: exit $got, expected $want"; cat "$tmp/out"; failed=$((failed + 1)); return 1
  fi
  passed=$((passed + 1))
}
expect_line() {  # name, fixed string that must appear in $tmp/out
  if ! grep -qF -- "$2" "$tmp/out"; then
    echo "FAIL $1: missing: $2"; cat "$tmp/out"; failed=$((failed + 1)); return 1
  fi
  passed=$((passed + 1))
}

check shipped_config_valid 0 "$sluiced" --check-config "$src/config/sluice.toml"
expect_line shipped_config_summary "classes (4, tried in order)"
check minimal_config_valid 0 "$sluiced" --check-config "$src/config/minimal.toml"
if grep -q "note: no dataplane.outside" "$tmp/out"; then
  echo "FAIL minimal_config_runs: config/minimal.toml would not start sluiced"; failed=$((failed + 1))
fi
check demo_config_valid 0 "$sluiced" --check-config "$src/config/demo-surge.toml"
expect_line no_outside_noted "note: no dataplane.outside: sluiced will not start with this file"

bad=$src/tests/cli/bad.toml
check bad_config_rejected 1 "$sluiced" --check-config "$bad"
expect_line wrong_type "$bad:2:19: boundary.lookups_per_sec: expected an integer"
expect_line duplicate_class "$bad:9:8: class.citizen.name: duplicate class name \"citizen\", also defined at line 5"
expect_line host_bits "$bad:10:17: class.citizen.match.src: host bits are set beyond /16"
expect_line bad_port_range "$bad:10:46: class.citizen.match.dst_ports: port range is reversed"
expect_line unknown_key "$bad:11:1: class.citizen.colour: unknown key"
expect_line error_count "5 error(s), config not valid"
check missing_config 1 "$sluiced" --check-config "$tmp/nope.toml"
expect_line missing_config_named "nope.toml"
# A config from a pipe is read to its end: process substitution, /dev/stdin.
# (A FIFO no one writes to is refused after 5 s: ConfigLoader.APipeIs...)
check config_pipe 0 "$sluiced" --check-config <(cat "$src/config/minimal.toml")
expect_line config_pipe_summary "classes ("
check config_stdin 0 bash -c 'cat "$1" | "$0" --check-config /dev/stdin' "$sluiced" "$src/config/minimal.toml"
expect_line config_stdin_summary "classes ("

# The files a fleet reaches etcd with are read as a connection would read
# them, each error at its key.
printf '[fleet]\netcd = ["https://198.18.0.1:2379"]\nnode = "a"\netcd_cert_file = "%s"\netcd_key_file = "%s"\n' \
  "$tmp/nope.pem" "$tmp/nope.key" >"$tmp/tls.toml"
check etcd_cert_missing 1 "$sluiced" --check-config "$tmp/tls.toml"
expect_line etcd_cert_missing_named "$tmp/tls.toml:4:18: fleet.etcd_cert_file: cannot read $tmp/nope.pem: No such file or directory"

# The token file an HTTP listener needs is read as a start would read it.
printf '[control]\nhttp_listen = "127.0.0.1:9555"\nhttp_token_file = "%s"\n' "$tmp/token" >"$tmp/http.toml"
check token_missing 1 "$sluiced" --check-config "$tmp/http.toml"
expect_line token_missing_named "$tmp/http.toml:3:19: control.http_token_file: cannot read $tmp/token: No such file or directory"
: >"$tmp/token"
check token_empty 1 "$sluiced" --check-config "$tmp/http.toml"
expect_line token_empty_named "$tmp/http.toml:3:19: control.http_token_file: the token in $tmp/token must be at least 16 characters, found 0 on its first line"
echo short-token >"$tmp/token"
check token_short 1 "$sluiced" --check-config "$tmp/http.toml"
expect_line token_short_named "$tmp/http.toml:3:19: control.http_token_file: the token in $tmp/token must be at least 16 characters, found 11 on its first line"
rm "$tmp/token" && mkfifo "$tmp/token"
check token_fifo 1 timeout 10 "$sluiced" --check-config "$tmp/http.toml"
expect_line token_fifo_named "$tmp/http.toml:3:19: control.http_token_file: cannot read $tmp/token: not a regular file"
rm "$tmp/token"
echo 0123456789abcdef0123 >"$tmp/token"
check token_ok 0 "$sluiced" --check-config "$tmp/http.toml"

# The socket's group, looked up as a start would.
printf '[control]\nsocket_group = "sluice-no-such-group"\n' >"$tmp/group.toml"
check socket_group_missing 1 "$sluiced" --check-config "$tmp/group.toml"
expect_line socket_group_named "$tmp/group.toml:2:16: control.socket_group: no group \"sluice-no-such-group\" on this host"
printf '[control]\nsocket_group = "root"\n' >"$tmp/group.toml"
check socket_group_ok 0 "$sluiced" --check-config "$tmp/group.toml"

# DPDK's EAL arguments, parsed by the EAL as a start would (a child process
# that stops before any device), when this sluiced has DPDK.
if [[ $dpdk == ON ]]; then
  eal() { printf '[dataplane]\nmode = "%s"\noutside = "net_null0"\ninside = "net_null1"\ndpdk_args = [%s]\n' "$1" "$2" >"$tmp/eal.toml"; }
  eal dpdk '"--no-huge", "--no-pci", "-m", "256"'
  check eal_args_ok 0 "$sluiced" --check-config "$tmp/eal.toml"
  eal dpdk '"--no-huge", "--no-pcie"'
  check eal_unknown_option 1 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  expect_line eal_unknown_named "$tmp/eal.toml:5:13: dataplane.dpdk_args: DPDK's EAL refuses them: unrecognized option '--no-pcie'"
  eal auto '"--no-huge", "-n", "many"'
  check eal_bad_value 1 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  expect_line eal_bad_value_named "dataplane.dpdk_args: DPDK's EAL refuses them: invalid channel number"
  eal dpdk '"--no-huge", "-vh"'
  check eal_usage_bundle 1 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  expect_line eal_usage_bundle_named "dataplane.dpdk_args: an option asks for the EAL's usage"
  # an option left without its value would take what follows it
  eal dpdk '"--no-huge", "--no-pci", "--vdev"'
  check eal_dangling 1 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  expect_line eal_dangling_named "$tmp/eal.toml:5:13: dataplane.dpdk_args: its last option, \"--vdev\", has no value"
  eal dpdk '"-l", "0-4095"'
  check eal_lcores 1 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  expect_line eal_lcores_named "dataplane.dpdk_args: DPDK's EAL refuses them: Too many lcores"
  # The operator's own lcore option, as getopt_long takes it (a prefix, a
  # bundle): sluice adds no map of its own beside it (the EAL refused the pair).
  eal dpdk '"--no-huge", "--no-pci", "--lcore=0@0,1@0"'
  check eal_lcores_prefix 0 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  eal dpdk '"--no-huge", "--no-pci", "-vl", "0"'
  check eal_lcores_bundle 0 timeout 30 "$sluiced" --check-config "$tmp/eal.toml"
  # mode auto on kernel interfaces never starts DPDK: its args are not the EAL's business
  printf '[dataplane]\nmode = "auto"\noutside = "lo"\ndpdk_args = ["--no-pcie"]\n' >"$tmp/eal.toml"
  check eal_not_started 0 "$sluiced" --check-config "$tmp/eal.toml"
fi
printf '[dataplane]\ndpdk_args = ["--no-huge", "--"]\n' >"$tmp/eal.toml"
check eal_double_dash 1 "$sluiced" --check-config "$tmp/eal.toml"
expect_line eal_double_dash_named "$tmp/eal.toml:2:27: dataplane.dpdk_args[1]: expected an EAL option sluiced can pass on (\"--\" would end the EAL's options)"
printf '[dataplane]\ndpdk_args = ["--no-huge", ""]\n' >"$tmp/eal.toml"
check eal_empty_arg 1 "$sluiced" --check-config "$tmp/eal.toml"
expect_line eal_empty_arg_named "$tmp/eal.toml:2:27: dataplane.dpdk_args[1]: expected an EAL option sluiced can pass on (an empty argument is no option, nor any option's value)"
# A vdev's iface= names a kernel interface in every mode.
printf '[dataplane]\nmode = "dpdk"\noutside = "net_af_packet0,iface="\n' >"$tmp/vdev.toml"
check vdev_empty_iface 1 "$sluiced" --check-config "$tmp/vdev.toml"
expect_line vdev_empty_iface_named "$tmp/vdev.toml:3:11: dataplane.outside: expected a DPDK device whose iface= is a Linux interface name"
# An etcd host of digits and dots is an IPv4 address or nothing.
printf '[fleet]\netcd = ["http://999.1.1.1:2379"]\nprefix = "/sluice/x"\nnode = "e1"\n' >"$tmp/fleet-ip.toml"
check etcd_bad_ipv4 1 "$sluiced" --check-config "$tmp/fleet-ip.toml"
expect_line etcd_bad_ipv4_named "$tmp/fleet-ip.toml:2:9: fleet.etcd[0]: expected an etcd client URL"
# An etcd that refuses the connection is named in words, not httplib's enum.
printf '[fleet]\netcd = ["http://127.0.0.1:9"]\nprefix = "/sluice/x"\nnode = "e1"\n' >"$tmp/fleet-closed.toml"
check fleet_etcd_refused 2 timeout 30 "$sluicectl" --fleet --config "$tmp/fleet-closed.toml" get
expect_line fleet_etcd_refused_named "http://127.0.0.1:9: cannot connect: refused, unreachable, or the host name does not resolve"
# sluicectl's numbers are decimal (CLI11 alone read 0x10 as 16, 010 as 8,
# 1e3 as 1000), and its paths are not empty.
check top_count_hex 1 "$sluicectl" --socket "$tmp/none.sock" top --count 0x10
expect_line top_count_hex_named "--count: 0x10 is not a whole number in [0 - 1000000000]"
check capture_snaplen_decimal 1 "$sluicectl" --socket "$tmp/none.sock" capture --snaplen 0300 -w "$tmp/never.pcapng"
expect_line capture_snaplen_decimal_named "--snaplen: 0300 is not a whole number in [1 - 256]"
check capture_snaplen_zeros 2 "$sluicectl" --socket "$tmp/none.sock" capture --snaplen 0000128 -w "$tmp/never.pcapng"
check status_wait_exponent 1 "$sluicectl" --socket "$tmp/none.sock" status --wait 1e3
expect_line status_wait_exponent_named "--wait: 1e3 is not a number of seconds in [0 - 3600]"
check status_wait_fraction 2 "$sluicectl" --socket "$tmp/none.sock" --pin-path "$tmp/nopin" status --wait 0.1
check socket_empty 1 "$sluicectl" --socket "" status
expect_line socket_empty_named "--socket: an empty path; give a file's path"
# A path no unix socket can have is a bad argument (1), not an unreachable sluiced (2).
check socket_too_long 1 "$sluicectl" --socket "/tmp/$(printf 'x%.0s' {1..120}).sock" status
expect_line socket_too_long_named "a unix socket's path has at most 107 bytes; this one has 130"
# --detach acts on the links and pins a config names.
check detach_needs_config 1 "$sluiced" --detach
expect_line detach_needs_config_named "--detach needs --config FILE"

# Unreachable, nothing pinned: --json still answers one object on stdout.
check status_json_unreachable 2 "$sluicectl" --socket "$tmp/none.sock" --pin-path "$tmp/nopin" --json status
"$sluicectl" --socket "$tmp/none.sock" --pin-path "$tmp/nopin" --json status >"$tmp/json" 2>/dev/null
check status_json_object 0 python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["ok"] is False and r["pinned_edge"] is None else 1)' "$tmp/json"
# More prefixes than the XDP prefix table holds per profile: named by the check, not by a start.
python3 -c 'import sys; n = 262145; open(sys.argv[1], "w").write("[dataplane]\nmode = \"xdp\"\noutside = \"eth0\"\n[[class]]\nname = \"a\"\nmatch = { src = [" + ",".join("\"2001:2::%x:%x/128\"" % (i >> 16, i & 0xffff) for i in range(n)) + "] }\n")' "$tmp/lpm.toml"
check prefixes_over_xdp_table 1 "$sluiced" --check-config "$tmp/lpm.toml"
expect_line prefixes_over_xdp_table_named "$tmp/lpm.toml:4:1: class: 262145 distinct source prefixes; the XDP dataplane holds at most 262144 per direction"
check capture_empty_class 1 "$sluicectl" capture --class "" -w "$tmp/never.pcapng"
expect_line capture_empty_class_named '--class: expected a name, found ""'
check check_config_empty_path 1 "$sluiced" --check-config ""
expect_line check_config_empty_named "sluiced: --check-config: an empty path; give a config FILE"
check log_interval_fraction 1 "$sluiced" --log-interval 1.5 --check-config "$src/config/minimal.toml"
expect_line log_interval_fraction_named '--log-interval: expected a whole number of seconds, found "1.5"'

# The socket and the audit log are files sluiced makes: a directory there is refused.
printf '[control]\nsocket = "%s"\naudit_log = "%s/"\n' "$tmp" "$tmp" >"$tmp/dirs.toml"
check paths_are_directories 1 "$sluiced" --check-config "$tmp/dirs.toml"
expect_line socket_directory_named "$tmp/dirs.toml:2:10: control.socket: $tmp is a directory; expected a file's path"
expect_line audit_directory_named "control.audit_log: $tmp/ is a directory; expected a file's path"
# A pin_path no start could pin at (not under /sys/fs/bpf, not on a bpffs).
printf '[dataplane]\nmode = "xdp"\noutside = "lo"\npin_path = "%s/pins"\n' "$tmp" >"$tmp/pin.toml"
check pin_path_not_bpffs 1 "$sluiced" --check-config "$tmp/pin.toml"
expect_line pin_path_not_bpffs_named "$tmp/pin.toml:4:12: dataplane.pin_path: $tmp/pins is not on a bpffs ($tmp is not)"
# A class an earlier one covers in every field is valid, and noted.
printf '[[class]]\nname = "wide"\nmatch = { src = "198.18.0.0/15" }\n[[class]]\nname = "narrow"\nmatch = { src = "198.18.7.0/24", proto = "udp" }\n' >"$tmp/reach.toml"
check unreachable_class_valid 0 "$sluiced" --check-config "$tmp/reach.toml"
expect_line unreachable_class_noted 'note: class "narrow" never matches: class "wide" before it matches every packet it would'

# The host's checks print by position too (docs/config.md), whatever order they run in.
printf '[control]\nsocket_group = "sluice-no-such-group"\nsocket = "%s"\n' "$tmp" >"$tmp/hostorder.toml"
check host_errors_invalid 1 "$sluiced" --check-config "$tmp/hostorder.toml"
if [[ $(grep -oE '^[^ ]*hostorder.toml:[0-9]+' "$tmp/out" | cut -d: -f2 | tr '\n' ' ') != "2 3 " ]]; then
  echo "FAIL host_errors_by_position: expected lines 2 then 3"; cat "$tmp/out"; failed=$((failed + 1))
else
  passed=$((passed + 1))
fi

# --detach and --install-passthrough act on the file's own pin path: a file
# they cannot read (or whose [dataplane] is broken) is an error, never the
# default pin path in its place. Neither touches anything before that.
check detach_missing_config 1 "$sluiced" --detach --config "$tmp/nope.toml"
expect_line detach_missing_named "$tmp/nope.toml:0:0: cannot read config file: No such file or directory"
printf '[dataplane]\noutside = "eth0"\nxdp_attach = "sideways"\n' >"$tmp/broken-local.toml"
check passthrough_broken_local 1 "$sluiced" --install-passthrough --config "$tmp/broken-local.toml"
expect_line passthrough_broken_named "$tmp/broken-local.toml:3:14: dataplane.xdp_attach: expected"
# Only [dataplane] matters to them: a broken [metrics] does not stop a detach.
printf '[dataplane]\noutside = "lo"\npin_path = "/sys/fs/bpf/sluice-cli-test-%s"\n[metrics]\nlisten = 5\n' "$$" >"$tmp/metrics-broken.toml"
check detach_broken_metrics 0 "$sluiced" --detach --config "$tmp/metrics-broken.toml"
expect_line detach_broken_metrics_done "msg=detached"
# Nothing pinned (a config that never ran, e.g. the package's example at its
# removal): --detach attaches nothing. Before, an inline config got the
# pass-through: a wire between two interfaces sluice never stood between.
printf '[dataplane]\noutside = "sl-none-out"\ninside = "sl-none-in"\npin_path = "%s/pins"\n' "$tmp" >"$tmp/never-ran.toml"
check detach_nothing_pinned 0 "$sluiced" --detach --config "$tmp/never-ran.toml"
expect_line detach_nothing_pinned_said "nothing pinned at $tmp/pins: nothing of sluice's to detach"
[[ ! -e $tmp/pins ]] || { echo "FAIL detach_nothing_pinned_made_nothing: $tmp/pins made"; failed=$((failed + 1)); }
# A DPDK edge without the XDP standby pins nothing while it runs: its
# --detach still installs the pass-through, as it did before (here under a
# pin path off bpffs, so it fails there: not "nothing pinned").
printf '[dataplane]\nmode = "dpdk"\noutside = "net_af_packet0,iface=sl-none-out"\ninside = "net_af_packet1,iface=sl-none-in"\ndpdk_standby = "none"\npin_path = "%s/pins"\n' "$tmp" >"$tmp/dpdk-none.toml"
check detach_dpdk_without_standby 1 "$sluiced" --detach --config "$tmp/dpdk-none.toml"
expect_line detach_dpdk_without_standby_tried 'msg="detach incomplete"'
# A start whose file's own tables ([control] here) are broken too exits,
# naming the key: with defaults in their place it would take the main
# edge's lock, socket and record. Before, it stayed up, not in charge.
printf '[dataplane]\noutside = "sl-none-out"\npin_path = "%s/pins"\n[control]\nsocket = "%s/ctl.sock"\nsocket_mode = 666\n[[class]]\nname = 5\n' "$tmp" "$tmp" >"$tmp/broken-run.toml"
check start_broken_local 1 timeout 20 "$sluiced" --config "$tmp/broken-run.toml"
expect_line start_broken_local_named "$tmp/broken-run.toml:6:15: control.socket_mode: expected"
expect_line start_broken_local_exits "the tables that say which edge this is are not valid"
# sluicectl --fleet names what is wrong in the edge's [fleet] (before: "no
# valid [fleet] section").
printf '[fleet]\netcd = ["http://127.0.0.1:2379"]\nprefix = "/sluice/x"\nnode = "e1"\nsync_ms = 10\n' >"$tmp/fleet.toml"
check fleet_bad_key 1 "$sluicectl" --fleet --config "$tmp/fleet.toml" get
expect_line fleet_bad_key_named "$tmp/fleet.toml:5:11: fleet.sync_ms: expected an integer in 50..5000"

cap=$src/tests/data/morning-surge.pcap
check replay_table 0 "$sluicectl" replay --config "$src/config/demo-surge.toml" --pcap "$cap"
expect_line replay_checkpoint_row "checkpoint"
check replay_json 0 "$sluicectl" replay --config "$src/config/demo-surge.toml" --pcap "$cap" --json
python3 - "$tmp/out" <<'PY' || failed=$((failed + 1))
import json, sys
j = json.load(open(sys.argv[1]))
t = j["totals"]
assert set(j["classes"]) == {"checkpoint", "citizen", "default"}, j["classes"].keys()
for c in list(j["classes"].values()) + [t]:
    assert c["packets"] == c["packets_admitted"] + c["packets_shed"]
    assert c["lookups"] == c["admitted"] + c["shed"]
    assert sum(c["shed_by_reason"].values()) == c["packets_shed"]
assert j["classes"]["checkpoint"]["shed"] == 0, "checkpoint lost lookups"
assert t["packets"] == 12754, t["packets"]
PY
check replay_same_twice 0 sh -c "'$sluicectl' replay --config '$src/config/demo-surge.toml' --pcap '$cap' --json > '$tmp/a' && '$sluicectl' replay --config '$src/config/demo-surge.toml' --pcap '$cap' --json > '$tmp/b' && cmp '$tmp/a' '$tmp/b'"
# Without the learning window (an edge already running): no flow is learned.
check replay_no_learning 0 "$sluicectl" replay --config "$src/config/demo-surge.toml" --pcap "$cap" --json --no-learning
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["learned_flows"] == 0, j["learned_flows"]' "$tmp/out" || { echo "FAIL replay_no_learning_learns_none"; failed=$((failed + 1)); }
printf 'not a capture' >"$tmp/junk.pcap"
check replay_junk 1 "$sluicectl" replay --config "$src/config/demo-surge.toml" --pcap "$tmp/junk.pcap"
expect_line replay_junk_msg "junk.pcap: cannot read capture"
# A capture through a FIFO streams; one whose writer never comes is refused
# after 5 s, not waited on for good.
mkfifo "$tmp/cap.fifo"
check replay_fifo_streams 0 sh -c "timeout 20 sh -c 'cat \"\$0\" > \"\$1\"' '$cap' '$tmp/cap.fifo' & '$sluicectl' replay --config '$src/config/demo-surge.toml' --pcap '$tmp/cap.fifo' --json > '$tmp/c' && cmp '$tmp/a' '$tmp/c'"
check replay_stdin 0 sh -c "cat '$cap' | '$sluicectl' replay --config '$src/config/demo-surge.toml' --pcap - --json > '$tmp/c' && cmp '$tmp/a' '$tmp/c'"
check replay_fifo_no_writer 1 timeout 30 "$sluicectl" replay --config "$src/config/demo-surge.toml" --pcap "$tmp/cap.fifo"
expect_line replay_fifo_no_writer_msg "cap.fifo: cannot read capture: nothing arrived within 5 s (a pipe whose writer did not start)"
check replay_bad_config 1 "$sluicectl" replay --config "$bad" --pcap "$cap"
expect_line replay_bad_config_msg "$bad:2:19:"
check replay_missing_arg 1 "$sluicectl" replay --config "$src/config/demo-surge.toml"
expect_line replay_missing_arg_msg "--pcap is required"
check no_subcommand 1 "$sluicectl"
check unknown_command 1 "$sluicectl" --json statuss
expect_line unknown_command_named 'sluicectl: unknown command "statuss"; commands are: status, top, get,'
check help 0 "$sluicectl" replay --help
expect_line help_text "what would this config have done"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
