// SPDX-License-Identifier: Apache-2.0
// sluiced's own sticky-rank salt, for configs without admission.seed: 64
// random bits made at the first start and kept in a file, so that ranks stay
// put across restarts and cannot be predicted from the docs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

// The seed file: $STATE_DIRECTORY/seed (systemd's StateDirectory=, the first
// of its paths) or /var/lib/sluice/seed.
std::string seed_file_path();

// Reads the seed kept in `path`, or makes one (getrandom) and keeps it there
// (directory created, file 0600, written atomically). nullopt + *error when
// it can be neither read nor kept; a file that holds no seed is left alone.
std::optional<uint64_t> load_or_create_seed(const std::string& path, std::string* error);

}  // namespace sluice
