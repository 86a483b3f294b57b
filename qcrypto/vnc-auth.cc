#include "config.h"

#include "qcrypto/vnc-auth.h"
#include "qcrypto/error.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <glib/gi18n-lib.h>

#include <cstring>

gboolean qcrypto_vnc_auth_challenge(guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                    GError **error) {
  int ret = gnutls_rnd(GNUTLS_RND_NONCE, challenge, QCRYPTO_VNC_AUTH_CHALLENGE_LEN);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("cannot generate a VNC authentication challenge: %s"), gnutls_strerror(ret));
    return FALSE;
  }
  return TRUE;
}

gboolean qcrypto_vnc_auth_response(const char *password,
                                   const guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                   guint8 response[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                   GError **error) {
  /* RFB's DES key is the password padded with zeroes to 8 bytes, each byte
   * bit-reversed (a quirk of the original implementation). */
  guint8 key[8] = {};
  for (gsize i = 0; i < sizeof key && password[i]; i++) {
    guint8 c = static_cast<guint8>(password[i]), r = 0;
    for (int bit = 0; bit < 8; bit++)
      if (c & (1u << bit)) r |= static_cast<guint8>(0x80u >> bit);
    key[i] = r;
  }
  memcpy(response, challenge, QCRYPTO_VNC_AUTH_CHALLENGE_LEN);
  /* ECB over two blocks: CBC with a zero IV, restarted for each block. */
  for (gsize block = 0; block < QCRYPTO_VNC_AUTH_CHALLENGE_LEN; block += 8) {
    guint8 iv[8] = {};
    gnutls_datum_t k = {key, sizeof key}, v = {iv, sizeof iv};
    gnutls_cipher_hd_t cipher;
    int ret = gnutls_cipher_init(&cipher, GNUTLS_CIPHER_DES_CBC, &k, &v);
    if (ret == 0) {
      ret = gnutls_cipher_encrypt(cipher, response + block, 8);
      gnutls_cipher_deinit(cipher);
    }
    if (ret < 0) {
      gnutls_memset(key, 0, sizeof key);
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                  _("VNC authentication needs DES, which GnuTLS refused: %s; use SASL or "
                    "TLS client certificates instead"),
                  gnutls_strerror(ret));
      return FALSE;
    }
  }
  gnutls_memset(key, 0, sizeof key);
  return TRUE;
}

gboolean qcrypto_vnc_auth_check(const char *password,
                                const guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                const guint8 response[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                GError **error) {
  guint8 expected[QCRYPTO_VNC_AUTH_CHALLENGE_LEN];
  if (!qcrypto_vnc_auth_response(password, challenge, expected, error)) return FALSE;
  gboolean same = gnutls_memcmp(expected, response, sizeof expected) == 0;
  gnutls_memset(expected, 0, sizeof expected);
  return same;
}
