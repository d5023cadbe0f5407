// SPDX-License-Identifier: Apache-2.0
#include "control/fleet/etcd_client.hpp"
#include <algorithm>

#include <sys/stat.h>
#include "control/api/json_parse.hpp"
#include "control/config/config_loader.hpp"  // read_first_line

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

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

// What went wrong, in words (httplib's own names read "Connection",
// "Read"): a connect that fails is refused, unroutable, or a host name
// that does not resolve, all alike to httplib.
std::string failure(httplib::Error err) {
  switch (err) {
    case httplib::Error::Connection:
      return "cannot connect: refused, unreachable, or the host name does not resolve";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out";
    case httplib::Error::Read:
      return "no answer read: the connection closed or the read timed out";
    case httplib::Error::Write:
      return "the request could not be sent: the connection closed or the write timed out";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load the TLS certificates";
    case httplib::Error::SSLServerVerification:
      return "etcd's certificate is not trusted";
    case httplib::Error::Canceled:
      return "canceled";
    default:
      return httplib::to_string(err);
  }
}

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

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
                       EtcdAccessConfig access)
    : endpoints_(std::move(endpoints)), access_(std::move(access)), timeout_(timeout) {
  build_clients();
  if (endpoints_.empty()) endpoints_.push_back("(no endpoint)");
}

namespace {

// When each TLS file last changed ("" without TLS files).
std::string files_stamp(const EtcdAccessConfig& a) {
  std::string stamp;
  for (const std::string* path : {&a.ca_file, &a.cert_file, &a.key_file}) {
    struct stat st {};
    if (!path->empty() && ::stat(path->c_str(), &st) == 0)
      // The inode and its change time: a file replaced (by a rename) or
      // rewritten, even with its old mtime and size kept (cp -p, rsync -t).
      stamp += std::to_string(st.st_ino) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
               std::to_string(st.st_ctim.tv_nsec) + ";";
    else
      stamp += "-;";
  }
  return stamp;
}

}  // namespace

void EtcdClient::build_clients() {
  std::lock_guard<std::mutex> lock(clients_mutex_);  // stop() may run on another thread
  clients_.clear();
  tls_stamp_ = files_stamp(access_);
  for (const std::string& e : endpoints_) {
    const bool https = e.rfind("https://", 0) == 0;
    auto c = https && !access_.cert_file.empty()
                 ? std::make_unique<httplib::Client>(e, access_.cert_file, access_.key_file)
                 : std::make_unique<httplib::Client>(e);
    if (https) {
      if (!access_.ca_file.empty()) c->set_ca_cert_path(access_.ca_file);
      c->enable_server_certificate_verification(true);
      // The whole chain (intermediates after the leaf), not the leaf alone:
      // etcd may trust only the root.
      if (!access_.cert_file.empty() && c->ssl_context() != nullptr)
        SSL_CTX_use_certificate_chain_file(c->ssl_context(), access_.cert_file.c_str());
      ERR_clear_error();
    }
    c->set_connection_timeout(timeout_);
    c->set_read_timeout(timeout_);
    c->set_write_timeout(timeout_);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // headers and body go in two writes: no Nagle wait
    clients_.push_back(std::move(c));
  }
}

void EtcdClient::refresh_tls() {
  if (access_.ca_file.empty() && access_.cert_file.empty()) return;
  if (files_stamp(access_) != tls_stamp_) build_clients();  // renewed: the new files
}

EtcdClient::~EtcdClient() = default;

bool EtcdClient::call(const std::string& path, const std::string& body, std::string* reply,
                      std::string* error) {
  refresh_tls();
  if (!access_.user.empty() && token_.empty() && !authenticate(error)) return false;
  bool unauthenticated = false;
  if (call_once(path, body, reply, error, &unauthenticated)) return true;
  // A token etcd no longer takes (it expired, or etcd restarted): a new one,
  // and the call once more.
  if (!unauthenticated || access_.user.empty()) return false;
  token_.clear();
  return authenticate(error) && call_once(path, body, reply, error, &unauthenticated);
}

bool EtcdClient::authenticate(std::string* error) {
  std::string password, why;
  if (!read_first_line(access_.password_file, &password, &why)) {
    *error = "fleet.etcd_password_file: " + why;
    return false;
  }
  const std::string body = nlohmann::json{{"name", access_.user}, {"password", password}}.dump();
  std::string text;
  nlohmann::json j;
  bool unauthenticated = false;
  token_.clear();
  if (!call_once("/v3/auth/authenticate", body, &text, error, &unauthenticated) ||
      !parse(text, &j, error)) {
    *error = "etcd user " + access_.user + " not authenticated: " + *error;
    return false;
  }
  token_ = json_field<std::string>(j, "token", "");
  if (token_.empty()) {
    *error = "etcd user " + access_.user +
             " not authenticated: no token in etcd's answer (is "
             "etcd's auth enabled?)";
    return false;
  }
  return true;
}

bool EtcdClient::call_once(const std::string& path, const std::string& body, std::string* reply,
                           std::string* error, bool* unauthenticated) {
  std::string errors;
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", token_);
  for (std::size_t i = 0; i < clients_.size(); i++) {
    const std::size_t at = (current_ + i) % clients_.size();
    // The body is taken as it arrives: the gateway ends an error answer
    // with an HTTP trailer (Grpc-Trailer-Content-Type), which cpp-httplib
    // 0.11 does not parse; the answer itself is read by then.
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = headers;
    req.body = body;
    req.set_header("Content-Type", "application/json");
    std::string answer;
    req.content_receiver = [&answer](const char* data, size_t len, uint64_t, uint64_t) {
      answer.append(data, len);
      return answer.size() <= (64U << 20);  // a range of every record fits many times
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool read = clients_[at]->send(req, res, err);
    std::string why;
    if (res.status == 200 && read) {
      current_ = at;
      *reply = std::move(answer);
      return true;
    }
    if (read && res.status > 0 && res.status != 200 && answer.empty()) {
      why = "HTTP " + std::to_string(res.status);  // a proxy's, say: no etcd answer in it
    } else if (res.status <= 0 || res.status == 200 || answer.empty()) {  // no (whole) answer
      why = failure(err);
      if (err == httplib::Error::SSLServerVerification)
        why +=
            " (etcd's certificate does not chain to fleet.etcd_ca_file, or does not name "
            "the URL's host)";
    } else {
      // {"error": ..., "code": N, "message": ...}: no leader, a timeout, a
      // request etcd refused. The next member may do better.
      const nlohmann::json j = parse_json(answer);
      why = "HTTP " + std::to_string(res.status);
      const std::string message = json_field<std::string>(j, "message", "");
      if (!message.empty()) why += ": " + message;
      // gRPC's UNAUTHENTICATED (16), the token named in the message, or a
      // token older than the last change of etcd's users and roles.
      if (json_field<int64_t>(j, "code", 0) == 16 ||
          message.find("auth token") != std::string::npos ||
          message.find("revision of auth store is old") != std::string::npos)
        *unauthenticated = true;
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
                              bool* swapped, std::string* error, int64_t new_lease) {
  const std::string k = base64_encode(key);
  const nlohmann::json compare = {
      {"key", k}, {"target", "LEASE"}, {"result", "EQUAL"}, {"lease", std::to_string(lease)}};
  std::string text;
  nlohmann::json j;
  if (!call("/v3/kv/txn", txn_put(compare, k, value, new_lease != 0 ? new_lease : lease).dump(),
            &text, error) ||
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
  refresh_tls();
  if (!access_.user.empty() && token_.empty() && !authenticate(error)) return false;
  const std::string body = nlohmann::json{{"create_request", {{"key", base64_encode(key)}}}}.dump();
  std::string errors;
  for (std::size_t i = 0; i < clients_.size(); i++) {
    const std::size_t at = (current_ + i) % clients_.size();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/watch";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    if (!token_.empty()) req.set_header("Authorization", token_);
    // The gateway streams one JSON object per message: {"result": {"created":
    // true, ...}} first, then {"result": {"events": [...]}} per change.
    std::string pending;
    bool created = false;
    bool stopped = false;
    std::string canceled;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      pending.append(data, len);
      for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
        const nlohmann::json m = parse_json(pending.substr(0, nl));
        pending.erase(0, nl + 1);
        if (!m.is_object() || !m.contains("result") || !m["result"].is_object()) continue;
        const nlohmann::json& r = m["result"];
        created = created || json_field<bool>(r, "created", false);
        if (json_field<bool>(r, "canceled", false)) {
          // etcd ended it (the user may not read the key, say): a failure,
          // so that the caller backs off instead of watching again at once.
          created = false;
          canceled = json_field<std::string>(r, "cancel_reason", "canceled by etcd");
          return false;
        }
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
    std::string why = canceled;
    if (why.empty())
      why = err != httplib::Error::Success ? failure(err) : "HTTP " + std::to_string(res.status);
    errors += (errors.empty() ? "" : "; ") + endpoints_[at] + ": " + why;
  }
  *error = "etcd did not accept a watch (" + errors + ")";
  token_.clear();  // it may be why (expired): the next watch authenticates again
  return false;
}

void EtcdClient::stop() {
  std::lock_guard<std::mutex> lock(clients_mutex_);
  for (auto& c : clients_) c->stop();
}

bool EtcdClient::lease_ttl(int64_t lease, int64_t* ttl_left, std::string* error) {
  const nlohmann::json req = {{"ID", std::to_string(lease)}};
  std::string text;
  nlohmann::json j;
  if (!call("/v3/lease/timetolive", req.dump(), &text, error) || !parse(text, &j, error))
    return false;
  *ttl_left = std::max<int64_t>(-1, number(j, "TTL"));  // -1: no such lease
  return true;
}

bool EtcdClient::lease_revoke(int64_t lease, std::string* error) {
  const nlohmann::json req = {{"ID", std::to_string(lease)}};
  std::string text;
  return call("/v3/lease/revoke", req.dump(), &text, error);
}

bool check_etcd_access(const EtcdAccessConfig& access, std::string* key, std::string* why) {
  if (!access.password_file.empty()) {
    std::string password;
    if (!read_first_line(access.password_file, &password, why)) {
      *key = "fleet.etcd_password_file";
      return false;
    }
    if (password.empty()) {
      *key = "fleet.etcd_password_file";
      *why = "no password on the first line of " + access.password_file;
      return false;
    }
  }
  if (access.ca_file.empty() && access.cert_file.empty()) return true;
  for (const auto& [k, path] :
       {std::pair<const char*, const std::string&>{"fleet.etcd_ca_file", access.ca_file},
        {"fleet.etcd_cert_file", access.cert_file},
        {"fleet.etcd_key_file", access.key_file}}) {
    std::string ignored;
    if (!path.empty() && !read_first_line(path, &ignored, why)) {
      *key = k;
      return false;
    }
  }
  // OpenSSL reads them as a TLS connection would.
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  auto fail = [&](const char* k, const std::string& what) {
    *key = k;
    *why = what;
    ERR_clear_error();  // OpenSSL's reasons stay out of the next connection's
    return false;
  };
  if (!ctx) return fail("fleet.etcd", "no TLS context (OpenSSL)");
  if (!access.ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), access.ca_file.c_str(), nullptr) != 1)
    return fail("fleet.etcd_ca_file", "no PEM certificates in " + access.ca_file);
  if (!access.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), access.cert_file.c_str()) != 1)
      return fail("fleet.etcd_cert_file", "no PEM certificate in " + access.cert_file);
    // The key alone first (a context without a certificate): a key that
    // reads but does not match is a mismatch, not a bad file.
    std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> alone(SSL_CTX_new(TLS_client_method()),
                                                       &SSL_CTX_free);
    if (!alone ||
        SSL_CTX_use_PrivateKey_file(alone.get(), access.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return fail("fleet.etcd_key_file", "no PEM private key in " + access.key_file);
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), access.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1)
      return fail("fleet.etcd_key_file",
                  access.key_file + " is not the key of the certificate in " + access.cert_file);
  }
  return true;
}

}  // namespace sluice
