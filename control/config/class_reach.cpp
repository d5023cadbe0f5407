// SPDX-License-Identifier: Apache-2.0
#include "control/config/class_reach.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_set>

namespace sluice {
namespace {

// A prefix as a set key: family, length, and the address masked to it.
std::string prefix_key(uint8_t family, uint8_t len, const std::array<uint8_t, 16>& addr) {
  std::string k(2 + 16, '\0');
  k[0] = static_cast<char>(family);
  k[1] = static_cast<char>(len);
  for (std::size_t i = 0; i < 16; i++) {
    const int bits = static_cast<int>(len) - static_cast<int>(i * 8);
    const uint8_t mask = bits >= 8   ? 0xff
                         : bits <= 0 ? 0
                                     : static_cast<uint8_t>(0xff << (8 - bits));
    k[2 + i] = static_cast<char>(addr[i] & mask);
  }
  return k;
}

// One class's prefixes (of src or dst), to ask whether some of them holds
// a prefix: one lookup per length up to the prefix's, not one compare per
// prefix (classes hold up to hundreds of thousands).
class PrefixSet {
 public:
  explicit PrefixSet(const std::vector<Prefix>& prefixes) {
    for (const Prefix& p : prefixes) keys_.insert(prefix_key(p.family, p.len, p.addr));
  }
  // Some prefix of the set holds every address p holds.
  bool holds(const Prefix& p) const {
    for (int len = 0; len <= p.len; len++)
      if (keys_.count(prefix_key(p.family, static_cast<uint8_t>(len), p.addr))) return true;
    return false;
  }

 private:
  std::unordered_set<std::string> keys_;
};

// Every value `later` accepts, `earlier` accepts too. An empty list accepts
// every value (and a packet without the field); a list accepts what is in
// it. So an empty `later` is covered only by an empty `earlier`.
template <typename T, typename Holds>
bool covers(const std::vector<T>& earlier, const std::vector<T>& later, Holds holds) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), holds);
}

template <typename T>
bool covers_values(const std::vector<T>& earlier, const std::vector<T>& later) {
  return covers(earlier, later, [&](const T& l) {
    return std::find(earlier.begin(), earlier.end(), l) != earlier.end();
  });
}

struct ClassSets {
  PrefixSet src, dst;
};

bool match_covers(const MatchConfig& a, const ClassSets& sets, const MatchConfig& b) {
  return covers(a.src, b.src, [&](const Prefix& p) { return sets.src.holds(p); }) &&
         covers(a.dst, b.dst, [&](const Prefix& p) { return sets.dst.holds(p); }) &&
         covers_values(a.protocols, b.protocols) && covers_values(a.dscp, b.dscp) &&
         covers(a.dst_ports, b.dst_ports, [&](const PortRange& l) {
           return std::any_of(a.dst_ports.begin(), a.dst_ports.end(),
                              [&](const PortRange& e) { return e.lo <= l.lo && l.hi <= e.hi; });
         });
}

}  // namespace

std::vector<std::string> unreachable_class_notes(const Config& config) {
  std::vector<ClassSets> sets;
  sets.reserve(config.classes.size());
  for (const ClassConfig& c : config.classes)
    sets.push_back({PrefixSet(c.match.src), PrefixSet(c.match.dst)});
  std::vector<std::string> notes;
  for (std::size_t j = 1; j < config.classes.size(); j++) {
    for (std::size_t i = 0; i < j; i++) {
      if (!match_covers(config.classes[i].match, sets[i], config.classes[j].match)) continue;
      notes.push_back("class \"" + config.classes[j].name + "\" never matches: class \"" +
                      config.classes[i].name + "\" before it matches every packet it would");
      break;
    }
  }
  return notes;
}

}  // namespace sluice
