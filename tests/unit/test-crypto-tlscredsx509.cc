/* QCryptoTLSCredsX509 (and PSK, anon, cipher suites): loading and the
 * sanity checks, each case named after what it proves. */
#include "config.h"

#include "qcrypto/error.h"
#include "qcrypto/tls-cipher-suites.h"
#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/tls-creds-psk.h"
#include "qcrypto/tls-creds-x509.h"
#include "qom/object-registry.h"
#include "tests/unit/assert-mentions.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <vector>

namespace {

QCryptoTLSCreds *new_x509(const char *dir, bool server, GError **error,
                          const char *passwordid = nullptr, const char *priority = nullptr) {
  auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls0", "dir", dir, "endpoint",
      server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
      "passwordid", passwordid, "priority", priority, nullptr));
  if (!g_initable_init(G_INITABLE(creds), nullptr, error)) {
    g_object_unref(creds);
    return nullptr;
  }
  return creds;
}

/* Writes a complete directory for @server from @ca and @leaf. */
void write_dir(const char *dir, bool server, const std::string &ca_pem, const std::string &leaf_pem,
               int leaf_key = 1) {
  test_tls_write(dir, "ca-cert.pem", ca_pem);
  test_tls_write(dir, server ? "server-cert.pem" : "client-cert.pem", leaf_pem);
  test_tls_write(dir, server ? "server-key.pem" : "client-key.pem", test_tls_key_pem(leaf_key));
}

void expect(const char *dir, bool server, const char *fault) {
  g_autoptr(GError) error = nullptr;
  QCryptoTLSCreds *creds = new_x509(dir, server, &error);
  if (!fault) {
    g_assert_no_error(error);
    g_assert_nonnull(creds);
    g_object_unref(creds);
    return;
  }
  g_assert_null(creds);
  g_assert_error(error, QCRYPTO_ERROR, error->code);
  g_test_message("%s", error->message);
  g_assert_nonnull(strstr(error->message, "'tls0'"));
  if (!strstr(error->message, fault))
    g_error("expected '%s' in: %s", fault, error->message);
}

struct Case {
  const char *name;
  bool server;
  TestCertReq ca;
  TestCertReq leaf;
  const char *fault; /* NULL: loads */
};

void run_case(gconstpointer data) {
  auto *c = static_cast<const Case *>(data);
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(c->ca, nullptr);
  TestCert leaf = test_tls_make_cert(c->leaf, &ca);
  write_dir(dir.path, c->server, ca.pem, leaf.pem);
  expect(dir.path, c->server, c->fault);
}

TestCertReq with(TestCertReq req, void (*edit)(TestCertReq &)) {
  edit(req);
  return req;
}

std::vector<Case> cases() {
  auto ca = test_tls_ca_req("qio CA");
  auto srv = test_tls_server_req("qio.test");
  auto cli = test_tls_client_req("qio client");
  return {
      {"perfectserver", true, ca, srv, nullptr},
      {"perfectclient", false, ca, cli, nullptr},
      {"goodca1", true, with(ca, [](TestCertReq &r) { r.ku_enabled = false; }), srv, nullptr},
      {"goodca2", true, with(ca, [](TestCertReq &r) { r.bc_critical = false; }), srv, nullptr},
      {"badca1", true, with(ca, [](TestCertReq &r) { r.bc_ca = false; }), srv,
       "lacks basicConstraints CA:TRUE"},
      {"badca2", true, with(ca, [](TestCertReq &r) { r.ku_value = GNUTLS_KEY_DIGITAL_SIGNATURE; }),
       srv, "without keyCertSign"},
      {"badca3", true, with(ca, [](TestCertReq &r) { r.bc_enabled = false; }), srv,
       "lacks basicConstraints CA:TRUE"},
      {"goodserver1", true, ca,
       with(srv, [](TestCertReq &r) { r.ku_value = GNUTLS_KEY_DIGITAL_SIGNATURE; }), nullptr},
      {"goodserver2", true, ca, with(srv, [](TestCertReq &r) { r.kp_enabled = false; }), nullptr},
      {"goodserver3", true, ca, with(srv, [](TestCertReq &r) { r.kp_oid1 = GNUTLS_KP_ANY; }),
       nullptr},
      {"badserver1", true, ca,
       with(srv, [](TestCertReq &r) { r.ku_value = GNUTLS_KEY_KEY_CERT_SIGN; }),
       "keyUsage (critical) with neither"},
      {"badserver2", true, ca,
       with(srv,
            [](TestCertReq &r) {
              r.ku_value = GNUTLS_KEY_KEY_CERT_SIGN;
              r.ku_critical = false;
            }),
       "has a keyUsage with neither"},
      {"badserver3", true, ca,
       with(srv,
            [](TestCertReq &r) {
              r.kp_oid1 = GNUTLS_KP_TLS_WWW_CLIENT;
              r.kp_critical = true;
            }),
       "extendedKeyUsage (critical) without TLS WWW server"},
      {"badserver4", true, ca,
       with(srv, [](TestCertReq &r) { r.kp_oid1 = GNUTLS_KP_TLS_WWW_CLIENT; }),
       "has an extendedKeyUsage without TLS WWW server"},
      {"badclient1", false, ca,
       with(cli, [](TestCertReq &r) { r.kp_oid1 = GNUTLS_KP_TLS_WWW_SERVER; }),
       "without TLS WWW client"},
      {"badclient2", false, ca,
       with(cli,
            [](TestCertReq &r) {
              r.ku_value = GNUTLS_KEY_CRL_SIGN;
              r.ku_critical = false;
            }),
       "neither digitalSignature nor keyEncipherment"},
      {"leafclaimsca", true, ca, with(srv, [](TestCertReq &r) { r.bc_ca = true; }),
       "claims basicConstraints CA:TRUE"},
      {"expiredca", true, with(ca, [](TestCertReq &r) { r.expire_offset = -60; }), srv,
       "expired on"},
      {"inactiveca", true, with(ca, [](TestCertReq &r) { r.start_offset = 86400; }), srv,
       "is not active before"},
      {"expiredserver", true, ca, with(srv, [](TestCertReq &r) { r.expire_offset = -60; }),
       "expired on"},
      {"inactiveserver", true, ca, with(srv, [](TestCertReq &r) { r.start_offset = 86400; }),
       "is not active before"},
      {"expiredclient", false, ca, with(cli, [](TestCertReq &r) { r.expire_offset = -60; }),
       "expired on"},
      {"inactiveclient", false, ca, with(cli, [](TestCertReq &r) { r.start_offset = 86400; }),
       "is not active before"},
  };
}

/* A leaf signed by a CA that is not in ca-cert.pem. */
void test_unknown_ca() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert other = test_tls_make_cert(test_tls_ca_req("other CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &other);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  expect(dir.path, true, "certificate signed by unknown CA");
}

/* root -> intermediate -> leaf: the leaf file carries the intermediate. */
void test_chain() {
  TestTLSDir dir;
  TestCert root = test_tls_make_cert(test_tls_ca_req("qio root"), nullptr);
  TestCert inter = test_tls_make_cert(test_tls_ca_req("qio intermediate"), &root);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &inter);
  write_dir(dir.path, true, root.pem, leaf.pem + inter.pem);
  expect(dir.path, true, nullptr);
  /* Without the intermediate the chain is broken. */
  write_dir(dir.path, true, root.pem, leaf.pem);
  expect(dir.path, true, "unknown CA");
  /* Both CAs in ca-cert.pem work too. */
  write_dir(dir.path, true, root.pem + inter.pem, leaf.pem);
  expect(dir.path, true, nullptr);
  /* An intermediate that is not a CA breaks it. */
  auto bad_req = test_tls_ca_req("qio not a CA");
  bad_req.bc_ca = false;
  TestCert bad = test_tls_make_cert(bad_req, &root);
  TestCert leaf2 = test_tls_make_cert(test_tls_server_req("qio.test"), &bad);
  write_dir(dir.path, true, root.pem, leaf2.pem + bad.pem);
  expect(dir.path, true, "lacks basicConstraints CA:TRUE");
}

void test_too_many_cas() {
  TestTLSDir dir;
  std::string pem;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  for (int i = 0; i < 17; i++) pem += ca.pem;
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, pem, leaf.pem);
  expect(dir.path, true, "more than the 16 allowed");
}

/* Properties are fixed once the credentials exist: a later set is refused
 * by GObject and changes nothing. */
void test_properties_fixed() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoTLSCreds) creds = new_x509(dir.path, true, &error);
  g_assert_no_error(error);
  const char *props[] = {"dir", "priority", "passwordid"};
  for (const char *prop : props) {
    g_test_expect_message("GLib-GObject", G_LOG_LEVEL_WARNING,
                          "*can't be set after construction*");
    g_object_set(creds, prop, "/elsewhere", nullptr);
    g_test_assert_expected_messages();
  }
  g_test_expect_message("GLib-GObject", G_LOG_LEVEL_WARNING, "*can't be set after construction*");
  g_object_set(creds, "verify-peer", FALSE, nullptr);
  g_test_assert_expected_messages();
  g_autofree char *now_dir = nullptr;
  gboolean verify = FALSE;
  g_object_get(creds, "dir", &now_dir, "verify-peer", &verify, nullptr);
  g_assert_cmpstr(now_dir, ==, dir.path);
  g_assert_true(verify);
}

void test_missing_files() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  expect(dir.path, true, "ca-cert.pem");
  test_tls_write(dir.path, "ca-cert.pem", ca.pem);
  expect(dir.path, true, "server-cert.pem");
  /* A client may go without a certificate... */
  expect(dir.path, false, nullptr);
  /* ... but not with half of one. */
  test_tls_write(dir.path, "client-key.pem", test_tls_key_pem(1));
  expect(dir.path, false, "go together");
  g_autofree char *gone = g_build_filename(dir.path, "nonexistent", nullptr);
  expect(gone, false, "does not exist");
}

void test_broken_pem() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, "-----BEGIN CERTIFICATE-----\nnot base64!\n", leaf.pem);
  expect(dir.path, true, "holds no valid PEM certificate");
  write_dir(dir.path, true, ca.pem, leaf.pem.substr(0, leaf.pem.size() / 2));
  expect(dir.path, true, "server-cert.pem' holds no valid PEM certificate");
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "server-key.pem", "garbage");
  expect(dir.path, true, "holds no valid PEM private key");
  /* A key that belongs to another certificate. */
  write_dir(dir.path, true, ca.pem, leaf.pem, 2);
  expect(dir.path, true, "does not belong to certificate");
}

void install_secrets() {
  test_tls_set_secrets({{"sec0", "123456"}, {"wrong", "654321"}, {"pskkey", "0123456789abcdef\n"}});
}

void test_encrypted_key() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "server-key.pem", test_tls_key_pem(1, "123456"));
  expect(dir.path, true, "is encrypted; set passwordid");
  install_secrets();
  g_autoptr(GError) error = nullptr;
  QCryptoTLSCreds *creds = new_x509(dir.path, true, &error, "sec0");
  g_assert_no_error(error);
  g_object_unref(creds);
  g_assert_null(new_x509(dir.path, true, &error, "wrong"));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE);
  g_assert_nonnull(strstr(error->message, "cannot decrypt private key"));
  g_clear_error(&error);
  g_assert_null(new_x509(dir.path, true, &error, "missing"));
  g_assert_nonnull(strstr(error->message, "cannot get secret 'missing'"));
  test_tls_set_secrets({});
}

void test_bad_priority() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  write_dir(dir.path, false, ca.pem, test_tls_make_cert(test_tls_client_req("c"), &ca).pem);
  g_autoptr(GError) error = nullptr;
  g_assert_null(new_x509(dir.path, false, &error, nullptr, "NORMAL:+NO-SUCH-THING"));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, "NO-SUCH-THING"));
  g_clear_error(&error);
  QCryptoTLSCreds *creds = new_x509(dir.path, false, &error, nullptr, "SECURE256");
  g_assert_no_error(error);
  g_object_unref(creds);
}

void test_missing_id() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(GObject) creds = G_OBJECT(g_object_new(QCRYPTO_TYPE_TLS_CREDS_X509, nullptr));
  g_assert_false(g_initable_init(G_INITABLE(creds), nullptr, &error));
  g_assert_nonnull(strstr(error->message, "'id'"));
}

void test_dh_params() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "dh-params.pem", test_tls_dh_params_pem());
  expect(dir.path, true, nullptr);
  test_tls_write(dir.path, "dh-params.pem", "-----BEGIN DH PARAMETERS-----\nxx\n");
  expect(dir.path, true, "valid PKCS#3 DH parameters");
}

void test_crl() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  TestCert other = test_tls_make_cert(test_tls_server_req("other.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "ca-crl.pem", test_tls_make_crl(ca, &other));
  expect(dir.path, true, nullptr);
  test_tls_write(dir.path, "ca-crl.pem", test_tls_make_crl(ca, &leaf));
  expect(dir.path, true, "certificate revoked by the CA's CRL");
  test_tls_write(dir.path, "ca-crl.pem", "-----BEGIN X509 CRL-----\nzz\n");
  expect(dir.path, true, "holds no valid CRL");
}

/* What qcrypto_tls_creds_get_expiring() lists of @creds, where only one
 * item, of @kind, read from @file and naming @subject, expires in 3 days. */
void assert_one_expiring_in_3_days(QCryptoTLSCreds *creds, QCryptoTLSExpiryKind kind,
                                   const char *file, const char *subject) {
  g_autoptr(GPtrArray) soon = qcrypto_tls_creds_get_expiring(creds, 7);
  g_assert_cmpuint(soon->len, ==, 1);
  auto *item = static_cast<QCryptoTLSCertExpiry *>(soon->pdata[0]);
  g_assert_cmpint(item->kind, ==, kind);
  g_assert_nonnull(strstr(item->file, file));
  g_assert_nonnull(strstr(item->subject, subject));
  g_assert_cmpint(item->expiry, >, g_get_real_time() / G_USEC_PER_SEC + 86400 * 2);
  g_autoptr(GPtrArray) none = qcrypto_tls_creds_get_expiring(creds, 1);
  g_assert_cmpuint(none->len, ==, 0);
}

/* A CRL due for its next update is reported like an expiring certificate
 * (past that date no new load accepts it); a renewed one is not. */
void test_crl_expiry() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "ca-crl.pem", test_tls_make_crl(ca, nullptr, 86400 * 3));
  g_autoptr(GError) error = nullptr;
  g_test_expect_message(nullptr, G_LOG_LEVEL_MESSAGE,
                        "*'tls0': the revocation list '*ca-crl.pem' of *CN=qio CA* must be "
                        "renewed by *, in * days, or these credentials will not load again; "
                        "renew it (qio-pki crl CA-DIR, or certtool --generate-crl), copy it "
                        "here and reload the credentials");
  g_autoptr(QCryptoTLSCreds) creds = new_x509(dir.path, true, &error);
  g_test_assert_expected_messages();
  g_assert_no_error(error);

  assert_one_expiring_in_3_days(creds, QCRYPTO_TLS_EXPIRY_CRL, "ca-crl.pem", "CN=qio CA");
  g_autoptr(GPtrArray) all = qcrypto_tls_creds_get_expiring(creds, G_MAXUINT);
  g_assert_cmpuint(all->len, ==, 3);
  g_assert_cmpint(static_cast<QCryptoTLSCertExpiry *>(all->pdata[0])->kind, ==,
                  QCRYPTO_TLS_EXPIRY_CRL);

  test_tls_write(dir.path, "ca-crl.pem", test_tls_make_crl(ca, nullptr, 86400 * 90));
  g_assert_true(qcrypto_tls_creds_reload(creds, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) after = qcrypto_tls_creds_get_expiring(creds, 7);
  g_assert_cmpuint(after->len, ==, 0);
}

/* A client always verifies the server: verify-peer=off is a server's
 * choice (not asking clients for a certificate) and refused on a client. */
void test_client_verify_off_refused() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  write_dir(dir.path, false, ca.pem, test_tls_make_cert(test_tls_client_req("client"), &ca).pem);
  g_autoptr(GError) error = nullptr;
  g_autoptr(GObject) creds = G_OBJECT(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls0", "dir", dir.path, "endpoint",
      QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, "verify-peer", FALSE, nullptr));
  g_assert_false(g_initable_init(G_INITABLE(creds), nullptr, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "'tls0'", "verify-peer=off is for servers");
}

void test_sanity_check_off() {
  TestTLSDir dir;
  auto req = test_tls_ca_req("qio CA");
  req.expire_offset = -60;
  TestCert ca = test_tls_make_cert(req, nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  g_autoptr(GError) error = nullptr;
  g_autoptr(GObject) creds = G_OBJECT(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", "tls0", "dir", dir.path, "endpoint",
      QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, "sanity-check", FALSE, nullptr));
  g_assert_true(g_initable_init(G_INITABLE(creds), nullptr, &error));
  g_assert_no_error(error);
}

/* A failed reload keeps the old state; a good one replaces it. */
void test_reload() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  auto req = test_tls_server_req("qio.test");
  req.expire_offset = 86400 * 3;
  TestCert leaf = test_tls_make_cert(req, &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  g_autoptr(GError) error = nullptr;
  g_test_expect_message(nullptr, G_LOG_LEVEL_MESSAGE,
                        "*'tls0': certificate '*server-cert.pem' (*CN=qio.test) expires on *"
                        ", in * days; renew it*");
  g_autoptr(QCryptoTLSCreds) creds = new_x509(dir.path, true, &error);
  g_test_assert_expected_messages();
  g_assert_no_error(error);

  assert_one_expiring_in_3_days(creds, QCRYPTO_TLS_EXPIRY_CERTIFICATE, "server-cert.pem",
                                "CN=qio.test");

  test_tls_write(dir.path, "server-cert.pem", "broken");
  g_assert_false(qcrypto_tls_creds_reload(creds, &error));
  g_assert_nonnull(strstr(error->message, "server-cert.pem"));
  g_clear_error(&error);
  g_autoptr(GPtrArray) still = qcrypto_tls_creds_get_expiring(creds, 7);
  g_assert_cmpuint(still->len, ==, 1);

  TestCert renewed = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  test_tls_write(dir.path, "server-cert.pem", renewed.pem);
  g_assert_true(qcrypto_tls_creds_reload(creds, &error));
  g_assert_no_error(error);
  g_autoptr(GPtrArray) after = qcrypto_tls_creds_get_expiring(creds, 7);
  g_assert_cmpuint(after->len, ==, 0);
}

void test_psk() {
  TestTLSDir dir;
  auto make = [&](const char *user, bool server, const char *key_secret,
                  GError **error) -> QCryptoTLSCreds * {
    auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
        QCRYPTO_TYPE_TLS_CREDS_PSK, "id", "psk0", "dir", dir.path, "username", user,
        "endpoint",
        server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
        "key-secret", key_secret, nullptr));
    if (g_initable_init(G_INITABLE(creds), nullptr, error)) return creds;
    g_object_unref(creds);
    return nullptr;
  };
  g_autoptr(GError) error = nullptr;
  g_assert_null(make(nullptr, true, nullptr, &error));
  g_assert_nonnull(strstr(error->message, "keys.psk"));
  g_clear_error(&error);
  test_tls_write(dir.path, "keys.psk", "qemu:00112233\nalice:zz\n");
  g_assert_null(make(nullptr, true, nullptr, &error));
  g_assert_nonnull(strstr(error->message, "line 2"));
  g_clear_error(&error);
  test_tls_write(dir.path, "keys.psk", "qemu:00112233\nalice:44556677\n");
  QCryptoTLSCreds *creds = make(nullptr, false, nullptr, &error);
  g_assert_no_error(error);
  g_object_unref(creds);
  g_assert_null(make("bob", false, nullptr, &error));
  g_assert_nonnull(strstr(error->message, "no key for user name 'bob'"));
  g_clear_error(&error);
  install_secrets();
  creds = make("bob", false, "pskkey", &error);
  g_assert_no_error(error);
  g_object_unref(creds);
  g_assert_null(make("bob", false, "sec0x", &error));
  g_assert_nonnull(strstr(error->message, "sec0x"));
  g_clear_error(&error);
  test_tls_set_secrets({});
  g_assert_null(make("bob", false, "pskkey", &error));
  g_assert_nonnull(strstr(error->message, "cannot get secret 'pskkey' given by key-secret"));
}

void test_anon_and_suites() {
  TestTLSDir dir;
  g_autoptr(GError) error = nullptr;
  g_autoptr(GObject) anon = G_OBJECT(g_object_new(QCRYPTO_TYPE_TLS_CREDS_ANON, "id", "anon0",
                                                  "endpoint", QCRYPTO_TLS_CREDS_ENDPOINT_SERVER,
                                                  "dir", dir.path, nullptr));
  g_assert_true(g_initable_init(G_INITABLE(anon), nullptr, &error));
  g_assert_no_error(error);

  g_autoptr(QCryptoTLSCipherSuites) suites = QCRYPTO_TLS_CIPHER_SUITES(
      g_object_new(QCRYPTO_TYPE_TLS_CIPHER_SUITES, "id", "suites0", "priority",
                   "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM", nullptr));
  g_assert_true(g_initable_init(G_INITABLE(suites), nullptr, &error));
  g_autoptr(GBytes) data = qcrypto_tls_cipher_suites_get_data(suites, &error);
  g_assert_no_error(error);
  gsize len = 0;
  auto *ids = static_cast<const guint8 *>(g_bytes_get_data(data, &len));
  /* TLS_AES_128_GCM_SHA256 is 0x1301. */
  g_assert_cmpuint(len, >=, 2);
  g_assert_cmpuint(ids[0], ==, 0x13);
  g_assert_cmpuint(ids[1], ==, 0x01);
}

/* The same objects through -object and its secret lookup. */
void test_object_option() {
  TestTLSDir dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("qio CA"), nullptr);
  TestCert leaf = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  write_dir(dir.path, true, ca.pem, leaf.pem);
  test_tls_write(dir.path, "server-key.pem", test_tls_key_pem(1, "s3cret"));
  qom_init();
  g_autoptr(GError) error = nullptr;
  g_assert_nonnull(qom_object_add_from_string("secret,id=keypass,data=s3cret", &error));
  g_assert_no_error(error);
  g_autofree char *opts = g_strdup_printf(
      "tls-creds-x509,id=tlsobj,endpoint=server,dir=%s,verify-peer=off,passwordid=keypass",
      dir.path);
  GObject *obj = qom_object_add_from_string(opts, &error);
  g_assert_no_error(error);
  g_assert_true(QCRYPTO_IS_TLS_CREDS_X509(obj));
  g_assert_false(qcrypto_tls_creds_get_verify_peer(QCRYPTO_TLS_CREDS(obj)));
  g_autofree char *bad = g_strdup_printf("tls-creds-x509,id=tlsbad,endpoint=server,dir=%s",
                                         dir.path);
  g_assert_null(qom_object_add_from_string(bad, &error));
  g_assert_nonnull(strstr(error->message, "'tlsbad'"));
  g_assert_nonnull(strstr(error->message, "set passwordid"));
  g_clear_error(&error);
  g_assert_nonnull(qom_object_add_from_string(
      "tls-cipher-suites,id=suites,priority=NORMAL:-VERS-ALL:+VERS-TLS1.3", &error));
  g_assert_no_error(error);
  qom_object_del_all();
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  static std::vector<Case> all = cases();
  for (const auto &c : all) {
    g_autofree char *path = g_strdup_printf("/qcrypto/tlscredsx509/%s", c.name);
    g_test_add_data_func(path, &c, run_case);
  }
  g_test_add_func("/qcrypto/tlscredsx509/unknownca", test_unknown_ca);
  g_test_add_func("/qcrypto/tlscredsx509/chain", test_chain);
  g_test_add_func("/qcrypto/tlscredsx509/toomanycas", test_too_many_cas);
  g_test_add_func("/qcrypto/tlscredsx509/missingfiles", test_missing_files);
  g_test_add_func("/qcrypto/tlscredsx509/properties-fixed", test_properties_fixed);
  g_test_add_func("/qcrypto/tlscredsx509/brokenpem", test_broken_pem);
  g_test_add_func("/qcrypto/tlscredsx509/encryptedkey", test_encrypted_key);
  g_test_add_func("/qcrypto/tlscredsx509/badpriority", test_bad_priority);
  g_test_add_func("/qcrypto/tlscredsx509/missingid", test_missing_id);
  g_test_add_func("/qcrypto/tlscredsx509/dhparams", test_dh_params);
  g_test_add_func("/qcrypto/tlscredsx509/crl", test_crl);
  g_test_add_func("/qcrypto/tlscredsx509/crl-expiry", test_crl_expiry);
  g_test_add_func("/qcrypto/tlscredsx509/client-verify-off-refused",
                  test_client_verify_off_refused);
  g_test_add_func("/qcrypto/tlscredsx509/sanitycheckoff", test_sanity_check_off);
  g_test_add_func("/qcrypto/tlscredsx509/reload", test_reload);
  g_test_add_func("/qcrypto/tlscredspsk/load", test_psk);
  g_test_add_func("/qcrypto/tlscredsanon/anon-and-cipher-suites", test_anon_and_suites);
  g_test_add_func("/qcrypto/tlscredsx509/object-option", test_object_option);
  return g_test_run();
}
