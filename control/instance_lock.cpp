// SPDX-License-Identifier: Apache-2.0
#include "control/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sluice {

std::string instance_lock_path(const std::string& pin_path) {
  std::string name;
  for (char c : pin_path) {
    if (c == '/')
      name += '-';
    else if (c == '-')
      name += "%2d";
    else if (c == '%')
      name += "%25";
    else
      name += c;
  }
  return "/run/sluice/instance" + name + ".lock";
}

std::optional<bool> instance_lock_held(const std::string& pin_path) {
  struct stat file {};
  if (::stat(instance_lock_path(pin_path).c_str(), &file) != 0) return std::nullopt;
  std::ifstream locks("/proc/locks");
  if (!locks) return std::nullopt;
  // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a process waiting
  // for a lock has a line "1: -> FLOCK ..." (it holds nothing).
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string id, kind, advisory, mode, pid, where;
    if (!(in >> id >> kind >> advisory >> mode >> pid >> where) || kind != "FLOCK") continue;
    unsigned dev_major = 0, dev_minor = 0;
    unsigned long long inode = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%llu", &dev_major, &dev_minor, &inode) == 3 &&
        dev_major == major(file.st_dev) && dev_minor == minor(file.st_dev) && inode == file.st_ino)
      return true;
  }
  return false;
}

namespace {

// The lock file is removed by its holder at exit, so a lock taken on a file
// that was removed meanwhile is no lock: taken again on the file the path
// names now. The lock's fd, or -1 with *error.
int lock_instance(const std::string& pin_path, std::string* error) {
  ::mkdir("/run/sluice", 0755);
  const std::string path = instance_lock_path(pin_path);
  for (int attempt = 0; attempt < 8; attempt++) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = "cannot open " + path + ": " + std::strerror(errno);
      return -1;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      *error = "another sluiced is running with dataplane.pin_path " + pin_path + " (" + path +
               " is locked)";
      ::close(fd);
      return -1;
    }
    struct stat held {
    }, named{};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev)
      return fd;
    ::close(fd);  // removed by the last holder as we locked it
  }
  *error = "cannot lock " + path + ": it keeps being replaced";
  return -1;
}

}  // namespace

InstanceLocks::~InstanceLocks() { release_all(); }

void InstanceLocks::release_all() {
  for (auto& [pin_path, fd] : by_pin_path_) {
    ::unlink(instance_lock_path(pin_path).c_str());
    ::close(fd);
  }
  by_pin_path_.clear();
}

bool InstanceLocks::take(const std::string& pin_path, std::string* error) {
  if (by_pin_path_.count(pin_path) != 0) return true;
  const int fd = lock_instance(pin_path, error);
  if (fd < 0) return false;
  // A config whose pin_path was edited: the old path's lock goes (held to
  // exit, it kept another sluiced off a pinned state this one left).
  release_all();
  by_pin_path_[pin_path] = fd;
  return true;
}

}  // namespace sluice
