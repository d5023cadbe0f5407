// SPDX-License-Identifier: Apache-2.0
#include "dataplane/common/keyed_hash.hpp"

#include <random>

namespace sluice::keyed_hash_detail {

namespace {
Keys draw() {
  Keys keys;
  std::random_device rd;
  for (uint64_t& x : keys.k) x = uint64_t{rd()} << 32 | rd();
  return keys;
}
}  // namespace

const Keys kKeys = draw();

}  // namespace sluice::keyed_hash_detail
