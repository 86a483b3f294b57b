#include "config.h"

#include "qcrypto/tls-creds-priv.h"
#include "qcrypto/error.h"
#include "qcrypto/secret.h"

#include <glib/gi18n-lib.h>

#include <algorithm>

namespace {

enum {
  PROP_0,
  PROP_ID,
  PROP_DIR,
  PROP_ENDPOINT,
  PROP_VERIFY_PEER,
  PROP_PRIORITY,
  N_PROPS,
};

/* How early loading logs that a certificate expires. */
constexpr gint64 kExpiryWarningDays = 30;

struct QCryptoTLSCredsPrivate {
  char *id;
  char *dir;
  QCryptoTLSCredsEndpoint endpoint;
  gboolean verify_peer;
  char *priority;
  GMutex lock; /* guards state */
  QCryptoTLSCredsState *state;
};

}  // namespace

static void qcrypto_tls_creds_initable_iface_init(GInitableIface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(QCryptoTLSCreds, qcrypto_tls_creds, G_TYPE_OBJECT,
                                 G_ADD_PRIVATE(QCryptoTLSCreds)
                                 G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
                                                       qcrypto_tls_creds_initable_iface_init))

GType qcrypto_tls_creds_endpoint_get_type(void) {
  static gsize type_id = 0;
  if (g_once_init_enter(&type_id)) {
    static const GEnumValue values[] = {
        {QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, "QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT", "client"},
        {QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, "QCRYPTO_TLS_CREDS_ENDPOINT_SERVER", "server"},
        {0, nullptr, nullptr},
    };
    g_once_init_leave(&type_id, g_enum_register_static("QCryptoTLSCredsEndpoint", values));
  }
  return type_id;
}

QCryptoTLSCredsState::~QCryptoTLSCredsState() {
  if (priority) gnutls_priority_deinit(priority);
  if (dh) gnutls_dh_params_deinit(dh);
}

QCryptoTLSCredsState *qcrypto_tls_creds_state_ref(QCryptoTLSCredsState *state) {
  state->refs.fetch_add(1, std::memory_order_relaxed);
  return state;
}

void qcrypto_tls_creds_state_unref(QCryptoTLSCredsState *state) {
  if (state && state->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete state;
}

static QCryptoTLSCredsPrivate *creds_priv(QCryptoTLSCreds *creds) {
  return static_cast<QCryptoTLSCredsPrivate *>(qcrypto_tls_creds_get_instance_private(creds));
}

static void qcrypto_tls_creds_set_property(GObject *object, guint prop_id, const GValue *value,
                                           GParamSpec *pspec) {
  QCryptoTLSCredsPrivate *priv = creds_priv(QCRYPTO_TLS_CREDS(object));
  switch (prop_id) {
    case PROP_ID:
      g_free(priv->id);
      priv->id = g_value_dup_string(value);
      break;
    case PROP_DIR:
      g_free(priv->dir);
      priv->dir = g_value_dup_string(value);
      break;
    case PROP_ENDPOINT:
      priv->endpoint = static_cast<QCryptoTLSCredsEndpoint>(g_value_get_enum(value));
      break;
    case PROP_VERIFY_PEER:
      priv->verify_peer = g_value_get_boolean(value);
      break;
    case PROP_PRIORITY:
      g_free(priv->priority);
      priv->priority = g_value_dup_string(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_get_property(GObject *object, guint prop_id, GValue *value,
                                           GParamSpec *pspec) {
  QCryptoTLSCredsPrivate *priv = creds_priv(QCRYPTO_TLS_CREDS(object));
  switch (prop_id) {
    case PROP_ID:
      g_value_set_string(value, priv->id);
      break;
    case PROP_DIR:
      g_value_set_string(value, priv->dir);
      break;
    case PROP_ENDPOINT:
      g_value_set_enum(value, priv->endpoint);
      break;
    case PROP_VERIFY_PEER:
      g_value_set_boolean(value, priv->verify_peer);
      break;
    case PROP_PRIORITY:
      g_value_set_string(value, priv->priority);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_finalize(GObject *object) {
  QCryptoTLSCredsPrivate *priv = creds_priv(QCRYPTO_TLS_CREDS(object));
  qcrypto_tls_creds_state_unref(priv->state);
  g_mutex_clear(&priv->lock);
  g_free(priv->id);
  g_free(priv->dir);
  g_free(priv->priority);
  G_OBJECT_CLASS(qcrypto_tls_creds_parent_class)->finalize(object);
}

/* TLS 1.0 and 1.1 are refused whatever the priority string says. */
static gboolean creds_init_priority(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                                    GError **error) {
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  const char *suffix = QCRYPTO_TLS_CREDS_GET_CLASS(creds)->priority_suffix;
  const char *base = priv->priority ? priv->priority : QCRYPTO_TLS_CREDS_DEFAULT_PRIORITY;
  g_autofree char *prio = g_strconcat(base, ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1",
                                      suffix ? suffix : "", nullptr);
  const char *err_pos = nullptr;
  int ret = gnutls_priority_init(&state->priority, prio, &err_pos);
  if (ret < 0) {
    state->priority = nullptr;
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials '%s': priority string '%s' is invalid near '%s' (%s); "
                  "see the GnuTLS manual's \"Priority strings\" section"),
                priv->id, base, err_pos ? err_pos : "", gnutls_strerror(ret));
    return FALSE;
  }
  return TRUE;
}

static QCryptoTLSCredsState *creds_load(QCryptoTLSCreds *creds, GError **error) {
  QCryptoTLSCredsState *state = QCRYPTO_TLS_CREDS_GET_CLASS(creds)->load(creds, error);
  if (!state) return nullptr;
  if (!creds_init_priority(creds, state, error)) {
    qcrypto_tls_creds_state_unref(state);
    return nullptr;
  }
  std::sort(state->certs.begin(), state->certs.end(),
            [](const auto &a, const auto &b) { return a.expiry < b.expiry; });
  /* A log line well before a certificate or CRL expires, at every (re)load. */
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  for (const auto &cert : state->certs) {
    if (cert.expiry < now || cert.expiry > now + kExpiryWarningDays * 86400) continue;
    g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(cert.expiry);
    g_autofree char *date = g_date_time_format(when, "%Y-%m-%d %H:%M:%S UTC");
    int days = static_cast<int>((cert.expiry - now) / 86400);
    if (cert.kind == QCRYPTO_TLS_EXPIRY_CRL)
      g_message(_("TLS credentials '%s': the revocation list '%s' of %s must be renewed by "
                  "%s, in %d days, or these credentials will not load again; renew it "
                  "(qio-pki crl CA-DIR, or certtool --generate-crl), copy it here and "
                  "reload the credentials"),
                creds_priv(creds)->id, cert.file.c_str(), cert.subject.c_str(), date, days);
    else
      g_message(_("TLS credentials '%s': certificate '%s' (%s) expires on %s, in %d days; "
                  "renew it and reload the credentials"),
                creds_priv(creds)->id, cert.file.c_str(), cert.subject.c_str(), date, days);
  }
  return state;
}

static gboolean qcrypto_tls_creds_initable_init(GInitable *initable, GCancellable *,
                                                GError **error) {
  QCryptoTLSCreds *creds = QCRYPTO_TLS_CREDS(initable);
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  if (!priv->id || !*priv->id) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials of type '%s' need an 'id' property; set id=NAME"),
                G_OBJECT_TYPE_NAME(creds));
    return FALSE;
  }
  return qcrypto_tls_creds_reload(creds, error);
}

static void qcrypto_tls_creds_initable_iface_init(GInitableIface *iface) {
  iface->init = qcrypto_tls_creds_initable_init;
}

static void qcrypto_tls_creds_class_init(QCryptoTLSCredsClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_tls_creds_set_property;
  object_class->get_property = qcrypto_tls_creds_get_property;
  object_class->finalize = qcrypto_tls_creds_finalize;

  /* Fixed once created (as QEMU's user-creatable objects): loaded
   * credentials never disagree with their properties; tls-creds-reload
   * rereads the files. */
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                        G_PARAM_STATIC_STRINGS);
  GParamSpec *props[N_PROPS] = {};
  props[PROP_ID] = g_param_spec_string("id", "ID", "Object id", nullptr, flags);
  props[PROP_DIR] = g_param_spec_string("dir", "Directory", "Credentials directory", nullptr,
                                        flags);
  props[PROP_ENDPOINT] = g_param_spec_enum("endpoint", "Endpoint", "client or server",
                                           QCRYPTO_TYPE_TLS_CREDS_ENDPOINT,
                                           QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, flags);
  props[PROP_VERIFY_PEER] = g_param_spec_boolean("verify-peer", "Verify peer",
                                                 "Verify the peer's certificate", TRUE, flags);
  props[PROP_PRIORITY] = g_param_spec_string("priority", "Priority", "GnuTLS priority string",
                                             nullptr, flags);
  g_object_class_install_properties(object_class, N_PROPS, props);
}

static void qcrypto_tls_creds_init(QCryptoTLSCreds *creds) {
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  priv->verify_peer = TRUE;
  g_mutex_init(&priv->lock);
}

const char *qcrypto_tls_creds_get_id(QCryptoTLSCreds *creds) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), nullptr);
  return creds_priv(creds)->id;
}

QCryptoTLSCredsEndpoint qcrypto_tls_creds_get_endpoint(QCryptoTLSCreds *creds) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT);
  return creds_priv(creds)->endpoint;
}

gboolean qcrypto_tls_creds_get_verify_peer(QCryptoTLSCreds *creds) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), TRUE);
  return creds_priv(creds)->verify_peer;
}

const char *qcrypto_tls_creds_get_dir(QCryptoTLSCreds *creds) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), nullptr);
  return creds_priv(creds)->dir;
}

gboolean qcrypto_tls_creds_reload(QCryptoTLSCreds *creds, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), FALSE);
  QCryptoTLSCredsState *fresh = creds_load(creds, error);
  if (!fresh) return FALSE;
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  g_mutex_lock(&priv->lock);
  QCryptoTLSCredsState *old = priv->state;
  priv->state = fresh;
  g_mutex_unlock(&priv->lock);
  qcrypto_tls_creds_state_unref(old);
  return TRUE;
}

QCryptoTLSCredsState *qcrypto_tls_creds_get_state(QCryptoTLSCreds *creds) {
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  g_mutex_lock(&priv->lock);
  QCryptoTLSCredsState *state = priv->state ? qcrypto_tls_creds_state_ref(priv->state)
                                            : nullptr;
  g_mutex_unlock(&priv->lock);
  return state;
}

GBytes *qcrypto_tls_creds_lookup_secret(QCryptoTLSCreds *creds, const char *property,
                                        const char *secret_id, GError **error) {
  GBytes *bytes = nullptr;
  g_autoptr(GError) local = nullptr;
  if (qcrypto_secret_lookup_bytes(secret_id, &bytes, &local)) return bytes;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
              _("TLS credentials '%s': cannot get secret '%s' given by %s: %s; "
                "create the secret object before the credentials"),
              creds_priv(creds)->id, secret_id, property, local->message);
  return nullptr;
}

gboolean qcrypto_tls_creds_read_file(QCryptoTLSCreds *creds, const char *name,
                                     gboolean optional, GBytes **contents, char **path,
                                     GError **error) {
  QCryptoTLSCredsPrivate *priv = creds_priv(creds);
  if (!priv->dir) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials '%s' need a 'dir' property naming the directory "
                  "that holds %s"),
                priv->id, name);
    return FALSE;
  }
  g_autofree char *file = g_build_filename(priv->dir, name, nullptr);
  g_autoptr(GError) local = nullptr;
  char *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(file, &data, &len, &local)) {
    if (optional && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) return FALSE;
    if (!g_file_test(priv->dir, G_FILE_TEST_IS_DIR)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("TLS credentials '%s': directory '%s' does not exist; "
                    "check the 'dir' property"),
                  priv->id, priv->dir);
    } else {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                  _("TLS credentials '%s': cannot read '%s': %s; "
                    "create the file or fix its permissions"),
                  priv->id, file, local->message);
    }
    return FALSE;
  }
  *contents = g_bytes_new_take(data, len);
  if (path) *path = g_steal_pointer(&file);
  return TRUE;
}

gnutls_datum_t qcrypto_tls_datum(GBytes *bytes) {
  gsize len = 0;
  const void *data = g_bytes_get_data(bytes, &len);
  return {static_cast<unsigned char *>(const_cast<void *>(data)),
          static_cast<unsigned int>(len)};
}

gboolean qcrypto_tls_creds_load_dh_params(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                                          GError **error) {
  g_autoptr(GBytes) pem = nullptr;
  g_autofree char *path = nullptr;
  g_autoptr(GError) local = nullptr;
  if (!qcrypto_tls_creds_read_file(creds, "dh-params.pem", TRUE, &pem, &path, &local)) {
    if (!local) return TRUE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  gnutls_datum_t datum = qcrypto_tls_datum(pem);
  int ret = gnutls_dh_params_init(&state->dh);
  if (ret >= 0) ret = gnutls_dh_params_import_pkcs3(state->dh, &datum, GNUTLS_X509_FMT_PEM);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' holds no valid PKCS#3 DH parameters (%s); "
                  "regenerate it with 'certtool --generate-dh-params'"),
                creds_priv(creds)->id, path, gnutls_strerror(ret));
    return FALSE;
  }
  return TRUE;
}

void qcrypto_tls_cert_expiry_free(QCryptoTLSCertExpiry *expiry) {
  if (!expiry) return;
  g_free(expiry->file);
  g_free(expiry->subject);
  g_free(expiry);
}

GPtrArray *qcrypto_tls_creds_get_expiring(QCryptoTLSCreds *creds, guint days) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), nullptr);
  GPtrArray *list =
      g_ptr_array_new_with_free_func(reinterpret_cast<GDestroyNotify>(qcrypto_tls_cert_expiry_free));
  QCryptoTLSCredsState *state = qcrypto_tls_creds_get_state(creds);
  if (!state) return list;
  gint64 limit = g_get_real_time() / G_USEC_PER_SEC + static_cast<gint64>(days) * 86400;
  for (const auto &cert : state->certs) {
    if (cert.expiry > limit) continue;
    auto *item = g_new0(QCryptoTLSCertExpiry, 1);
    item->file = g_strdup(cert.file.c_str());
    item->subject = g_strdup(cert.subject.c_str());
    item->expiry = cert.expiry;
    item->kind = cert.kind;
    g_ptr_array_add(list, item);
  }
  qcrypto_tls_creds_state_unref(state);
  return list;
}
