// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/flow_keep.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <vector>

#include "dataplane/model/flow.h"

namespace sluice::dpdk {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'F', 'L', 'O', 'W', 'S', '\n'};
constexpr uint32_t kVersion = 1;
constexpr std::size_t kBootIdLen = 36;  // a UUID's text

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t record_size;
  char boot_id[kBootIdLen];
  uint32_t zero;
  uint64_t monotonic_ns;
  uint64_t now_ns;
  uint64_t count;
};
struct Record {
  uint32_t shard;
  uint32_t partition;
  sl_flow_key key;
  sl_flow flow;
};
static_assert(sizeof(Header) == 80 && sizeof(Record) == 72, "the file's layout");

bool boot_id(char out[kBootIdLen]) {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(in, id) || id.size() != kBootIdLen) return false;
  std::memcpy(out, id.data(), kBootIdLen);
  return true;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * SL_NS_PER_SEC + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

bool keep_flows(const FlowShards& flows, uint64_t now_ns, const std::string& path, uint64_t* kept,
                std::string* error) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.record_size = sizeof(Record);
  if (!boot_id(h.boot_id)) {
    *error = "cannot read /proc/sys/kernel/random/boot_id";
    return false;
  }
  h.monotonic_ns = monotonic_ns();
  h.now_ns = now_ns;
  std::vector<Record> records;
  flows.each([&](uint32_t s, uint32_t p, const sl_flow_key& key, const sl_flow& f) {
    if (sl_flow_live(&f, now_ns)) records.push_back(Record{s, p, key, f});
  });
  h.count = records.size();
  std::error_code ec;  // the state directory may not be there yet: open() says so
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = tmp + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const auto put = [fd](const void* p, std::size_t n) {
    const auto* b = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd, b, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      b += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };
  const bool written = put(&h, sizeof(h)) && put(records.data(), records.size() * sizeof(Record)) &&
                       ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = path + ": cannot write: " + std::strerror(written ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  *kept = records.size();
  return true;
}

bool take_kept_flows(const std::string& path, FlowShards& flows, uint64_t now_ns, TakenFlows* taken,
                     std::string* error) {
  *taken = {};
  auto refuse = [&](const std::string& why) {
    *error = path + ": " + why + "; its flows were not taken";
    return false;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) return true;  // nothing kept
  if (fd < 0) return refuse(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  std::vector<char> bytes;
  bool read_all = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (read_all) {
    bytes.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    read_all = got == bytes.size();
  }
  const int saved = errno;
  ::close(fd);
  if (!S_ISREG(st.st_mode)) return refuse("not a file (remove it)");
  taken->found = true;
  ::unlink(path.c_str());  // taken once, whatever it holds
  if (!read_all) return refuse(std::string("cannot read: ") + std::strerror(saved));
  Header h{};
  if (bytes.size() < sizeof(h) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    return refuse("not a flow table a DPDK stop kept");
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.version != kVersion || h.record_size != sizeof(Record))
    return refuse("a flow table of another version (" + std::to_string(h.version) + ")");
  char boot[kBootIdLen];
  if (!boot_id(boot)) return refuse("cannot read /proc/sys/kernel/random/boot_id");
  if (std::memcmp(boot, h.boot_id, kBootIdLen) != 0)
    return refuse("kept before the host last booted");
  if (h.count > (bytes.size() - sizeof(h)) / sizeof(Record) ||
      bytes.size() != sizeof(h) + h.count * sizeof(Record))
    return refuse("truncated or damaged (" + std::to_string(bytes.size()) + " bytes for " +
                  std::to_string(h.count) + " flows)");
  std::vector<Record> records(h.count);
  if (h.count > 0) std::memcpy(records.data(), bytes.data() + sizeof(h), h.count * sizeof(Record));
  for (const Record& r : records)
    if (r.partition >= SL_PRIORITIES)
      return refuse("damaged (a flow of partition " + std::to_string(r.partition) + ")");
  const uint64_t mono = monotonic_ns();
  const uint64_t gap = mono > h.monotonic_ns ? mono - h.monotonic_ns : 0;
  for (Record& r : records) {
    // Its life as it stood at the stop, less the time no sluiced ran.
    const uint64_t left = r.flow.expires_ns > h.now_ns ? r.flow.expires_ns - h.now_ns : 0;
    if (left <= gap) {
      taken->ended++;
      continue;
    }
    r.flow.expires_ns = now_ns + (left - gap);
    r.flow.meter = 0;  // a window of the other run's clock
    // A backend sample in flight spans the gap: it is not taken.
    if (r.flow.rt_phase == SL_RT_WAITING) r.flow.rt_phase = SL_RT_DONE;
    flows.put_stopped(r.shard, r.partition, r.key, r.flow, now_ns);
    taken->taken++;
  }
  return true;
}

}  // namespace sluice::dpdk
