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
// line's) may have. sluice's own keys have at most four; with toml++'s 256
// levels of inline tables a document nests at most 256 * 32 deep.
inline constexpr std::size_t kMaxKeyParts = 32;

// toml::parse, refusing first (a toml::parse_error at the key's first part)
// any key of more than kMaxKeyParts parts.
toml::table parse_toml(std::string_view text, std::string_view source = {});

}  // namespace sluice
