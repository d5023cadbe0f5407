// SPDX-License-Identifier: Apache-2.0
// Classes no packet can reach: classes are tried in order and the first
// whose match accepts a packet takes it (dataplane/model/classify.h), so a
// class whose match an earlier class's covers in every field never matches.
// A valid config, but most likely a mistake in the order: said as notes by
// `sluiced --check-config`, at a start or reload, and by a live change.
#pragma once

#include <string>
#include <vector>

#include "control/config/config.hpp"

namespace sluice {

// One note per class no packet can reach, in class order: `class "b" never
// matches: class "a" before it matches every packet it would`.
std::vector<std::string> unreachable_class_notes(const Config& config);

}  // namespace sluice
