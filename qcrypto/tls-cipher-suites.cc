#include "config.h"

#include "qcrypto/tls-cipher-suites.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-priv.h"

#include <glib/gi18n-lib.h>

struct _QCryptoTLSCipherSuites {
  QCryptoTLSCreds parent_instance;
};

G_DEFINE_FINAL_TYPE(QCryptoTLSCipherSuites, qcrypto_tls_cipher_suites, QCRYPTO_TYPE_TLS_CREDS)

namespace {

/* Only the priority string (which the base class validates) is loaded. */
QCryptoTLSCredsState *suites_load(QCryptoTLSCreds *, GError **) {
  return new QCryptoTLSCredsState;
}

int suites_apply_to_session(QCryptoTLSCreds *, QCryptoTLSCredsState *, gpointer) {
  return GNUTLS_E_INSUFFICIENT_CREDENTIALS;
}

}  // namespace

static void qcrypto_tls_cipher_suites_class_init(QCryptoTLSCipherSuitesClass *klass) {
  QCryptoTLSCredsClass *creds_class = QCRYPTO_TLS_CREDS_CLASS(klass);
  creds_class->load = suites_load;
  creds_class->apply_to_session = suites_apply_to_session;
}

static void qcrypto_tls_cipher_suites_init(QCryptoTLSCipherSuites *) {}

GBytes *qcrypto_tls_cipher_suites_get_data(QCryptoTLSCipherSuites *suites, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CIPHER_SUITES(suites), nullptr);
  QCryptoTLSCreds *creds = QCRYPTO_TLS_CREDS(suites);
  QCryptoTLSCredsState *state = qcrypto_tls_creds_get_state(creds);
  if (!state) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Cipher suites '%s' are not complete yet; initialize the object first"),
                qcrypto_tls_creds_get_id(creds));
    return nullptr;
  }
  GByteArray *out = g_byte_array_new();
  for (unsigned i = 0;; i++) {
    unsigned idx = 0;
    int ret = gnutls_priority_get_cipher_suite_index(state->priority, i, &idx);
    if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
    if (ret < 0) continue;
    unsigned char iana[2];
    if (!gnutls_cipher_suite_info(idx, iana, nullptr, nullptr, nullptr, nullptr)) continue;
    g_byte_array_append(out, iana, 2);
  }
  qcrypto_tls_creds_state_unref(state);
  return g_byte_array_free_to_bytes(out);
}
