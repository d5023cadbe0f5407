// SPDX-License-Identifier: Apache-2.0
#include "control/config/schema.hpp"

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "dataplane/model/abi.h"

namespace sluice {

const std::vector<KeySpec>& config_schema() {
  // table, name, type, min, max (min > max: no range), unit, default,
  // change, words, doc
  static const std::vector<KeySpec> rows = {
      {"dataplane", "mode", "string", 1, 0, "", "`\"auto\"`", KeyChange::restart, "auto|dpdk|xdp",
       "`\"auto\"`: DPDK when built and usable, else XDP"},
      {"dataplane", "outside", "string", 1, 0, "", "none", KeyChange::restart, "",
       "client side: an interface name (xdp, and auto's XDP fallback: at most 15 bytes, no `/`, "
       "`:` or blank); for dpdk a "
       "device name (PCI address, or a vdev given "
       "in `dpdk_args`) or a vdev spec sluice creates, e.g. `\"net_af_packet0,iface=eth1\"` (its "
       "`iface=` an interface name as above, in every mode; mode `auto` falling back to XDP "
       "uses it)"},
      {"dataplane", "inside", "string", 1, 0, "", "none", KeyChange::restart, "",
       "server side, same forms as `outside`; omit for host mode (xdp only: dpdk is always "
       "inline)"},
      {"dataplane", "xdp_attach", "string", 1, 0, "", "`\"native\"`", KeyChange::restart,
       "native|generic",
       "how XDP attaches; `\"generic\"` (skb mode) works on any interface, slower; a restart "
       "that changes it re-attaches the links (between detach and attach, frames meet no "
       "program)"},
      {"dataplane", "dpdk_args", "array of strings", 1, 0, "",
       "`[\"--no-huge\", \"--no-pci\", \"-m\", \"512\"]`", KeyChange::restart, "",
       "EAL arguments; without `-l`/`-c`/`--lcores` sluiced pins one CPU per worker, without "
       "`--file-prefix`/`--in-memory`/`--no-shconf` it adds `--no-shconf` (each as the EAL takes "
       "it: a long option by a prefix such as `--lcore=`, `-l` ending a bundle such as `-vl`). "
       "With real NICs and "
       "hugepages drop `--no-huge --no-pci` (see architecture.md, \"Production\"). `-m` must also "
       "hold the prefix tables, twice during a retune (old and new profile): per direction "
       "(source, destination) with IPv4 prefixes 16-64 MB, with IPv6 prefixes 64 MB plus 1 KB per "
       "256-address group under prefixes longer than /24 (`dataplane/dpdk/fib.hpp`). "
       "When the config starts DPDK (mode `dpdk`, or `auto` with a DPDK port), "
       "`--check-config` has the EAL parse them (in a child process that stops before any "
       "device) and names what it refuses, an option that would print the EAL's usage and end "
       "sluiced (`-vh`, say) too; how options go together (`--socket-mem` with `--no-huge`) only "
       "a start checks. `--`, `-h`, `--help` and empty strings are refused in every mode"},
      {"dataplane", "pin_path", "string", 1, 0, "", "`\"/sys/fs/bpf/sluice\"`", KeyChange::restart,
       "",
       "absolute bpffs directory for the XDP program's pinned links, maps (in a `layout-...` "
       "subdirectory per pinned layout) and the edge record; they outlive sluiced, a restart "
       "adopts them, `sluiced --detach --all` removes them"},
      {"dataplane", "when_stopped", "string", 1, 0, "", "`\"forward\"`", KeyChange::restart,
       "forward|block",
       "inline only: what the edge does while no sluice program enforces (before the first start "
       "with `sluiced --install-passthrough`, after `sluiced --detach`, after a failed first "
       "start): `\"forward\"` bridges every frame unfiltered, `\"block\"` drops every frame. Read "
       "by those commands from the file at the time they run. See architecture.md, \"Failure "
       "states\""},
      {"dataplane", "dpdk_workers", "integer", 1, 64, "", "1", KeyChange::restart, "",
       "worker lcores polling the ports (flows spread across them by RSS); one allowed CPU each "
       "unless `dpdk_args` pins lcores itself"},
      {"dataplane", "dpdk_mbufs", "integer", 1023, 16777215, "", "16383", KeyChange::restart, "",
       "mbufs in the packet pool shared by every port, ring and queue (a size of 2^n − 1 suits the "
       "mempool best); sluiced refuses to start with fewer than the ports' descriptors and caches "
       "take (about 4,400 per worker)"},
      {"dataplane", "dpdk_queue_size", "integer", 64, 65536, "packets", "1024", KeyChange::restart,
       "", "a power of two; packets each priority queue of each worker holds"},
      {"dataplane", "dpdk_idle_sleep_us", "integer", 0, 10000, "µs", "0", KeyChange::restart, "",
       "how long a worker sleeps after a poll that found nothing (0 = busy poll: lowest latency, "
       "one core per worker at 100%)"},
      {"dataplane", "dpdk_clock", "string", 1, 0, "", "`\"tsc\"`", KeyChange::restart,
       "tsc|capture",
       "the model's clock; `\"capture\"` takes it from each packet's capture timestamp on a "
       "net_pcap outside port (µs resolution), and from the TSC otherwise"},
      {"dataplane", "dpdk_standby", "string", 1, 0, "", "`\"xdp\"`", KeyChange::restart, "xdp|none",
       "with af_packet ports on kernel interfaces, `\"xdp\"` stands the XDP program by on those "
       "interfaces; it takes over within 250 ms of the DPDK process stopping or dying "
       "(architecture.md, \"When DPDK stops\")"},
      {"boundary", "lookups_per_sec", "integer", 1, static_cast<int64_t>(SL_MAX_RATE_PER_SEC),
       "lookups/s", "absent = no lookup budget", KeyChange::live, "", ""},
      {"boundary", "lookups_burst", "integer", 1, static_cast<int64_t>(SL_MAX_BURST), "lookups",
       "max(1, lookups_per_sec / 10)", KeyChange::live, "", "needs `lookups_per_sec`"},
      {"boundary", "packets_per_sec", "integer", 1, static_cast<int64_t>(SL_MAX_RATE_PER_SEC),
       "packets/s", "absent = no packet budget", KeyChange::live, "", ""},
      {"boundary", "packets_burst", "integer", 1, static_cast<int64_t>(SL_MAX_BURST), "packets",
       "max(1, packets_per_sec / 10)", KeyChange::live, "", "needs `packets_per_sec`"},
      {"boundary", "adaptive", "boolean", 1, 0, "", "`false`", KeyChange::live, "",
       "inline only: `lookups_per_sec` becomes the ceiling and sluice sets the lookup rate "
       "itself, down to `adaptive_min_per_sec`, from the backend's answers (see [Adaptive "
       "boundary](#adaptive-boundary)); turning it off keeps the rate it had learned as "
       "`lookups_per_sec`"},
      {"boundary", "adaptive_min_per_sec", "integer", 1, static_cast<int64_t>(SL_MAX_RATE_PER_SEC),
       "lookups/s", "max(1, lookups_per_sec / 10)", KeyChange::live, "",
       "the adaptive rate's floor; at most `lookups_per_sec`"},
      {"boundary", "max_queue_delay_us", "integer", 1, 10000000, "µs", "5000", KeyChange::live, "",
       "DPDK priority queues only"},
      {"boundary", "lookups_reserve_pct", "8 integers", 0, 99, "% of burst",
       "`[0, 6, 12, 18, 25, 31, 37, 43]`", KeyChange::live, "",
       "one per priority, non-decreasing; see below"},
      {"boundary", "packets_reserve_pct", "8 integers", 0, 99, "% of burst",
       "`[6, 12, 18, 25, 31, 37, 43, 50]`", KeyChange::live, "",
       "one per priority, non-decreasing; see below"},
      {"admission", "shadow", "boolean", 1, 0, "", "`false`", KeyChange::live, "",
       "classify and count, but admit everything"},
      {"admission", "malformed", "string", 1, 0, "", "`\"drop\"`", KeyChange::live, "drop|pass",
       "packets the parser rejects"},
      {"admission", "sticky_epoch_sec", "integer", 1, 86400, "s", "60", KeyChange::live, "",
       "how long a source keeps its sticky rank; every source turns over at the same time"},
      {"admission", "sticky_window_ms", "integer", 1, 60000, "ms", "100", KeyChange::live, "",
       "less than `sticky_epoch_sec` × 1000"},
      {"admission", "source_table_size", "integer", SL_SOURCES_MIN, SL_SOURCES_MAX, "entries",
       "65536", KeyChange::restart, "",
       "the sources the per-source table holds, least recently used recycled first (DPDK "
       "and XDP: sets of 4 ways, 2-4 ways per entry, which their capacity metric counts; a "
       "source seen once is recycled before one that came back and still owes tokens or "
       "sent in the last second); part of the pinned layout (a change starts fresh maps)"},
      {"admission", "seed", "integer", 0, INT64_MAX, "",
       "random, made at the first start and kept in `$STATE_DIRECTORY/seed` "
       "(`/var/lib/sluice/seed`)",
       KeyChange::live, "",
       "salt of the sticky ranks: whoever knows it can predict them. Set the same value on "
       "every edge of a fleet (or copy the seed file) so that a source ranks alike everywhere"},
      {"admission", "unverified", "string", 1, 0, "", "`\"charge\"`", KeyChange::live,
       "charge|drop|pass",
       "packets that start no lookup and continue no flow the edge saw begin (see [Flow "
       "state](#flow-state)); `\"pass\"` keeps no flow state (without `boundary.adaptive`)"},
      {"admission", "flow_table_size", "integer", SL_FLOWS_MIN, SL_FLOWS_MAX, "entries", "262144",
       KeyChange::restart, "",
       "TCP flows and fragment entries, all priorities together: each of the 8 priority partitions "
       "holds `flow_table_size / 8` (rounded down); part of the pinned layout"},
      {"admission", "flow_idle_tcp_sec", "integer", 10, 604800, "s", "300", KeyChange::live, "",
       "an open TCP flow is forgotten this long after its last packet from the outside; applies to "
       "an entry when it is next refreshed"},
      {"admission", "flow_learn_sec", "integer", 0, 3600, "s", "10", KeyChange::live, "",
       "learning window after a start with an empty flow table; 0 disables it. The window's end is "
       "fixed when it opens"},
      {"admission", "flow_packets_per_sec", "integer", 0, 200000, "packets/s", "1000",
       KeyChange::live, "",
       "a verified flow's packets from the outside rank above every lookup up to this rate; past "
       "it they rank as their class's lookups for the packet budget (see [Flow "
       "state](#flow-state)); 0: no limit. Counted per flow in windows of 16.8 ms (2^24 ns), "
       "rounded up to whole packets per window (17 at 1000/s)"},
      {"metrics", "listen", "string", 1, 0, "", "`\"127.0.0.1:9109\"`", KeyChange::restart, "",
       "`\"IPv4:PORT\"` or `\"[IPv6]:PORT\"`, a literal address (`[::]` for every address of "
       "both families), port 1..65535"},
      {"control", "socket", "string", 1, 0, "", "`\"/run/sluice/control.sock\"`",
       KeyChange::restart, "",
       "absolute path, at most 107 bytes (a Unix socket path); the JSON-lines control API "
       "(docs/control-api.md)"},
      {"control", "socket_mode", "string", 1, 0, "", "`\"0660\"`", KeyChange::restart, "",
       "octal permission bits of the socket; the owner must have rw, others nothing: the "
       "permissions are the access control"},
      {"control", "socket_group", "string", 1, 0, "", "none", KeyChange::restart, "",
       "group that owns the socket (members may retune)"},
      {"control", "http_listen", "string", 1, 0, "", "none", KeyChange::restart, "",
       "optional HTTP listener for the same API, loopback only: `\"127.0.0.1:PORT\"` or "
       "`\"[::1]:PORT\"`; requires `http_token_file`"},
      {"control", "http_token_file", "string", 1, 0, "", "none", KeyChange::restart, "",
       "absolute path of a file whose first line is the bearer token (at least 16 characters)"},
      {"control", "audit_log", "string", 1, 0, "", "`\"/var/log/sluice/audit.jsonl\"`",
       KeyChange::restart, "", "absolute path; one JSON line per applied change"},
      {"control", "history", "integer", 1, 1000, "generations", "32", KeyChange::restart, "",
       "kept for rollback"},
      {"fleet", "etcd", "array of strings", 1, 0, "", "required", KeyChange::restart, "",
       "etcd client URLs, `\"http://HOST:PORT\"` or `\"https://HOST:PORT\"` (all alike) with a "
       "name or an IPv4 address (several for a cluster: tried in order); see docs/fleet.md"},
      {"fleet", "etcd_ca_file", "string", 1, 0, "", "the system's CAs", KeyChange::restart, "",
       "https endpoints: absolute path of the PEM file of the CAs etcd's server certificates "
       "chain to; the name in the URL must be in the certificate"},
      {"fleet", "etcd_cert_file", "string", 1, 0, "", "none", KeyChange::restart, "",
       "https endpoints: absolute path of this edge's PEM client certificate (etcd "
       "`--client-cert-auth`); with `etcd_key_file`"},
      {"fleet", "etcd_key_file", "string", 1, 0, "", "none", KeyChange::restart, "",
       "absolute path of the PEM private key of `etcd_cert_file`"},
      {"fleet", "etcd_user", "string", 1, 0, "", "none", KeyChange::restart, "",
       "etcd user (etcd's auth enabled); with `etcd_password_file`; over `http://` only to "
       "loopback endpoints (the password would cross the network in clear)"},
      {"fleet", "etcd_password_file", "string", 1, 0, "", "none", KeyChange::restart, "",
       "absolute path of a file whose first line is `etcd_user`'s password (read at each "
       "authentication)"},
      {"fleet", "prefix", "string", 1, 0, "", "`\"/sluice\"`", KeyChange::restart, "",
       "every key of this fleet lives under it: starts with `/`, no trailing `/`, at most 128 "
       "bytes of `a-z A-Z 0-9 _ - . /`"},
      {"fleet", "node", "string", 1, 0, "", "required", KeyChange::restart, "",
       "this edge's name, unique in the fleet: 1..64 characters of `a-z 0-9 _ - .`"},
      {"fleet", "lease_ttl_sec", "integer", 1, 60, "s", "3", KeyChange::restart, "",
       "the edge's record (its demand) lives this long in etcd after its last keepalive"},
      {"fleet", "static_sec", "integer", 1, 3600, "s", "60", KeyChange::restart, "",
       "etcd unreachable this long: the edge falls from its last shares to an even 1/N share; an "
       "edge gone this long: the others stop counting its share"},
      {"fleet", "sync_ms", "integer", 50, 5000, "ms", "250", KeyChange::restart, "",
       "how often the edge publishes its demand, keeps its lease alive and recomputes its shares; "
       "at most half of `lease_ttl_sec`"},
      {"fleet", "floor_pct", "integer", 0, 50, "% of budget", "10", KeyChange::restart, "",
       "part of every fleet budget split evenly across the edges, so that an idle edge admits a "
       "first burst; the rest follows demand, priority first"},
      {"class", "name", "string", 1, 0, "", "required", KeyChange::live, "",
       "1..32 characters of `a-z 0-9 _ -` (SL_CLASS_NAME_MAX); unique"},
      {"class", "priority", "integer", 0, SL_PRIORITIES - 1, "", "4", KeyChange::live, "",
       "0 (highest) .. 7 (lowest)"},
      {"class", "match", "inline table", 1, 0, "", "matches all", KeyChange::live, "", "see below"},
      {"class", "rate_per_sec", "integer", 1, static_cast<int64_t>(SL_MAX_RATE_PER_SEC),
       "lookups/s", "absent = no class budget", KeyChange::live, "",
       "lookups are new requests (TCP SYN, UDP datagram, ICMP echo request), and unverified "
       "packets under `unverified = \"charge\"`; verified continuations are never charged"},
      {"class", "burst", "integer", 1, static_cast<int64_t>(SL_MAX_BURST), "lookups",
       "max(1, rate_per_sec / 10)", KeyChange::live, "", "needs `rate_per_sec`"},
      {"class", "on_shed", "string", 1, 0, "", "`\"drop\"`", KeyChange::live, "drop|reset|mark",
       "`\"reset\"`: a TCP SYN is answered with RST+ACK, anything else dropped. Every shed "
       "SYN gets its RST, with no budget of its own: a SYN flood spoofing other hosts' "
       "addresses is reflected to them one RST per SYN (no larger), so answer with resets only "
       "for classes whose sources cannot be spoofed from outside (or accept the reflection); "
       "`\"mark\"`: passed "
       "with its DSCP rewritten (a marked SYN verifies no flow: it paid no token, so the "
       "connection's later packets are unverified: charged as lookups of the class, and marked "
       "while it sheds; dropped under `unverified = \"drop\"`). Marked packets cross the "
       "boundary on no budget (not even `packets_per_sec`): a flood spoofing the class's "
       "sources passes whole, so mark only where the network behind the edge drops that DSCP "
       "first"},
      {"class", "mark_dscp", "integer", 0, 63, "", "none", KeyChange::live, "",
       "required with `on_shed = \"mark\"`, an error otherwise"},
      {"class", "shed_order", "string", 1, 0, "", "`\"sticky\"`", KeyChange::live, "sticky|random",
       "`\"sticky\"`: the same sources are shed for a whole epoch (`sticky_epoch_sec` long); "
       "the sources at the threshold take what the others leave, so "
       "the budgets stay used, also when clients retry a shed lookup at once (the threshold "
       "takes a few seconds to settle; docs/architecture.md, \"Retrying clients\"). "
       "`\"random\"`: every "
       "lookup has the "
       "same chance, e.g. for a class of a few sources that should all get some "
       "(docs/architecture.md)"},
      {"class", "per_source", "inline table", 1, 0, "", "none", KeyChange::live, "", "see below"},
      {"class.match", "src", "string or list of strings", 1, 0, "", "any", KeyChange::live, "",
       "`\"198.18.10.0/24\"`, `\"2001:2:0:10::/64\"`, or an address alone (= /32 or /128); length "
       "0..32 or 0..128; no bits set beyond the length (the error says the canonical prefix)"},
      {"class.match", "dst", "string or list of strings", 1, 0, "", "any", KeyChange::live, "",
       "as `src`"},
      {"class.match", "proto", "string, integer, or list", 0, 255, "", "any", KeyChange::live, "",
       "`\"tcp\"` (6), `\"udp\"` (17), `\"icmp\"` (1 **and** 58), `\"icmpv6\"` (58), or a protocol "
       "number"},
      {"class.match", "dst_ports", "integer, string, or list", 0, 65535, "", "any", KeyChange::live,
       "",
       "`443`, `\"443\"`, `\"8000-8100\"` (LO <= HI); if `proto` is given it must contain only tcp "
       "and/or udp"},
      {"class.match", "dscp", "integer or list", 0, 63, "", "any", KeyChange::live, "", ""},
      {"class.per_source", "rate_per_sec", "integer", 1, static_cast<int64_t>(SL_MAX_RATE_PER_SEC),
       "lookups/s", "required", KeyChange::live, "", ""},
      {"class.per_source", "burst", "integer", 1, static_cast<int64_t>(SL_MAX_BURST), "lookups",
       "max(1, rate_per_sec)", KeyChange::live, "", ""},
      {"class.per_source", "prefix_v4", "integer", 1, 32, "bits", "32", KeyChange::live, "",
       "sources are keyed by this prefix of their IPv4 address"},
      {"class.per_source", "prefix_v6", "integer", 1, 128, "bits", "64", KeyChange::live, "",
       "sources are keyed by this prefix of their IPv6 address"},
  };
  return rows;
}

const KeySpec* find_key(std::string_view table, std::string_view name) {
  for (const KeySpec& k : config_schema())
    if (k.table == table && k.name == name) return &k;
  return nullptr;
}

const KeySpec& key_spec(std::string_view table, std::string_view name) {
  const KeySpec* k = find_key(table, name);
  if (k == nullptr) {
    std::fprintf(stderr, "config schema: no key %.*s.%.*s\n", static_cast<int>(table.size()),
                 table.data(), static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return *k;
}

std::vector<std::string_view> keys_of(std::string_view table) {
  std::vector<std::string_view> out;
  for (const KeySpec& k : config_schema())
    if (k.table == table) out.push_back(k.name);
  return out;
}

std::vector<std::string_view> words_of(const KeySpec& spec) {
  std::vector<std::string_view> out;
  std::string_view rest = spec.words;
  while (!rest.empty()) {
    const std::size_t bar = rest.find('|');
    out.push_back(rest.substr(0, bar));
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  }
  return out;
}

bool is_restart_only_key(std::string_view dotted) {
  const std::size_t dot = dotted.find('.');
  if (dot == std::string_view::npos) return false;
  const KeySpec* k = find_key(dotted.substr(0, dot), dotted.substr(dot + 1));
  return k != nullptr && k->change == KeyChange::restart;
}

std::vector<std::string_view> schema_tables() {
  std::vector<std::string_view> out;
  for (const KeySpec& k : config_schema())
    if (out.empty() || out.back() != k.table) out.push_back(k.table);
  return out;
}

std::string schema_markdown(std::string_view table) {
  std::string out = "| key | type | unit | default | change | rules |\n|---|---|---|---|---|---|\n";
  for (const KeySpec& k : config_schema()) {
    if (k.table != table) continue;
    std::string rules;
    if (k.min <= k.max)
      rules = k.max == INT64_MAX ? ">= " + std::to_string(k.min)
                                 : std::to_string(k.min) + ".." + std::to_string(k.max);
    if (!k.words.empty()) {
      const std::vector<std::string_view> words = words_of(k);
      for (std::size_t i = 0; i < words.size(); i++) {
        rules += i == 0 ? "" : (i + 1 == words.size() ? " or " : ", ");
        rules += "`\"" + std::string(words[i]) + "\"`";
      }
    }
    if (!k.doc.empty()) rules += (rules.empty() ? "" : "; ") + std::string(k.doc);
    out += "| `" + std::string(k.name) + "` | " + std::string(k.type) + " | " +
           std::string(k.unit) + " | " + std::string(k.default_text) + " | " +
           (k.change == KeyChange::live ? "live" : "restart") + " | " + rules + " |\n";
  }
  return out;
}

}  // namespace sluice
