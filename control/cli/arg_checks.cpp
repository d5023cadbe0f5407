// SPDX-License-Identifier: Apache-2.0
#include "control/cli/arg_checks.hpp"

#include <sys/un.h>

#include <algorithm>

namespace sluice::cli {

// Decimal digits, with one '.' between them when `fraction`. CLI11 reads
// numbers as strtod and strtoll with base 0 do: "0x10" as 16, "010" as 8,
// "1e3", "nan" and "inf" too.
bool decimal(const std::string& text, bool fraction) {
  const std::size_t dot = fraction ? text.find('.') : std::string::npos;
  const std::string whole = text.substr(0, dot);
  const std::string part = dot == std::string::npos ? "0" : text.substr(dot + 1);
  auto digits = [](const std::string& t) {
    return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
  };
  return digits(whole) && digits(part);
}

// A number of seconds in [lo, hi], written in decimal. CLI::Range lets
// "nan" through (every comparison with NaN is false), and `top --interval
// nan` then never slept.
CLI::Validator seconds_between(double lo, double hi) {
  const std::string range =
      "[" + CLI::detail::to_string(lo) + " - " + CLI::detail::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) {
        double v = 0;
        if (!decimal(text, true) || !CLI::detail::lexical_cast(text, v) || !(v >= lo && v <= hi))
          return text + " is not a number of seconds in " + range;
        return std::string();
      },
      "SECONDS in " + range);
}

// A whole number in [lo, hi], written in decimal: leading zeros are
// dropped before CLI11 converts it (it would read "010" as 8).
CLI::Validator whole_between(uint64_t lo, uint64_t hi) {
  const std::string range = "[" + std::to_string(lo) + " - " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) {
        const std::size_t first = std::min(text.find_first_not_of('0'), text.size() - 1);
        const bool ok = decimal(text, false) && text.size() - first <= 19 &&
                        std::stoull(text) >= lo && std::stoull(text) <= hi;
        if (!ok) return text + " is not a whole number in " + range;
        text.erase(0, first);
        return std::string();
      },
      "UINT in " + range);
}

// A path option: the empty string names no file.
CLI::Validator path_named() {
  return CLI::Validator(
      [](const std::string& v) {
        return v.empty() ? std::string("an empty path; give a file's path") : std::string();
      },
      "PATH");
}

CLI::Validator socket_named() {
  return CLI::Validator(
      [](const std::string& v) {
        if (v.empty()) return std::string("an empty path; give a file's path");
        if (v.size() >= sizeof(sockaddr_un::sun_path))
          return "a unix socket's path has at most " +
                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes; this one has " +
                 std::to_string(v.size());
        return std::string();
      },
      "PATH");
}

}  // namespace sluice::cli
