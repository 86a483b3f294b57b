/*
 * QCryptoTLSCredsAnon (`tls-creds-anon`): anonymous Diffie-Hellman, with
 * no authentication (VNC's VeNCrypt TLSNone).  `dir` may hold
 * dh-params.pem; without it the ECDH key exchange is used.
 */
#pragma once

#include "qcrypto/tls-creds.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_TLS_CREDS_ANON (qcrypto_tls_creds_anon_get_type())
G_DECLARE_FINAL_TYPE(QCryptoTLSCredsAnon, qcrypto_tls_creds_anon, QCRYPTO, TLS_CREDS_ANON,
                     QCryptoTLSCreds)

G_END_DECLS
