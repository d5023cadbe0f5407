// SPDX-License-Identifier: Apache-2.0
#include "dataplane/dpdk/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf_dyn.h>
#include <sched.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>

namespace sluice::dpdk {
namespace {

std::mutex g_mutex;
bool g_running = false;
bool g_used = false;
std::string g_failed;  // why the one start this process had failed ("": it did not)
int g_tag_offset = -1;

// Whether the operator's args give one of these options, spelled as the
// EAL's getopt_long takes it: a long option by any prefix ("--lcore=...";
// a prefix that fits several is refused by the EAL, whatever we add), its
// value after '=' or in the next arg; a short one alone, with its value
// attached (-l0-3), or at the end of a bundle of flags (-vl 0-3: -v is the
// only flag that takes no value and does not end the EAL).
bool has_arg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (const std::string& a : args) {
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      const std::string given = a.substr(0, a.find('='));
      for (const std::string n : names)
        if (n.size() > 2 && n.rfind("--", 0) == 0 && n.rfind(given, 0) == 0) return true;
    } else if (a.size() > 1 && a[0] == '-') {
      const std::size_t at = a.find_first_not_of('v', 1);
      if (at == std::string::npos) continue;
      for (const std::string n : names)
        if (n.size() == 2 && n[0] == '-' && a[at] == n[1]) return true;
    }
  }
  return false;
}

// "--lcores=0@(0,1),1@1": the main lcore floats, each worker owns a CPU.
bool lcore_map(uint32_t workers, std::string* out, std::string* error) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    *error = std::string("cannot read the CPU affinity: ") + std::strerror(errno);
    return false;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.empty()) {
    *error = "no CPU allowed";
    return false;
  }
  if (workers > cpus.size()) {
    *error = "dpdk_workers = " + std::to_string(workers) + " but only " +
             std::to_string(cpus.size()) +
             " CPUs are allowed: polling workers would share CPUs (pin them yourself with "
             "--lcores in dpdk_args to force it)";
    return false;
  }
  std::string all;
  for (int c : cpus) all += (all.empty() ? "" : ",") + std::to_string(c);
  std::string map = "--lcores=0@(" + all + ")";
  for (uint32_t w = 0; w < workers; w++) {
    const int cpu = cpus[cpus.size() - 1 - w];
    map += "," + std::to_string(w + 1) + "@" + std::to_string(cpu);
  }
  *out = map;
  return true;
}

// The EAL's command line: argv[0], what sluice adds, and the operator's args.
// Ours come first: an operator's option left without its value at the end
// would otherwise take them as its value (--vdev the lcore map).
bool eal_argv(const std::vector<std::string>& args, uint32_t workers,
              std::vector<std::string>* argv_s, std::string* error) {
  *argv_s = {"sluiced"};
  if (!has_arg(args, {"-l", "-c", "--lcores"})) {
    std::string map;
    if (!lcore_map(workers, &map, error)) return false;
    argv_s->push_back(map);
  }
  if (!has_arg(args, {"--file-prefix", "--in-memory", "--no-shconf"}))
    argv_s->push_back("--no-shconf");
  argv_s->insert(argv_s->end(), args.begin(), args.end());
  return true;
}

// What the EAL said of its arguments, without its usage text and its notes
// on the machine: getopt's complaints and the EAL's errors, each once.
std::string eal_complaints(const std::string& output) {
  std::istringstream in(output);
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const bool getopt = line.rfind("dpdk_args: ", 0) == 0;
    // -v prints the version as an EAL line: no complaint.
    const bool eal = line.rfind("EAL: ", 0) == 0 && line.rfind("EAL: Detected", 0) != 0 &&
                     line.rfind("EAL: RTE Version", 0) != 0 &&
                     line.find("Invalid 'command line' arguments") == std::string::npos;
    if (!getopt && !eal) continue;
    line = line.substr(getopt ? 11 : 5);
    if (std::find(kept.begin(), kept.end(), line) == kept.end()) kept.push_back(line);
  }
  std::string joined;
  for (std::size_t i = 0; i < kept.size() && i < 4; i++) joined += (i ? "; " : "") + kept[i];
  if (kept.size() > 4) joined += "; ...";
  return joined;
}

}  // namespace

bool eal_check(const std::vector<std::string>& args, uint32_t workers, std::string* error) {
  std::vector<std::string> argv_s;
  if (!eal_argv(args, workers, &argv_s, error)) return false;
  // The EAL parses its options in order, and stops at the first it does not
  // know, before it touches a device: a terminator of ours, then another (an
  // option left without its value takes the first). Reaching the first, with
  // nothing else refused, is a pass; reaching the second means the last
  // option has no value, which a start would refuse. An option that asks for
  // the usage (-h, a prefix of --help, h in a bundle: -vh) exits 0 first, as
  // it would end sluiced at its start. "--" (it would end the options
  // before the terminator) is refused by the validator. The checks the EAL
  // makes of options together (after the loop: --socket-mem with
  // --no-huge) are not reached: only a start makes them.
  static const std::string kEnd = "--sluice-end-of-eal-options";
  static const std::string kEndAgain = kEnd + "-again";
  argv_s[0] = "dpdk_args";  // getopt's complaints name it
  argv_s.push_back(kEnd);
  argv_s.push_back(kEndAgain);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    *error = std::string("cannot check the EAL arguments: pipe: ") + std::strerror(errno);
    return false;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("cannot check the EAL arguments: fork: ") + std::strerror(errno);
    ::close(out[0]);
    ::close(out[1]);
    return false;
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::unsetenv("POSIXLY_CORRECT");  // getopt would stop at the first non-option
    ::alarm(10);
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int parsed = rte_eal_init(static_cast<int>(argv_s.size()), argv.data());
    std::fflush(nullptr);
    ::_exit(parsed < 0 ? 1 : 2);  // 2: past the options (never expected): stop here
  }
  ::close(out[1]);
  std::string output;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    if (output.size() < (1 << 20)) output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  ::kill(pid, SIGKILL);  // gone already, unless it hung
  int status = 0;
  pid_t waited;
  while ((waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited != pid) {
    *error = std::string("cannot check the EAL arguments: waitpid: ") + std::strerror(errno);
    return false;
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0) {
    *error =
        "an option asks for the EAL's usage (-h, a prefix of --help, or h in a bundle such as "
        "-vh): the EAL would print it and end sluiced at its start";
    return false;
  }
  // What it refused besides the terminator (getopt names it once per pass).
  std::string kept;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.find(kEnd) == std::string::npos) kept += line + "\n";
  const std::string said = eal_complaints(kept);
  const bool reached = output.find("unrecognized option '" + kEnd + "'") != std::string::npos;
  if (code == 1 && said.empty() && reached) return true;
  const bool taken = output.find("unrecognized option '" + kEndAgain + "'") != std::string::npos;
  if (code == 1 && said.empty() && taken && !args.empty()) {
    *error = "its last option, \"" + args.back() + "\", has no value";
    return false;
  }
  *error = "DPDK's EAL refuses them: " +
           (!said.empty() ? said
            : code == 2   ? std::string("it went past its options")
                          : std::string("no reason given (the check ended with status ") +
                              std::to_string(status) + ")");
  return false;
}

bool eal_start(const std::vector<std::string>& args, uint32_t workers, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_running) return true;
  if (g_used) {
    *error =
        "the DPDK EAL was started in this process before" +
        (g_failed.empty() ? std::string() : " (and failed: " + g_failed + ")") +
        ", and DPDK starts it once per process: restart sluiced (systemctl restart sluiced) to "
        "start DPDK again";
    return false;
  }
  std::vector<std::string> argv_s;
  if (!eal_argv(args, workers, &argv_s, error)) return false;
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  g_used = true;
  if (rte_eal_init(static_cast<int>(argv_s.size()), argv.data()) < 0) {
    *error = std::string("DPDK EAL did not start: ") + rte_strerror(rte_errno);
    std::string joined;
    for (size_t i = 1; i < argv_s.size(); i++) joined += " " + argv_s[i];
    *error += " (EAL arguments:" + joined + ")";
    g_failed = *error;
    return false;
  }
  static const rte_mbuf_dynfield tag_field = {"sluice_queue_tag", sizeof(QueueTag),
                                              alignof(QueueTag), 0};
  g_tag_offset = rte_mbuf_dynfield_register(&tag_field);
  if (g_tag_offset < 0) {
    *error = std::string("cannot register the mbuf queue field: ") + rte_strerror(rte_errno);
    g_failed = *error;
    rte_eal_cleanup();
    return false;
  }
  g_running = true;
  return true;
}

bool eal_running() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_running;
}

bool eal_spent() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_used && !g_running;
}

void eal_stop() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_running) return;
  rte_eal_cleanup();
  g_running = false;
}

int queue_tag_offset() { return g_tag_offset; }

}  // namespace sluice::dpdk
