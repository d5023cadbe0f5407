// SPDX-License-Identifier: Apache-2.0
// A small etcd v3 client over etcd's JSON gateway (/v3/kv/range, put, txn,
// /v3/lease/grant, keepalive, revoke), the part of the KV and lease API the
// fleet needs. It speaks HTTP/1.1 through cpp-httplib and JSON through
// nlohmann-json, both already in sluice, rather than gRPC (docs/fleet.md says
// why). Keys and values are bytes on the wire (base64 in the JSON) and
// std::string here.
//
// Endpoints are tried in order: a request that gets no answer from one (it
// is down, or answers that it has no leader) goes to the next, and the one
// that answered is tried first next time. Every call is bounded by the
// timeout per endpoint. Not thread-safe (but for stop()): one client per
// thread.
//
// https:// endpoints are reached over TLS, their certificates verified
// (against EtcdAccessConfig::ca_file, or the system's CAs) with a client
// certificate (and its chain) when one is given, the files read again when
// they change (a renewed certificate); with a user, the client authenticates
// (/v3/auth/authenticate) before its first call and again when etcd says
// its token is no longer valid, and sends the token with every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/config/config.hpp"  // EtcdAccessConfig

namespace httplib {
class Client;
}

namespace sluice {

struct EtcdKv {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class EtcdClient {
 public:
  EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
             EtcdAccessConfig access = {});
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // One key, or with `prefix` every key that starts with `key`. *revision is
  // the store's revision at the read. Linearizable (the leader confirms).
  bool range(const std::string& key, bool prefix, std::vector<EtcdKv>* out, int64_t* revision,
             std::string* error);
  // lease 0: no lease. *revision (may be null): the revision of the put.
  bool put(const std::string& key, const std::string& value, int64_t lease, int64_t* revision,
           std::string* error);
  // Puts only while the key's mod_revision is `expected` (0: the key does
  // not exist), under `lease` (0: none). *swapped says whether it did;
  // *revision is the new revision.
  bool put_if(const std::string& key, const std::string& value, int64_t expected, bool* swapped,
              int64_t* revision, std::string* error, int64_t lease = 0);
  // Puts under `lease` (or `new_lease`, which then holds the key) only while
  // the key is attached to `lease`. *swapped false: the key does not exist,
  // or another lease holds it.
  bool put_on_lease(const std::string& key, const std::string& value, int64_t lease, bool* swapped,
                    std::string* error, int64_t new_lease = 0);
  // Deletes one key, or every key under `key` with `prefix`.
  bool remove(const std::string& key, bool prefix, std::string* error);
  bool lease_grant(int64_t ttl_sec, int64_t* lease, std::string* error);
  // *ttl_left is 0 when the lease no longer exists (it expired).
  bool lease_keepalive(int64_t lease, int64_t* ttl_left, std::string* error);
  bool lease_revoke(int64_t lease, std::string* error);
  // What is left of a lease in whole seconds, without keeping it alive: 0
  // in its last second, -1 when it no longer exists.
  bool lease_ttl(int64_t lease, int64_t* ttl_left, std::string* error);

  // Watches `key` from now on: calls on_change(mod_revision) for every put
  // or delete of it until on_change returns false, the stream ends (etcd
  // went away, or nothing happened for the client's timeout) or stop() is
  // called. False + *error when no endpoint accepted the watch.
  bool watch(const std::string& key, const std::function<bool(int64_t)>& on_change,
             std::string* error);
  // Ends a watch (or any call) in progress, from another thread.
  void stop();

  // The endpoint that answered the last call.
  const std::string& endpoint() const { return endpoints_[current_]; }

 private:
  bool call(const std::string& path, const std::string& body, std::string* reply,
            std::string* error);
  // One try of every endpoint; *unauthenticated when one said the token is
  // missing or no longer valid.
  bool call_once(const std::string& path, const std::string& body, std::string* reply,
                 std::string* error, bool* unauthenticated);
  // A new token for access_.user (its password read from its file now).
  bool authenticate(std::string* error);
  // One httplib client per endpoint, with the TLS files as they are now.
  void build_clients();
  // The clients again when a TLS file changed (a renewed certificate).
  void refresh_tls();

  std::vector<std::string> endpoints_;
  EtcdAccessConfig access_;
  std::string token_;         // etcd's auth token ("" before the first authentication)
  std::string tls_stamp_;     // when the TLS files the clients hold last changed
  std::mutex clients_mutex_;  // clients_ as a whole, between a rebuild and stop()
  std::vector<std::unique_ptr<httplib::Client>> clients_;
  std::size_t current_ = 0;
  std::chrono::milliseconds timeout_;
};

// What a start reads of `access`, as a call would: the password file's first
// line, the client certificate with its key (they must match), the CA file.
// False + *key (the [fleet] key at fault) and *why.
bool check_etcd_access(const EtcdAccessConfig& access, std::string* key, std::string* why);

// etcd's JSON encoding of bytes.
std::string base64_encode(const std::string& bytes);
// False when `text` is not base64.
bool base64_decode(const std::string& text, std::string* bytes);

}  // namespace sluice
