// SPDX-License-Identifier: Apache-2.0
// sluiced's own sticky seed: random at the first start, the same at every
// later one, a file it cannot use left alone; and a config's admission.seed
// wins over it.
#include "control/seed_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "control/config/compile.hpp"
#include "tests/support/profile_from_toml.hpp"

namespace sluice {
namespace {

class SeedStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-seed-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("STATE_DIRECTORY");
    set_default_seed(kBuiltinSeed);
  }
  std::filesystem::path dir_;
};

TEST_F(SeedStore, MadeOnceThenKept) {
  const std::string path = (dir_ / "state" / "seed").string();
  std::string error;
  const auto first = load_or_create_seed(path, &error);
  ASSERT_TRUE(first) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto again = load_or_create_seed(path, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(*again, *first);
  // Another box (another state directory) gets another seed.
  const auto other = load_or_create_seed((dir_ / "other" / "seed").string(), &error);
  ASSERT_TRUE(other) << error;
  EXPECT_NE(*other, *first);
}

TEST_F(SeedStore, AFileThatHoldsNoSeedIsAnErrorAndLeftAlone) {
  std::filesystem::create_directories(dir_);
  const std::string path = (dir_ / "seed").string();
  std::ofstream(path) << "not a number\n";
  std::string error;
  EXPECT_FALSE(load_or_create_seed(path, &error));
  EXPECT_NE(error.find(path + ": holds no seed"), std::string::npos) << error;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "not a number");
  // A seed the operator wrote is read as it is.
  std::ofstream(path) << "1234567890\n";
  EXPECT_EQ(load_or_create_seed(path, &error), 1234567890u);
}

TEST_F(SeedStore, TheFileIsInStateDirectory) {
  ::setenv("STATE_DIRECTORY", "/var/lib/sluice-a:/var/lib/sluice-b", 1);
  EXPECT_EQ(seed_file_path(), "/var/lib/sluice-a/seed");
  ::unsetenv("STATE_DIRECTORY");
  EXPECT_EQ(seed_file_path(), "/var/lib/sluice/seed");
}

TEST_F(SeedStore, AConfigSeedWinsOverTheKeptOne) {
  set_default_seed(42);
  EXPECT_EQ(test::profile_from_toml("").prof.seed, 42u);
  EXPECT_EQ(test::profile_from_toml("[admission]\nseed = 7\n").prof.seed, 7u);
}

}  // namespace
}  // namespace sluice
