#include "config.h"

#include "qcrypto/tls-creds-psk.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-priv.h"

#include <glib/gi18n-lib.h>

#include <map>
#include <memory>

struct _QCryptoTLSCredsPSK {
  QCryptoTLSCreds parent_instance;
  char *username;
  char *key_secret;
};

G_DEFINE_FINAL_TYPE(QCryptoTLSCredsPSK, qcrypto_tls_creds_psk, QCRYPTO_TYPE_TLS_CREDS)

namespace {

enum { PROP_0, PROP_USERNAME, PROP_KEY_SECRET, N_PROPS };

constexpr const char *kDefaultUsername = "qemu";

struct PSKState : QCryptoTLSCredsState {
  gnutls_psk_server_credentials_t server = nullptr;
  gnutls_psk_client_credentials_t client = nullptr;
  std::map<std::string, std::string> keys; /* user name -> raw key (server) */
  ~PSKState() override {
    if (server) gnutls_psk_free_server_credentials(server);
    if (client) gnutls_psk_free_client_credentials(client);
  }
};

const char *psk_username(QCryptoTLSCredsPSK *psk) {
  return psk->username ? psk->username : kDefaultUsername;
}

/* Hex to bytes; FALSE on odd length or a non-hex digit. */
gboolean unhex(const char *hex, gsize len, std::string &out) {
  if (len == 0 || len % 2) return FALSE;
  out.clear();
  for (gsize i = 0; i < len; i += 2) {
    int hi = g_ascii_xdigit_value(hex[i]), lo = g_ascii_xdigit_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return FALSE;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return TRUE;
}

gboolean parse_keys_file(QCryptoTLSCredsPSK *psk, PSKState *state, GError **error) {
  QCryptoTLSCreds *creds = QCRYPTO_TLS_CREDS(psk);
  g_autoptr(GBytes) contents = nullptr;
  g_autofree char *path = nullptr;
  if (!qcrypto_tls_creds_read_file(creds, "keys.psk", FALSE, &contents, &path, error))
    return FALSE;
  gsize len = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(contents, &len));
  g_autofree char *text = g_strndup(data, len);
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    char *line = g_strstrip(lines[i]);
    if (!*line) continue;
    char *colon = strrchr(line, ':');
    std::string key;
    if (!colon || colon == line || !unhex(colon + 1, strlen(colon + 1), key)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("TLS credentials '%s': line %u of '%s' is not 'username:hexkey'; "
                    "write it with psktool"),
                  qcrypto_tls_creds_get_id(creds), i + 1, path);
      return FALSE;
    }
    state->keys[std::string(line, colon)] = key;
  }
  if (state->keys.empty()) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' holds no key; add one with psktool"),
                qcrypto_tls_creds_get_id(creds), path);
    return FALSE;
  }
  return TRUE;
}

gboolean load_secret_key(QCryptoTLSCredsPSK *psk, PSKState *state, GError **error) {
  QCryptoTLSCreds *creds = QCRYPTO_TLS_CREDS(psk);
  g_autoptr(GBytes) secret =
      qcrypto_tls_creds_lookup_secret(creds, "key-secret", psk->key_secret, error);
  if (!secret) return FALSE;
  gsize len = 0;
  const char *hex = static_cast<const char *>(g_bytes_get_data(secret, &len));
  while (len > 0 && g_ascii_isspace(hex[len - 1])) len--;
  std::string key;
  if (!unhex(hex, len, key)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials '%s': secret '%s' given by key-secret does not hold a "
                  "key in hex; store e.g. the output of 'psktool' or 'openssl rand -hex 32'"),
                qcrypto_tls_creds_get_id(creds), psk->key_secret);
    return FALSE;
  }
  state->keys[psk_username(psk)] = key;
  return TRUE;
}

int server_lookup(gnutls_session_t session, const char *username, gnutls_datum_t *key) noexcept {
  auto *state = static_cast<PSKState *>(qcrypto_tls_session_state_of(session));
  if (!state) return -1;
  auto it = state->keys.find(username);
  if (it == state->keys.end()) return -1;
  key->data = static_cast<unsigned char *>(gnutls_malloc(it->second.size()));
  if (!key->data) return -1;
  memcpy(key->data, it->second.data(), it->second.size());
  key->size = static_cast<unsigned int>(it->second.size());
  return 0;
}

QCryptoTLSCredsState *psk_load(QCryptoTLSCreds *creds, GError **error) {
  auto *psk = QCRYPTO_TLS_CREDS_PSK(creds);
  const char *id = qcrypto_tls_creds_get_id(creds);
  std::unique_ptr<PSKState> state(new PSKState);
  if (psk->key_secret ? !load_secret_key(psk, state.get(), error)
                      : !parse_keys_file(psk, state.get(), error))
    return nullptr;
  int ret;
  if (qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER) {
    if (qcrypto_tls_creds_get_dir(creds) &&
        !qcrypto_tls_creds_load_dh_params(creds, state.get(), error))
      return nullptr;
    ret = gnutls_psk_allocate_server_credentials(&state->server);
    if (ret >= 0) {
      gnutls_psk_set_server_credentials_function(state->server, server_lookup);
      if (state->dh) gnutls_psk_set_server_dh_params(state->server, state->dh);
    }
  } else {
    const char *user = psk_username(psk);
    auto it = state->keys.find(user);
    if (it == state->keys.end()) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("TLS credentials '%s': keys.psk in '%s' has no key for user name '%s'; "
                    "add one with 'psktool -u %s' or set username"),
                  id, qcrypto_tls_creds_get_dir(creds), user, user);
      return nullptr;
    }
    gnutls_datum_t key = {reinterpret_cast<unsigned char *>(it->second.data()),
                          static_cast<unsigned int>(it->second.size())};
    ret = gnutls_psk_allocate_client_credentials(&state->client);
    if (ret >= 0)
      ret = gnutls_psk_set_client_credentials(state->client, user, &key, GNUTLS_PSK_KEY_RAW);
  }
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("TLS credentials '%s': cannot set up PSK credentials: %s"), id,
                gnutls_strerror(ret));
    return nullptr;
  }
  return state.release();
}

int psk_apply_to_session(QCryptoTLSCreds *, QCryptoTLSCredsState *base,
                         gpointer session_ptr) {
  auto session = static_cast<gnutls_session_t>(session_ptr);
  auto *state = static_cast<PSKState *>(base);
  return state->server ? gnutls_credentials_set(session, GNUTLS_CRD_PSK, state->server)
                       : gnutls_credentials_set(session, GNUTLS_CRD_PSK, state->client);
}

gboolean psk_check_peer(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                        gpointer session_ptr, const char *, char **identity, int *,
                        GError **) {
  auto session = static_cast<gnutls_session_t>(session_ptr);
  if (static_cast<PSKState *>(state)->server)
    *identity = g_strdup(gnutls_psk_server_get_username(session));
  else
    *identity = g_strdup(psk_username(QCRYPTO_TLS_CREDS_PSK(creds)));
  return TRUE;
}

}  // namespace

static void qcrypto_tls_creds_psk_set_property(GObject *object, guint prop_id,
                                               const GValue *value, GParamSpec *pspec) {
  auto *psk = QCRYPTO_TLS_CREDS_PSK(object);
  switch (prop_id) {
    case PROP_USERNAME:
      g_free(psk->username);
      psk->username = g_value_dup_string(value);
      break;
    case PROP_KEY_SECRET:
      g_free(psk->key_secret);
      psk->key_secret = g_value_dup_string(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_psk_get_property(GObject *object, guint prop_id, GValue *value,
                                               GParamSpec *pspec) {
  auto *psk = QCRYPTO_TLS_CREDS_PSK(object);
  switch (prop_id) {
    case PROP_USERNAME:
      g_value_set_string(value, psk->username);
      break;
    case PROP_KEY_SECRET:
      g_value_set_string(value, psk->key_secret);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_psk_finalize(GObject *object) {
  auto *psk = QCRYPTO_TLS_CREDS_PSK(object);
  g_free(psk->username);
  g_free(psk->key_secret);
  G_OBJECT_CLASS(qcrypto_tls_creds_psk_parent_class)->finalize(object);
}

static void qcrypto_tls_creds_psk_class_init(QCryptoTLSCredsPSKClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_tls_creds_psk_set_property;
  object_class->get_property = qcrypto_tls_creds_psk_get_property;
  object_class->finalize = qcrypto_tls_creds_psk_finalize;
  QCryptoTLSCredsClass *creds_class = QCRYPTO_TLS_CREDS_CLASS(klass);
  creds_class->load = psk_load;
  creds_class->apply_to_session = psk_apply_to_session;
  creds_class->check_peer = psk_check_peer;
  creds_class->priority_suffix = ":+ECDHE-PSK:+DHE-PSK:+PSK";

  /* Fixed once created (as QEMU's user-creatable objects): loaded
   * credentials never disagree with their properties; tls-creds-reload
   * rereads the files. */
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                        G_PARAM_STATIC_STRINGS);
  GParamSpec *props[N_PROPS] = {};
  props[PROP_USERNAME] = g_param_spec_string("username", "User name", "PSK identity",
                                             nullptr, flags);
  props[PROP_KEY_SECRET] = g_param_spec_string(
      "key-secret", "Key secret", "Secret holding the key in hex", nullptr, flags);
  g_object_class_install_properties(object_class, N_PROPS, props);
}

static void qcrypto_tls_creds_psk_init(QCryptoTLSCredsPSK *) {}
