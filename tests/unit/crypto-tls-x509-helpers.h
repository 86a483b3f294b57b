/*
 * Test certificates made in code with GnuTLS's x509 API: no PEM file is
 * checked in.  A request names the subject, its SANs, and each extension
 * (enabled, critical, value) with validity offsets from now.
 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>

#include <initializer_list>
#include <string>
#include <utility>

struct TestCertReq {
  const char *cn;
  const char *dns1 = nullptr, *dns2 = nullptr; /* DNS SANs */
  const char *ip1 = nullptr, *ip2 = nullptr;   /* IP SANs */
  bool bc_enabled = false, bc_critical = false, bc_ca = false;
  bool ku_enabled = false, ku_critical = false;
  unsigned ku_value = 0; /* GNUTLS_KEY_* */
  bool kp_enabled = false, kp_critical = false;
  const char *kp_oid1 = nullptr, *kp_oid2 = nullptr;
  int start_offset = -3600;         /* seconds from now */
  int expire_offset = 86400 * 365;  /* seconds from now */
  int key = 1; /* which test key: 0 CA, 1 leaf, 2 other (ECDSA P-256), 3 RSA-2048 */
};

/* A generated certificate with its PEM text. */
struct TestCert {
  gnutls_x509_crt_t crt = nullptr;
  std::string pem;
  int key = 1;
  TestCert() = default;
  TestCert(const TestCert &) = delete;
  TestCert &operator=(const TestCert &) = delete;
  TestCert(TestCert &&other) noexcept;
  TestCert &operator=(TestCert &&other) noexcept;
  ~TestCert();
};

/* Common requests. */
TestCertReq test_tls_ca_req(const char *cn);
TestCertReq test_tls_server_req(const char *cn);
TestCertReq test_tls_client_req(const char *cn);

/* Signed by @issuer, or self-signed when @issuer is NULL. */
TestCert test_tls_make_cert(const TestCertReq &req, const TestCert *issuer);
/* PEM of test key @n; with @password, PKCS#8 encrypted. */
std::string test_tls_key_pem(int n, const char *password = nullptr);
/* A CRL by @ca revoking @revoked (may be NULL: an empty CRL), due for
 * its next update in @next_update seconds. */
std::string test_tls_make_crl(const TestCert &ca, const TestCert *revoked,
                              time_t next_update = 86400);
/* PKCS#3 DH parameters (the RFC 7919 ffdhe2048 group). */
std::string test_tls_dh_params_pem();

/* A fresh temporary directory, removed with its files by test_tls_rmdir. */
char *test_tls_mkdir();
void test_tls_write(const char *dir, const char *name, const std::string &text);
void test_tls_rmdir(const char *dir);

/* A temporary directory for the life of the object. */
struct TestTLSDir {
  char *path = test_tls_mkdir();
  TestTLSDir() = default;
  TestTLSDir(const TestTLSDir &) = delete;
  TestTLSDir &operator=(const TestTLSDir &) = delete;
  ~TestTLSDir() {
    test_tls_rmdir(path);
    g_free(path);
  }
};

/* Complete x509 credentials (ids "tls-server" / "tls-client") from @dir;
 * the test fails if they do not load.  Returns a QCryptoTLSCreds *. */
struct _QCryptoTLSCreds;
struct _QCryptoTLSCreds *test_tls_x509_creds(const char *dir, bool server,
                                             bool verify_peer = true);

/* Makes `secret` objects (id, data) findable through the secret lookup
 * hook, as the object registry does; an empty list removes the hook. */
void test_tls_set_secrets(std::initializer_list<std::pair<const char *, const char *>> secrets);
