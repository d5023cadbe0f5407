// SPDX-License-Identifier: Apache-2.0
// Checks of sluicectl's arguments that CLI11 does not make: numbers in
// decimal only, paths that name a file.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace sluice::cli {

// Decimal digits, with one '.' between them when `fraction`.
bool decimal(const std::string& text, bool fraction);

// A number of seconds in [lo, hi], written in decimal.
CLI::Validator seconds_between(double lo, double hi);

// A whole number in [lo, hi], written in decimal (a transform: it drops
// leading zeros before CLI11 converts it).
CLI::Validator whole_between(uint64_t lo, uint64_t hi);

// A path option: the empty string names no file.
CLI::Validator path_named();

// The control socket's path: named, and short enough for a unix socket.
CLI::Validator socket_named();

}  // namespace sluice::cli
