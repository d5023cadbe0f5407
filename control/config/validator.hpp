// SPDX-License-Identifier: Apache-2.0
// The validator: one pass over a parsed document producing a Config. Generic
// readers here; the sections in validator.cpp, classes, match and profiles
// in validator_classes.cpp.
#pragma once

#include "control/config/loader_detail.hpp"

namespace sluice::loader {

// Walks one parsed document. Every reader reports its own errors and returns
// nullopt/nullptr on failure, so callers only decide what to do without a value.
class Validator {
 public:
  // The config's top-level tables (and the [[class]] list), in the order
  // "unknown key" errors list them.
  static inline const std::vector<std::string_view> kTopLevelTables = {
      "dataplane", "boundary", "admission", "metrics", "control", "fleet", "class", "profiles"};

  explicit Validator(Diagnostics& diag) : diag_(diag) {}

  void document(const toml::table& doc, Config& out) {
    reject_unknown(doc, "", kTopLevelTables);
    if (const toml::node* n = doc.get("dataplane")) dataplane(*n, out.dataplane);
    if (const toml::node* n = doc.get("boundary")) boundary(*n, out.boundary);
    if (const toml::node* n = doc.get("admission")) admission(*n, out.admission);
    if (const toml::node* n = doc.get("metrics")) metrics(*n, out.metrics);
    if (const toml::node* n = doc.get("control")) control(*n, out.control);
    if (const toml::node* n = doc.get("fleet")) fleet(*n, out.fleet);
    if (const toml::node* n = doc.get("class")) classes(*n, out.classes);
    if (out.classes.empty() || out.classes.back().name != kDefaultClassName) {
      out.classes.push_back(implied_default_class());
    }
    if (const toml::node* n = doc.get("profiles")) profiles(*n, out.profiles);
    adaptive_needs_inline(doc, out);
    listeners_apart(doc, out);
  }

  static ClassConfig implied_default_class() {
    ClassConfig c;
    c.name = kDefaultClassName;
    c.priority = SL_PRIORITIES - 1;
    return c;
  }

 private:
  // --- generic readers ---

  void fail(const toml::node& n, const std::string& key, const std::string& expected) {
    diag_.report(n.source(), key, "expected " + expected + ", found " + describe(n));
  }

  std::optional<int64_t> integer(const toml::node& n, const std::string& key, int64_t lo,
                                 int64_t hi) {
    const auto* v = n.as_integer();
    if (v != nullptr && v->get() >= lo && v->get() <= hi) return v->get();
    fail(n, key, "an integer " + range_text(lo, hi));
    return std::nullopt;
  }

  // An integer in the range the schema gives the key.
  std::optional<int64_t> integer(const toml::node& n, const std::string& key, const KeySpec& spec) {
    return integer(n, key, spec.min, spec.max);
  }
  std::optional<int64_t> integer(const Field& f) { return integer(*f.node, f.key, f.spec); }

  std::optional<bool> boolean(const toml::node& n, const std::string& key) {
    if (const auto* v = n.as_boolean()) return v->get();
    fail(n, key, "a boolean (true or false)");
    return std::nullopt;
  }

  const std::string* string(const toml::node& n, const std::string& key) {
    if (const auto* v = n.as_string()) return &v->get();
    fail(n, key, "a string");
    return nullptr;
  }

  template <typename E>
  std::optional<E> keyword(const Field& f,
                           std::initializer_list<std::pair<std::string_view, E>> choices) {
    return keyword<E>(*f.node, f.key, f.spec, choices);
  }

  // One of the schema's words for the key, mapped by `choices` (which must
  // name exactly those words: KeyWordsAreTheSchemas checks every keyword).
  template <typename E>
  std::optional<E> keyword(const toml::node& n, const std::string& key, const KeySpec& spec,
                           std::initializer_list<std::pair<std::string_view, E>> choices) {
    const std::vector<std::string_view> allowed = words_of(spec);
    bool same = allowed.size() == choices.size();
    for (std::size_t i = 0; same && i < allowed.size(); i++)
      same = (choices.begin() + i)->first == allowed[i];
    if (!same) {
      diag_.report(n.source(), key,
                   "internal error: the validator's words differ from the schema's");
      return std::nullopt;
    }
    if (const auto* s = n.as_string()) {
      for (const auto& [word, value] : choices) {
        if (s->get() == word) return value;
      }
    }
    std::string words;
    std::size_t i = 0;
    for (const auto& choice : choices) {
      if (i > 0) words += (i + 1 == choices.size()) ? " or " : ", ";
      words += quoted(choice.first);
      ++i;
    }
    fail(n, key, words);
    return std::nullopt;
  }

  const toml::table* table(const toml::node& n, const std::string& key) {
    if (const auto* t = n.as_table()) return t;
    fail(n, key, "a table");
    return nullptr;
  }

  void reject_unknown(const toml::table& t, const std::string& prefix, Names known) {
    for (auto&& [k, v] : t) {
      if (std::find(known.begin(), known.end(), k.str()) != known.end()) continue;
      const toml::source_region& where = k.source().path ? k.source() : v.source();
      diag_.report(where, join_key(prefix, k.str()),
                   "unknown key; expected one of: " + list_names(known));
    }
  }

  // Applies `each(element, element_key)` to a value or to every element of an
  // array of values. An empty array is an error: it would silently mean "any".
  template <typename F>
  void one_or_many(const toml::node& n, const std::string& key, F&& each) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      each(n, key);
      return;
    }
    if (a->empty()) {
      diag_.report(n.source(), key, "empty list; remove the key to match anything");
      return;
    }
    for (std::size_t i = 0; i < a->size(); ++i) each((*a)[i], index_key(key, i));
  }

  // A token bucket: rate in 1..1e9 per second and a burst in 1..1e9 tokens
  // defaulting to max(1, rate / 10). A burst without a rate would be a bucket
  // that never refills, so it is an error rather than silently ignored.
  void rate_and_burst(const toml::table& t, std::string_view table, const std::string& prefix,
                      std::string_view rate_name, std::string_view burst_name,
                      std::optional<uint64_t>& rate, uint64_t& burst) {
    const toml::node* rn = t.get(rate_name);
    const toml::node* bn = t.get(burst_name);
    if (rn != nullptr) {
      if (auto v = integer(*rn, join_key(prefix, rate_name), key_spec(table, rate_name))) rate = *v;
    }
    if (bn == nullptr) {
      if (rate) burst = std::max<uint64_t>(1, *rate / 10);
      return;
    }
    if (rn == nullptr) {
      diag_.report(
          bn->source(), join_key(prefix, burst_name),
          "a burst needs its rate: set " + std::string(rate_name) + " too, or remove the burst");
      return;
    }
    if (auto v = integer(*bn, join_key(prefix, burst_name), key_spec(table, burst_name)))
      burst = *v;
  }

  // --- sections ---

  void dataplane(const toml::node& n, DataplaneConfig& out);

  void dpdk_args(const toml::node& n, const std::string& key, DataplaneConfig& out);

  void boundary(const toml::node& n, BoundaryConfig& out);
  void adaptive(const toml::table& t, const std::string& key, BoundaryConfig& out);
  void adaptive_needs_inline(const toml::table& doc, const Config& out);
  void listeners_apart(const toml::table& doc, const Config& out);

  // Priority p may not take the last reserve[p] percent of a burst. A lower
  // priority reserving less than a higher one would let it dig into the share
  // kept for the higher one, so the reserves must not decrease with p.
  void reserves(const toml::node& n, const std::string& key,
                std::array<uint32_t, SL_PRIORITIES>& out);

  void admission(const toml::node& n, AdmissionConfig& out);

  // The window is a slice of the epoch; a window as long as the epoch would
  // make every source sticky-shed for the whole epoch.
  void sticky_window(const toml::node& n, const std::string& key, uint64_t window_ms,
                     uint64_t epoch_sec);

  void metrics(const toml::node& n, MetricsConfig& out);

  void control(const toml::node& n, ControlConfig& out);
  void fleet(const toml::node& n, std::optional<FleetConfig>& out);
  void etcd_access(const toml::table& t, const std::string& key, FleetConfig& f);
  // t.name as an absolute file path into dst (an error at it otherwise);
  // the node, or null when t has no such key.
  const toml::node* absolute_path(const toml::table& t, const std::string& key, const char* name,
                                  std::string& dst);

  // --- classes ---

  void classes(const toml::node& n, std::vector<ClassConfig>& out);

  bool class_name(const toml::table& t, const std::string& fallback_key, std::string& name);

  void class_body(const toml::table& t, const std::string& key, bool is_default, ClassConfig& c);

  // mark_dscp belongs to on_shed = "mark" alone: required with it, and an
  // error elsewhere because it would be silently ignored.
  void shed_action(const toml::table& t, const std::string& key, ClassConfig& c);

  void per_source(const toml::node& n, const std::string& key, ClassConfig& c);

  // --- match ---

  void match(const toml::node& n, const std::string& key, MatchConfig& out);

  void prefixes(const toml::node& n, const std::string& key, std::vector<Prefix>& out);

  void protocols(const toml::node& n, const std::string& key, std::vector<uint8_t>& out);

  void ports(const toml::node& n, const std::string& key, std::vector<PortRange>& out);

  // Ports exist only in TCP and UDP headers; a port match on any other
  // protocol could never match, which is surely not what was meant.
  void ports_need_tcp_or_udp(const toml::node& n, const std::string& key, const MatchConfig& m);

  // --- profiles ---

  void profiles(const toml::node& n, std::map<std::string, ProfileOverlay>& out);

  Diagnostics& diag_;
};

}  // namespace sluice::loader
