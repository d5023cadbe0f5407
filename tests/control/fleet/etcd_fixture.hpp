// SPDX-License-Identifier: Apache-2.0
// A single-member etcd for tests, on loopback ports of its own and a data
// directory removed afterwards. Needs the etcd binary (etcd-server, which
// scripts/install-deps installs): a test without it skips outside CI and
// fails in CI.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "control/fleet/etcd_client.hpp"

namespace sluice::testing {

// TLS for a test etcd: its server certificate and key, and, with
// client_ca, the CA its clients' certificates must chain to
// (--client-cert-auth).
struct EtcdTls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca;  // "": any client
};

class EtcdProcess {
 public:
  // Ports: client `port`, peer `port + 1`. With `tls` its clients speak
  // https (`access`: what ready() reaches it with); `extra`: more flags;
  // `snapshot`: a file of `etcdctl snapshot save` its data is restored
  // from (its revisions are the snapshot's).
  explicit EtcdProcess(int port, const EtcdTls* tls = nullptr, EtcdAccessConfig access = {},
                       std::vector<std::string> extra = {}, const std::string& snapshot = "")
      : port_(port), https_(tls != nullptr), access_(std::move(access)) {
    ::signal(SIGPIPE, SIG_IGN);  // as sluiced and sluicectl do (OpenSSL writes may raise it)
    dir_ = std::filesystem::temp_directory_path() /
           ("sluice-etcd-test-" + std::to_string(::getpid()) + "-" + std::to_string(port));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string client = url();
    const std::string peer = "http://127.0.0.1:" + std::to_string(port + 1);
    const std::string log = (dir_ / "etcd.log").string();
    if (!snapshot.empty() &&
        std::system(("ETCDCTL_API=3 etcdctl snapshot restore '" + snapshot + "' --data-dir '" +
                     (dir_ / "data").string() + "' --name t --initial-cluster t=" + peer +
                     " --initial-advertise-peer-urls " + peer + " >'" + log + ".restore' 2>&1")
                        .c_str()) != 0)
      return;  // not started: ready() says so
    std::vector<std::string> args = {"etcd",
                                     "--name",
                                     "t",
                                     "--data-dir",
                                     (dir_ / "data").string(),
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     "t=" + peer,
                                     "--unsafe-no-fsync"};
    if (tls != nullptr) {
      args.insert(args.end(), {"--cert-file", tls->cert_file, "--key-file", tls->key_file});
      if (!tls->client_ca.empty())
        args.insert(args.end(), {"--client-cert-auth", "--trusted-ca-file", tls->client_ca});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that crashes takes its etcd along
      std::freopen(log.c_str(), "w", stderr);
      std::freopen(log.c_str(), "a", stdout);
      ::execvp("etcd", argv.data());
      std::_Exit(127);
    }
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string url() const {
    return (https_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
  }
  const std::filesystem::path& dir() const { return dir_; }
  // Stops it (SIGSTOP: an etcd that hangs, every member's at once for its
  // clients) or lets it go on.
  void pause(bool stopped) const { ::kill(pid_, stopped ? SIGSTOP : SIGCONT); }
  // Waits until it answers a read (at most `seconds`).
  bool ready(int seconds = 20) const {
    EtcdClient c({url()}, std::chrono::milliseconds(500), access_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<EtcdKv> kvs;
      std::string error;
      if (c.range("/", true, &kvs, nullptr, &error)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return false;  // it died
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  int port_;
  bool https_;
  EtcdAccessConfig access_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

// Certificates made with the openssl tool in `dir`:
//   ca.pem                 a CA; server.pem/.key (127.0.0.1) and
//                          client.pem/.key signed by it
//   other-ca.pem           another CA; foreign.pem/.key, a client
//                          certificate it signed
//   inter.pem              an intermediate CA under ca.pem; leaf.pem/.key a
//                          client certificate it signed, chain.pem the leaf
//                          with inter.pem after it
//   stray.key              a key of no certificate
inline ::testing::AssertionResult make_pki(const std::filesystem::path& dir) {
  {
    std::ofstream(dir / "server.ext")
        << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
    std::ofstream(dir / "client.ext") << "extendedKeyUsage=clientAuth\n";
    std::ofstream(dir / "inter.ext")
        << "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n";
  }
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string ca_ext =
      " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign";
  // sign WHO EXT CA: WHO.csr signed by CA into WHO.pem
  const std::string sign =
      "sign() { openssl req " + ec +
      " -keyout $1.key -out $1.csr -subj /CN=127.0.0.1; openssl x509 -req -in $1.csr -CA $3.pem "
      "-CAkey $3.key -CAcreateserial -days 2 -out $1.pem -extfile $2.ext; }; ";
  const std::string script =
      "set -e; cd '" + dir.string() + "'; " + sign + "openssl req -x509 " + ec +
      " -keyout ca.key -out ca.pem -days 2 -subj /CN=sluice-test-ca" + ca_ext + "; " +
      "openssl req -x509 " + ec +
      " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca" + ca_ext + "; " +
      "sign server server ca; sign client client ca; sign foreign client other-ca; "
      "sign inter inter ca; sign leaf client inter; cat leaf.pem inter.pem > chain.pem; "
      "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out stray.key";
  const std::string command = "(" + script + ") >'" + (dir / "openssl.log").string() + "' 2>&1";
  if (std::system(command.c_str()) != 0)
    return ::testing::AssertionFailure() << "openssl failed: see " << (dir / "openssl.log");
  return ::testing::AssertionSuccess();
}

// What a client of make_pki's etcd shows: its CA, client.pem and its key.
inline EtcdAccessConfig client_access(const std::filesystem::path& pki) {
  EtcdAccessConfig a;
  a.ca_file = pki / "ca.pem";
  a.cert_file = pki / "client.pem";
  a.key_file = pki / "client.key";
  return a;
}

// make_pki's etcd: server.pem, asking for client certificates from ca.pem.
inline EtcdTls server_tls(const std::filesystem::path& pki) {
  return {pki / "server.pem", pki / "server.key", pki / "ca.pem"};
}

inline bool have_etcd() { return std::system("command -v etcd >/dev/null 2>&1") == 0; }

}  // namespace sluice::testing

// Skips (outside CI) or fails (in CI) a test that needs the etcd binary.
#define SLUICE_REQUIRE_ETCD()                                                            \
  do {                                                                                   \
    if (!sluice::testing::have_etcd()) {                                                 \
      if (std::getenv("CI") != nullptr) FAIL() << "etcd is not installed (etcd-server)"; \
      GTEST_SKIP() << "etcd is not installed (outside CI)";                              \
    }                                                                                    \
  } while (0)

// Needs the openssl tool (scripts/install-deps installs it).
#define SLUICE_REQUIRE_OPENSSL()                                                       \
  do {                                                                                 \
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) {                      \
      if (std::getenv("CI") != nullptr) FAIL() << "the openssl tool is not installed"; \
      GTEST_SKIP() << "the openssl tool is not installed (outside CI)";                \
    }                                                                                  \
  } while (0)
