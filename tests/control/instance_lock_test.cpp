// SPDX-License-Identifier: Apache-2.0
// The instance lock's file (control/instance_lock.hpp): one per pin path,
// never shared by two (the lock is what keeps two sluiced off one pinned
// state, and a false "another sluiced is running" off a second edge).
#include "control/instance_lock.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "tests/support/privileges.hpp"

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

// Whether a sluiced holds a pin path's lock, as `sluicectl status` asks it
// of the pinned record's edge: held while the holder lives; not once it
// was killed, even while it is a zombie that answers kill(pid, 0) (what
// the status asked before, and so said "attended" after a kill -9); not
// known once a clean exit removed the file.
TEST(InstanceLock, HeldWhileItsHolderLivesAndNotOnceKilled) {
  SLUICE_REQUIRE_ROOT();
  const std::string pin_path = "/sys/fs/bpf/sluice-lock-test-" + std::to_string(::getpid());
  {
    InstanceLocks mine;
    std::string error;
    ASSERT_TRUE(mine.take(pin_path, &error)) << error;
    EXPECT_EQ(instance_lock_held(pin_path), std::optional<bool>(true));
  }
  EXPECT_EQ(instance_lock_held(pin_path), std::nullopt);  // removed at exit

  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    InstanceLocks its;
    std::string error;
    const char ok = its.take(pin_path, &error) ? 1 : 0;
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();  // until killed: its destructor never runs
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_EQ(ok, 1);
  EXPECT_EQ(instance_lock_held(pin_path), std::optional<bool>(true));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(::kill(child, 0), 0);  // a zombie, not yet reaped
  EXPECT_EQ(instance_lock_held(pin_path), std::optional<bool>(false));
  ::waitpid(child, nullptr, 0);
  ::unlink(instance_lock_path(pin_path).c_str());
}

// A config whose pin_path was edited while sluiced waited, not in charge:
// the new path's lock releases the old one's (held to exit, it kept a
// second sluiced off the pinned state this one had left).
TEST(InstanceLock, ANewPinPathReleasesTheOldOne) {
  SLUICE_REQUIRE_ROOT();
  const std::string old_path = "/sys/fs/bpf/sluice-lock-old-" + std::to_string(::getpid());
  const std::string new_path = "/sys/fs/bpf/sluice-lock-new-" + std::to_string(::getpid());
  InstanceLocks mine;
  std::string error;
  ASSERT_TRUE(mine.take(old_path, &error)) << error;
  EXPECT_EQ(instance_lock_held(old_path), std::optional<bool>(true));
  ASSERT_TRUE(mine.take(new_path, &error)) << error;
  EXPECT_EQ(instance_lock_held(new_path), std::optional<bool>(true));
  EXPECT_NE(instance_lock_held(old_path), std::optional<bool>(true));
  InstanceLocks other;  // another sluiced may take the old path now
  EXPECT_TRUE(other.take(old_path, &error)) << error;
}

}  // namespace
}  // namespace sluice
