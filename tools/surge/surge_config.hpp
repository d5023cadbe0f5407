#pragma once
// Typed configuration of sluice-surge: what to send, to whom, how fast and how
// clients retry. Raw user input (CLI flags, --class specs, a JSON scenario) is
// validated and converted once here; the load engine never re-validates.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

enum class SurgeProto { tcp, udp };

// How a simulated user behaves when an attempt does not give them a code.
enum class RetryModel {
  none,       // one attempt per intent
  immediate,  // retry at once on failure, up to max_retries
  backoff,    // retry after U(0, min(cap, base * 2^n)) ms ("full jitter")
  refresh,    // a new attempt every refresh period until one succeeds
};

struct SurgeEndpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;
};

struct SurgeClass {
  std::string name;
  std::vector<SurgeEndpoint> sources;  // one per intent, round-robin; empty = kernel's choice
  SurgeEndpoint destination;
  SurgeProto proto = SurgeProto::tcp;
  double share = 1.0;  // normalised over all classes at build time
  RetryModel retry = RetryModel::none;
  uint32_t max_retries = 3;        // retries, not counting the first attempt
  uint32_t backoff_base_ms = 50;   // backoff only
  uint32_t backoff_cap_ms = 2000;  // backoff only
  double refresh_sec = 5.0;        // refresh only
  // An intent is a session: this many lookups one after the other (login,
  // fetch code, report scan), each with its own retries, all from one source
  // address; it succeeds only if every lookup does.
  uint32_t session_lookups = 1;
  uint32_t session_gap_ms = 0;  // think time between a lookup's answer and the next
};

// Offered intents/s over time: baseline, then a step or linear ramp to
// target_per_sec starting at step_at_sec, back to baseline at back_at_sec.
struct RateProfile {
  double baseline_per_sec = 100.0;
  std::optional<double> target_per_sec;  // unset = flat baseline
  double step_at_sec = 0.0;
  double ramp_sec = 0.0;              // 0 = instantaneous step
  std::optional<double> back_at_sec;  // unset = stay at target
  double duration_sec = 10.0;         // hard bound on arrivals

  double rate_at(double t_sec) const;
  double max_rate() const;
};

struct SurgeConfig {
  RateProfile profile;
  std::vector<SurgeClass> classes;
  uint32_t max_inflight = 4096;
  uint32_t timeout_ms = 1000;  // per attempt, from when its socket is opened
  uint64_t seed = 1;
  bool progress = true;
};

// Raw, unvalidated input: every key as text, so CLI flags, --class specs and a
// JSON scenario share one builder. Later sources override earlier ones.
struct SurgeRawInput {
  std::map<std::string, std::string> globals;                    // key -> value
  std::vector<std::multimap<std::string, std::string>> classes;  // per class key -> values
};

// Parses "name=x,src=a,src=b,share=0.05,retry=none" into a class key list.
// Sources may also be separated by '|' ("src=a|b").
std::multimap<std::string, std::string> parse_class_spec(const std::string& spec);

// Merges a JSON scenario file into raw (file values do not override keys
// already present, so call this before applying CLI flags). Returns an error
// message or "" on success.
std::string load_scenario_file(const std::string& path, SurgeRawInput& raw);

// Validates everything and builds the typed config. Returns an error message
// (naming the offending key/value) or "" on success.
std::string build_surge_config(const SurgeRawInput& raw, SurgeConfig& out);

// The lab's safety fence: 198.18.0.0/15, 2001:2::/48, 127.0.0.0/8 and ::1.
bool is_allowed_destination(const sockaddr_storage& addr);

// "a.b.c.d:port", "[v6]:port" (with_port) or a bare address (!with_port).
std::string parse_endpoint(const std::string& text, bool with_port, SurgeEndpoint& out);

const char* to_string(RetryModel m);
const char* to_string(SurgeProto p);

}  // namespace sluice
