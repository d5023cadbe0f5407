// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/xdp_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "bpf/shared_state.h"
#include "dataplane/common/flow_table.hpp"
#include "dataplane/common/slot_book.hpp"
#include "dataplane/model/bucket.h"
#include "dataplane/xdp/edge.hpp"
#include "dataplane/xdp/prefix_array.hpp"
#include "dataplane/xdp/slot_tables.hpp"
#include "dataplane/xdp/table_sets.hpp"
#include "dataplane/xdp/xdp_capture.hpp"
#include "sluice_xdp.skel.h"

namespace sluice {
namespace {

constexpr uint32_t kZero = 0;
constexpr std::chrono::microseconds kSlotGrace{1000};

// libbpf reports through a global callback; keep the last lines of a load so
// that a verifier rejection can be quoted in the error.
std::mutex g_log_mutex;
std::string* g_log = nullptr;

int capture_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // One call can carry the whole verifier log: keep its end, where the
  // verifier says what it refused.
  va_list again;
  va_copy(again, args);
  const int n = vsnprintf(nullptr, 0, fmt, again);
  va_end(again);
  if (n <= 0) return 0;
  std::string line(static_cast<std::size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), fmt, args);
  line.pop_back();
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (g_log != nullptr) {
    *g_log += line;
    if (g_log->size() > 8192) g_log->erase(0, g_log->size() - 8192);
  }
  return 0;
}

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// The resolution of bpf_ktime_get_coarse_ns()'s clock (CLOCK_MONOTONIC_COARSE:
// one tick, 4 ms at HZ=250); 0 when unknown or above 100 ms (sl_coarse_tick_ns).
uint64_t coarse_tick_ns() {
  timespec res{};
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0 || res.tv_sec != 0) return 0;
  const auto ns = static_cast<uint64_t>(res.tv_nsec);
  return ns <= 100000000 ? ns : 0;
}

// FNV-1a over the facts that make two builds' pinned maps interchangeable.
constexpr uint64_t fingerprint(std::initializer_list<uint64_t> facts) {
  uint64_t h = 1469598103934665603ULL;
  for (uint64_t f : facts) {
    h ^= f;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

struct XdpProgram::Impl {
  sluice_xdp* skel = nullptr;
  XdpProgramOptions options;
  int ncpus = 1;
  // What each profile slot's tables hold, when this process wrote them: a
  // retune that changes only rates or actions then skips rewriting 64K port
  // masks and every prefix (the common case, and the one that must be fast).
  struct SlotTables {
    bool known = false;
    std::vector<uint32_t> ports;
    std::vector<LpmEntry> src;
    std::vector<LpmEntry> dst;
    uint32_t array_flags = 0;  // SL_PROFILE_*_V4_ARRAY: the prefix arrays hold src / dst
    PrefixArrays arrays;
  };
  SlotTables slots[SL_PROFILE_SLOTS];
  // When the live slot last changed. A program that read sl_active just
  // before a flip may still be reading the old slot for a few microseconds
  // (it runs to completion under RCU); the next write to that slot waits
  // out kSlotGrace so that no packet ever sees a half-written profile.
  std::chrono::steady_clock::time_point last_flip{};

  std::mutex capture_mutex;
  std::unique_ptr<XdpCapture> capture;  // made at the first capture

  ~Impl() {
    capture.reset();  // before the maps it reads go
    if (skel != nullptr) sluice_xdp__destroy(skel);
  }

  int fd(bpf_map* m) const { return bpf_map__fd(m); }

  // The program's clock: CLOCK_MONOTONIC, or the tests' fake one.
  uint64_t now() const {
    uint64_t now_ns = 0;
    if (options.fake_clock) {
      bpf_map_lookup_elem(fd(skel->maps.sl_clock), &kZero, &now_ns);
    } else {
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      now_ns = static_cast<uint64_t>(ts.tv_sec) * SL_NS_PER_SEC + static_cast<uint64_t>(ts.tv_nsec);
    }
    return now_ns;
  }

  // The slot book as the pinned maps hold it (names and counter bases).
  SlotBook read_book() const {
    SlotBook book;
    for (uint32_t i = 0; i < SL_MAX_CLASSES; i++) {
      sl_class_name n{};
      bpf_map_lookup_elem(fd(skel->maps.sl_class_names), &i, &n);
      book.names[i] = std::string(n.name, strnlen(n.name, sizeof(n.name)));
      bpf_map_lookup_elem(fd(skel->maps.sl_counter_base), &i, &book.bases[i]);
    }
    return book;
  }

  bool read_active(sl_active* a) const {
    std::memset(a, 0, sizeof(*a));
    return bpf_map_lookup_elem(fd(skel->maps.sl_active), &kZero, a) == 0;
  }

  sl_counters sum_counters() const {
    const std::size_t size = (sizeof(sl_counters) + 7) & ~std::size_t{7};
    std::vector<uint8_t> buf(size * static_cast<std::size_t>(ncpus));
    sl_counters total{};
    if (bpf_map_lookup_elem(fd(skel->maps.sl_counters), &kZero, buf.data()) != 0) return total;
    auto* out = reinterpret_cast<uint64_t*>(&total);
    const std::size_t words = sizeof(sl_counters) / sizeof(uint64_t);
    for (int cpu = 0; cpu < ncpus; cpu++) {
      const auto* in = reinterpret_cast<const uint64_t*>(buf.data() + size * cpu);
      for (std::size_t w = 0; w < words; w++) out[w] += in[w];
    }
    return total;
  }

  // The IPv4 prefix arrays of a slot, built and written when they fit (else
  // the trie answers IPv4 too); the flags that say which.
  bool write_prefix_arrays(uint32_t slot, const CompiledProfile& profile, SlotTables* tables,
                           std::string* error) {
    const PrefixArray src = build_prefix_array(profile.src_prefixes);
    const PrefixArray dst = build_prefix_array(profile.dst_prefixes);
    if ((src.fits &&
         !xdp_tables::write_prefix_array(fd(skel->maps.sl_prefix_src), slot, src, error)) ||
        (dst.fits &&
         !xdp_tables::write_prefix_array(fd(skel->maps.sl_prefix_dst), slot, dst, error)))
      return false;
    tables->array_flags =
        (src.fits ? SL_PROFILE_SRC_V4_ARRAY : 0) | (dst.fits ? SL_PROFILE_DST_V4_ARRAY : 0);
    tables->arrays = {src.fits, dst.fits, src.groups, dst.groups};
    return true;
  }
};

std::unique_ptr<XdpProgram> XdpProgram::load(const XdpProgramOptions& options, std::string* error) {
  std::unique_ptr<XdpProgram> p(new XdpProgram());
  p->impl_ = std::make_unique<Impl>();
  Impl& impl = *p->impl_;
  impl.options = options;
  impl.ncpus = libbpf_num_possible_cpus();
  if (impl.ncpus <= 0) {
    *error = "cannot count possible CPUs";
    return nullptr;
  }
  if (options.source_cas_tries < 1 || options.source_cas_tries > SL_SOURCE_CAS_TRIES) {
    *error = "source_cas_tries must be 1.." + std::to_string(SL_SOURCE_CAS_TRIES) + ", not " +
             std::to_string(options.source_cas_tries);
    return nullptr;
  }
  if (options.source_cas_retries > SL_SOURCE_CAS_RETRIES) {
    *error = "source_cas_retries must be 0.." + std::to_string(SL_SOURCE_CAS_RETRIES) + ", not " +
             std::to_string(options.source_cas_retries);
    return nullptr;
  }

  std::string log;
  {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log = &log;
  }
  libbpf_set_print(capture_libbpf);
  auto done = [&]() {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log = nullptr;
  };

  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  const std::string pin_dir =
      options.pin_path.empty() ? "" : options.pin_path + "/" + layout_name(options);
  if (!pin_dir.empty()) {
    if (!prepare_pin_dir(pin_dir, error)) {
      done();
      return nullptr;
    }
    open_opts.pin_root_path = pin_dir.c_str();
    std::error_code ec;
    p->adopted_ = std::filesystem::exists(pin_dir + "/sl_state", ec);
  }
  impl.skel = sluice_xdp__open_opts(&open_opts);
  if (impl.skel == nullptr) {
    *error = "cannot open the XDP object: " + errno_text(errno) + "\n" + log;
    done();
    return nullptr;
  }
  impl.skel->rodata->sl_inline = options.inline_mode ? 1 : 0;
  impl.skel->rodata->sl_fake_clock = options.fake_clock ? 1 : 0;
  impl.skel->rodata->sl_record_decision = options.record_decision ? 1 : 0;
  impl.skel->rodata->sl_standby = options.standby ? 1 : 0;
  impl.skel->rodata->sl_coarse_tick_ns = coarse_tick_ns();
  impl.skel->rodata->sl_source_cas_tries = options.source_cas_tries;
  impl.skel->rodata->sl_source_cas_retries = options.source_cas_retries;
  const uint32_t sets = xdp_sets::source_sets(options.source_table_size);
  bpf_map__set_max_entries(impl.skel->maps.sl_sources, sets);
  impl.skel->rodata->sl_source_set_mask = sets - 1;
  const uint32_t flow_sets = xdp_sets::flow_sets(options.flow_table_size);
  bpf_map__set_max_entries(impl.skel->maps.sl_flows, flow_sets * SL_PRIORITIES);
  impl.skel->rodata->sl_flow_set_mask = flow_sets - 1;
  uint64_t salt = 0;
  if (!xdp_sets::salt(pin_dir, &salt, error)) {
    done();
    return nullptr;
  }
  impl.skel->rodata->sl_table_salt_value = salt;
  if (options.pin_path.empty()) {
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, impl.skel->obj) bpf_map__set_pin_path(m, nullptr);
  }
  int err = sluice_xdp__load(impl.skel);
  done();
  if (err != 0) {
    *error = "cannot load the XDP program: " + errno_text(err);
    if (p->adopted_)
      *error += " (maps pinned under " + pin_dir +
                " by an earlier sluiced do not match this build: run sluiced --detach first)";
    *error += "\n" + log;
    return nullptr;
  }
  if (!xdp_sets::keep_salt(impl.fd(impl.skel->maps.sl_table_salt), salt, error)) return nullptr;
  return p;
}

XdpProgram::~XdpProgram() = default;

std::string XdpProgram::layout_name(const XdpProgramOptions& o) {
  const uint64_t h = fingerprint({SL_PIN_LAYOUT_REV,       sizeof(sl_active),
                                  sizeof(sl_profile),      sizeof(sl_lpm_key),
                                  sizeof(sl_shared_state), sizeof(sl_class_name),
                                  sizeof(sl_source_key),   sizeof(sl_source_set),
                                  sizeof(sl_flow_key),     sizeof(sl_flow),
                                  sizeof(sl_counters),     sizeof(sl_counter_base),
                                  sizeof(sl_prefix_block), SL_PREFIX_SLOT_BLOCKS,
                                  SL_PROFILE_SLOTS,        SL_LPM_MAX_ENTRIES,
                                  SL_MAX_CLASSES,          SL_PRIORITIES,
                                  o.source_table_size,     flow_partition_size(o.flow_table_size)});
  char name[32];
  std::snprintf(name, sizeof(name), "layout-%016llx", static_cast<unsigned long long>(h));
  return name;
}

bool XdpProgram::beat(uint64_t timeout_ns, std::string* error) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  sl_heartbeat hb{};
  hb.beat_ns = static_cast<uint64_t>(ts.tv_sec) * SL_NS_PER_SEC + static_cast<uint64_t>(ts.tv_nsec);
  hb.timeout_ns = timeout_ns;
  if (bpf_map_update_elem(impl_->fd(impl_->skel->maps.sl_heartbeat), &kZero, &hb, BPF_ANY) != 0) {
    *error = "cannot write the standby heartbeat: " + errno_text(errno);
    return false;
  }
  return true;
}

uint64_t XdpProgram::standby_takeover_beat() const {
  sl_shared_state state{};
  if (bpf_map_lookup_elem_flags(impl_->fd(impl_->skel->maps.sl_state), &kZero, &state,
                                BPF_F_LOCK) != 0)
    return 0;
  return state.standby_beat_ns;
}

uint64_t XdpProgram::generation() const {
  sl_active a;
  return impl_->read_active(&a) ? a.generation : 0;
}

uint64_t XdpProgram::source_coarse_tick_ns() const {
  return impl_->skel->rodata->sl_coarse_tick_ns;
}

PrefixArrays XdpProgram::prefix_arrays() const {
  sl_active a;
  if (!impl_->read_active(&a) || a.generation == 0) return {};
  const Impl::SlotTables& tables = impl_->slots[a.slot & 1];
  return tables.known ? tables.arrays : PrefixArrays{};
}

uint16_t XdpProgram::credit_cpus() const {
  if (!impl_->options.credits) return 0;
  const int cpus = libbpf_num_possible_cpus();
  return cpus > 0 ? static_cast<uint16_t>(std::min(cpus, 65535)) : 0;
}

bool XdpProgram::prefixes_fit(const CompiledProfile& profile, std::string* error) {
  constexpr std::size_t kPerProfile = SL_LPM_MAX_ENTRIES / 2;
  for (const auto& [side, entries] : {std::pair{"source", &profile.src_prefixes},
                                      std::pair{"destination", &profile.dst_prefixes}}) {
    if (entries->size() <= kPerProfile) continue;
    *error = std::to_string(entries->size()) + " distinct " + side +
             " prefixes; the XDP dataplane holds at most " + std::to_string(kPerProfile) +
             " per direction (its prefix table holds the running profile's and the next one's)";
    return false;
  }
  return true;
}

bool XdpProgram::write_profile(const CompiledProfile& profile, uint64_t generation,
                               std::string* error) {
  // Before anything is written: a profile of more would fill the tries
  // now, and refuse every later write (the live one's and the next one's).
  if (!prefixes_fit(profile, error)) return false;
  Impl& impl = *impl_;
  const auto& maps = impl.skel->maps;
  sl_active active;
  if (!impl.read_active(&active)) {
    *error = "cannot read the active slot: " + errno_text(errno);
    return false;
  }
  const uint32_t live_slot = active.slot & 1;
  const uint32_t target = 1 - live_slot;
  const auto since_flip = std::chrono::steady_clock::now() - impl.last_flip;
  if (since_flip < kSlotGrace) std::this_thread::sleep_for(kSlotGrace - since_flip);

  sl_profile live{};
  if (active.generation != 0) bpf_map_lookup_elem(impl.fd(maps.sl_profiles), &live_slot, &live);
  SlotBook book = impl.read_book();
  SlotAssignment slots;
  if (!book.assign(profile, live, generation, &slots, error)) return false;
  sl_profile next = slots.prof;
  next.credit_cpus = credit_cpus();
  const std::vector<uint32_t>& fresh = slots.fresh;

  // Fill the inactive slot: prefixes, ports, names and counter bases of new
  // slots, then the profile; the flip below makes it live at once.
  Impl::SlotTables& tables = impl.slots[target];
  auto same_lpm = [](const std::vector<LpmEntry>& a, const std::vector<LpmEntry>& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](const LpmEntry& x, const LpmEntry& y) {
             return x.family == y.family && x.len == y.len && x.addr_be == y.addr_be &&
                    x.class_mask == y.class_mask;
           });
  };
  const bool lpm_same = tables.known && same_lpm(tables.src, profile.src_prefixes) &&
                        same_lpm(tables.dst, profile.dst_prefixes);
  const bool ports_same = tables.known && tables.ports == profile.port_mask;
  tables.known = false;  // until every write below has succeeded
  const int src_trie = impl.fd(maps.sl_lpm_src);
  const int dst_trie = impl.fd(maps.sl_lpm_dst);
  if (!lpm_same && (!xdp_tables::clear_lpm_slot(src_trie, target, error) ||
                    !xdp_tables::clear_lpm_slot(dst_trie, target, error) ||
                    !xdp_tables::write_lpm_slot(src_trie, target, profile.src_prefixes, error) ||
                    !xdp_tables::write_lpm_slot(dst_trie, target, profile.dst_prefixes, error) ||
                    !impl.write_prefix_arrays(target, profile, &tables, error)))
    return false;
  next.flags |= tables.array_flags;
  if (!ports_same &&
      !xdp_tables::write_port_masks(impl.fd(maps.sl_ports), target, profile.port_mask, error))
    return false;
  if (bpf_map_update_elem(impl.fd(maps.sl_profiles), &target, &next, BPF_ANY) != 0) {
    *error = "cannot write the profile: " + errno_text(errno);
    return false;
  }
  tables.known = true;
  tables.ports = profile.port_mask;
  tables.src = profile.src_prefixes;
  tables.dst = profile.dst_prefixes;
  sl_active flip{};
  flip.slot = target;
  flip.generation = generation;
  // Counter bases of slots given to new classes are taken just before the
  // flip; their names follow it (names label stats, never decisions), so a
  // failure above leaves every live slot labelled as it was.
  const sl_counters now_counts = impl.sum_counters();
  if (bpf_map_update_elem(impl.fd(maps.sl_active), &kZero, &flip, BPF_ANY) != 0) {
    *error = "cannot switch to the new profile: " + errno_text(errno);
    return false;
  }
  impl.last_flip = std::chrono::steady_clock::now();
  book.give(profile, slots, now_counts);
  bool named = true;
  for (uint32_t c : fresh) {
    const uint32_t idx = next.classes[c].state_index;
    sl_class_name n{};
    const std::string& name = book.names[idx];
    std::memcpy(n.name, name.data(), std::min(name.size(), sizeof(n.name)));  // all 32 kept
    named =
        bpf_map_update_elem(impl.fd(maps.sl_counter_base), &idx, &book.bases[idx], BPF_ANY) == 0 &&
        bpf_map_update_elem(impl.fd(maps.sl_class_names), &idx, &n, BPF_ANY) == 0 && named;
  }
  if (!named) {
    *error = "profile applied, but class names could not be recorded: " + errno_text(errno);
    return false;
  }
  return true;
}

bool XdpProgram::set_tx_ports(int inside_ifindex, int outside_ifindex, std::string* error) {
  const int fd = impl_->fd(impl_->skel->maps.sl_tx);
  const __u32 keys[2] = {0, 1};
  const __u32 values[2] = {static_cast<__u32>(inside_ifindex), static_cast<__u32>(outside_ifindex)};
  for (int i = 0; i < 2; i++) {
    if (bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY) != 0) {
      *error = "cannot set the inline egress ports: " + errno_text(errno);
      return false;
    }
  }
  return true;
}

DataplaneStats XdpProgram::stats() const {
  const Impl& impl = *impl_;
  const auto& maps = impl.skel->maps;
  DataplaneStats s;
  s.mode = "xdp";
  sl_active active;
  if (!impl.read_active(&active) || active.generation == 0) return s;
  s.generation = active.generation;
  const uint32_t slot = active.slot & 1;
  sl_profile prof{};
  if (bpf_map_lookup_elem(impl.fd(maps.sl_profiles), &slot, &prof) != 0) return s;
  sl_shared_state state{};
  bpf_map_lookup_elem_flags(impl.fd(maps.sl_state), &kZero, &state, BPF_F_LOCK);
  const sl_counters counts = impl.sum_counters();
  const uint64_t capacity = xdp_sets::source_ways(impl.options.source_table_size);
  s.source_table_capacity = capacity;
  s.source_table_entries =
      std::min<uint64_t>(counts.source_inserts - counts.source_evictions, capacity);
  s.source_table_evictions = counts.source_evictions;
  s.source_races = counts.source_races;
  s.flow_table_capacity = xdp_sets::flow_ways(impl.options.flow_table_size);
  // The program's clock: the tokens the next decision would find.
  const uint64_t now = impl.now();
  // The flow table's entries from its events (bpf/flows.h): a new entry is
  // created or learned; one leaves when a packet finds it past its life
  // (expired) or a new flow takes its way (evicted, or expired when past
  // its life). Exact and current, where a walk of the table read it all.
  const uint64_t partition_ways = s.flow_table_capacity / SL_PRIORITIES;
  for (uint32_t p = 0; p < SL_PRIORITIES; p++) {
    for (uint32_t e = 0; e < SL_FLOW_EV_COUNT; e++) s.flow_events[p][e] = counts.flow_events[p][e];
    const auto& ev = counts.flow_events[p];
    const uint64_t made = ev[SL_FLOW_EV_CREATED] + ev[SL_FLOW_EV_LEARNED];
    const uint64_t gone = ev[SL_FLOW_EV_EXPIRED] + ev[SL_FLOW_EV_EVICTED];
    s.flow_entries[p] = std::min(made > gone ? made - gone : 0, partition_ways);
  }
  const int boundary_made = state.boundary.epoch == prof.boundary_epoch;
  s.boundary_lookup_tokens =
      sl_bucket_whole_tokens(&state.boundary.lookups, &prof.boundary_lookups, boundary_made, now);
  s.boundary_packet_tokens =
      sl_bucket_whole_tokens(&state.boundary.packets, &prof.boundary_packets, boundary_made, now);
  s.backend = counts.backend;
  s.classes = impl.read_book().class_stats(prof, counts);
  for (uint32_t c = 0; c < s.classes.size(); c++) {
    const sl_class_params& cp = prof.classes[c];
    const sl_class_state& cs = state.classes[cp.state_index & (SL_MAX_CLASSES - 1)];
    const int made = cs.epoch == cp.state_epoch;
    s.classes[c].bucket_tokens = sl_bucket_whole_tokens(&cs.bucket, &cp.bucket, made, now);
    // A state not made yet admits every source, as a fresh one will.
    s.classes[c].sticky_threshold = made ? cs.threshold : SL_RANK_ONE;
  }
  return s;
}

void XdpProgram::set_clock(uint64_t now_ns) {
  bpf_map_update_elem(impl_->fd(impl_->skel->maps.sl_clock), &kZero, &now_ns, BPF_ANY);
}

bool XdpProgram::test_run(const std::vector<uint8_t>& frame, XdpTestResult* out, std::string* error,
                          uint32_t repeat, uint64_t* duration_ns) {
  std::vector<uint8_t> in = frame;
  std::vector<uint8_t> buf(frame.size() + 512);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = in.data(), .data_out = buf.data(),
              .data_size_in = static_cast<__u32>(in.size()),
              .data_size_out = static_cast<__u32>(buf.size()), .repeat = static_cast<int>(repeat));
  if (bpf_prog_test_run_opts(outside_prog_fd(), &run) != 0) {
    *error = "BPF_PROG_TEST_RUN failed: " + errno_text(errno);
    return false;
  }
  out->action = static_cast<int>(run.retval);
  out->frame.assign(buf.begin(), buf.begin() + run.data_size_out);
  if (duration_ns != nullptr) *duration_ns = run.duration;
  if (impl_->options.record_decision)
    bpf_map_lookup_elem(impl_->fd(impl_->skel->maps.sl_last), &kZero, &out->decision);
  return true;
}

bool XdpProgram::test_run_inside(const std::vector<uint8_t>& frame, XdpTestResult* out,
                                 std::string* error) {
  std::vector<uint8_t> in = frame;
  std::vector<uint8_t> buf(frame.size() + 512);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = in.data(), .data_out = buf.data(),
              .data_size_in = static_cast<__u32>(in.size()),
              .data_size_out = static_cast<__u32>(buf.size()), .repeat = 1);
  if (bpf_prog_test_run_opts(inside_prog_fd(), &run) != 0) {
    *error = "BPF_PROG_TEST_RUN (inside) failed: " + errno_text(errno);
    return false;
  }
  out->action = static_cast<int>(run.retval);
  out->frame.assign(buf.begin(), buf.begin() + run.data_size_out);
  return true;
}

int XdpProgram::outside_prog_fd() const {
  return bpf_program__fd(impl_->skel->progs.sl_xdp_outside);
}

int XdpProgram::inside_prog_fd() const { return bpf_program__fd(impl_->skel->progs.sl_xdp_inside); }

bool XdpProgram::capture_start(const CaptureFilter& filter, std::string* error) {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.capture_mutex);
  if (!impl.capture)
    impl.capture = std::make_unique<XdpCapture>(
        impl.fd(impl.skel->maps.sl_capture_cfg), impl.fd(impl.skel->maps.sl_capture_ring),
        impl.fd(impl.skel->maps.sl_capture_lost), [&impl] { return impl.now(); });
  sl_profile live{};
  sl_active active;
  if (impl.read_active(&active) && active.generation != 0) {
    const uint32_t slot = active.slot & 1;
    bpf_map_lookup_elem(impl.fd(impl.skel->maps.sl_profiles), &slot, &live);
  }
  const SlotBook book = impl.read_book();
  return impl.capture->start(filter, book.names, book.slot_of(live, filter.class_name), error);
}

void XdpProgram::capture_read(std::vector<CaptureRecord>* out, uint64_t* lost, int timeout_ms) {
  std::lock_guard<std::mutex> lock(impl_->capture_mutex);
  if (impl_->capture) impl_->capture->read(out, lost, timeout_ms);
}

void XdpProgram::capture_stop() {
  std::lock_guard<std::mutex> lock(impl_->capture_mutex);
  if (impl_->capture) impl_->capture->stop();
}

uint32_t XdpProgram::verified_insns() const {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(outside_prog_fd(), &info, &len) != 0) return 0;
  return info.verified_insns;
}

}  // namespace sluice
