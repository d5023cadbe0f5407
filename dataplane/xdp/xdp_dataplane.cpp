// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/xdp_dataplane.hpp"

#include <bpf/bpf.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "dataplane/xdp/edge.hpp"

namespace sluice {
namespace {

uint32_t prog_id(int prog_fd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 ? info.id : 0;
}

// The program the pinned link holds now (0: no link).
uint32_t link_prog_id(const std::string& pin_path, const std::string& which) {
  const int fd = bpf_obj_get((pin_path + "/link_" + which).c_str());
  if (fd < 0) return 0;
  bpf_link_info info{};
  __u32 len = sizeof(info);
  const uint32_t id = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.prog_id : 0;
  close(fd);
  return id;
}

// Map pins of the layout before pins were versioned (directly under pin_path).
constexpr const char* kUnversionedPins[] = {
    "sl_active",      "sl_profiles", "sl_ports", "sl_lpm_src",  "sl_lpm_dst",     "sl_state",
    "sl_class_names", "sl_sources",  "sl_flows", "sl_counters", "sl_counter_base"};
// Map pins that versioned layouts added since.
constexpr const char* kLaterPins[] = {"sl_source_locks", "sl_prefix_src", "sl_prefix_dst",
                                      "sl_source_salt", "sl_table_salt"};

// Removes the map pins of layout `name` (a directory under pin_path).
bool remove_layout(const std::string& pin_path, const std::string& name, std::string* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  bool ok = true;
  const fs::path dir = fs::path(pin_path) / name;
  if (!fs::is_directory(dir, ec)) return true;
  auto remove = [&](const fs::path& pin) {
    if (fs::exists(pin, ec) && !fs::remove(pin, ec)) {
      *report += "cannot remove " + pin.string() + ": " + ec.message() + "\n";
      ok = false;
    }
  };
  // Only sluice's own pins: pin_path may be shared with other tools' pins.
  for (const char* pin : kUnversionedPins) remove(dir / pin);
  for (const char* pin : kLaterPins) remove(dir / pin);
  fs::remove(dir, ec);  // only if now empty
  *report += "removed the maps of " + name + "\n";
  return ok;
}

// Removes the map pins of every layout but `keep` (empty: all of them), and
// those of the layout before pins were versioned.
bool remove_layouts(const std::string& pin_path, const std::string& keep, std::string* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  bool ok = true;
  auto remove = [&](const fs::path& pin) {
    if (fs::exists(pin, ec) && !fs::remove(pin, ec)) {
      *report += "cannot remove " + pin.string() + ": " + ec.message() + "\n";
      ok = false;
    }
  };
  for (const char* name : kUnversionedPins) remove(fs::path(pin_path) / name);
  for (const fs::directory_entry& d : fs::directory_iterator(pin_path, ec)) {
    const std::string name = d.path().filename().string();
    if (!d.is_directory(ec) || name.rfind("layout-", 0) != 0 || name == keep) continue;
    ok = remove_layout(pin_path, name, report) && ok;
  }
  return ok;
}

// The generation an earlier release's program enforces from unversioned pins
// (before the edge record existed): sl_active has kept its layout.
uint64_t unversioned_generation(const std::string& pin_path) {
  const int fd = bpf_obj_get((pin_path + "/sl_active").c_str());
  if (fd < 0) return 0;
  bpf_map_info info{};
  __u32 len = sizeof(info);
  sl_active active{};
  const uint32_t key = 0;
  const bool ok = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                  info.value_size == sizeof(sl_active) &&
                  bpf_map_lookup_elem(fd, &key, &active) == 0;
  close(fd);
  return ok ? active.generation : 0;
}

}  // namespace

XdpDataplane::XdpDataplane(DataplaneSettings settings, bool standby)
    : settings_(std::move(settings)), standby_(standby) {}

XdpDataplane::~XdpDataplane() = default;

bool XdpDataplane::fail(const std::string& why, std::string* error) {
  const bool ours_on_links = program_ && link_prog_id(settings_.pin_path, "outside") ==
                                             prog_id(program_->outside_prog_fd());
  program_.reset();
  // Maps this start made in a layout of their own (the one enforcing is
  // another's) that no link runs: they go. Left, the next start adopted
  // them and enforced, until it wrote its own, a profile that never ran.
  if (!made_layout_.empty() && !ours_on_links) {
    std::string report;
    remove_layout(settings_.pin_path, made_layout_, &report);
  }
  made_layout_.clear();
  *error = why;
  // A start that found nothing at pin_path and attached nothing (another
  // program holds the interfaces, say) leaves nothing there either: its
  // maps and record outlived it, and a later --detach called them an
  // incomplete edge. Its pass-through, if it installs one below, pins anew.
  const bool leave_nothing = fresh_ && edge_link_state(settings_.pin_path) == EdgeState::none;
  auto clean = [this] {
    std::string report;
    remove_layouts(settings_.pin_path, "", &report);
    std::error_code ec;
    std::filesystem::remove(settings_.pin_path + "/sl_edge", ec);
    std::filesystem::remove(settings_.pin_path, ec);  // only if now empty
  };
  if (leave_nothing) clean();
  EdgeRecord record;
  auto note_failure = [&] {  // in the record, for sluicectl status while no sluiced runs
    std::string ignored;
    read_edge_record(settings_.pin_path, &record, &ignored);
    record.last_failure = why;
    record.last_failure_unix_ns = unix_now_ns();
    write_edge_record(settings_.pin_path, record, &ignored);
  };
  if (!leave_nothing) note_failure();
  if (settings_.inside.empty()) return false;
  if (edge_link_state(settings_.pin_path) == EdgeState::enforcing) {
    *error += " (the program already on the links keeps enforcing generation " +
              std::to_string(record.generation) + ")";
    return false;
  }
  // Nothing enforces: the edge must not stay dark because this start failed.
  std::string report;
  if (install_passthrough(settings_, &report)) {
    if (leave_nothing) note_failure();  // the pass-through's pins are there now
    *error += std::string(" (when_stopped = \"") +
              (settings_.when_stopped == WhenStopped::block ? "block" : "forward") +
              "\": " + report.substr(0, report.find('\n')) + ")";
  } else {
    if (leave_nothing && edge_link_state(settings_.pin_path) == EdgeState::none) clean();
    *error +=
        " (and the pass-through could not be installed: " + report.substr(0, report.find('\n')) +
        "; the links hold what they held: " + edge_state_name(edge_link_state(settings_.pin_path)) +
        ")";
  }
  return false;
}

bool XdpDataplane::start(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  std::error_code ec;
  fresh_ = !std::filesystem::exists(settings_.pin_path, ec);
  std::string too_many;  // before the links are touched: what holds them keeps running
  if (!XdpProgram::prefixes_fit(profile, &too_many)) return fail(too_many, error);
  const int outside = static_cast<int>(if_nametoindex(settings_.outside.c_str()));
  if (outside == 0)
    return fail("dataplane.outside: no interface named \"" + settings_.outside + "\"", error);
  int inside = 0;
  if (!settings_.inside.empty()) {
    inside = static_cast<int>(if_nametoindex(settings_.inside.c_str()));
    if (inside == 0)
      return fail("dataplane.inside: no interface named \"" + settings_.inside + "\"", error);
  }
  XdpProgramOptions options;
  options.inline_mode = inside != 0;
  options.standby = standby_;
  options.pin_path = settings_.pin_path;
  options.source_table_size = settings_.source_table_size;
  options.flow_table_size = settings_.flow_table_size;
  std::string why;
  // Loading and verifying takes a second or two: whatever holds the links
  // now (an earlier sluiced's program, another layout's, the pass-through)
  // keeps running meanwhile.
  program_ = XdpProgram::load(options, &why);
  if (!program_) return fail(why, error);
  made_layout_ = program_->adopted() ? "" : XdpProgram::layout_name(options);

  // The return path's ports are this program's own (not pinned): set before
  // the links. The profile: fresh maps get it before the links, so that from
  // its first frame our program enforces it (nothing running reads them
  // yet). Adopted maps are shared with the program on the links now: they
  // get it once every link holds ours, so that a start whose links fail
  // leaves that program enforcing what it did; until then ours enforces
  // the adopted profile, which is that one. An adopted state (or the
  // record of an earlier layout) continues its generation numbering.
  if (inside != 0 && !program_->set_tx_ports(inside, outside, &why)) return fail(why, error);
  EdgeRecord record;
  std::string ignored;
  if (!read_edge_record(settings_.pin_path, &record, &ignored))
    record.generation = unversioned_generation(settings_.pin_path);
  const uint64_t gen = std::max({generation, program_->generation() + 1, record.generation + 1});
  const bool adopted = program_->adopted();
  if (!adopted && !program_->write_profile(profile, gen, &why)) return fail(why, error);
  std::vector<LinkWant> links = {{"outside", outside, program_->outside_prog_fd()}};
  if (inside != 0) links.push_back({"inside", inside, program_->inside_prog_fd()});
  if (!attach_pinned_links(settings_, links, &why)) return fail(why, error);
  if (adopted && !program_->write_profile(profile, gen, &why)) return fail(why, error);
  if (inside == 0) {
    // Host mode now: a return-path link left by an inline config must go.
    std::string report;
    remove_pinned_link(settings_.pin_path, "inside", &report);
  }
  outside_prog_id_ = prog_id(program_->outside_prog_fd());
  // The links no longer hold another layout's program: its maps can go.
  std::string report;
  remove_layouts(settings_.pin_path, XdpProgram::layout_name(options), &report);

  if (record.state != EdgeState::enforcing) record.since_unix_ns = unix_now_ns();
  record.state = EdgeState::enforcing;
  record.generation = gen;
  record.pid = static_cast<int32_t>(getpid());
  record.attended = true;
  record.layout = XdpProgram::layout_name(options);
  record.last_failure.clear();
  record.last_failure_unix_ns = 0;
  write_edge_record(settings_.pin_path, record, &ignored);
  return true;
}

bool XdpDataplane::apply(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  if (!program_) {
    *error = "the XDP dataplane is not started";
    return false;
  }
  if (!program_->write_profile(profile, generation, error)) return false;
  // The record keeps the generation the links enforce, for the next sluiced.
  EdgeRecord record;
  std::string ignored;
  if (read_edge_record(settings_.pin_path, &record, &ignored)) {
    record.generation = generation;
    write_edge_record(settings_.pin_path, record, &ignored);
  }
  return true;
}

DataplaneStats XdpDataplane::stats() const {
  DataplaneStats s = program_ ? program_->stats() : DataplaneStats{};
  // Healthy while our program is the one on the outside link (an operator's
  // `sluiced --detach` or a removed pin shows up here).
  s.healthy = program_ && outside_prog_id_ != 0 &&
              link_prog_id(settings_.pin_path, "outside") == outside_prog_id_;
  if (!s.healthy)
    s.unhealthy = program_ ? "sluice's program is no longer the one on the outside link"
                           : "no program loaded";
  s.mode = "xdp";
  s.attach = settings_.xdp_attach == XdpAttach::generic ? "generic" : "native";
  EdgeRecord record;
  std::string ignored;
  if (!settings_.inside.empty() && read_edge_record(settings_.pin_path, &record, &ignored)) {
    s.edge_state = edge_state_name(edge_link_state(settings_.pin_path));
    s.edge_since_unix_ns = record.since_unix_ns;
  }
  return s;
}

void XdpDataplane::stop() {
  if (!program_) return;
  // The links keep our program, and it keeps enforcing the last profile:
  // the next sluiced adopts it. Only the record learns nobody attends it.
  EdgeRecord record;
  std::string ignored;
  if (read_edge_record(settings_.pin_path, &record, &ignored)) {
    record.attended = false;
    write_edge_record(settings_.pin_path, record, &ignored);
  }
  program_.reset();
}

bool XdpDataplane::detach(const DataplaneSettings& settings, bool all, bool pins_nothing,
                          std::string* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Nothing pinned: nothing of sluice's is on the links (every program it
  // attaches, the pass-through too, is pinned there), so there is nothing to
  // hand over. An inline edge is not given the pass-through then: a config
  // that never ran (the package's example, removed with the package) would
  // bridge two interfaces sluice never stood between. Unless the edge pins
  // nothing when it runs (DPDK without the standby).
  if (!fs::exists(settings.pin_path, ec) && (all || settings.inside.empty() || !pins_nothing)) {
    *report += "nothing pinned at " + settings.pin_path + ": nothing of sluice's to detach\n";
    return true;
  }
  bool ok = true;
  if (!all && !settings.inside.empty()) {
    // Inline: the edge must keep doing what when_stopped says.
    if (!install_passthrough(settings, report)) return false;
  } else {
    for (const char* which : {"outside", "inside"})
      ok = remove_pinned_link(settings.pin_path, which, report) && ok;
    if (fs::exists(settings.pin_path + "/sl_edge", ec) &&
        !fs::remove(settings.pin_path + "/sl_edge", ec)) {
      *report += "cannot remove the edge record: " + ec.message() + "\n";
      ok = false;
    }
  }
  ok = remove_layouts(settings.pin_path, "", report) && ok;
  fs::remove(settings.pin_path, ec);  // only if now empty
  if (ok && !fs::exists(settings.pin_path, ec)) *report += "removed " + settings.pin_path + "\n";
  return ok;
}

}  // namespace sluice
