/* QCryptoSecret (QOM type "secret"): a password or key given inline
 * (`data`) or in a file (`file`), optionally base64-encoded and optionally
 * encrypted (AES-256-CBC) with the key held by another secret (`keyid`,
 * `iv`).  Other objects name secrets by id (`passwordid`, `keyid`, ...)
 * and resolve them through the lookup hook below, which the object
 * registry installs. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* How `data` / the file contents are encoded.  With `keyid` this is the
 * encoding of the ciphertext; the plaintext is used as decrypted. */
typedef enum {
  QCRYPTO_SECRET_FORMAT_RAW,
  QCRYPTO_SECRET_FORMAT_BASE64,
} QCryptoSecretFormat;

#define QCRYPTO_TYPE_SECRET_FORMAT (qcrypto_secret_format_get_type())
GType qcrypto_secret_format_get_type(void);

#define QCRYPTO_TYPE_SECRET (qcrypto_secret_get_type())
G_DECLARE_FINAL_TYPE(QCryptoSecret, qcrypto_secret, QCRYPTO, SECRET, GObject)

/* Creates and completes a secret; the keyword arguments are property
 * name/value pairs as for g_initable_new(). */
QCryptoSecret *qcrypto_secret_new(GError **error, const char *first_property_name, ...)
    G_GNUC_NULL_TERMINATED;

const char *qcrypto_secret_get_id(QCryptoSecret *secret);
/* The plaintext value (transfer full).  Only after a successful init. */
GBytes *qcrypto_secret_get_bytes(QCryptoSecret *secret);
/* The plaintext as a NUL-terminated string; fails unless it is valid UTF-8
 * without NUL bytes.  Free with g_free(). */
char *qcrypto_secret_get_text(QCryptoSecret *secret, GError **error);

/* Resolves a secret id to a new reference (transfer full) or NULL. */
typedef QCryptoSecret *(*QCryptoSecretLookupFunc)(const char *id, gpointer data);

/* Installs the process-wide secret lookup hook (NULL removes it). */
void qcrypto_secret_set_lookup_func(QCryptoSecretLookupFunc lookup, gpointer data);
/* A new reference to the secret named @id, or NULL with an error naming
 * the missing id. */
QCryptoSecret *qcrypto_secret_lookup(const char *id, GError **error);
/* The plaintext of the secret named @id, as bytes or as UTF-8 text. */
gboolean qcrypto_secret_lookup_bytes(const char *id, GBytes **out, GError **error);
gboolean qcrypto_secret_lookup_text(const char *id, char **out, GError **error);

G_END_DECLS
