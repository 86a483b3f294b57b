/*
 * Inside qcrypto/: the TLS credentials class structure, the reference-counted
 * loaded state, and the helpers the credential subclasses share.
 */
#pragma once

#include "qcrypto/tls-creds.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <atomic>
#include <string>
#include <vector>

/* What one load of the files produced.  Sessions hold a reference for
 * their whole life, so a reload never frees material in use. */
struct QCryptoTLSCredsState {
  QCryptoTLSCredsState() = default;
  QCryptoTLSCredsState(const QCryptoTLSCredsState &) = delete;
  QCryptoTLSCredsState &operator=(const QCryptoTLSCredsState &) = delete;
  virtual ~QCryptoTLSCredsState();

  struct Cert {
    std::string file;
    std::string subject;
    gint64 expiry;
    QCryptoTLSExpiryKind kind = QCRYPTO_TLS_EXPIRY_CERTIFICATE;
  };

  std::atomic<int> refs{1};
  gnutls_priority_t priority = nullptr;
  gnutls_dh_params_t dh = nullptr;
  std::vector<Cert> certs; /* and CRLs, for the expiry check */
};

QCryptoTLSCredsState *qcrypto_tls_creds_state_ref(QCryptoTLSCredsState *state);
void qcrypto_tls_creds_state_unref(QCryptoTLSCredsState *state);


/* The current state, referenced; NULL before the object is complete. */
QCryptoTLSCredsState *qcrypto_tls_creds_get_state(QCryptoTLSCreds *creds);

/* Reads @name from the credentials directory.  A missing optional file
 * returns FALSE with no error; anything else names the object and file. */
gboolean qcrypto_tls_creds_read_file(QCryptoTLSCreds *creds, const char *name,
                                     gboolean optional, GBytes **contents, char **path,
                                     GError **error);

/* Loads dh-params.pem if present into @state. */
gboolean qcrypto_tls_creds_load_dh_params(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                                          GError **error);

/* A gnutls_datum_t view of @bytes (no copy). */
gnutls_datum_t qcrypto_tls_datum(GBytes *bytes);

/* The verify callback x509 credentials install: runs the session's peer
 * check during the handshake so that a rejection sends a named alert. */
int qcrypto_tls_session_verify_callback(gnutls_session_t session) noexcept;

/* The credentials state a session of ours runs with (PSK lookups). */
QCryptoTLSCredsState *qcrypto_tls_session_state_of(gnutls_session_t session) noexcept;
