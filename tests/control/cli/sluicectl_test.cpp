// SPDX-License-Identifier: Apache-2.0
// sluicectl as an operator runs it: the real binary against an in-process
// ApiServer over a FakeDataplane. Output an engineer reads (class table,
// diffs, FILE:LINE:COL errors), output a script parses (--json), exit codes
// (0 ok, 1 rejected, 2 unreachable) and `top` both piped and in a terminal.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/api/api_server.hpp"
#include "control/log.hpp"
#include "tests/control/api/control_test_env.hpp"
#include "tests/support/dpdk_stats.hpp"

#ifndef SLUICE_BINARY_DIR
#error "tests/CMakeLists.txt must define SLUICE_BINARY_DIR"
#endif

extern char** environ;

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::ControlHarness;
using test::json;

const std::string kSluicectl = std::string(SLUICE_BINARY_DIR) + "/control/sluicectl";

struct Ran {
  int exit_code = -1;  // -1: killed or did not exit in time
  std::string out;
  std::string err;
};

// Runs argv[0] with stdin from /dev/null and stdout/stderr to files (so it
// has no terminal), killing it if it runs longer than `timeout`.
Ran run_process(const std::vector<std::string>& argv, const std::string& scratch_dir,
                std::chrono::seconds timeout = 15s) {
  static std::atomic<int> counter{0};
  const std::string stem = scratch_dir + "/run" + std::to_string(counter++);
  const std::string out_path = stem + ".out";
  const std::string err_path = stem + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  Ran result;
  if (rc != 0) {
    result.err = std::string("posix_spawn failed: ") + std::strerror(rc);
    return result;
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = test::read_text(out_path);
  result.err = test::read_text(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return result;
}

std::string describe(const Ran& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

int count_matching(const std::string& text, const std::regex& pattern) {
  int n = 0;
  for (const std::string& line : lines_of(text))
    if (std::regex_search(line, pattern)) n++;
  return n;
}

class SluicectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kSluicectl)) << kSluicectl << " is not built";
    ApiOptions o;
    o.socket_path = socket_path_;
    std::string error;
    server_ = ApiServer::start(
        o,
        [this](const json& request, const Origin& origin) {
          return h_.state().handle(request, origin);
        },
        &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // sluicectl --socket S ARGS...
  Ran ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {kSluicectl, "--socket", socket_path_});
    return run_process(args, h_.dir().path());
  }

  ControlHarness h_;
  std::string socket_path_ = h_.dir().file("control.sock");
  std::unique_ptr<ApiServer> server_;
};

TEST_F(SluicectlTest, StatusPrintsTheClassTable) {
  const Ran r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("sluiced: fake (none) outside eth0, inside eth1"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("generation 1,"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("profile none"), std::string::npos) << describe(r);
  EXPECT_EQ(count_matching(
                r.out, std::regex(R"(^class\s+pri\s+rate\s+tokens\s+lookups\s+admitted\s+shed)")),
            1)
      << describe(r);
  EXPECT_EQ(
      count_matching(r.out, std::regex(R"(^checkpoint\s+0\s+20000/s\s+\d+\s+0\s+0\s+0\s+-$)")), 1)
      << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^citizen\s+5\s+10000/s\s+\d+\s+0\s+0\s+0\s+-$)")),
            1)
      << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^default\s+7\s+unlimited\s+\d+\s+0\s+0\s+0\s+-$)")),
            1)
      << describe(r);
}

// The adaptive boundary: status and top say the rate it set, why, and its
// signal (the agent's view, as ControlState reports it under "adaptive").
TEST_F(SluicectlTest, StatusAndTopShowTheAdaptiveRateAndWhy) {
  ASSERT_TRUE(h_.call(test::set_request({{"boundary.adaptive", "true"}}))["ok"].get<bool>());
  h_.state().set_adaptive_status([] {
    return json{{"rate", 180},        {"ceiling", 40000},
                {"floor", 4000},      {"reason", "decrease"},
                {"latency_ms", 61.5}, {"baseline_ms", 20.1},
                {"target_ms", 40.2},  {"delivered_per_sec", 197.0},
                {"moved_unix", 1.0},  {"started_from", "ceiling"}};
  });
  const std::regex line(R"(^adaptive boundary: 180 lookups/s \(ceiling 40000, floor 4000\), )"
                        R"(decrease; latency 61\.5 ms \(baseline 20\.1, target 40\.2\), )"
                        R"(backend answers 197/s$)");
  const Ran r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count_matching(r.out, line), 1) << describe(r);
  // The boundary's configured rate is the ceiling: the rate run now beside it.
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^boundary: lookups 40000/s ceiling, 180/s now )"
                                             R"(\(adaptive\) \(\d+ tokens\), packets )")),
            1)
      << describe(r);
  const Ran t = ctl({"top", "--count", "1", "--interval", "0.2"});
  ASSERT_EQ(t.exit_code, 0) << describe(t);
  EXPECT_EQ(count_matching(t.out, line), 1) << describe(t);
  h_.state().set_adaptive_status(nullptr);
}

// An unhealthy dataplane is the first thing status says after the header,
// with why; a healthy one says nothing of it.
TEST_F(SluicectlTest, StatusSaysWhenTheDataplaneIsUnhealthyAndWhy) {
  const Ran healthy = ctl({"status"});
  ASSERT_EQ(healthy.exit_code, 0) << describe(healthy);
  EXPECT_EQ(healthy.out.find("UNHEALTHY"), std::string::npos) << describe(healthy);
  h_.dataplane().set_unhealthy("worker 1 (lcore 3) has not polled for 2400 ms");
  // Not enforcing: exit 1, so that a script waiting on status is not told
  // the edge enforces (and --wait waits on).
  const Ran r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_EQ(
      count_matching(r.out, std::regex(R"(^DATAPLANE UNHEALTHY: worker 1 \(lcore 3\) has not )"
                                       R"(polled for 2400 ms$)")),
      1)
      << describe(r);
  const Ran j = ctl({"status", "--json"});
  EXPECT_EQ(j.exit_code, 1) << describe(j);
  const json parsed = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << describe(j);
  EXPECT_EQ(parsed["healthy"], false);
  EXPECT_EQ(parsed["unhealthy"], "worker 1 (lcore 3) has not polled for 2400 ms");
}

// A DPDK-like dataplane: two priority queues and both ports.
void give_queues_and_ports(test::FakeDataplane& dataplane) {
  dataplane.set_queues_and_ports(test::sample_dpdk_queues(), test::sample_dpdk_ports());
}

TEST_F(SluicectlTest, StatusPrintsNoQueuesOrPortsForADataplaneWithout) {
  const Ran r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^priority\s+depth)")), 0) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^port\s+device)")), 0) << describe(r);
}

TEST_F(SluicectlTest, StatusPrintsQueuesAndPortsWithTheirDrops) {
  give_queues_and_ports(h_.dataplane());
  const Ran r = ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(
      count_matching(r.out, std::regex(R"(^priority\s+depth\s+dropped full\s+dropped delay$)")), 1)
      << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^0\s+7\s+3\s+11$)")), 1) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^5\s+0\s+0\s+0$)")), 1) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^port\s+device\s+rx\s+tx\s+rx missed\s+rx nombuf)"
                                             R"(\s+tx errors\s+tx dropped$)")),
            1)
      << describe(r);
  EXPECT_EQ(
      count_matching(r.out,
                     std::regex(R"(^outside\s+net_af_packet0\s+123456\s+1000\s+17\s+2\s+0\s+0$)")),
      1)
      << describe(r);
  EXPECT_EQ(count_matching(
                r.out, std::regex(R"(^inside\s+net_af_packet1\s+999\s+120000\s+0\s+0\s+5\s+8$)")),
            1)
      << describe(r);

  const Ran j = ctl({"status", "--json"});
  ASSERT_EQ(j.exit_code, 0) << describe(j);
  const json parsed = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << describe(j);
  ASSERT_EQ(parsed["queues"].size(), 2u) << describe(j);
  EXPECT_EQ(parsed["queues"][0]["dropped_full"], 3);
  EXPECT_EQ(parsed["queues"][0]["dropped_delay"], 11);
  ASSERT_EQ(parsed["ports"].size(), 2u) << describe(j);
  EXPECT_EQ(parsed["ports"][1]["name"], "inside");
  EXPECT_EQ(parsed["ports"][1]["tx_dropped"], 8);
}

TEST_F(SluicectlTest, SetPrintsTheDiffAndTheNewGeneration) {
  const Ran r = ctl({"set", "class.citizen.rate_per_sec=20000", "boundary.lookups_per_sec=50000"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("  class.citizen.rate_per_sec: 10000 -> 20000\n"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("  boundary.lookups_per_sec: 40000 -> 50000\n"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("applied as generation 2\n"), std::string::npos) << describe(r);
  EXPECT_EQ(h_.state().generation(), 2u);

  // A bare word is taken as a string, as the engineer means it; the key was
  // not written before, so its old value shows as "-". (Diff values are TOML
  // value text as toml++ writes it: a literal string in single quotes.)
  const Ran word = ctl({"set", "class.citizen.on_shed=reset"});
  ASSERT_EQ(word.exit_code, 0) << describe(word);
  EXPECT_NE(word.out.find("  class.citizen.on_shed: - -> 'reset'\n"), std::string::npos)
      << describe(word);
  EXPECT_NE(word.out.find("applied as generation 3\n"), std::string::npos) << describe(word);

  // So is an address or prefix, which TOML would misread as a number.
  const Ran prefix = ctl({"set", "--dry-run", "class.citizen.match.src=198.18.0.0/16"});
  ASSERT_EQ(prefix.exit_code, 0) << describe(prefix);
  EXPECT_NE(prefix.out.find("-> { src = \"198.18.0.0/16\" }"), std::string::npos)
      << describe(prefix);
  const Ran v6 = ctl({"set", "--dry-run", "class.citizen.match.src=2001:2::/48"});
  ASSERT_EQ(v6.exit_code, 0) << describe(v6);
  EXPECT_NE(v6.out.find("-> { src = \"2001:2::/48\" }"), std::string::npos) << describe(v6);
  // And a port range, which TOML would misread as a date.
  const Ran ports = ctl({"set", "--dry-run", "class.citizen.match.dst_ports=8000-8100"});
  ASSERT_EQ(ports.exit_code, 0) << describe(ports);
  EXPECT_NE(ports.out.find("dst_ports = \"8000-8100\""), std::string::npos) << describe(ports);

  const Ran dry = ctl({"set", "--dry-run", "class.citizen.rate_per_sec=1"});
  ASSERT_EQ(dry.exit_code, 0) << describe(dry);
  EXPECT_NE(dry.out.find("  class.citizen.rate_per_sec: 20000 -> 1\n"), std::string::npos)
      << describe(dry);
  EXPECT_NE(dry.out.find("dry run: valid, 1 change(s), nothing applied"), std::string::npos)
      << describe(dry);
  EXPECT_EQ(h_.state().generation(), 3u);
  // shadow takes --dry-run as every change does.
  const Ran shadow = ctl({"shadow", "on", "--dry-run"});
  ASSERT_EQ(shadow.exit_code, 0) << describe(shadow);
  EXPECT_NE(shadow.out.find("  admission.shadow: false -> true\n"), std::string::npos)
      << describe(shadow);
  EXPECT_NE(shadow.out.find("dry run: valid, 1 change(s), nothing applied"), std::string::npos)
      << describe(shadow);
  EXPECT_EQ(h_.state().generation(), 3u);
  EXPECT_EQ(h_.call({{"op", "status"}})["shadow"], false);
}

// A set of a key the active profile also sets changes the base only: said
// so, with the new generation, never "no change".
TEST_F(SluicectlTest, SetUnderAProfileSaysItChangedTheBase) {
  ASSERT_EQ(ctl({"profile", "surge-1"}).exit_code, 0);
  const Ran r = ctl({"set", "class.citizen.rate_per_sec=12000"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out.find("no change"), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("  base class.citizen.rate_per_sec: 10000 -> 12000\n"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("applied to the base config as generation 3;"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("note: "), std::string::npos) << describe(r);
}

TEST_F(SluicectlTest, RejectedSetExitsOneAndPrintsTheCheckerLine) {
  const Ran r = ctl({"set", "class.citizen.rate_per_sec=0"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_EQ(count_matching(r.err, std::regex(R"(^\S+:\d+:\d+: class\.citizen\.rate_per_sec: .+)")),
            1)
      << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);

  const Ran restart = ctl({"set", "dataplane.outside=eth9"});
  EXPECT_EQ(restart.exit_code, 1) << describe(restart);
  EXPECT_NE(restart.err.find("dataplane.outside"), std::string::npos) << describe(restart);
  EXPECT_NE(restart.err.find("restart"), std::string::npos) << describe(restart);
  EXPECT_EQ(h_.state().generation(), 1u);
}

// get --base prints the base text alone on stdout, so that the line of an
// error in it is its line there; after a set, that text is <running>.
TEST_F(SluicectlTest, GetBasePrintsTheTextErrorsCountLinesIn) {
  Ran r = ctl({"get", "--base"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, h_.initial_text());
  EXPECT_EQ(r.err, "# generation 1, base config " + h_.config_path() + "\n");
  ASSERT_EQ(ctl({"set", "class.checkpoint.burst=401"}).exit_code, 0);
  r = ctl({"get", "--base"});
  EXPECT_EQ(r.err, "# generation 2, base config <running>\n");
  const Ran bad = ctl({"set", "class.citizen.on_shed=mark"});
  EXPECT_EQ(bad.exit_code, 1) << describe(bad);
  std::smatch at;
  ASSERT_TRUE(std::regex_search(bad.err, at,
                                std::regex(R"(<running>:(\d+):\d+: class\.citizen\.mark_dscp)")))
      << describe(bad);
  std::istringstream text(r.out);
  std::string line;
  for (int i = 0; i < std::stoi(at[1]); i++) std::getline(text, line);
  EXPECT_EQ(line, "[[class]]") << "line " << at[1] << " of\n" << r.out;
}

// apply FILE: a refusal names FILE as given, with the line and column of
// the key (the brief's config errors), whether the file does not validate or
// changes a key only a restart changes.
TEST_F(SluicectlTest, RejectedApplyNamesTheFileLineAndColumn) {
  std::string text = h_.initial_text();
  text.replace(text.find("outside = \"eth0\""), 16, "outside = \"eth7\"");
  const std::string file = h_.dir().file("edge.toml");
  std::ofstream(file) << text;
  const Ran restart = ctl({"apply", file});
  EXPECT_EQ(restart.exit_code, 1) << describe(restart);
  EXPECT_EQ(
      count_matching(
          restart.err,
          std::regex(
              "^" + file +
              R"(:\d+:11: dataplane\.outside: changes only at restart \(running: 'eth0', requested: 'eth7'\); restart sluiced to apply it$)")),
      1)
      << describe(restart);

  text.replace(text.find("history = 8"), 11, "history = 0");
  std::ofstream(file) << text;
  const Ran invalid = ctl({"apply", file});
  EXPECT_EQ(invalid.exit_code, 1) << describe(invalid);
  EXPECT_EQ(
      count_matching(invalid.err, std::regex("^" + file + R"(:\d+:11: control\.history: .+)")), 1)
      << describe(invalid);
  EXPECT_EQ(h_.state().generation(), 1u);
}

// apply FILE takes any file the loader takes (up to 16 MiB: a config with
// 100k prefixes passes 1 MiB), and what the API cannot carry is refused
// before it is sent, naming why: text that is not UTF-8 (where, as the
// checker says it), a file past the loader's limit, a FIFO nobody writes.
TEST_F(SluicectlTest, ApplyCarriesLargeFilesAndRefusesWhatTheApiCannotCarry) {
  const std::string text = h_.initial_text();
  std::string changed = text;
  changed.replace(changed.find("rate_per_sec = 10000"), 20, "rate_per_sec = 15000");
  const std::string file = h_.dir().file("large.toml");
  std::ofstream(file) << changed << "\n# " << std::string(3 << 20, 'x') << "\n";
  const Ran large = ctl({"apply", file});
  EXPECT_EQ(large.exit_code, 0) << describe(large).substr(0, 2000);
  EXPECT_EQ(h_.state().generation(), 2u);

  const std::string latin1 = h_.dir().file("latin1.toml");
  std::ofstream(latin1) << text << "# caf\xe9\n";
  const Ran bad = ctl({"apply", latin1});
  EXPECT_EQ(bad.exit_code, 1) << describe(bad);
  EXPECT_EQ(count_matching(bad.err, std::regex("^" + latin1 + R"(:\d+:\d+: .*utf-8.*$)")), 1)
      << describe(bad);

  const Ran endless = ctl({"apply", "/dev/zero"});
  EXPECT_EQ(endless.exit_code, 1) << describe(endless).substr(0, 2000);
  EXPECT_NE(endless.err.find("cannot read /dev/zero: larger than 16777216 bytes"),
            std::string::npos)
      << describe(endless).substr(0, 2000);
  EXPECT_EQ(h_.state().generation(), 2u);
}

// A change while the dataplane is not enforcing (`sluiced --detach` gave the
// links to the pass-through, say) would reach no packet: refused, saying
// why, nothing changed; a dry run still checks it. Enforcing again, it
// applies.
TEST_F(SluicectlTest, ChangesAreRefusedWhileTheDataplaneIsNotEnforcing) {
  h_.dataplane().set_unhealthy("sluice's program is no longer the one on the outside link");
  const Ran r = ctl({"set", "class.citizen.rate_per_sec=20000"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("the dataplane is not enforcing (sluice's program is no longer the one on "
                       "the outside link)"),
            std::string::npos)
      << describe(r);
  EXPECT_EQ(h_.state().generation(), 1u);
  const Ran dry = ctl({"set", "--dry-run", "class.citizen.rate_per_sec=20000"});
  EXPECT_EQ(dry.exit_code, 0) << describe(dry);
  h_.dataplane().set_unhealthy("");
  const Ran again = ctl({"set", "class.citizen.rate_per_sec=20000"});
  EXPECT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_EQ(h_.state().generation(), 2u);
}

// A rollback names a generation, 1 or more: 0, a negative number or a word
// is refused by name (0 used to mean "the one before", -3 wrapped around).
TEST_F(SluicectlTest, RollbackRefusesAGenerationThatIsNone) {
  ASSERT_EQ(ctl({"set", "class.citizen.rate_per_sec=20000"}).exit_code, 0);
  for (const char* gen : {"0", "-3", "two", "000", "0x2", "1e0"}) {
    const Ran r = ctl({"rollback", "--", gen});
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_NE(r.err.find(std::string("expected a generation number, 1 or more (see sluicectl "
                                     "history), found \"") +
                         gen + "\""),
              std::string::npos)
        << describe(r);
  }
  EXPECT_EQ(h_.state().generation(), 2u);
  const Ran back = ctl({"rollback", "1"});
  EXPECT_EQ(back.exit_code, 0) << describe(back);
  EXPECT_EQ(h_.state().generation(), 3u);
}

// Decimal, as history prints it, leading zeros and all (CLI11 alone read
// 010 as generation 8).
TEST_F(SluicectlTest, RollbackReadsItsGenerationInDecimal) {
  std::map<uint64_t, std::string> rate_at;
  for (int rate = 20001; h_.state().generation() < 11; ++rate) {
    const std::string setting = "rate_per_sec = " + std::to_string(rate);
    ASSERT_EQ(ctl({"set", "class.citizen.rate_per_sec=" + std::to_string(rate)}).exit_code, 0);
    rate_at[h_.state().generation()] = setting;
  }
  const Ran back = ctl({"rollback", "010"});
  ASSERT_EQ(back.exit_code, 0) << describe(back);
  const Ran got = ctl({"get"});
  EXPECT_NE(got.out.find(rate_at[10]), std::string::npos) << describe(got);
  EXPECT_EQ(got.out.find(rate_at[8]), std::string::npos) << describe(got);
}

TEST_F(SluicectlTest, JsonOutputParsesWhereverTheFlagIsGiven) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--json", "status"},
                                               std::vector<std::string>{"status", "--json"}}) {
    const Ran r = ctl(args);
    SCOPED_TRACE(args[0] + " " + args[1]);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const json j = json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << describe(r);
    EXPECT_EQ(j["ok"], true);
    EXPECT_EQ(j["generation"], 1);
    EXPECT_EQ(j["classes"].size(), 3u);
  }

  const Ran set = ctl({"set", "class.citizen.rate_per_sec=20000", "--json"});
  ASSERT_EQ(set.exit_code, 0) << describe(set);
  const json changed = json::parse(set.out, nullptr, false);
  ASSERT_FALSE(changed.is_discarded()) << describe(set);
  EXPECT_EQ(changed["generation"], 2);
  EXPECT_EQ(changed["diff"][0]["key"], "class.citizen.rate_per_sec");

  // A refusal in JSON still exits 1, with the daemon's response on stdout.
  const Ran refused = ctl({"--json", "set", "class.citizen.priority=9"});
  EXPECT_EQ(refused.exit_code, 1) << describe(refused);
  const json why = json::parse(refused.out, nullptr, false);
  ASSERT_FALSE(why.is_discarded()) << describe(refused);
  EXPECT_EQ(why["ok"], false);
  EXPECT_EQ(why["errors"][0]["key"], "class.citizen.priority");
}

TEST_F(SluicectlTest, UnreachableSocketExitsTwo) {
  const Ran r = run_process({kSluicectl, "--socket", h_.dir().file("nobody-home.sock"), "status"},
                            h_.dir().path());
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("cannot reach sluiced"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("nobody-home.sock"), std::string::npos) << describe(r);
}

// A sluiced whose dataplane is not up yet answers "starting": that is not a
// refusal (1) but no answer yet, like an unreachable one (2).
TEST_F(SluicectlTest, StartingExitsTwoAndStatusWaitRidesItOut) {
  std::atomic<int> asked{0};
  ApiOptions o;
  o.socket_path = h_.dir().file("late.sock");
  std::string error;
  auto late = ApiServer::start(
      o,
      [&](const json& request, const Origin& origin) -> json {
        if (asked++ < 3)
          return {{"ok", false}, {"starting", true}, {"error", "sluiced is starting; try again"}};
        return h_.state().handle(request, origin);
      },
      &error);
  ASSERT_NE(late, nullptr) << error;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {kSluicectl, "--socket", o.socket_path});
    return run_process(args, h_.dir().path());
  };

  const Ran status = run({"status"});
  EXPECT_EQ(status.exit_code, 2) << describe(status);
  EXPECT_NE(status.err.find("sluiced is starting"), std::string::npos) << describe(status);
  const Ran set = run({"set", "class.citizen.rate_per_sec=20"});
  EXPECT_EQ(set.exit_code, 2) << describe(set);
  EXPECT_EQ(h_.state().generation(), 1u);  // nothing was applied

  const Ran waited = run({"status", "--wait", "10"});  // the third "starting", then in charge
  ASSERT_EQ(waited.exit_code, 0) << describe(waited);
  EXPECT_NE(waited.out.find("sluiced: fake (none)"), std::string::npos) << describe(waited);
  EXPECT_GE(asked.load(), 4);
}

TEST_F(SluicectlTest, StatusWaitGivesUpOnAnUnreachableSluicedWithExitTwo) {
  const Ran r = run_process(
      {kSluicectl, "--socket", h_.dir().file("nobody-home.sock"), "status", "--wait", "0.3"},
      h_.dir().path());
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("cannot reach sluiced"), std::string::npos) << describe(r);
  const Ran bad = run_process({kSluicectl, "status", "--wait", "-1"}, h_.dir().path());
  EXPECT_EQ(bad.exit_code, 1) << describe(bad);
  EXPECT_NE(bad.err.find("--wait"), std::string::npos) << describe(bad);
}

TEST_F(SluicectlTest, LogLevelPrintsAndSetsSluicedsLevel) {
  const Ran now = ctl({"log-level"});
  ASSERT_EQ(now.exit_code, 0) << describe(now);
  EXPECT_EQ(now.out, "log level info\n");
  const Ran set = ctl({"log-level", "debug"});
  ASSERT_EQ(set.exit_code, 0) << describe(set);
  EXPECT_EQ(set.out, "log level debug (was info)\n");
  EXPECT_EQ(log_level(), LogLevel::debug);  // this process serves the socket
  set_log_level(LogLevel::info);
  const Ran bad = ctl({"log-level", "loud"});
  EXPECT_EQ(bad.exit_code, 1) << describe(bad);
  EXPECT_NE(bad.err.find("loud"), std::string::npos) << describe(bad);
}

TEST_F(SluicectlTest, SetWithoutAnEqualsSignExitsOne) {
  const Ran r = ctl({"set", "foo"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("expected KEY=VALUE"), std::string::npos) << describe(r);
  EXPECT_EQ(h_.state().generation(), 1u);
}

TEST_F(SluicectlTest, SecondsThatAreNotANumberInRangeExitOne) {
  for (const char* bad : {"nan", "inf", "0", "61", "-1", "x"}) {
    const Ran r = ctl({"top", "--count", "1", "--interval", bad});
    EXPECT_EQ(r.exit_code, 1) << bad << "\n" << describe(r);
    EXPECT_NE(r.err.find("--interval: " + std::string(bad) + " is not a number of seconds in"),
              std::string::npos)
        << describe(r);
  }
  const Ran wait = ctl({"status", "--wait", "nan"});
  EXPECT_EQ(wait.exit_code, 1) << describe(wait);
}

// A row of `top`: class name then offered, admitted, shed, admit%, tokens, sticky.
std::regex top_row(const std::string& cls) {
  return std::regex("^" + cls + R"(\s+\d+\s+\d+\s+-?\d+\s+[\d.]+%\s+\d+\s+\d+%\s+\S+)");
}

TEST_F(SluicectlTest, TopWithoutATerminalPrintsOneTablePerRefresh) {
  const Ran r = ctl({"top", "--count", "2", "--interval", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no terminal codes into a pipe";
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^sluice top - fake \(none\), generation 1)")), 2)
      << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^CLASS\s+OFFERED/s\s+ADMITTED/s\s+SHED/s)")), 2)
      << describe(r);
  for (const char* cls : {"checkpoint", "citizen", "default"})
    EXPECT_EQ(count_matching(r.out, top_row(cls)), 2) << cls << "\n" << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^queues: none \(XDP cannot queue\))")), 2)
      << describe(r);
}

TEST_F(SluicectlTest, TopShowsQueueAndPortRatesWhenTheDataplaneHasThem) {
  give_queues_and_ports(h_.dataplane());
  const Ran r = ctl({"top", "--count", "1", "--interval", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^PRIORITY\s+DEPTH\s+DROP FULL/s\s+DROP DELAY/s$)")),
            1)
      << describe(r);
  // The counters stand still, so every rate is 0; depth is a level.
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^0\s+7\s+0\s+0$)")), 1) << describe(r);
  EXPECT_EQ(
      count_matching(r.out, std::regex(R"(^PORT\s+RX/s\s+TX/s\s+DROPS/s\s+DROPS BY CAUSE /s$)")), 1)
      << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^outside\s+0\s+0\s+0\s+-$)")), 1) << describe(r);
  EXPECT_EQ(count_matching(r.out, std::regex(R"(^inside\s+0\s+0\s+0\s+-$)")), 1) << describe(r);
  EXPECT_EQ(r.out.find("XDP cannot queue"), std::string::npos) << describe(r);
}

// tmux gives `top` a real terminal of a known size, whose screen we can read.
class TmuxSession {
 public:
  TmuxSession(std::string server, std::string scratch)
      : server_(std::move(server)), scratch_(std::move(scratch)) {}
  // kill-server leaves the -L socket file behind; remove it too, from where
  // tmux puts it ($TMUX_TMPDIR or /tmp, then tmux-UID/NAME).
  ~TmuxSession() {
    tmux({"kill-server"});
    const char* dir = std::getenv("TMUX_TMPDIR");
    std::error_code ec;
    std::filesystem::remove(std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/tmux-" +
                                std::to_string(::getuid()) + "/" + server_,
                            ec);
  }
  Ran tmux(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-L", server_});
    return run_process(args, scratch_, 10s);
  }
  std::string screen() {
    const Ran r = tmux({"capture-pane", "-p"});
    return r.exit_code == 0 ? r.out : "";
  }

 private:
  std::string server_;
  std::string scratch_;
};

TEST_F(SluicectlTest, TopInATerminalRedrawsInPlace) {
  if (!std::filesystem::exists("/usr/bin/tmux")) {
    if (std::getenv("CI") != nullptr) FAIL() << "tmux is missing; scripts/install-deps installs it";
    GTEST_SKIP() << "tmux is not installed (scripts/install-deps installs it)";
  }
  TmuxSession tmux("sluice-test-" + std::to_string(::getpid()), h_.dir().path());
  const std::string command = kSluicectl + " --socket " + socket_path_ + " top --interval 0.3";
  const Ran started = tmux.tmux({"new-session", "-d", "-x", "150", "-y", "40", command});
  ASSERT_EQ(started.exit_code, 0) << describe(started);

  std::string screen;
  const auto has_frame = [&](const std::string& generation) {
    screen = tmux.screen();
    return screen.find("generation " + generation) != std::string::npos &&
           count_matching(screen, top_row("default")) == 1;
  };
  ASSERT_TRUE(test::eventually([&] { return has_frame("1"); }, 10s)) << "screen:\n" << screen;
  const std::vector<std::string> first = lines_of(screen);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].rfind("sluice top - fake (none), generation 1", 0), 0u) << screen;
  EXPECT_EQ(
      count_matching(screen,
                     std::regex(R"(^CLASS\s+OFFERED/s\s+ADMITTED/s\s+SHED/s\s+ADMIT%\s+TOKENS)")),
      1)
      << screen;
  for (const char* cls : {"checkpoint", "citizen", "default"})
    EXPECT_EQ(count_matching(screen, top_row(cls)), 1) << cls << "\n" << screen;

  // A change makes the next frames differ; the screen must then show that
  // frame alone, drawn over the old one from the top.
  ASSERT_TRUE(
      h_.call(test::set_request({{"class.citizen.rate_per_sec", "20000"}}))["ok"].get<bool>());
  ASSERT_TRUE(test::eventually([&] { return has_frame("2"); }, 10s)) << "screen:\n" << screen;
  const std::vector<std::string> second = lines_of(screen);
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second[0].rfind("sluice top - fake (none), generation 2", 0), 0u) << screen;
  EXPECT_EQ(count_matching(screen, std::regex("^CLASS ")), 1) << screen;
  EXPECT_EQ(screen.find("generation 1"), std::string::npos) << screen;
  for (const char* cls : {"checkpoint", "citizen", "default"})
    EXPECT_EQ(count_matching(screen, top_row(cls)), 1) << cls << "\n" << screen;
}

}  // namespace
}  // namespace sluice
