/* qcrypto error domain: credential, secret, authorization, TLS and SASL
 * failures. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QCRYPTO_ERROR (qcrypto_error_quark())

typedef enum {
  QCRYPTO_ERROR_FAILED,
  QCRYPTO_ERROR_INVALID_ARGUMENT, /* a property value is malformed */
  QCRYPTO_ERROR_FILE,             /* a credential file is missing or unreadable */
  QCRYPTO_ERROR_CERTIFICATE,      /* a certificate fails a sanity check */
  QCRYPTO_ERROR_HANDSHAKE,        /* the TLS handshake or SASL exchange failed */
  QCRYPTO_ERROR_VERIFY,           /* the peer's identity could not be verified */
  QCRYPTO_ERROR_ACCESS_DENIED,    /* authorization refused the peer */
  QCRYPTO_ERROR_PREMATURE_CLOSE,  /* the peer closed without a TLS bye */
  QCRYPTO_ERROR_AUTHENTICATION,   /* SASL refused the credentials (user, password) */
  QCRYPTO_ERROR_EXISTS,           /* a file to be written is already there */
} QCryptoError;

GQuark qcrypto_error_quark(void);

G_END_DECLS
