// SPDX-License-Identifier: Apache-2.0
#include "dataplane/xdp/edge.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sluice_passthrough.skel.h"

namespace sluice {
namespace {

constexpr uint32_t kRecordMagic = 0x736c6564;  // "sled"
constexpr uint32_t kRecordVersion = 1;

// The record as the pinned map holds it. Fields are only ever appended into
// `reserved` (and the version raised), so any build reads any record.
struct RawRecord {
  uint32_t magic;
  uint32_t version;
  uint32_t state;
  int32_t pid;
  uint64_t generation;
  uint64_t since_unix_ns;
  uint64_t last_failure_unix_ns;
  uint32_t attended;
  uint32_t reserved0;
  char layout[32];
  char last_failure[160];
  uint8_t reserved[80];
};
static_assert(sizeof(RawRecord) == 320, "the pinned edge record never changes size");

std::string record_path(const std::string& pin_path) { return pin_path + "/sl_edge"; }
std::string link_path(const std::string& pin_path, const std::string& which) {
  return pin_path + "/link_" + which;
}
std::string errno_text(int err) { return std::strerror(err); }

void copy_text(char* dst, std::size_t size, const std::string& src) {
  std::memset(dst, 0, size);
  std::memcpy(dst, src.data(), std::min(size - 1, src.size()));
}

// The record map: opened from its pin, or created and pinned.
int record_map(const std::string& pin_path, bool create, std::string* error) {
  const std::string path = record_path(pin_path);
  int fd = bpf_obj_get(path.c_str());
  if (fd >= 0 || !create) {
    if (fd < 0) *error = "no edge record at " + path;
    return fd;
  }
  fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_edge", sizeof(uint32_t), sizeof(RawRecord), 1,
                      nullptr);
  if (fd < 0) {
    *error = "cannot create the edge record: " + errno_text(errno);
    return -1;
  }
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    *error = "cannot pin the edge record at " + path + ": " + errno_text(errno);
    close(fd);
    return -1;
  }
  return fd;
}

bool is_bpffs(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

// Whether this process's mount namespace is one its ancestors do not run in
// (`ip netns exec` gives the command it runs one of its own): a mount made
// in it goes when the processes in it do.
enum class OwnMounts { no, yes, unknown };

// unknown: an ancestor's namespace could not be read. One started with `ip
// netns exec` and left to pid 1 (`setsid ... &` from a script that ended)
// finds pid 1's namespace unreadable from its own; taken for "not its
// own", it mounted a bpffs of its own, its pins went with it at its stop,
// and the inline edge went dark (found live, twice).
OwnMounts own_mount_namespace() {
  std::error_code ec;
  const auto own = std::filesystem::read_symlink("/proc/self/ns/mnt", ec);
  if (ec) return OwnMounts::unknown;
  pid_t pid = getppid();
  for (int hops = 0; pid > 0 && hops < 64; hops++) {
    const std::string proc = "/proc/" + std::to_string(pid);
    const auto theirs = std::filesystem::read_symlink(proc + "/ns/mnt", ec);
    if (ec) return OwnMounts::unknown;
    if (theirs != own) return OwnMounts::yes;
    if (pid == 1) return OwnMounts::no;
    std::ifstream stat(proc + "/stat");
    std::string line;
    std::getline(stat, line);
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) return OwnMounts::unknown;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    rest >> state >> pid;
    if (!rest) return OwnMounts::unknown;
  }
  return OwnMounts::unknown;
}

}  // namespace

bool prepare_pin_dir(const std::string& dir, std::string* error) {
  const std::string usual = "/sys/fs/bpf";
  if (dir.rfind(usual + "/", 0) == 0 && !is_bpffs(usual)) {
    // A mount made in a mount namespace of its own (`ip netns exec` gives
    // each command one, with /sys mounted afresh) goes with this process,
    // and the pins with it: an edge then stays dark, or enforces with
    // nothing that can adopt it, once sluiced stops.
    const OwnMounts own = own_mount_namespace();
    if (own != OwnMounts::no) {
      *error = "pin_path " + dir + ": no bpffs on /sys/fs/bpf in " +
               (own == OwnMounts::yes ? std::string("this process's own mount namespace")
                                      : std::string("what may be this process's own mount "
                                                    "namespace (an ancestor's cannot be read)")) +
               " (ip netns exec gives each command one): pins made here would go with it, and "
               "the edge with them; run sluiced with nsenter --net=/run/netns/NAME (as the "
               "systemd unit's NetworkNamespacePath= does), or mount bpffs on /sys/fs/bpf "
               "first (mount -t bpf bpf /sys/fs/bpf)";
      return false;
    }
    std::error_code mk;
    std::filesystem::create_directories(usual, mk);
    if (mount("bpf", usual.c_str(), "bpf", 0, nullptr) != 0 && !is_bpffs(usual)) {
      *error = "cannot mount bpffs on /sys/fs/bpf: " + errno_text(errno);
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create pin directory " + dir + ": " + ec.message();
    return false;
  }
  if (!is_bpffs(dir)) {
    *error = "pin_path " + dir + " is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)";
    return false;
  }
  return true;
}

bool pin_path_usable(const std::string& dir, std::string* error) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(dir).lexically_normal();
  const fs::path under = path.lexically_relative("/sys/fs/bpf");
  if (path.is_absolute() && !under.empty() && *under.begin() != "..") return true;
  fs::path probe = path;
  std::error_code ec;
  while (probe.has_relative_path() && !fs::exists(probe, ec)) probe = probe.parent_path();
  if (is_bpffs(probe.string())) return true;
  *error = dir + " is not on a bpffs" +
           (probe == path ? std::string() : " (" + probe.string() + " is not)") +
           ": a start could not pin there; use a path under /sys/fs/bpf";
  return false;
}

const char* edge_state_name(EdgeState s) {
  switch (s) {
    case EdgeState::none:
      return "none";
    case EdgeState::enforcing:
      return "enforcing";
    case EdgeState::passthrough:
      return "passthrough";
    case EdgeState::blocked:
      return "blocked";
  }
  return "unknown";
}

uint64_t unix_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

bool read_edge_record(const std::string& pin_path, EdgeRecord* out, std::string* error) {
  const int fd = record_map(pin_path, false, error);
  if (fd < 0) return false;
  RawRecord raw{};
  const uint32_t key = 0;
  const bool read = bpf_map_lookup_elem(fd, &key, &raw) == 0;
  const int err = errno;
  close(fd);
  if (!read) {
    *error = "cannot read the edge record: " + errno_text(err);
    return false;
  }
  if (raw.magic != kRecordMagic) {
    *error = "the edge record at " + record_path(pin_path) + " is empty or not sluice's";
    return false;
  }
  *out = EdgeRecord{};
  out->state = raw.state <= 3 ? static_cast<EdgeState>(raw.state) : EdgeState::none;
  out->generation = raw.generation;
  out->since_unix_ns = raw.since_unix_ns;
  out->pid = raw.pid;
  out->attended = raw.attended != 0;
  out->layout = std::string(raw.layout, strnlen(raw.layout, sizeof(raw.layout)));
  out->last_failure =
      std::string(raw.last_failure, strnlen(raw.last_failure, sizeof(raw.last_failure)));
  out->last_failure_unix_ns = raw.last_failure_unix_ns;
  return true;
}

bool write_edge_record(const std::string& pin_path, const EdgeRecord& r, std::string* error) {
  if (!prepare_pin_dir(pin_path, error)) return false;
  const int fd = record_map(pin_path, true, error);
  if (fd < 0) return false;
  RawRecord raw{};
  raw.magic = kRecordMagic;
  raw.version = kRecordVersion;
  raw.state = static_cast<uint32_t>(r.state);
  raw.pid = r.pid;
  raw.generation = r.generation;
  raw.since_unix_ns = r.since_unix_ns;
  raw.last_failure_unix_ns = r.last_failure_unix_ns;
  raw.attended = r.attended ? 1 : 0;
  copy_text(raw.layout, sizeof(raw.layout), r.layout);
  copy_text(raw.last_failure, sizeof(raw.last_failure), r.last_failure);
  const uint32_t key = 0;
  const bool written = bpf_map_update_elem(fd, &key, &raw, BPF_ANY) == 0;
  if (!written) *error = "cannot write the edge record: " + errno_text(errno);
  close(fd);
  return written;
}

EdgeState edge_link_state(const std::string& pin_path) {
  const int fd = bpf_obj_get(link_path(pin_path, "outside").c_str());
  if (fd < 0) return EdgeState::none;
  bpf_link_info link{};
  __u32 len = sizeof(link);
  const bool ok = bpf_obj_get_info_by_fd(fd, &link, &len) == 0;
  close(fd);
  if (!ok) return EdgeState::none;
  const int prog = bpf_prog_get_fd_by_id(link.prog_id);
  if (prog < 0) return EdgeState::none;
  bpf_prog_info info{};
  len = sizeof(info);
  const bool named = bpf_obj_get_info_by_fd(prog, &info, &len) == 0;
  close(prog);
  if (!named) return EdgeState::none;
  const std::string name = info.name;
  if (name.rfind("sl_xdp_", 0) == 0) return EdgeState::enforcing;
  if (name.rfind("sl_pass_", 0) != 0) return EdgeState::none;
  // The pass-through's mode is a constant of its program: the record says
  // which one was installed.
  EdgeRecord record;
  std::string ignored;
  if (read_edge_record(pin_path, &record, &ignored) && record.state == EdgeState::blocked)
    return EdgeState::blocked;
  return EdgeState::passthrough;
}

bool attach_pinned_links(const DataplaneSettings& settings, const std::vector<LinkWant>& wants,
                         std::string* error) {
  struct Step {
    const LinkWant* want;
    std::string path;
    int pinned = -1;    // the link pinned for it, if any
    bool same = false;  // ... on its interface: swap the program in
    // What that link ran (swapped back on failure), held from the start:
    // after a restart the pinned link is its program's only holder, and
    // the kernel frees it as soon as the link runs another (a revert by id
    // then found nothing, and the links kept the new program).
    int old_prog = -1;
    bool swapped = false;
    int created = -1;  // a new link on its interface
    // The pinned link attaches in the other mode than xdp_attach asks
    // (native or generic): its interface gets a new link, after a gap.
    __u32 old_mode = 0;  // XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE; 0: no change
  };
  std::vector<Step> steps;
  for (const LinkWant& w : wants) {
    Step s{&w, link_path(settings.pin_path, w.which)};
    s.pinned = bpf_obj_get(s.path.c_str());
    if (s.pinned >= 0) {
      bpf_link_info info{};
      __u32 len = sizeof(info);
      s.same = bpf_obj_get_info_by_fd(s.pinned, &info, &len) == 0 &&
               info.type == BPF_LINK_TYPE_XDP && static_cast<int>(info.xdp.ifindex) == w.ifindex;
      if (s.same) s.old_prog = bpf_prog_get_fd_by_id(info.prog_id);
    }
    steps.push_back(std::move(s));
  }
  const __u32 mode =
      settings.xdp_attach == XdpAttach::generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  // A restart that changed xdp_attach: the kernel cannot move a link to the
  // other mode, and attaches no second program beside it. Found adopted
  // unchanged by a check (status said generic, the kernel ran native).
  for (Step& s : steps) {
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (!s.same || bpf_xdp_query(s.want->ifindex, 0, &q) != 0) continue;
    const __u32 now = q.attach_mode == XDP_ATTACHED_SKB   ? XDP_FLAGS_SKB_MODE
                      : q.attach_mode == XDP_ATTACHED_DRV ? XDP_FLAGS_DRV_MODE
                                                          : mode;
    if (now == mode) continue;
    s.old_mode = now;
    s.same = false;
  }
  auto mode_name = [](__u32 m) { return m == XDP_FLAGS_SKB_MODE ? "generic" : "native"; };
  // A link moved to the other mode goes back to the one it had, running what
  // it ran, when the start fails: its interface is never left without one.
  auto restore = [&](Step& s) {
    const int old = s.old_prog;
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    opts.flags = s.old_mode;
    const int link = old < 0 ? -1 : bpf_link_create(old, s.want->ifindex, BPF_XDP, &opts);
    unlink(s.path.c_str());
    if (link < 0 || bpf_obj_pin(link, s.path.c_str()) != 0)
      *error += "; and the " + s.want->which + " link could not be attached " +
                mode_name(s.old_mode) + " again: " + errno_text(errno);
    if (link >= 0) close(link);
    s.old_mode = 0;
  };
  auto name_of = [](int ifindex) {
    char name[IF_NAMESIZE] = {};
    if_indextoname(static_cast<unsigned>(ifindex), name);
    return std::string(name);
  };
  auto finish = [&](bool ok) {
    for (Step& s : steps) {
      if (!ok && s.swapped &&
          (s.old_prog < 0 || bpf_link_update(s.pinned, s.old_prog, nullptr) != 0))
        *error += "; and the " + s.want->which +
                  " link could not get its program back: " + errno_text(errno);
      if (!ok && s.created >= 0) bpf_link_detach(s.created);
      if (!ok && s.old_mode != 0) restore(s);
      if (s.created >= 0) close(s.created);
      if (s.pinned >= 0) close(s.pinned);
      if (s.old_prog >= 0) close(s.old_prog);
    }
    return ok;
  };
  // 1. New links, where attaching may be refused. One moving to the other
  // mode first lets go of its interface: frames meet no program (the
  // kernel's own path) until the new link holds it, two system calls
  // later.
  for (Step& s : steps) {
    if (s.same) continue;
    if (s.old_mode != 0 && bpf_link_detach(s.pinned) != 0) {
      *error = "cannot detach the " + s.want->which + " link (" + mode_name(s.old_mode) +
               ") to attach it " + mode_name(mode) + ": " + errno_text(errno);
      s.old_mode = 0;
      return finish(false);
    }
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    opts.flags = mode;
    s.created = bpf_link_create(s.want->prog_fd, s.want->ifindex, BPF_XDP, &opts);
    if (s.created < 0) {
      const int err = errno;
      *error = std::string("cannot attach XDP (") +
               (mode == XDP_FLAGS_SKB_MODE ? "generic" : "native") + ") to " +
               name_of(s.want->ifindex) + ": " + errno_text(err) +
               (err == EBUSY                 ? " (another XDP program is attached)"
                : mode == XDP_FLAGS_SKB_MODE ? ""
                                             : " (try xdp_attach = \"generic\")");
      return finish(false);
    }
  }
  // 2. The programs into the links pinned on their interfaces, without a gap.
  for (Step& s : steps) {
    if (!s.same) continue;
    if (bpf_link_update(s.pinned, s.want->prog_fd, nullptr) != 0) {
      *error = "cannot swap the new program into the pinned " + s.want->which + " link on " +
               name_of(s.want->ifindex) + ": " + errno_text(errno);
      return finish(false);
    }
    s.swapped = true;
  }
  // 3. The new links pinned beside the old paths (a link not pinned goes
  // when this process does), then the links the config moved off their
  // interfaces go and the new pins take their paths.
  for (Step& s : steps) {
    if (s.created < 0) continue;
    const std::string staged = s.path + "_new";  // bpffs names hold no dot
    unlink(staged.c_str());                      // left by a start that died here
    if (bpf_obj_pin(s.created, staged.c_str()) != 0) {
      *error = "cannot pin the XDP link at " + staged + ": " + errno_text(errno);
      for (Step& t : steps)
        if (t.created >= 0) unlink((t.path + "_new").c_str());
      return finish(false);
    }
  }
  for (Step& s : steps) {
    if (s.created < 0) continue;
    if (s.pinned >= 0) bpf_link_detach(s.pinned);
    if (rename((s.path + "_new").c_str(), s.path.c_str()) != 0) {
      *error = "the new " + s.want->which + " link runs, pinned at " + s.path + "_new, not " +
               s.path + " (which names the detached old link: remove it and move " + s.path +
               "_new there by hand): " + errno_text(errno);
      finish(true);
      return false;
    }
  }
  return finish(true);
}

bool remove_pinned_link(const std::string& pin_path, const std::string& which,
                        std::string* report) {
  const std::string path = link_path(pin_path, which);
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return true;
  bool ok = true;
  if (bpf_link_detach(fd) != 0) {
    *report += "cannot detach " + path + ": " + errno_text(errno) + "\n";
    ok = false;
  } else {
    *report += "detached the " + which + " XDP link\n";
  }
  close(fd);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    *report += "cannot remove " + path + ": " + errno_text(errno) + "\n";
    ok = false;
  }
  return ok;
}

bool install_passthrough(const DataplaneSettings& settings, std::string* report) {
  const bool block = settings.when_stopped == WhenStopped::block;
  std::string error;
  std::error_code ec;
  const bool made_dir = !std::filesystem::exists(settings.pin_path, ec);
  if (!prepare_pin_dir(settings.pin_path, &error)) {
    *report += error + "\n";
    return false;
  }
  // Refused (another program holds the interfaces): a directory this made
  // for it goes again, or a later --detach takes it for an edge of ours.
  struct Tidy {
    const std::string& dir;
    bool made;
    bool done = false;
    ~Tidy() {
      std::error_code e;
      if (made && !done) std::filesystem::remove(dir, e);  // only if empty
    }
  } tidy{settings.pin_path, made_dir};
  const int outside = static_cast<int>(if_nametoindex(settings.outside.c_str()));
  const int inside = static_cast<int>(if_nametoindex(settings.inside.c_str()));
  if (outside == 0 || inside == 0) {
    *report += "cannot install the pass-through: no interface named \"" +
               (outside == 0 ? settings.outside : settings.inside) + "\"\n";
    return false;
  }
  sluice_passthrough* skel = sluice_passthrough__open();
  if (skel == nullptr) {
    *report += "cannot open the pass-through program: " + errno_text(errno) + "\n";
    return false;
  }
  skel->rodata->sl_block = block ? 1 : 0;
  bool ok = sluice_passthrough__load(skel) == 0;
  if (!ok) error = "cannot load the pass-through program: " + errno_text(errno);
  const uint32_t keys[2] = {0, 1};
  const uint32_t ports[2] = {static_cast<uint32_t>(inside), static_cast<uint32_t>(outside)};
  for (int i = 0; ok && i < 2; i++) {
    ok = bpf_map_update_elem(bpf_map__fd(skel->maps.sl_pass_tx), &keys[i], &ports[i], BPF_ANY) == 0;
    if (!ok) error = "cannot set the pass-through's ports: " + errno_text(errno);
  }
  ok =
      ok && attach_pinned_links(settings,
                                {{"outside", outside, bpf_program__fd(skel->progs.sl_pass_outside)},
                                 {"inside", inside, bpf_program__fd(skel->progs.sl_pass_inside)}},
                                &error);
  // The links hold the program now; our references can go.
  sluice_passthrough__destroy(skel);
  if (!ok) {
    *report += error + "\n";
    return false;
  }
  tidy.done = true;
  EdgeRecord record;
  std::string ignored;
  read_edge_record(settings.pin_path, &record, &ignored);
  const EdgeState now = block ? EdgeState::blocked : EdgeState::passthrough;
  if (record.state != now) record.since_unix_ns = unix_now_ns();
  record.state = now;
  record.pid = static_cast<int32_t>(getpid());
  record.attended = false;
  record.layout.clear();
  if (!write_edge_record(settings.pin_path, record, &error)) {
    *report += error + "\n";
    return false;
  }
  *report += block ? "installed the blocking pass-through (when_stopped = \"block\"): the edge "
                     "drops every frame\n"
                   : "installed the pass-through (when_stopped = \"forward\"): the edge forwards "
                     "every frame unfiltered\n";
  return true;
}

}  // namespace sluice
