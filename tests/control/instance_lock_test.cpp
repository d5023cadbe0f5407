// SPDX-License-Identifier: Apache-2.0
// The instance lock's file (control/instance_lock.hpp): one per pin path,
// never shared by two (the lock is what keeps two sluiced off one pinned
// state, and a false "another sluiced is running" off a second edge).
#include "control/instance_lock.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice {
namespace {

TEST(InstanceLock, TwoPinPathsNeverShareALockFile) {
  const std::set<std::string> paths = {
      "/sys/fs/bpf/a-b",  "/sys/fs/bpf/a/b",  "/sys/fs/bpf/a%2db", "/sys/fs/bpf/a%252db",
      "/sys/fs/bpf/a--b", "/sys/fs/bpf/a/-b", "/sys/fs/bpf/sluice"};
  std::set<std::string> files;
  for (const std::string& p : paths) files.insert(instance_lock_path(p));
  EXPECT_EQ(files.size(), paths.size());
  EXPECT_EQ(instance_lock_path("/sys/fs/bpf/sluice"),
            "/run/sluice/instance-sys-fs-bpf-sluice.lock");
  for (const std::string& f : files)
    EXPECT_EQ(f.find('/', std::string("/run/sluice/").size()), std::string::npos) << f;
}

}  // namespace
}  // namespace sluice
