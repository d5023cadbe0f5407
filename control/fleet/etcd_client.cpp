// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/etcd_client.hpp"
#include "control/api/json_parse.hpp"

#include <openssl/evp.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace sluice {

std::string base64_encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

bool base64_decode(const std::string& text, std::string* bytes) {
  if (text.size() % 4 != 0) return false;
  std::string out(text.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding's bytes as data.
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') len--;
  if (text.size() >= 2 && text[text.size() - 2] == '=') len--;
  out.resize(len);
  *bytes = std::move(out);
  return true;
}

namespace {

// etcd's gateway writes 64-bit integers as JSON strings; absent means 0.
int64_t number(const nlohmann::json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) return 0;
  const nlohmann::json& v = j[name];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// The end of the range of keys that start with `key` (etcd's convention:
// the prefix with its last byte below 0xff incremented; "\0" = every key).
std::string prefix_end(std::string key) {
  while (!key.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(key.back());
    if (last < 0xff) {
      last++;
      return key;
    }
    key.pop_back();
  }
  return std::string(1, '\0');
}

bool parse(const std::string& text, nlohmann::json* out, std::string* error) {
  *out = parse_json(text);
  if (out->is_discarded() || !out->is_object()) {
    *error = "etcd answered something that is not a JSON object";
    return false;
  }
  return true;
}

}  // namespace

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {
  for (const std::string& e : endpoints_) {
    auto c = std::make_unique<httplib::Client>(e);
    c->set_connection_timeout(timeout_);
    c->set_read_timeout(timeout_);
    c->set_write_timeout(timeout_);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // headers and body go in two writes: no Nagle wait
    clients_.push_back(std::move(c));
  }
  if (endpoints_.empty()) endpoints_.push_back("(no endpoint)");
}

EtcdClient::~EtcdClient() = default;

bool EtcdClient::call(const std::string& path, const std::string& body, std::string* reply,
                      std::string* error) {
  std::string errors;
  for (std::size_t i = 0; i < clients_.size(); i++) {
    const std::size_t at = (current_ + i) % clients_.size();
    httplib::Result r = clients_[at]->Post(path, body, "application/json");
    std::string why;
    if (!r) {
      why = httplib::to_string(r.error());
    } else if (r->status == 200) {
      current_ = at;
      *reply = r->body;
      return true;
    } else {
      // {"error": ..., "code": N, "message": ...}: no leader, a timeout, a
      // request etcd refused. The next member may do better.
      const nlohmann::json j = parse_json(r->body);
      why = "HTTP " + std::to_string(r->status);
      if (j.is_object() && j.contains("message") && j["message"].is_string())
        why += ": " + j["message"].get<std::string>();
    }
    errors += (errors.empty() ? "" : "; ") + endpoints_[at] + ": " + why;
  }
  *error =
      clients_.empty() ? "no etcd endpoint" : "etcd did not answer " + path + " (" + errors + ")";
  return false;
}

bool EtcdClient::range(const std::string& key, bool prefix, std::vector<EtcdKv>* out,
                       int64_t* revision, std::string* error) {
  nlohmann::json req = {{"key", base64_encode(key)}};
  if (prefix) req["range_end"] = base64_encode(prefix_end(key));
  std::string text;
  nlohmann::json j;
  if (!call("/v3/kv/range", req.dump(), &text, error) || !parse(text, &j, error)) return false;
  out->clear();
  if (revision != nullptr)
    *revision = number(j.value("header", nlohmann::json::object()), "revision");
  if (!j.contains("kvs")) return true;
  if (!j["kvs"].is_array()) {
    *error = "etcd's range answer has no list of keys";
    return false;
  }
  for (const nlohmann::json& kv : j["kvs"]) {
    EtcdKv e;
    if (!kv.is_object() || !base64_decode(json_field<std::string>(kv, "key", ""), &e.key) ||
        !base64_decode(json_field<std::string>(kv, "value", ""), &e.value)) {
      *error = "etcd's range answer has a key that is not base64";
      return false;
    }
    e.create_revision = number(kv, "create_revision");
    e.mod_revision = number(kv, "mod_revision");
    e.lease = number(kv, "lease");
    out->push_back(std::move(e));
  }
  return true;
}

bool EtcdClient::put(const std::string& key, const std::string& value, int64_t lease,
                     int64_t* revision, std::string* error) {
  nlohmann::json req = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) req["lease"] = std::to_string(lease);
  std::string text;
  nlohmann::json j;
  if (!call("/v3/kv/put", req.dump(), &text, error) || !parse(text, &j, error)) return false;
  if (revision != nullptr)
    *revision = number(j.value("header", nlohmann::json::object()), "revision");
  return true;
}

namespace {

// A transaction of one compare and one put; *swapped says whether the
// compare held.
nlohmann::json txn_put(const nlohmann::json& compare, const std::string& key,
                       const std::string& value, int64_t lease) {
  nlohmann::json put = {{"key", key}, {"value", base64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  return {{"compare", {compare}}, {"success", {{{"request_put", put}}}}};
}

}  // namespace

bool EtcdClient::put_if(const std::string& key, const std::string& value, int64_t expected,
                        bool* swapped, int64_t* revision, std::string* error, int64_t lease) {
  const std::string k = base64_encode(key);
  nlohmann::json compare = {{"key", k}, {"result", "EQUAL"}};
  if (expected == 0) {
    compare["target"] = "CREATE";
    compare["create_revision"] = "0";
  } else {
    compare["target"] = "MOD";
    compare["mod_revision"] = std::to_string(expected);
  }
  std::string text;
  nlohmann::json j;
  if (!call("/v3/kv/txn", txn_put(compare, k, value, lease).dump(), &text, error) ||
      !parse(text, &j, error))
    return false;
  *swapped = json_field<bool>(j, "succeeded", false);
  if (revision != nullptr)
    *revision = number(j.value("header", nlohmann::json::object()), "revision");
  return true;
}

bool EtcdClient::put_on_lease(const std::string& key, const std::string& value, int64_t lease,
                              bool* swapped, std::string* error) {
  const std::string k = base64_encode(key);
  const nlohmann::json compare = {
      {"key", k}, {"target", "LEASE"}, {"result", "EQUAL"}, {"lease", std::to_string(lease)}};
  std::string text;
  nlohmann::json j;
  if (!call("/v3/kv/txn", txn_put(compare, k, value, lease).dump(), &text, error) ||
      !parse(text, &j, error))
    return false;
  *swapped = json_field<bool>(j, "succeeded", false);
  return true;
}

bool EtcdClient::remove(const std::string& key, bool prefix, std::string* error) {
  nlohmann::json req = {{"key", base64_encode(key)}};
  if (prefix) req["range_end"] = base64_encode(prefix_end(key));
  std::string text;
  return call("/v3/kv/deleterange", req.dump(), &text, error);
}

bool EtcdClient::lease_grant(int64_t ttl_sec, int64_t* lease, std::string* error) {
  const nlohmann::json req = {{"TTL", std::to_string(ttl_sec)}};
  std::string text;
  nlohmann::json j;
  if (!call("/v3/lease/grant", req.dump(), &text, error) || !parse(text, &j, error)) return false;
  *lease = number(j, "ID");
  if (*lease == 0) {
    *error = "etcd granted no lease: " + json_field<std::string>(j, "error", "no ID in its answer");
    return false;
  }
  return true;
}

bool EtcdClient::lease_keepalive(int64_t lease, int64_t* ttl_left, std::string* error) {
  const nlohmann::json req = {{"ID", std::to_string(lease)}};
  std::string text;
  nlohmann::json j;
  if (!call("/v3/lease/keepalive", req.dump(), &text, error) || !parse(text, &j, error))
    return false;
  // The gateway streams keepalive answers; one request gets one {"result": ...}.
  *ttl_left = number(j.value("result", nlohmann::json::object()), "TTL");
  return true;
}

bool EtcdClient::watch(const std::string& key, const std::function<bool(int64_t)>& on_change,
                       std::string* error) {
  const std::string body = nlohmann::json{{"create_request", {{"key", base64_encode(key)}}}}.dump();
  std::string errors;
  for (std::size_t i = 0; i < clients_.size(); i++) {
    const std::size_t at = (current_ + i) % clients_.size();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/watch";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    // The gateway streams one JSON object per message: {"result": {"created":
    // true, ...}} first, then {"result": {"events": [...]}} per change.
    std::string pending;
    bool created = false;
    bool stopped = false;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      pending.append(data, len);
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
        const nlohmann::json m = parse_json(pending.substr(0, nl));
        pending.erase(0, nl + 1);
        if (!m.is_object() || !m.contains("result") || !m["result"].is_object()) continue;
        const nlohmann::json& r = m["result"];
        created = created || json_field<bool>(r, "created", false);
        if (json_field<bool>(r, "canceled", false)) return false;
        if (!r.contains("events") || !r["events"].is_array()) continue;
        for (const nlohmann::json& e : r["events"]) {
          if (!on_change(number(e.value("kv", nlohmann::json::object()), "mod_revision"))) {
            stopped = true;
            return false;
          }
        }
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    clients_[at]->send(req, res, err);
    if (created || stopped) {
      current_ = at;
      return true;
    }
    errors += (errors.empty() ? "" : "; ") + endpoints_[at] + ": " +
              (err != httplib::Error::Success ? httplib::to_string(err)
                                              : "HTTP " + std::to_string(res.status));
  }
  *error = "etcd did not accept a watch (" + errors + ")";
  return false;
}

void EtcdClient::stop() {
  for (auto& c : clients_) c->stop();
}

bool EtcdClient::lease_revoke(int64_t lease, std::string* error) {
  const nlohmann::json req = {{"ID", std::to_string(lease)}};
  std::string text;
  return call("/v3/lease/revoke", req.dump(), &text, error);
}

}  // namespace sluice
