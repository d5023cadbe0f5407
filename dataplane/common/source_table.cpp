// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/source_table.hpp"

#include "dataplane/model/bucket.h"
#include "dataplane/model/sticky.h"

namespace sluice {

uint32_t SourceTable::Hash::operator()(const sl_source_key& k) const {
  return static_cast<uint32_t>(sl_key_hash(&k, 0x51ce));
}

sl_source_state* SourceTable::find_or_insert(const sl_source_key& key,
                                             const sl_bucket_params& params, uint64_t now_ns) {
  bool inserted = false;
  sl_source_state* s = lru_.insert(key, &inserted);
  if (inserted) sl_bucket_init(&s->bucket, &params, now_ns);
  return s;
}

}  // namespace sluice
