// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the config loader on arbitrary bytes. Whatever the input,
// the loader must return a Config or errors, never throw, crash or hang; a
// document that loads must also survive an override through the same path.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/config/config_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::LoadResult loaded = sluice::load_config_string(text, "<fuzz>");
  if (loaded.ok() != loaded.errors.empty()) __builtin_trap();  // exactly one of config/errors
  if (!loaded.ok()) return 0;

  const std::vector<std::pair<std::string, std::string>> settings = {
      {"class.default.rate_per_sec", "1000"},
      {"boundary.lookups_per_sec", "20000"},
  };
  sluice::LoadResult retuned = sluice::apply_overrides(text, "<fuzz>", settings);
  if (retuned.ok() != retuned.errors.empty()) __builtin_trap();
  for (const auto& [name, overlay] : loaded.config->profiles) {
    (void)sluice::apply_profile(text, "<fuzz>", name);
  }
  return 0;
}
