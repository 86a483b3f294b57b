#include "config.h"

#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-priv.h"

#include <glib/gi18n-lib.h>

#include <memory>

struct _QCryptoTLSCredsAnon {
  QCryptoTLSCreds parent_instance;
};

G_DEFINE_FINAL_TYPE(QCryptoTLSCredsAnon, qcrypto_tls_creds_anon, QCRYPTO_TYPE_TLS_CREDS)

namespace {

struct AnonState : QCryptoTLSCredsState {
  gnutls_anon_server_credentials_t server = nullptr;
  gnutls_anon_client_credentials_t client = nullptr;
  ~AnonState() override {
    if (server) gnutls_anon_free_server_credentials(server);
    if (client) gnutls_anon_free_client_credentials(client);
  }
};

QCryptoTLSCredsState *anon_load(QCryptoTLSCreds *creds, GError **error) {
  std::unique_ptr<AnonState> state(new AnonState);
  int ret;
  if (qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER) {
    if (qcrypto_tls_creds_get_dir(creds) &&
        !qcrypto_tls_creds_load_dh_params(creds, state.get(), error))
      return nullptr;
    ret = gnutls_anon_allocate_server_credentials(&state->server);
    if (ret >= 0 && state->dh) gnutls_anon_set_server_dh_params(state->server, state->dh);
  } else {
    ret = gnutls_anon_allocate_client_credentials(&state->client);
  }
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("TLS credentials '%s': cannot set up anonymous credentials: %s"),
                qcrypto_tls_creds_get_id(creds), gnutls_strerror(ret));
    return nullptr;
  }
  return state.release();
}

int anon_apply_to_session(QCryptoTLSCreds *, QCryptoTLSCredsState *base,
                          gpointer session_ptr) {
  auto session = static_cast<gnutls_session_t>(session_ptr);
  auto *state = static_cast<AnonState *>(base);
  return state->server ? gnutls_credentials_set(session, GNUTLS_CRD_ANON, state->server)
                       : gnutls_credentials_set(session, GNUTLS_CRD_ANON, state->client);
}

/* Anonymous peers have no identity to check. */
gboolean anon_check_peer(QCryptoTLSCreds *, QCryptoTLSCredsState *, gpointer, const char *,
                         char **, int *, GError **) {
  return TRUE;
}

}  // namespace

static void qcrypto_tls_creds_anon_class_init(QCryptoTLSCredsAnonClass *klass) {
  QCryptoTLSCredsClass *creds_class = QCRYPTO_TLS_CREDS_CLASS(klass);
  creds_class->load = anon_load;
  creds_class->apply_to_session = anon_apply_to_session;
  creds_class->check_peer = anon_check_peer;
  creds_class->priority_suffix = ":+ANON-ECDH:+ANON-DH";
}

static void qcrypto_tls_creds_anon_init(QCryptoTLSCredsAnon *) {}
