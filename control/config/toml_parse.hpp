// SPDX-License-Identifier: Apache-2.0
// Every TOML text sluice reads (files, applies, fleet records, `set` values)
// goes through parse_toml: toml++ builds, formats and frees nested tables by
// recursion, one table per dot of a dotted key, and its own nesting limit
// (256) counts only arrays and inline tables. A key of 60,000 parts
// ("a.a.a....b = 1", 120 KB) overflowed the stack and killed sluiced.
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <string_view>

namespace sluice {

// The most parts a dotted key (a table header's, an inline table's or a
// line's) may have, and the most levels of arrays and inline tables one
// inside another. sluice's own keys have at most four parts and two levels;
// a document then nests at most 64 * 32 tables deep (20,000 were measured
// safe on sluiced's threads, 60,000 overflowed).
inline constexpr std::size_t kMaxKeyParts = 32;
inline constexpr std::size_t kMaxNesting = 64;

// toml::parse, refusing first (a toml::parse_error where it is) any key of
// more than kMaxKeyParts parts and any nesting deeper than kMaxNesting.
toml::table parse_toml(std::string_view text, std::string_view source = {});

}  // namespace sluice
