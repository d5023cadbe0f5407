// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/source_table.hpp"

#include "dataplane/common/keyed_hash.hpp"
#include "dataplane/model/decide.h"

namespace sluice {

// Keyed: the sources are the sender's to choose (spoofed), and with a fixed
// hash a flood of sources picked offline to share one probe run would make
// every charged packet walk it.
uint32_t SourceTable::Hash::operator()(const sl_source_key& k) const { return keyed_hash(k); }

sl_source_state* SourceTable::find_or_insert(const sl_source_key& key) {
  bool inserted = false;
  sl_source_state* s = lru_.insert(key, &inserted);
  if (inserted) sl_source_init(s);
  return s;
}

}  // namespace sluice
