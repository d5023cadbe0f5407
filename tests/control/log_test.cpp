// SPDX-License-Identifier: Apache-2.0
// Logs: logfmt lines on stderr, syslog priority prefixes only when stderr is
// the journal's stream (JOURNAL_STREAM names its device and inode), and a
// runtime level below which nothing is written.
#include "control/log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sluice {
namespace {

// Points stderr at a scratch file for the test's lifetime.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("sluice-log-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::fflush(stderr);
    saved_stderr_ = ::dup(STDERR_FILENO);
    ASSERT_GE(::dup2(fd, STDERR_FILENO), 0);
    ::close(fd);
    ::unsetenv("JOURNAL_STREAM");
  }
  void TearDown() override {
    std::fflush(stderr);
    ::dup2(saved_stderr_, STDERR_FILENO);
    ::close(saved_stderr_);
    ::unsetenv("JOURNAL_STREAM");
    set_log_level(LogLevel::info);
    std::remove(path_.c_str());
  }
  std::string written() {
    std::fflush(stderr);
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // JOURNAL_STREAM as systemd sets it for a stream that is stderr now.
  void journal_is_stderr() {
    struct stat st {};
    ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
    const std::string v = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", v.c_str(), 1);
  }

  std::string path_;
  int saved_stderr_ = -1;
};

TEST_F(LogTest, PlainLogfmtWithoutTheJournal) {
  log_event(LogLevel::error, "config error", {{"error", "x.toml:3:1: bad"}});
  const std::string out = written();
  EXPECT_EQ(out.rfind("ts=", 0), 0u) << out;
  EXPECT_NE(out.find(" level=error msg=\"config error\" error=\"x.toml:3:1: bad\"\n"),
            std::string::npos)
      << out;
}

TEST_F(LogTest, SyslogPrioritiesWhenStderrIsTheJournal) {
  journal_is_stderr();
  set_log_level(LogLevel::debug);
  log_event(LogLevel::error, "e");
  log_event(LogLevel::warn, "w");
  log_event(LogLevel::info, "i");
  log_event(LogLevel::debug, "d");
  std::istringstream lines(written());
  std::string line;
  for (const char* want : {"<3>ts=", "<4>ts=", "<6>ts=", "<7>ts="}) {
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(line.rfind(want, 0), 0u) << line;
  }
}

TEST_F(LogTest, NoPrioritiesWhenJournalStreamNamesAnotherStream) {
  ::setenv("JOURNAL_STREAM", "8:12345", 1);  // stderr was redirected away from the journal
  log_event(LogLevel::error, "e");
  EXPECT_EQ(written().rfind("ts=", 0), 0u);
}

TEST_F(LogTest, TheRuntimeLevelHidesWhatIsBelowIt) {
  log_event(LogLevel::debug, "hidden at info");
  set_log_level(LogLevel::warn);
  log_event(LogLevel::info, "hidden at warn");
  log_event(LogLevel::warn, "shown");
  const std::string out = written();
  EXPECT_EQ(out.find("hidden"), std::string::npos) << out;
  EXPECT_NE(out.find("level=warn msg=shown"), std::string::npos) << out;
}

TEST(LogLevel, ParsesTheFourNamesAndNothingElse) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::debug);
  EXPECT_EQ(parse_log_level("info"), LogLevel::info);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::warn);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::warn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::error);
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_FALSE(parse_log_level("INFO"));
  EXPECT_FALSE(parse_log_level(""));
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
    EXPECT_EQ(parse_log_level(log_level_name(l)), l);
}

}  // namespace
}  // namespace sluice
