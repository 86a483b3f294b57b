#include "config.h"

#include "tests/unit/crypto-tls-x509-helpers.h"

#include "qcrypto/secret.h"
#include "qcrypto/tls-creds-x509.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <utility>

namespace {

gnutls_x509_privkey_t test_key(int n) {
  static gnutls_x509_privkey_t keys[4];
  g_assert_true(n >= 0 && n < 4);
  if (!keys[n]) {
    g_assert_cmpint(gnutls_x509_privkey_init(&keys[n]), ==, 0);
    /* ECDSA P-256 is fast to make; key 3 is RSA-2048 for benchmarks. */
    if (n == 3)
      g_assert_cmpint(gnutls_x509_privkey_generate(keys[n], GNUTLS_PK_RSA, 2048, 0), ==, 0);
    else
      g_assert_cmpint(gnutls_x509_privkey_generate(
                          keys[n], GNUTLS_PK_ECDSA,
                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                      ==, 0);
  }
  return keys[n];
}

void set_ext(gnutls_x509_crt_t crt, const char *oid, gnutls_datum_t der, bool critical) {
  g_assert_cmpint(gnutls_x509_crt_set_extension_by_oid(crt, oid, der.data, der.size,
                                                       critical ? 1 : 0),
                  ==, 0);
  gnutls_free(der.data);
}

void add_ip(gnutls_x509_crt_t crt, const char *ip) {
  g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(ip);
  g_assert_nonnull(addr);
  g_assert_cmpint(gnutls_x509_crt_set_subject_alt_name(
                      crt, GNUTLS_SAN_IPADDRESS, g_inet_address_to_bytes(addr),
                      static_cast<unsigned>(g_inet_address_get_native_size(addr)),
                      GNUTLS_FSAN_APPEND),
                  ==, 0);
}

std::string take_pem(gnutls_datum_t datum) {
  std::string out(reinterpret_cast<char *>(datum.data), datum.size);
  gnutls_free(datum.data);
  return out;
}

}  // namespace

TestCert::TestCert(TestCert &&other) noexcept
    : crt(std::exchange(other.crt, nullptr)), pem(std::move(other.pem)), key(other.key) {}

TestCert &TestCert::operator=(TestCert &&other) noexcept {
  std::swap(crt, other.crt);
  std::swap(pem, other.pem);
  key = other.key;
  return *this;
}

TestCert::~TestCert() {
  if (crt) gnutls_x509_crt_deinit(crt);
}

TestCertReq test_tls_ca_req(const char *cn) {
  TestCertReq req{.cn = cn};
  req.bc_enabled = req.bc_critical = req.bc_ca = true;
  req.ku_enabled = req.ku_critical = true;
  req.ku_value = GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN;
  req.key = 0;
  return req;
}

static TestCertReq leaf_req(const char *cn, const char *purpose) {
  TestCertReq req{.cn = cn};
  req.bc_enabled = req.bc_critical = true;
  req.ku_enabled = req.ku_critical = true;
  req.ku_value = GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT;
  req.kp_enabled = true;
  req.kp_oid1 = purpose;
  return req;
}

TestCertReq test_tls_server_req(const char *cn) {
  TestCertReq req = leaf_req(cn, GNUTLS_KP_TLS_WWW_SERVER);
  req.dns1 = cn;
  return req;
}

TestCertReq test_tls_client_req(const char *cn) {
  return leaf_req(cn, GNUTLS_KP_TLS_WWW_CLIENT);
}

TestCert test_tls_make_cert(const TestCertReq &req, const TestCert *issuer) {
  static unsigned serial = 1;
  TestCert cert;
  cert.key = req.key;
  gnutls_x509_crt_t crt;
  g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
  cert.crt = crt;
  g_assert_cmpint(gnutls_x509_crt_set_version(crt, 3), ==, 0);
  unsigned char sn[4] = {0x10, static_cast<unsigned char>(serial >> 16),
                         static_cast<unsigned char>(serial >> 8),
                         static_cast<unsigned char>(serial)};
  serial++;
  g_assert_cmpint(gnutls_x509_crt_set_serial(crt, sn, sizeof(sn)), ==, 0);
  time_t now = time(nullptr);
  g_assert_cmpint(gnutls_x509_crt_set_activation_time(crt, now + req.start_offset), ==, 0);
  g_assert_cmpint(gnutls_x509_crt_set_expiration_time(crt, now + req.expire_offset), ==, 0);
  g_autofree char *dn = g_strdup_printf("O=qio test,CN=%s", req.cn);
  g_assert_cmpint(gnutls_x509_crt_set_dn(crt, dn, nullptr), ==, 0);
  gnutls_x509_privkey_t key = test_key(req.key);
  g_assert_cmpint(gnutls_x509_crt_set_key(crt, key), ==, 0);
  for (const char *dns : {req.dns1, req.dns2})
    if (dns)
      g_assert_cmpint(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, dns,
                                                           static_cast<unsigned>(strlen(dns)),
                                                           GNUTLS_FSAN_APPEND),
                      ==, 0);
  for (const char *ip : {req.ip1, req.ip2})
    if (ip) add_ip(crt, ip);
  gnutls_datum_t der;
  if (req.bc_enabled) {
    g_assert_cmpint(gnutls_x509_ext_export_basic_constraints(req.bc_ca, -1, &der), ==, 0);
    set_ext(crt, "2.5.29.19", der, req.bc_critical);
  }
  if (req.ku_enabled) {
    g_assert_cmpint(gnutls_x509_ext_export_key_usage(req.ku_value, &der), ==, 0);
    set_ext(crt, "2.5.29.15", der, req.ku_critical);
  }
  if (req.kp_enabled) {
    gnutls_x509_key_purposes_t kp;
    g_assert_cmpint(gnutls_x509_key_purpose_init(&kp), ==, 0);
    for (const char *oid : {req.kp_oid1, req.kp_oid2}) {
      if (oid) g_assert_cmpint(gnutls_x509_key_purpose_set(kp, oid), ==, 0);
    }
    g_assert_cmpint(gnutls_x509_ext_export_key_purposes(kp, &der), ==, 0);
    gnutls_x509_key_purpose_deinit(kp);
    set_ext(crt, "2.5.29.37", der, req.kp_critical);
  }
  unsigned char kid[64];
  size_t kid_size = sizeof(kid);
  g_assert_cmpint(gnutls_x509_crt_get_key_id(crt, 0, kid, &kid_size), ==, 0);
  g_assert_cmpint(gnutls_x509_crt_set_subject_key_id(crt, kid, kid_size), ==, 0);
  if (issuer) {
    kid_size = sizeof(kid);
    g_assert_cmpint(gnutls_x509_crt_get_subject_key_id(issuer->crt, kid, &kid_size, nullptr),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_authority_key_id(crt, kid, kid_size), ==, 0);
  }
  g_assert_cmpint(gnutls_x509_crt_sign2(crt, issuer ? issuer->crt : crt,
                                        issuer ? test_key(issuer->key) : key,
                                        GNUTLS_DIG_SHA256, 0),
                  ==, 0);
  gnutls_datum_t pem;
  g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), ==, 0);
  cert.pem = take_pem(pem);
  return cert;
}

std::string test_tls_key_pem(int n, const char *password) {
  gnutls_datum_t pem;
  if (password)
    g_assert_cmpint(gnutls_x509_privkey_export2_pkcs8(test_key(n), GNUTLS_X509_FMT_PEM,
                                                      password, GNUTLS_PKCS_PBES2_AES_256,
                                                      &pem),
                    ==, 0);
  else
    g_assert_cmpint(gnutls_x509_privkey_export2(test_key(n), GNUTLS_X509_FMT_PEM, &pem), ==,
                    0);
  return take_pem(pem);
}

std::string test_tls_make_crl(const TestCert &ca, const TestCert *revoked, time_t next_update) {
  gnutls_x509_crl_t crl;
  g_assert_cmpint(gnutls_x509_crl_init(&crl), ==, 0);
  time_t now = time(nullptr);
  g_assert_cmpint(gnutls_x509_crl_set_version(crl, 2), ==, 0);
  g_assert_cmpint(gnutls_x509_crl_set_this_update(crl, now - 60), ==, 0);
  g_assert_cmpint(gnutls_x509_crl_set_next_update(crl, now + next_update), ==, 0);
  if (revoked) g_assert_cmpint(gnutls_x509_crl_set_crt(crl, revoked->crt, now - 60), ==, 0);
  g_assert_cmpint(gnutls_x509_crl_sign2(crl, ca.crt, test_key(ca.key), GNUTLS_DIG_SHA256, 0),
                  ==, 0);
  gnutls_datum_t pem;
  g_assert_cmpint(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &pem), ==, 0);
  gnutls_x509_crl_deinit(crl);
  return take_pem(pem);
}

std::string test_tls_dh_params_pem() {
  gnutls_dh_params_t dh;
  g_assert_cmpint(gnutls_dh_params_init(&dh), ==, 0);
  g_assert_cmpint(gnutls_dh_params_import_raw(dh, &gnutls_ffdhe_2048_group_prime,
                                              &gnutls_ffdhe_2048_group_generator),
                  ==, 0);
  gnutls_datum_t pem;
  g_assert_cmpint(gnutls_dh_params_export2_pkcs3(dh, GNUTLS_X509_FMT_PEM, &pem), ==, 0);
  gnutls_dh_params_deinit(dh);
  return take_pem(pem);
}

char *test_tls_mkdir() {
  GError *error = nullptr;
  char *dir = g_dir_make_tmp("qio-tls-XXXXXX", &error);
  g_assert_no_error(error);
  return dir;
}

void test_tls_write(const char *dir, const char *name, const std::string &text) {
  g_autofree char *path = g_build_filename(dir, name, nullptr);
  GError *error = nullptr;
  g_assert_true(g_file_set_contents(path, text.data(), static_cast<gssize>(text.size()), &error));
  g_assert_no_error(error);
}

void test_tls_rmdir(const char *dir) {
  GDir *d = g_dir_open(dir, 0, nullptr);
  if (!d) return;
  while (const char *name = g_dir_read_name(d)) {
    g_autofree char *path = g_build_filename(dir, name, nullptr);
    g_unlink(path);
  }
  g_dir_close(d);
  g_rmdir(dir);
}

static QCryptoSecret *lookup_test_secret(const char *id, gpointer data) noexcept {
  auto *secret = g_hash_table_lookup(static_cast<GHashTable *>(data), id);
  return secret ? QCRYPTO_SECRET(g_object_ref(secret)) : nullptr;
}

void test_tls_set_secrets(std::initializer_list<std::pair<const char *, const char *>> secrets) {
  static GHashTable *table;
  qcrypto_secret_set_lookup_func(nullptr, nullptr);
  g_clear_pointer(&table, g_hash_table_unref);
  if (secrets.size() == 0) return;
  table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
  for (const auto &[id, data] : secrets) {
    GError *error = nullptr;
    QCryptoSecret *secret = qcrypto_secret_new(&error, "id", id, "data", data, nullptr);
    g_assert_no_error(error);
    g_hash_table_insert(table, g_strdup(id), secret);
  }
  qcrypto_secret_set_lookup_func(lookup_test_secret, table);
}

QCryptoTLSCreds *test_tls_x509_creds(const char *dir, bool server, bool verify_peer) {
  GError *error = nullptr;
  auto *creds = QCRYPTO_TLS_CREDS(g_object_new(
      QCRYPTO_TYPE_TLS_CREDS_X509, "id", server ? "tls-server" : "tls-client", "dir", dir,
      "endpoint",
      server ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
      "verify-peer", verify_peer, nullptr));
  g_assert_true(g_initable_init(G_INITABLE(creds), nullptr, &error));
  g_assert_no_error(error);
  return creds;
}
