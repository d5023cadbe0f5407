// SPDX-License-Identifier: Apache-2.0
// Notes on a valid config: what is most likely a mistake (a class no packet
// can reach, class_reach.hpp) or a limit of the devices it names that an
// operator should know before traffic finds it. Said by `sluiced
// --check-config`, at a start or reload (log `config note`), and by a live
// change that causes one (its reply's `notes`).
#pragma once

#include <string>
#include <vector>

#include "control/config/config.hpp"

namespace sluice {

// The notes on config, classes first, in class order.
std::vector<std::string> config_notes(const Config& config);

}  // namespace sluice
