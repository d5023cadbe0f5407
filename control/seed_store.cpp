// SPDX-License-Identifier: Apache-2.0
#include "control/seed_store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice {

std::string state_directory() {
  const char* dirs = std::getenv("STATE_DIRECTORY");
  const std::string dir = dirs != nullptr && *dirs != '\0' ? dirs : "/var/lib/sluice";
  return dir.substr(0, dir.find(':'));  // several StateDirectory= entries: the first
}

std::string seed_file_path() { return state_directory() + "/seed"; }

bool keep_file(const std::string& path, const std::string& text, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = path + ": cannot write: " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<uint64_t> load_or_create_seed(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seed);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      *error = path + ": holds no seed (expected one decimal integer); left as it is";
      return std::nullopt;
    }
    return seed;
  }
  if (errno != ENOENT) {
    *error = path + ": cannot read: " + std::strerror(errno);
    return std::nullopt;
  }
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof(seed), 0) != static_cast<ssize_t>(sizeof(seed))) {
    *error = std::string("getrandom: ") + std::strerror(errno);
    return std::nullopt;
  }
  if (!keep_file(path, std::to_string(seed) + "\n", error)) return std::nullopt;
  return seed;
}

}  // namespace sluice
