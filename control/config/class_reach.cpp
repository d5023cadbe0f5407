// SPDX-License-Identifier: Apache-2.0
#include "control/config/class_reach.hpp"

#include <algorithm>
#include <cstddef>

namespace sluice {
namespace {

// q holds every address p holds: the same family, no longer, and p's
// address under q's length is q's.
bool prefix_holds(const Prefix& q, const Prefix& p) {
  if (q.family != p.family || q.len > p.len) return false;
  const std::size_t whole = q.len / 8;
  if (!std::equal(q.addr.begin(), q.addr.begin() + static_cast<std::ptrdiff_t>(whole),
                  p.addr.begin()))
    return false;
  const unsigned rest = q.len % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (q.addr[whole] & mask) == (p.addr[whole] & mask);
}

// Every value `later` accepts, `earlier` accepts too. An empty list accepts
// every value (and a packet without the field); a list accepts what is in
// it. So an empty `later` is covered only by an empty `earlier`.
template <typename T, typename Holds>
bool covers(const std::vector<T>& earlier, const std::vector<T>& later, Holds holds) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const T& l) {
    return std::any_of(earlier.begin(), earlier.end(), [&](const T& e) { return holds(e, l); });
  });
}

bool match_covers(const MatchConfig& a, const MatchConfig& b) {
  auto same = [](auto x, auto y) { return x == y; };
  return covers(a.src, b.src, prefix_holds) && covers(a.dst, b.dst, prefix_holds) &&
         covers(a.protocols, b.protocols, same) && covers(a.dscp, b.dscp, same) &&
         covers(a.dst_ports, b.dst_ports, [](const PortRange& e, const PortRange& l) {
           return e.lo <= l.lo && l.hi <= e.hi;
         });
}

}  // namespace

std::vector<std::string> unreachable_class_notes(const Config& config) {
  std::vector<std::string> notes;
  for (std::size_t j = 1; j < config.classes.size(); j++) {
    for (std::size_t i = 0; i < j; i++) {
      if (!match_covers(config.classes[i].match, config.classes[j].match)) continue;
      notes.push_back("class \"" + config.classes[j].name + "\" never matches: class \"" +
                      config.classes[i].name + "\" before it matches every packet it would");
      break;
    }
  }
  return notes;
}

}  // namespace sluice
