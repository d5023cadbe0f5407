// SPDX-License-Identifier: Apache-2.0
// A single-member etcd for tests, on loopback ports of its own and a data
// directory removed afterwards. Needs the etcd binary (etcd-server, which
// scripts/install-deps installs): a test without it skips outside CI and
// fails in CI.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "control/fleet/etcd_client.hpp"

namespace sluice::testing {

class EtcdProcess {
 public:
  // Ports: client `port`, peer `port + 1`.
  explicit EtcdProcess(int port) : port_(port) {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-etcd-test-" + std::to_string(::getpid()) + "-" + std::to_string(port));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string client = "http://127.0.0.1:" + std::to_string(port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(port + 1);
    const std::string log = (dir_ / "etcd.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes takes its etcd along
      std::freopen(log.c_str(), "w", stderr);
      std::freopen(log.c_str(), "a", stdout);
      ::execlp("etcd", "etcd", "--name", "t", "--data-dir", (dir_ / "data").c_str(),
               "--listen-client-urls", client.c_str(), "--advertise-client-urls", client.c_str(),
               "--listen-peer-urls", peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(),
               "--initial-cluster", ("t=" + peer).c_str(), "--unsafe-no-fsync",
               static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Waits until it answers a read (at most `seconds`).
  bool ready(int seconds = 20) const {
    EtcdClient c({url()}, std::chrono::milliseconds(500));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<EtcdKv> kvs;
      std::string error;
      if (c.range("/", true, &kvs, nullptr, &error)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return false;  // it died
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

inline bool have_etcd() { return std::system("command -v etcd >/dev/null 2>&1") == 0; }

}  // namespace sluice::testing

// Skips (outside CI) or fails (in CI) a test that needs the etcd binary.
#define SLUICE_REQUIRE_ETCD()                                                            \
  do {                                                                                   \
    if (!sluice::testing::have_etcd()) {                                                 \
      if (std::getenv("CI") != nullptr) FAIL() << "etcd is not installed (etcd-server)"; \
      GTEST_SKIP() << "etcd is not installed (outside CI)";                              \
    }                                                                                    \
  } while (0)
