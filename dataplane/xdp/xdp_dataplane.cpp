// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/xdp_dataplane.hpp"

#include <bpf/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sluice {
namespace {

std::string link_path(const DataplaneSettings& s, const std::string& which) {
  return s.pin_path + "/link_" + which;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

XdpDataplane::XdpDataplane(DataplaneSettings settings) : settings_(std::move(settings)) {}

XdpDataplane::~XdpDataplane() = default;

bool XdpDataplane::attach(const std::string& which, int ifindex, int prog_fd, std::string* error) {
  const std::string path = link_path(settings_, which);
  int fd = bpf_obj_get(path.c_str());
  if (fd >= 0) {
    // A link left by an earlier sluiced: swap our program in without a gap,
    // if it is on the interface we want.
    bpf_link_info info{};
    __u32 len = sizeof(info);
    const bool same = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                      info.type == BPF_LINK_TYPE_XDP &&
                      static_cast<int>(info.xdp.ifindex) == ifindex;
    if (same) {
      // Never take a working link down: if the swap fails, keep it and say so.
      const bool swapped = bpf_link_update(fd, prog_fd, nullptr) == 0;
      const int err = errno;
      close(fd);
      if (!swapped)
        *error = "cannot swap the new program into the pinned " + which +
                 " link (the running one stays): " + std::strerror(err);
      return swapped;
    }
    // Pinned on another interface: the config moved it.
    bpf_link_detach(fd);
    close(fd);
    unlink(path.c_str());
  }
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.flags = settings_.xdp_generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
  if (fd < 0) {
    const int err = errno;
    char name[IF_NAMESIZE] = {};
    if_indextoname(static_cast<unsigned>(ifindex), name);
    *error = std::string("cannot attach XDP (") + (settings_.xdp_generic ? "generic" : "native") +
             ") to " + name + ": " + std::strerror(err) +
             (err == EBUSY            ? " (another XDP program is attached)"
              : settings_.xdp_generic ? ""
                                      : " (try xdp_attach = \"generic\")");
    return false;
  }
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    *error = "cannot pin the XDP link at " + path + ": " + errno_text();
    bpf_link_detach(fd);
    close(fd);
    return false;
  }
  close(fd);
  return true;
}

bool XdpDataplane::start(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  const int outside = static_cast<int>(if_nametoindex(settings_.outside.c_str()));
  if (outside == 0) {
    *error = "dataplane.outside: no interface named \"" + settings_.outside + "\"";
    return false;
  }
  int inside = 0;
  if (!settings_.inside.empty()) {
    inside = static_cast<int>(if_nametoindex(settings_.inside.c_str()));
    if (inside == 0) {
      *error = "dataplane.inside: no interface named \"" + settings_.inside + "\"";
      return false;
    }
  }
  XdpProgramOptions options;
  options.inline_mode = inside != 0;
  options.pin_path = settings_.pin_path;
  options.source_table_size = settings_.source_table_size;
  options.flow_table_size = settings_.flow_table_size;
  program_ = XdpProgram::load(options, error);
  if (!program_) return false;
  // Attach (or swap into adopted links) first: until the new profile is
  // written, an adopted program keeps enforcing the profile it had, and a
  // fresh one passes everything. Only then write the profile.
  if (inside != 0 && !program_->set_tx_ports(inside, outside, error)) return false;
  if (!attach("outside", outside, program_->outside_prog_fd(), error)) return false;
  if (inside != 0) {
    if (!attach("inside", inside, program_->inside_prog_fd(), error)) return false;
  } else {
    // Host mode now: a return-path link left by an inline config must go.
    const std::string path = link_path(settings_, "inside");
    const int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
      bpf_link_detach(fd);
      close(fd);
      unlink(path.c_str());
    }
  }
  // An adopted state continues its generation numbering.
  const uint64_t gen = std::max(generation, program_->generation() + 1);
  return program_->write_profile(profile, gen, error);
}

bool XdpDataplane::apply(const CompiledProfile& profile, uint64_t generation, std::string* error) {
  if (!program_) {
    *error = "the XDP dataplane is not started";
    return false;
  }
  return program_->write_profile(profile, generation, error);
}

DataplaneStats XdpDataplane::stats() const {
  DataplaneStats s = program_ ? program_->stats() : DataplaneStats{};
  // Healthy while our program is loaded and its outside link is still pinned
  // (an operator's `sluiced --detach` or a removed pin shows up here).
  std::error_code ec;
  s.healthy = program_ && std::filesystem::exists(link_path(settings_, "outside"), ec);
  s.mode = "xdp";
  s.attach = settings_.xdp_generic ? "generic" : "native";
  // The pinned LRU map an adopted run reuses has this size too: libbpf
  // refuses to reuse a pin whose max_entries differ.
  s.source_table_capacity = settings_.source_table_size;
  return s;
}

void XdpDataplane::stop() {
  std::string report;
  remove_pins(settings_, &report);
  program_.reset();
}

bool XdpDataplane::remove_pins(const DataplaneSettings& settings, std::string* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(settings.pin_path, ec)) {
    *report += "nothing pinned at " + settings.pin_path + "\n";
    return true;
  }
  bool ok = true;
  for (const char* which : {"outside", "inside"}) {
    const std::string path = link_path(settings, which);
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0) continue;
    if (bpf_link_detach(fd) != 0) {
      *report += "cannot detach " + path + ": " + errno_text() + "\n";
      ok = false;
    } else {
      *report += std::string("detached the ") + which + " XDP link\n";
    }
    close(fd);
  }
  // Only sluice's own pins: pin_path may be shared with other tools' pins.
  for (const char* name : {"sl_active", "sl_profiles", "sl_ports", "sl_lpm_src", "sl_lpm_dst",
                           "sl_state", "sl_class_names", "sl_sources", "sl_flows", "sl_counters",
                           "sl_counter_base", "link_outside", "link_inside"}) {
    const fs::path pin = fs::path(settings.pin_path) / name;
    if (fs::exists(pin, ec) && !fs::remove(pin, ec)) {
      *report += "cannot remove " + pin.string() + ": " + ec.message() + "\n";
      ok = false;
    }
  }
  fs::remove(settings.pin_path, ec);  // only if now empty
  if (ok) *report += "removed " + settings.pin_path + "\n";
  return ok;
}

}  // namespace sluice
