// SPDX-License-Identifier: Apache-2.0
// The config schema and the loader agree: every integer key of the schema is
// accepted at its minimum and maximum and refused one past them with the
// schema's range in the message, every keyword accepts exactly the schema's
// words, an unknown key is answered with the schema's key list, and the keys
// the schema marks restart-only are the ones a retune refuses. (The docs'
// key tables are checked against the schema by the config_doc_current test.)
#include <gtest/gtest.h>

#include <climits>
#include <string>

#include "control/config/config_diff.hpp"
#include "control/config/config_loader.hpp"
#include "control/config/schema.hpp"
#include "dataplane/model/abi.h"

namespace sluice {
namespace {

// A config that sets `spec`'s key to `value` (TOML text), with whatever the
// key needs beside it to be valid.
std::string with_value(const KeySpec& spec, const std::string& value) {
  const std::string name(spec.name);
  if (spec.table == "class") {
    std::string extra;
    if (name == "burst") extra = "rate_per_sec = 100\n";
    if (name == "mark_dscp") extra = "on_shed = \"mark\"\n";
    if (name == "on_shed" && value == "\"mark\"") extra = "mark_dscp = 1\n";
    return "[[class]]\nname = \"c\"\n" + extra + name + " = " + value + "\n";
  }
  if (spec.table == "class.per_source") {
    const std::string rate = name == "rate_per_sec" ? "" : "rate_per_sec = 10, ";
    return "[[class]]\nname = \"c\"\nper_source = { " + rate + name + " = " + value + " }\n";
  }
  if (spec.table == "class.match")
    return "[[class]]\nname = \"c\"\nmatch = { " + name + " = " + value + " }\n";
  std::string extra;
  if (name == "lookups_burst") extra = "lookups_per_sec = 1000\n";
  if (name == "packets_burst") extra = "packets_per_sec = 1000\n";
  if (name == "sticky_window_ms") extra = "sticky_epoch_sec = 86400\n";
  if (spec.table == "fleet") extra = "etcd = [\"http://127.0.0.1:2379\"]\nnode = \"a\"\n";
  if (name == "sync_ms") extra += "lease_ttl_sec = 60\n";  // a sync at most every half lease
  if (spec.type == "8 integers")
    return "[" + std::string(spec.table) + "]\n" + name + " = [0, 0, 0, 0, 0, 0, 0, " + value +
           "]\n";
  return "[" + std::string(spec.table) + "]\n" + extra + name + " = " + value + "\n";
}

std::string first_error(const LoadResult& r) {
  return r.errors.empty() ? "(none)" : r.errors.front().to_string();
}

TEST(ConfigSchema, IntegerRangesAreTheLoaders) {
  int checked = 0;
  for (const KeySpec& k : config_schema()) {
    if (k.min > k.max) continue;  // not an integer key
    const std::string range = k.max == INT64_MAX
                                  ? ">= " + std::to_string(k.min)
                                  : std::to_string(k.min) + ".." + std::to_string(k.max);
    for (int64_t ok : {k.min, k.max}) {
      LoadResult r = load_config_string(with_value(k, std::to_string(ok)), "<t>");
      EXPECT_TRUE(r.ok()) << k.table << "." << k.name << " = " << ok << ": " << first_error(r);
    }
    for (int64_t bad : {k.min - 1, k.max == INT64_MAX ? k.min - 1 : k.max + 1}) {
      LoadResult r = load_config_string(with_value(k, std::to_string(bad)), "<t>");
      ASSERT_FALSE(r.ok()) << k.table << "." << k.name << " = " << bad << " was accepted";
      EXPECT_NE(first_error(r).find(range), std::string::npos)
          << k.table << "." << k.name << " = " << bad << ": " << first_error(r);
    }
    checked++;
  }
  EXPECT_GE(checked, 25);
}

TEST(ConfigSchema, KeywordsAreTheSchemas) {
  int checked = 0;
  for (const KeySpec& k : config_schema()) {
    if (k.words.empty()) continue;
    std::string all;
    for (std::string_view w : words_of(k)) {
      LoadResult r = load_config_string(with_value(k, "\"" + std::string(w) + "\""), "<t>");
      EXPECT_TRUE(r.ok()) << k.table << "." << k.name << " = " << w << ": " << first_error(r);
      all += (all.empty() ? "" : "|") + std::string(w);
    }
    EXPECT_EQ(all, k.words);
    LoadResult r = load_config_string(with_value(k, "\"nonsense\""), "<t>");
    ASSERT_FALSE(r.ok()) << k.table << "." << k.name;
    for (std::string_view w : words_of(k))
      EXPECT_NE(first_error(r).find("\"" + std::string(w) + "\""), std::string::npos)
          << first_error(r);
    checked++;
  }
  EXPECT_GE(checked, 9);
}

TEST(ConfigSchema, UnknownKeysListTheSchemasKeys) {
  for (std::string_view table : {"dataplane", "boundary", "admission", "metrics", "control"}) {
    LoadResult r = load_config_string("[" + std::string(table) + "]\nno_such_key = 1\n", "<t>");
    ASSERT_FALSE(r.ok());
    std::string list;
    for (std::string_view k : keys_of(table)) list += (list.empty() ? "" : ", ") + std::string(k);
    EXPECT_NE(first_error(r).find("expected one of: " + list), std::string::npos) << first_error(r);
  }
  LoadResult r = load_config_string("[[class]]\nname = \"c\"\nmatch = { port = 1 }\n", "<t>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(first_error(r).find("expected one of: src, dst, proto, dst_ports, dscp"),
            std::string::npos)
      << first_error(r);
}

TEST(ConfigSchema, RestartOnlyKeysAreTheSchemas) {
  for (const KeySpec& k : config_schema()) {
    if (k.table.find('.') != std::string_view::npos || k.table == "class") {
      EXPECT_EQ(k.change, KeyChange::live) << k.table << "." << k.name << ": class keys are live";
      continue;
    }
    const std::string dotted = std::string(k.table) + "." + std::string(k.name);
    EXPECT_EQ(is_restart_only(dotted), k.change == KeyChange::restart) << dotted;
  }
  EXPECT_FALSE(is_restart_only("class.citizen.rate_per_sec"));
  EXPECT_TRUE(is_restart_only("admission.flow_table_size"));
  EXPECT_FALSE(is_restart_only("admission.flow_learn_sec"));
}

// Defaults the schema shows are the ones the model and the config use.
TEST(ConfigSchema, DefaultsAreTheModels) {
  const Config c = *load_config_string("", "<t>").config;
  EXPECT_EQ(key_spec("admission", "source_table_size").default_text,
            std::to_string(SL_SOURCES_DEFAULT));
  EXPECT_EQ(c.admission.source_table_size, uint64_t{SL_SOURCES_DEFAULT});
  EXPECT_EQ(key_spec("admission", "flow_table_size").default_text,
            std::to_string(SL_FLOWS_DEFAULT));
  EXPECT_EQ(c.admission.flow_table_size, uint64_t{SL_FLOWS_DEFAULT});
  EXPECT_EQ(key_spec("class", "priority").max, SL_PRIORITIES - 1);
  EXPECT_EQ(key_spec("admission", "source_table_size").min, SL_SOURCES_MIN);
  EXPECT_EQ(key_spec("admission", "flow_table_size").max, SL_FLOWS_MAX);
  EXPECT_EQ(std::to_string(c.dataplane.dpdk_workers),
            key_spec("dataplane", "dpdk_workers").default_text);
  EXPECT_EQ(std::to_string(c.dataplane.dpdk_mbufs),
            key_spec("dataplane", "dpdk_mbufs").default_text);
  EXPECT_EQ(std::to_string(c.dataplane.dpdk_queue_size),
            key_spec("dataplane", "dpdk_queue_size").default_text);
  EXPECT_EQ(std::to_string(c.control.history), key_spec("control", "history").default_text);
}

}  // namespace
}  // namespace sluice
