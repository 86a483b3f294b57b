/*
 * QCryptoTLSCipherSuites (`tls-cipher-suites`): a priority string only, so
 * that firmware can be told which cipher suites the host will accept.  It
 * cannot be used for a session.
 */
#pragma once

#include "qcrypto/tls-creds.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_TLS_CIPHER_SUITES (qcrypto_tls_cipher_suites_get_type())
G_DECLARE_FINAL_TYPE(QCryptoTLSCipherSuites, qcrypto_tls_cipher_suites, QCRYPTO,
                     TLS_CIPHER_SUITES, QCryptoTLSCreds)

/* The IANA identifiers (two bytes each, big-endian) of the TLS 1.2 and 1.3
 * cipher suites the priority string enables, in order. */
GBytes *qcrypto_tls_cipher_suites_get_data(QCryptoTLSCipherSuites *suites, GError **error);

G_END_DECLS
