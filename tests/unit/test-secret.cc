/* QCryptoSecret: plain, base64, file and AES-256-CBC encrypted secrets,
 * and the error for every malformed combination. */
#include "config.h"

#include "assert-mentions.h"
#include "qcrypto/error.h"
#include "qcrypto/secret.h"

#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

/* A stand-in for the object registry: secrets by id. */
static GHashTable *test_secrets;

static QCryptoSecret *test_lookup(const char *id, gpointer) noexcept {
  auto *secret = static_cast<QCryptoSecret *>(g_hash_table_lookup(test_secrets, id));
  return secret ? QCRYPTO_SECRET(g_object_ref(secret)) : nullptr;
}

static void add_secret(QCryptoSecret *secret) {
  g_hash_table_insert(test_secrets, g_strdup(qcrypto_secret_get_id(secret)), secret);
}

static std::string value_of(QCryptoSecret *secret) {
  g_autoptr(GBytes) bytes = qcrypto_secret_get_bytes(secret);
  gsize len;
  auto *data = static_cast<const char *>(g_bytes_get_data(bytes, &len));
  return std::string(data, len);
}

static void test_raw() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSecret) s =
      qcrypto_secret_new(&error, "id", "s0", "data", "hunter2 , with spaces", nullptr);
  g_assert_no_error(error);
  g_assert_true(value_of(s) == "hunter2 , with spaces");
  g_autofree char *text = qcrypto_secret_get_text(s, &error);
  g_assert_cmpstr(text, ==, "hunter2 , with spaces");
}

/* An empty secret has no memory to wipe (UBSan saw NULL reach
 * explicit_bzero when one was freed; found by fuzzing). */
static void test_empty() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSecret) s = qcrypto_secret_new(&error, "id", "s-empty", "data", "", nullptr);
  g_assert_no_error(error);
  g_assert_true(value_of(s).empty());
}

static void test_base64() {
  g_autoptr(GError) error = nullptr;
  /* "pass\0word\xff": binary, fine as bytes, rejected as text. */
  const guint8 raw[] = {'p', 'a', 's', 's', 0, 'w', 'o', 'r', 'd', 0xff};
  g_autofree char *b64 = g_base64_encode(raw, sizeof raw);
  g_autoptr(QCryptoSecret) s =
      qcrypto_secret_new(&error, "id", "s1", "data", b64, "format", QCRYPTO_SECRET_FORMAT_BASE64,
                         nullptr);
  g_assert_no_error(error);
  g_autoptr(GBytes) bytes = qcrypto_secret_get_bytes(s);
  gsize len;
  const void *data = g_bytes_get_data(bytes, &len);
  g_assert_cmpmem(data, len, raw, sizeof raw);
  g_assert_null(qcrypto_secret_get_text(s, &error));
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "s1", "UTF-8");
}

static void test_bad_base64() {
  const char *bad[] = {"abc", "ab=c", "a===", "ab!d", "YWJj\nZGVm", "====", "", "YW Jj"};
  for (const char *text : bad) {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QCryptoSecret) s = qcrypto_secret_new(
        &error, "id", "b64", "data", text, "format", QCRYPTO_SECRET_FORMAT_BASE64, nullptr);
    g_assert_null(s);
    g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
    assert_mentions(error, "'b64'", "base64");
  }
}

static void test_file() {
  g_autoptr(GError) error = nullptr;
  g_autofree char *dir = g_dir_make_tmp("qio-secret-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *raw_path = g_build_filename(dir, "raw", nullptr);
  g_autofree char *b64_path = g_build_filename(dir, "b64", nullptr);
  g_assert_true(g_file_set_contents(raw_path, "line\n", -1, &error));
  g_assert_true(g_file_set_contents(b64_path, "c2VjcmV0\n", -1, &error));

  /* Raw files are taken byte for byte, newline included. */
  g_autoptr(QCryptoSecret) raw = qcrypto_secret_new(&error, "id", "f0", "file", raw_path, nullptr);
  g_assert_no_error(error);
  g_assert_true(value_of(raw) == "line\n");
  /* Base64 files may end with a newline. */
  g_autoptr(QCryptoSecret) b64 = qcrypto_secret_new(
      &error, "id", "f1", "file", b64_path, "format", QCRYPTO_SECRET_FORMAT_BASE64, nullptr);
  g_assert_no_error(error);
  g_assert_true(value_of(b64) == "secret");

  g_assert_true(g_file_set_contents(b64_path, "not*base64", -1, &error));
  g_autoptr(QCryptoSecret) bad = qcrypto_secret_new(
      &error, "id", "f2", "file", b64_path, "format", QCRYPTO_SECRET_FORMAT_BASE64, nullptr);
  g_assert_null(bad);
  assert_mentions(error, "'f2'", b64_path);
  g_clear_error(&error);

  g_autofree char *missing = g_build_filename(dir, "missing", nullptr);
  g_autoptr(QCryptoSecret) none = qcrypto_secret_new(&error, "id", "f3", "file", missing, nullptr);
  g_assert_null(none);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE);
  assert_mentions(error, "'f3'", missing);

  g_unlink(raw_path);
  g_unlink(b64_path);
  g_rmdir(dir);
}

static void test_data_and_file() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSecret) both =
      qcrypto_secret_new(&error, "id", "d0", "data", "x", "file", "/etc/hostname", nullptr);
  g_assert_null(both);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "'d0'", "both");
  g_clear_error(&error);
  g_autoptr(QCryptoSecret) neither = qcrypto_secret_new(&error, "id", "d1", nullptr);
  g_assert_null(neither);
  assert_mentions(error, "'d1'", "neither");
}

/* Encrypts @plain as the secret object expects: AES-256-CBC with PKCS#7
 * padding, then base64. */
static char *encrypt(const guint8 key[32], const guint8 iv[16], const std::string &plain) {
  std::vector<guint8> buf(plain.begin(), plain.end());
  guint8 pad = static_cast<guint8>(16 - buf.size() % 16);
  buf.insert(buf.end(), pad, pad);
  gnutls_datum_t k = {const_cast<guint8 *>(key), 32};
  gnutls_datum_t v = {const_cast<guint8 *>(iv), 16};
  gnutls_cipher_hd_t handle;
  g_assert_cmpint(gnutls_cipher_init(&handle, GNUTLS_CIPHER_AES_256_CBC, &k, &v), ==, 0);
  g_assert_cmpint(gnutls_cipher_encrypt(handle, buf.data(), buf.size()), ==, 0);
  gnutls_cipher_deinit(handle);
  return g_base64_encode(buf.data(), buf.size());
}

struct EncryptedFixture {
  guint8 key[32];
  guint8 iv[16];
  char *iv_b64;
};

static void encrypted_setup(EncryptedFixture *f, gconstpointer) {
  for (int i = 0; i < 32; i++) f->key[i] = static_cast<guint8>(i * 7 + 1);
  for (int i = 0; i < 16; i++) f->iv[i] = static_cast<guint8>(200 - i);
  f->iv_b64 = g_base64_encode(f->iv, 16);
  g_autofree char *key_b64 = g_base64_encode(f->key, 32);
  GError *error = nullptr;
  add_secret(qcrypto_secret_new(&error, "id", "master", "data", key_b64, "format",
                                QCRYPTO_SECRET_FORMAT_BASE64, nullptr));
  g_assert_no_error(error);
  add_secret(qcrypto_secret_new(&error, "id", "short", "data", "too short", nullptr));
  g_assert_no_error(error);
  qcrypto_secret_set_lookup_func(test_lookup, nullptr);
}

static void encrypted_teardown(EncryptedFixture *f, gconstpointer) {
  qcrypto_secret_set_lookup_func(nullptr, nullptr);
  g_hash_table_remove_all(test_secrets);
  g_free(f->iv_b64);
}

static void test_encrypted(EncryptedFixture *f, gconstpointer) {
  /* Lengths around the block size: the padding is a full block at 16. */
  for (const char *plain : {"", "a", "exactly16bytes!!", "a longer password, with a comma"}) {
    g_autofree char *cipher = encrypt(f->key, f->iv, plain);
    g_autoptr(GError) error = nullptr;
    g_autoptr(QCryptoSecret) s =
        qcrypto_secret_new(&error, "id", "enc", "data", cipher, "format",
                           QCRYPTO_SECRET_FORMAT_BASE64, "keyid", "master", "iv", f->iv_b64,
                           nullptr);
    g_assert_no_error(error);
    g_assert_true(value_of(s) == plain);
  }
  /* Through the lookup helpers, by id. */
  g_autofree char *cipher = encrypt(f->key, f->iv, "by id");
  g_autoptr(GError) error = nullptr;
  add_secret(qcrypto_secret_new(&error, "id", "enc2", "data", cipher, "format",
                                QCRYPTO_SECRET_FORMAT_BASE64, "keyid", "master", "iv", f->iv_b64,
                                nullptr));
  g_assert_no_error(error);
  g_autofree char *text = nullptr;
  g_assert_true(qcrypto_secret_lookup_text("enc2", &text, &error));
  g_assert_cmpstr(text, ==, "by id");
  g_autoptr(GBytes) bytes = nullptr;
  g_assert_true(qcrypto_secret_lookup_bytes("enc2", &bytes, &error));
  g_assert_cmpuint(g_bytes_get_size(bytes), ==, 5);
}

static void expect_encrypted_failure(const char *cipher, const char *keyid, const char *iv,
                                     const char *needle1, const char *needle2) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSecret) s =
      qcrypto_secret_new(&error, "id", "enc", "data", cipher, "format",
                         QCRYPTO_SECRET_FORMAT_BASE64, "keyid", keyid, "iv", iv, nullptr);
  g_assert_null(s);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, needle1, needle2);
}

static void test_encrypted_errors(EncryptedFixture *f, gconstpointer) {
  g_autofree char *cipher = encrypt(f->key, f->iv, "secret text");
  expect_encrypted_failure(cipher, "nosuchkey", f->iv_b64, "'enc'", "'nosuchkey'");
  expect_encrypted_failure(cipher, "short", f->iv_b64, "'short'", "32-byte");
  expect_encrypted_failure(cipher, "master", "AAAA", "'enc'", "'iv'");
  expect_encrypted_failure(cipher, "master", "!!!!", "'enc'", "'iv'");
  expect_encrypted_failure("c2hvcnQ=", "master", f->iv_b64, "'enc'", "multiple");
  expect_encrypted_failure("not base64", "master", f->iv_b64, "'enc'", "base64");
  /* A wrong iv garbles only the first block: the padding survives, the
   * value does not; a wrong key garbles the padding. */
  guint8 other_key[32];
  for (int i = 0; i < 32; i++) other_key[i] = static_cast<guint8>(255 - i);
  g_autofree char *wrong = encrypt(other_key, f->iv, "secret text");
  expect_encrypted_failure(wrong, "master", f->iv_b64, "'master'", "padding");

  g_autoptr(GError) error = nullptr;
  g_autoptr(QCryptoSecret) no_iv = qcrypto_secret_new(
      &error, "id", "enc", "data", cipher, "format", QCRYPTO_SECRET_FORMAT_BASE64, "keyid",
      "master", nullptr);
  g_assert_null(no_iv);
  assert_mentions(error, "'enc'", "'iv'");
  g_clear_error(&error);
  g_autoptr(QCryptoSecret) no_keyid =
      qcrypto_secret_new(&error, "id", "enc", "data", cipher, "iv", f->iv_b64, nullptr);
  g_assert_null(no_keyid);
  assert_mentions(error, "'enc'", "'keyid'");
}

static void test_lookup_without_registry() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(GBytes) bytes = nullptr;
  g_assert_false(qcrypto_secret_lookup_bytes("sec9", &bytes, &error));
  g_assert_null(bytes);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT);
  assert_mentions(error, "'sec9'", nullptr);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  test_secrets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
  g_test_add_func("/qcrypto/secret/raw", test_raw);
  g_test_add_func("/qcrypto/secret/empty", test_empty);
  g_test_add_func("/qcrypto/secret/base64", test_base64);
  g_test_add_func("/qcrypto/secret/bad-base64", test_bad_base64);
  g_test_add_func("/qcrypto/secret/file", test_file);
  g_test_add_func("/qcrypto/secret/data-and-file", test_data_and_file);
  g_test_add("/qcrypto/secret/encrypted", EncryptedFixture, nullptr, encrypted_setup,
             test_encrypted, encrypted_teardown);
  g_test_add("/qcrypto/secret/encrypted-errors", EncryptedFixture, nullptr, encrypted_setup,
             test_encrypted_errors, encrypted_teardown);
  g_test_add_func("/qcrypto/secret/lookup-without-registry", test_lookup_without_registry);
  int rc = g_test_run();
  g_hash_table_unref(test_secrets);
  return rc;
}
