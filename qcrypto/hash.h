/*
 * SHA-256 through GnuTLS (which uses the CPU's SHA extensions where they
 * exist: several times GChecksum's speed), for code outside qcrypto/ that
 * must not include GnuTLS.  Same digests as GChecksum's SHA-256.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QCryptoHash QCryptoHash;

QCryptoHash *qcrypto_hash_new_sha256(void);
void qcrypto_hash_update(QCryptoHash *hash, const void *data, gsize len);
/* The digest as lower-case hex (g_free it); @hash is reset for reuse. */
char *qcrypto_hash_finish_hex(QCryptoHash *hash);
void qcrypto_hash_free(QCryptoHash *hash);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoHash, qcrypto_hash_free)

G_END_DECLS
