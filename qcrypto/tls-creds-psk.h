/*
 * QCryptoTLSCredsPSK (`tls-creds-psk`): pre-shared keys.  Keys come from
 * `dir`/keys.psk (`username:hexkey` lines, as psktool writes them) or,
 * beyond QEMU, from a `secret` object named by `key-secret` (the secret
 * holds the key in hex), so that no key file lies on disk.  `username`
 * is the client's identity (default "qemu"); a server with `key-secret`
 * accepts only that user name.
 */
#pragma once

#include "qcrypto/tls-creds.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_TLS_CREDS_PSK (qcrypto_tls_creds_psk_get_type())
G_DECLARE_FINAL_TYPE(QCryptoTLSCredsPSK, qcrypto_tls_creds_psk, QCRYPTO, TLS_CREDS_PSK,
                     QCryptoTLSCreds)

G_END_DECLS
