/* QCryptoX509Issuer: what it makes passes qio's own credential sanity
 * checks for both key types, it loads back, and bad requests stage and
 * write nothing. */
#include "config.h"

#include "qcrypto/error.h"
#include "qcrypto/tls-creds.h"
#include "qcrypto/x509-issuer.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <glib/gstdio.h>

#include <string>

namespace {

std::string path_in(const char *dir, const char *name) {
  g_autofree char *p = g_build_filename(dir, name, nullptr);
  return p;
}

void make_pki(QCryptoX509KeyType type) {
  TestTLSDir top;
  std::string ca_dir = path_in(top.path, "ca"), srv = path_in(top.path, "srv"),
              cli = path_in(top.path, "cli");
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoX509Issuer) ca = qcrypto_x509_issuer_new("O=qio test,CN=unit CA", 400, type, &error);
  g_assert_no_error(error);
  const char *names[] = {"qio.test", nullptr};
  const char *ips[] = {"127.0.0.1", "::1", nullptr};
  QCryptoX509LeafSpec server = {QCRYPTO_X509_ROLE_SERVER, "CN=qio.test", names, ips, 100, type};
  QCryptoX509LeafSpec client = {QCRYPTO_X509_ROLE_CLIENT, "CN=unit client", nullptr, nullptr, 100,
                                type};
  g_assert_true(qcrypto_x509_issuer_stage_ca(ca, ca_dir.c_str(), &error));
  g_assert_true(qcrypto_x509_issuer_stage_issued(ca, &server, srv.c_str(), &error));
  g_assert_true(qcrypto_x509_issuer_stage_issued(ca, &client, cli.c_str(), &error));
  g_assert_true(qcrypto_x509_issuer_commit(ca, FALSE, &error));
  g_assert_no_error(error);

  /* qio's loader runs its sanity checks (constraints, purposes, chain). */
  g_autoptr(QCryptoTLSCreds) sc = test_tls_x509_creds(srv.c_str(), true);
  g_autoptr(QCryptoTLSCreds) cc = test_tls_x509_creds(cli.c_str(), false);

  g_autoptr(QCryptoX509Issuer) loaded = qcrypto_x509_issuer_load(ca_dir.c_str(), &error);
  g_assert_no_error(error);
  g_autofree char *dn = qcrypto_x509_issuer_get_dn(loaded);
  g_assert_cmpstr(dn, ==, "O=qio test,CN=unit CA");
  gint64 left = qcrypto_x509_issuer_get_expiry(loaded) - g_get_real_time() / G_USEC_PER_SEC;
  g_assert_cmpint(left, >, 399 * 86400);
  g_assert_cmpint(left, <=, 400 * 86400);

  /* Committing again: the files are in the way, and nothing changes. */
  g_autofree char *key_before = nullptr;
  g_assert_true(g_file_get_contents(path_in(srv.c_str(), "server-key.pem").c_str(), &key_before,
                                    nullptr, nullptr));
  g_assert_true(qcrypto_x509_issuer_stage_issued(loaded, &server, srv.c_str(), &error));
  g_assert_false(qcrypto_x509_issuer_commit(loaded, FALSE, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_EXISTS);
  g_clear_error(&error);
  g_autofree char *key_after = nullptr;
  g_assert_true(g_file_get_contents(path_in(srv.c_str(), "server-key.pem").c_str(), &key_after,
                                    nullptr, nullptr));
  g_assert_cmpstr(key_before, ==, key_after);
  /* A failed commit drops what was staged: a forced one now writes nothing new. */
  g_assert_true(qcrypto_x509_issuer_commit(loaded, TRUE, &error));
  g_autofree char *key_again = nullptr;
  g_assert_true(g_file_get_contents(path_in(srv.c_str(), "server-key.pem").c_str(), &key_again,
                                    nullptr, nullptr));
  g_assert_cmpstr(key_before, ==, key_again);
}

void test_ecdsa() { make_pki(QCRYPTO_X509_KEY_ECDSA_P256); }
void test_rsa() { make_pki(QCRYPTO_X509_KEY_RSA_3072); }

void test_host_names() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoX509Issuer) ca =
      qcrypto_x509_issuer_new("CN=names", 30, QCRYPTO_X509_KEY_ECDSA_P256, &error);
  g_assert_no_error(error);
  const std::string label63(63, 'a'), label64(64, 'a');
  const std::string long_name = label63 + "." + label63 + "." + label63 + "." + label63;  // 255
  struct Case {
    std::string name;
    bool ok;
  } cases[] = {{"a", true},          {"host-1.example.org", true}, {"*.vms.example", true},
               {"xn--p1ai", true},   {label63 + ".x", true},       {"", false},
               {".", false},         {"a..b", false},              {"a.", false},
               {"a b", false},       {"a_b", false},               {label64 + ".x", false},
               {"*.", false},        {"a.*.b", false},             {long_name, false},
               {"h\xc3\xa9", false}};
  for (const auto &c : cases) {
    const char *names[] = {c.name.c_str(), nullptr};
    QCryptoX509LeafSpec spec = {QCRYPTO_X509_ROLE_SERVER, "CN=x", names, nullptr, 1,
                                QCRYPTO_X509_KEY_ECDSA_P256};
    gboolean ok = qcrypto_x509_issuer_stage_issued(ca, &spec, "/nonexistent/never-written", &error);
    if (ok != c.ok) g_error("host name '%s': expected %s", c.name.c_str(), c.ok ? "ok" : "refused");
    if (!ok) {
      g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
      g_clear_error(&error);
    }
  }
}

void test_bad_requests() {
  g_autoptr(GError) error = nullptr;
  for (guint days : {0u, 36501u}) {
    g_assert_null(qcrypto_x509_issuer_new("CN=x", days, QCRYPTO_X509_KEY_ECDSA_P256, &error));
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
  }
  for (const char *dn : {"", "CN", "=x", "NOSUCHATTR=x", "CN=a,,b=c"}) {
    g_assert_null(qcrypto_x509_issuer_new(dn, 1, QCRYPTO_X509_KEY_ECDSA_P256, &error));
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
  }
  g_autoptr(QCryptoX509Issuer) ca =
      qcrypto_x509_issuer_new("CN=short", 5, QCRYPTO_X509_KEY_ECDSA_P256, &error);
  const char *names[] = {"h", nullptr};
  const char *bad_ips[] = {"1.2.3", nullptr};
  QCryptoX509LeafSpec outlives = {QCRYPTO_X509_ROLE_CLIENT, "CN=c", nullptr, nullptr, 6,
                                  QCRYPTO_X509_KEY_ECDSA_P256};
  QCryptoX509LeafSpec no_names = {QCRYPTO_X509_ROLE_SERVER, "CN=s", nullptr, nullptr, 1,
                                  QCRYPTO_X509_KEY_ECDSA_P256};
  QCryptoX509LeafSpec bad_ip = {QCRYPTO_X509_ROLE_SERVER, "CN=s", names, bad_ips, 1,
                                QCRYPTO_X509_KEY_ECDSA_P256};
  for (const auto *spec : {&outlives, &no_names, &bad_ip}) {
    g_assert_false(qcrypto_x509_issuer_stage_issued(ca, spec, "/nonexistent/x", &error));
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
  }
  /* Nothing was staged by the refusals. */
  g_assert_true(qcrypto_x509_issuer_commit(ca, FALSE, &error));
  g_assert_no_error(error);
  g_assert_false(g_file_test("/nonexistent/x", G_FILE_TEST_EXISTS));

  TestTLSDir empty;
  g_assert_null(qcrypto_x509_issuer_load(empty.path, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qcrypto/x509-issuer/ecdsa", test_ecdsa);
  g_test_add_func("/qcrypto/x509-issuer/rsa", test_rsa);
  g_test_add_func("/qcrypto/x509-issuer/host-names", test_host_names);
  g_test_add_func("/qcrypto/x509-issuer/bad-requests", test_bad_requests);
  return g_test_run();
}
