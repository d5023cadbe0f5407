// SPDX-License-Identifier: Apache-2.0
// sluiced's own sticky-rank salt, for configs without admission.seed: 64
// random bits made at the first start and kept in a file, so that ranks stay
// put across restarts and cannot be predicted from the docs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

// sluiced's state directory: $STATE_DIRECTORY (systemd's StateDirectory=,
// the first of its paths) or /var/lib/sluice.
std::string state_directory();

// The seed file: state_directory()/seed.
std::string seed_file_path();

// Writes `text` to `path` (directory created, file 0600) atomically: a
// reader sees the old file or the whole new one. False + *error.
bool keep_file(const std::string& path, const std::string& text, std::string* error);

// Reads the seed kept in `path`, or makes one (getrandom) and keeps it there
// (directory created, file 0600, written atomically). nullopt + *error when
// it can be neither read nor kept; a file that holds no seed is left alone.
std::optional<uint64_t> load_or_create_seed(const std::string& path, std::string* error);

}  // namespace sluice
