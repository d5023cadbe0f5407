// SPDX-License-Identifier: Apache-2.0
// The inline edge's failure policy: what runs on the outside and inside
// interfaces when no sluice program is enforcing (dataplane.when_stopped),
// and the pinned record of the edge's state that every sluiced, `sluiced
// --detach` and `sluicectl status` read and write.
//
// Both links are pinned under pin_path (link_outside, link_inside) and hold
// either a sluice program (enforcing) or the pass-through of
// bpf/passthrough.bpf.c (forwarding or blocking). Every change of state is
// one bpf_link_update per link: the kernel swaps the program atomically, so
// no frame is ever handled by neither.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/dataplane.hpp"

namespace sluice {

enum class EdgeState : uint32_t {
  none = 0,         // nothing installed (host mode, or after --detach --all)
  enforcing = 1,    // a sluice program holds the links
  passthrough = 2,  // the pass-through forwards every frame
  blocked = 3,      // the pass-through drops every frame
};
const char* edge_state_name(EdgeState s);

// The pinned record (pin_path/sl_edge). Its map layout never changes
// incompatibly (a version field, reserved room): every build reads it.
struct EdgeRecord {
  EdgeState state = EdgeState::none;
  uint64_t generation = 0;     // generation of the last profile a sluice program enforced
  uint64_t since_unix_ns = 0;  // when `state` began
  int32_t pid = 0;             // the sluiced that last wrote the record
  bool attended = false;       // that sluiced is running (false once it stopped)
  std::string layout;          // pin layout of the enforcing program ("layout-...")
  std::string last_failure;    // why the last start failed; empty after a good start
  uint64_t last_failure_unix_ns = 0;
};

// False when there is no record (or it cannot be read: *error says which).
bool read_edge_record(const std::string& pin_path, EdgeRecord* out, std::string* error);
bool write_edge_record(const std::string& pin_path, const EdgeRecord& record, std::string* error);

// What the outside link holds now, from the program attached to it.
EdgeState edge_link_state(const std::string& pin_path);

uint64_t unix_now_ns();

// Makes sure `dir` exists on a bpffs, mounting /sys/fs/bpf when the
// directory is under it and nothing is mounted there yet.
bool prepare_pin_dir(const std::string& dir, std::string* error);

// Whether prepare_pin_dir could succeed for `dir` without changing
// anything: it lies under /sys/fs/bpf, or its nearest existing ancestor is
// on a bpffs. False + *error.
bool pin_path_usable(const std::string& dir, std::string* error);

// A program for the link pinned as pin_path/link_WHICH, on `ifindex`.
struct LinkWant {
  std::string which;  // "outside" | "inside"
  int ifindex = 0;
  int prog_fd = -1;
};

// Attaches each wanted program through its pinned link, all or none: the
// links on interfaces with none pinned are created first (where attaching
// fails: an interface without native XDP, one already taken), then the
// programs are swapped into the links pinned on their interfaces (atomic);
// only then do links pinned on other interfaces (the config moved them) go
// and the new ones get pinned. When a step fails, the links created are
// removed and the swapped ones get their programs back, so every interface
// runs what it ran before: false + *error.
bool attach_pinned_links(const DataplaneSettings& settings, const std::vector<LinkWant>& wants,
                         std::string* error);

// Removes the link pinned as pin_path/link_WHICH (detaching its program).
bool remove_pinned_link(const std::string& pin_path, const std::string& which, std::string* report);

// Installs the when_stopped program (forward or block) in both links of an
// inline edge, replacing whatever they hold, and records the state. Inline
// settings (inside set) only.
bool install_passthrough(const DataplaneSettings& settings, std::string* report);

}  // namespace sluice
