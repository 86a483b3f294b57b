/*
 * QCryptoTLSCreds: the abstract TLS credentials object (x509, PSK, anon).
 *
 * Properties are set first; g_initable_init() is the "complete" step that
 * loads and validates the files.  The loaded material lives in a
 * reference-counted state: qcrypto_tls_creds_reload() swaps in a fresh one
 * for new sessions while sessions in progress keep the state they started
 * with.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
  QCRYPTO_TLS_CREDS_ENDPOINT_SERVER,
} QCryptoTLSCredsEndpoint;

#define QCRYPTO_TYPE_TLS_CREDS_ENDPOINT (qcrypto_tls_creds_endpoint_get_type())
GType qcrypto_tls_creds_endpoint_get_type(void);

#define QCRYPTO_TYPE_TLS_CREDS (qcrypto_tls_creds_get_type())
G_DECLARE_DERIVABLE_TYPE(QCryptoTLSCreds, qcrypto_tls_creds, QCRYPTO, TLS_CREDS, GObject)

/* What one load of the files produced (opaque; qcrypto/tls-creds-priv.h). */
typedef struct QCryptoTLSCredsState QCryptoTLSCredsState;

/* The vfuncs are implemented inside qcrypto/ only; GnuTLS types appear as
 * gpointer (gnutls_session_t) and int (gnutls_alert_description_t) so that
 * this header does not need GnuTLS. */
struct _QCryptoTLSCredsClass {
  GObjectClass parent_class;

  /* Loads and validates the files into a new state (the base class adds
   * the priority). */
  QCryptoTLSCredsState *(*load)(QCryptoTLSCreds *creds, GError **error);
  /* Sets @state's credentials on a new session; a GnuTLS error code. */
  int (*apply_to_session)(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                          gpointer session);
  /* Checks the peer of a handshaking session and returns its identity (DN
   * or PSK user name; NULL for anonymous peers).  On failure *alert is the
   * alert that tells the peer why. */
  gboolean (*check_peer)(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                         gpointer session, const char *hostname, char **identity,
                         int *alert, GError **error);
  /* Key exchanges appended to the priority string (PSK, anon). */
  const char *priority_suffix;

  gpointer padding[8];
};

/* The default priority: TLS 1.3 and 1.2 only, AES-GCM first (it runs
 * several times faster than ChaCha20 where AES-NI exists). */
#define QCRYPTO_TLS_CREDS_DEFAULT_PRIORITY                                   \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:" \
  "+AES-256-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"

const char *qcrypto_tls_creds_get_id(QCryptoTLSCreds *creds);
QCryptoTLSCredsEndpoint qcrypto_tls_creds_get_endpoint(QCryptoTLSCreds *creds);
gboolean qcrypto_tls_creds_get_verify_peer(QCryptoTLSCreds *creds);
const char *qcrypto_tls_creds_get_dir(QCryptoTLSCreds *creds);

/* Loads the files again into a new state used by sessions created from now
 * on.  On failure the current state stays and @error says why. */
gboolean qcrypto_tls_creds_reload(QCryptoTLSCreds *creds, GError **error);

/* The bytes of the `secret` object @secret_id named by @property
 * (x509 `passwordid`, PSK `key-secret`), resolved through the secret
 * lookup hook (qcrypto_secret_set_lookup_func); an error names @creds. */
GBytes *qcrypto_tls_creds_lookup_secret(QCryptoTLSCreds *creds, const char *property,
                                        const char *secret_id, GError **error);

typedef enum {
  QCRYPTO_TLS_EXPIRY_CERTIFICATE,
  QCRYPTO_TLS_EXPIRY_CRL, /* a revocation list: renew it before nextUpdate */
} QCryptoTLSExpiryKind;

/* A certificate or revocation list of the loaded state that expires soon. */
typedef struct {
  char *file;      /* the file it was loaded from */
  char *subject;   /* its distinguished name; a CRL's issuer's */
  gint64 expiry;   /* notAfter (a CRL: nextUpdate), seconds since the epoch (UTC) */
  QCryptoTLSExpiryKind kind;
} QCryptoTLSCertExpiry;

void qcrypto_tls_cert_expiry_free(QCryptoTLSCertExpiry *expiry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoTLSCertExpiry, qcrypto_tls_cert_expiry_free)

/* The certificates and revocation lists of the current state that expire
 * within @days days (or have expired), soonest first: a GPtrArray of
 * QCryptoTLSCertExpiry that frees its elements.  A CRL past its nextUpdate
 * still applies where it is loaded, but no new load accepts it. */
GPtrArray *qcrypto_tls_creds_get_expiring(QCryptoTLSCreds *creds, guint days);

G_END_DECLS
