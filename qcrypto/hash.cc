#include "config.h"

#include "qcrypto/hash.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/* GnuTLS refuses to hash only in unusual setups (a FIPS mode without
 * SHA-256 is not one of them, but a broken library might be): GChecksum
 * then gives the same digest, more slowly. */
struct _QCryptoHash {
  gnutls_hash_hd_t handle;
  GChecksum *fallback;
};

QCryptoHash *qcrypto_hash_new_sha256(void) {
  auto *hash = g_new0(QCryptoHash, 1);
  if (gnutls_hash_init(&hash->handle, GNUTLS_DIG_SHA256) < 0) {
    hash->handle = nullptr;
    hash->fallback = g_checksum_new(G_CHECKSUM_SHA256);
  }
  return hash;
}

void qcrypto_hash_update(QCryptoHash *hash, const void *data, gsize len) {
  if (hash->fallback) {
    /* GChecksum takes a gssize length. */
    const auto *p = static_cast<const guchar *>(data);
    while (len > 0) {
      gsize n = MIN(len, static_cast<gsize>(G_MAXSSIZE));
      g_checksum_update(hash->fallback, p, static_cast<gssize>(n));
      p += n;
      len -= n;
    }
    return;
  }
  gnutls_hash(hash->handle, data, len);
}

char *qcrypto_hash_finish_hex(QCryptoHash *hash) {
  if (hash->fallback) {
    char *hex = g_strdup(g_checksum_get_string(hash->fallback));
    g_checksum_reset(hash->fallback);
    return hex;
  }
  guint8 digest[32];
  gnutls_hash_output(hash->handle, digest);
  char *hex = static_cast<char *>(g_malloc(sizeof digest * 2 + 1));
  for (gsize i = 0; i < sizeof digest; i++) g_snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return hex;
}

void qcrypto_hash_free(QCryptoHash *hash) {
  if (!hash) return;
  if (hash->fallback) g_checksum_free(hash->fallback);
  if (hash->handle) gnutls_hash_deinit(hash->handle, nullptr);
  g_free(hash);
}
