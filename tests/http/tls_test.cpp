// HTTPS (TLS_CERT_FILE + TLS_KEY_FILE): a CA and certificates made here with OpenSSL, curl as
// the client (--cacert); plain HTTP to the TLS port is answered 400 and closed; TLS 1.0/1.1
// and weak ciphers are refused; an expired, not-yet-valid or mismatched certificate stops
// start-up with exit 2 naming the setting.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <tuple>
#include <memory>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/http/http_client.hpp"

using namespace todo::test;

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* c) const { X509_free(c); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using cert_ptr = std::unique_ptr<X509, x509_free>;

key_ptr new_key() {
  return key_ptr{EVP_EC_gen("P-256")};
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

/// A certificate for `key` named `cn`, valid from now+`from_s` to now+`to_s`, signed by the
/// issuer (self-signed when null); a CA when `ca`, else a server certificate for `san`.
cert_ptr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                   bool ca, long from_s, long to_s, const char* san = nullptr) {
  static long serial = 1;
  cert_ptr cert{X509_new()};
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial + ::getpid());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : cert.get();
  if (ca) {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), iss, NID_subject_alt_name, san);
  }
  REQUIRE(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

std::string write_pem(const std::string& path, X509* cert, EVP_PKEY* key = nullptr) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  if (cert)
    PEM_write_X509(f, cert);
  if (key)
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  return path;
}

/// Runs a shell command; returns its exit status and its stdout+stderr.
std::pair<int, std::string> shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (auto n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct pki {
  std::string dir = "/tmp/todo-tls-" + std::to_string(::getpid());
  key_ptr ca_key = new_key();
  cert_ptr ca = make_cert(ca_key.get(), "todo test CA", nullptr, nullptr, true, -60, 86400);
  key_ptr key = new_key();
  std::string ca_file, cert_file, key_file;
  pki() {
    ::mkdir(dir.c_str(), 0700);
    ca_file = write_pem(dir + "/ca.pem", ca.get());
    auto cert = make_cert(key.get(), "localhost", ca.get(), ca_key.get(), false, -60, 86400,
                          "DNS:localhost,IP:127.0.0.1");
    cert_file = write_pem(dir + "/cert.pem", cert.get());
    key_file = write_pem(dir + "/key.pem", nullptr, key.get());
  }
  ~pki() { shell("rm -rf " + dir); }
  /// Another server certificate for the same key, valid from now+from_s to now+to_s.
  std::string cert_valid(long from_s, long to_s, const std::string& name) {
    auto c = make_cert(key.get(), "localhost", ca.get(), ca_key.get(), false, from_s, to_s,
                       "DNS:localhost,IP:127.0.0.1");
    return write_pem(dir + "/" + name, c.get());
  }
};

/// Runs the binary with `env` plus the test database and secret, expecting it to stop at
/// start-up; returns its exit status (-1: still running after 10 s) and its stderr.
std::pair<int, std::string> start_expecting_exit(std::map<std::string, std::string> env) {
  const char* db = std::getenv("TEST_DATABASE_URL");
  REQUIRE(db != nullptr);
  env["DATABASE_URL"] = db;
  env["BETTER_AUTH_SECRET"] = test_secret();
  env["PORT"] = std::to_string(20000 + ::getpid() % 20000); // it must not get as far as binding
  env["HOST"] = "127.0.0.1";
  auto r = run_until_exit(env, std::chrono::seconds(10));
  INFO(r.err);
  return {r.exit_code, r.err};
}

} // namespace

TEST_CASE("TLS: HTTPS with a certificate from a test CA, 1.2 and 1.3, the API works over it") {
  pki p;
  server_process srv{{{"TLS_CERT_FILE", p.cert_file}, {"TLS_KEY_FILE", p.key_file}}};
  srv.start();
  auto base = "https://localhost:" + std::to_string(srv.port());
  auto curl = "curl -sS --max-time 10 --cacert " + p.ca_file + " ";
  auto [rc, out] = shell(curl + base + "/health");
  INFO(out);
  CHECK(rc == 0);
  CHECK(out == R"({"status":"ok"})");
  // TLS 1.3 and 1.2 both work; the API itself too.
  CHECK(shell(curl + "--tlsv1.3 " + base + "/health").first == 0);
  CHECK(shell(curl + "--tlsv1.2 --tls-max 1.2 " + base + "/health").first == 0);
  auto token = token_for(fresh_user("tls"));
  auto created = shell(curl + "-o /dev/null -w '%{http_code}' -H 'Authorization: Bearer " + token +
                       "' -H 'Content-Type: application/json' -d '{\"title\":\"over tls\"}' " +
                       base + "/api/tasks");
  CHECK(created.second == "201");
  auto listed = shell(curl + "-H 'Authorization: Bearer " + token + "' " + base + "/api/tasks");
  CHECK(listed.second.find("over tls") != std::string::npos);
  // Not trusted without the CA; TLS 1.1 and a non-forward-secret cipher are refused.
  CHECK(shell("curl -sS --max-time 10 " + base + "/health").first != 0);
  CHECK(shell(curl + "--tlsv1.1 --tls-max 1.1 " + base + "/health").first != 0);
  CHECK(shell(curl + "--tls-max 1.2 --ciphers AES128-SHA256 " + base + "/health").first != 0);
  // Plain HTTP to the TLS port: a clear 400 in plain text, then the connection closes.
  auto plain = raw_exchange(srv.port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 3000);
  CHECK(plain.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(plain.find("use https://") != std::string::npos);
  // Garbage instead of a ClientHello: closed, and the server goes on serving.
  raw_exchange(srv.port(), std::string(300, '\x16'), 3000);
  CHECK(shell(curl + base + "/health").first == 0);
  CHECK(srv.stop(SIGTERM) == 0);
}

TEST_CASE("TLS: a certificate that cannot serve stops start-up with exit 2 naming the setting") {
  pki p;
  auto expired = p.cert_valid(-7200, -3600, "expired.pem");
  auto [code, err] = start_expecting_exit({{"TLS_CERT_FILE", expired}, {"TLS_KEY_FILE", p.key_file}});
  CHECK(code == 2);
  CHECK(err.find("TLS_CERT_FILE: ") != std::string::npos);
  CHECK(err.find("expired") != std::string::npos);

  auto future = p.cert_valid(3600, 7200, "future.pem");
  std::tie(code, err) = start_expecting_exit({{"TLS_CERT_FILE", future}, {"TLS_KEY_FILE", p.key_file}});
  CHECK(code == 2);
  CHECK(err.find("not valid yet") != std::string::npos);

  auto other_key = new_key();
  auto other = write_pem(p.dir + "/other-key.pem", nullptr, other_key.get());
  std::tie(code, err) = start_expecting_exit({{"TLS_CERT_FILE", p.cert_file}, {"TLS_KEY_FILE", other}});
  CHECK(code == 2);
  CHECK(err.find("TLS_KEY_FILE: ") != std::string::npos);
  CHECK(err.find("BEGIN") == std::string::npos); // never key material

  std::tie(code, err) = start_expecting_exit({{"TLS_CERT_FILE", p.cert_file}});
  CHECK(code == 2);
  CHECK(err.find("TLS_KEY_FILE: required") != std::string::npos);

  std::tie(code, err) = start_expecting_exit({{"TLS_CERT_FILE", p.dir + "/missing.pem"},
                                              {"TLS_KEY_FILE", p.key_file}});
  CHECK(code == 2);
  CHECK(err.find("TLS_CERT_FILE: cannot read") != std::string::npos);
}
