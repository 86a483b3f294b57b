/*
 * QCryptoTLSCredsX509 (`tls-creds-x509`): x509 certificates from `dir`:
 * ca-cert.pem (up to 16 CAs), optional ca-crl.pem, server-cert.pem and
 * server-key.pem (servers), client-cert.pem and client-key.pem (clients,
 * optional), optional dh-params.pem.  Properties beyond the base class:
 * `sanity-check` (default TRUE) and `passwordid` (the secret decrypting an
 * encrypted private key).
 */
#pragma once

#include "qcrypto/tls-creds.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_TLS_CREDS_X509 (qcrypto_tls_creds_x509_get_type())
G_DECLARE_FINAL_TYPE(QCryptoTLSCredsX509, qcrypto_tls_creds_x509, QCRYPTO, TLS_CREDS_X509,
                     QCryptoTLSCreds)

G_END_DECLS
