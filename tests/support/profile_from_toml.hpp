// SPDX-License-Identifier: Apache-2.0
// Inline TOML in tests goes through the production loader and compiler, so a
// test config is held to the same rules as an operator's.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "control/config/compile.hpp"
#include "control/config/config_loader.hpp"

namespace sluice::test {

inline CompiledProfile profile_from_toml(std::string_view toml) {
  LoadResult loaded = load_config_string(toml, "<test>");
  std::string errors;
  for (const ConfigError& e : loaded.errors) errors += e.to_string() + "\n";
  EXPECT_TRUE(loaded.ok()) << errors;
  if (!loaded.ok()) return CompiledProfile{};
  return compile_profile(*loaded.config);
}

}  // namespace sluice::test
