#include "config.h"

#include "qcrypto/authz.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

struct QCryptoAuthzPrivate {
  char *id;
};

namespace {

enum { PROP_0, PROP_ID };

}  // namespace

static void qcrypto_authz_initable_iface_init(GInitableIface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(QCryptoAuthz, qcrypto_authz, G_TYPE_OBJECT,
                                 G_ADD_PRIVATE(QCryptoAuthz)
                                 G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
                                                       qcrypto_authz_initable_iface_init))

static QCryptoAuthzPrivate *authz_priv(QCryptoAuthz *authz) {
  return static_cast<QCryptoAuthzPrivate *>(qcrypto_authz_get_instance_private(authz));
}

static gboolean qcrypto_authz_initable_init(GInitable *initable, GCancellable *,
                                            GError **error) {
  auto *authz = QCRYPTO_AUTHZ(initable);
  auto *klass = QCRYPTO_AUTHZ_GET_CLASS(authz);
  return klass->complete ? klass->complete(authz, error) : TRUE;
}

static void qcrypto_authz_initable_iface_init(GInitableIface *iface) {
  iface->init = qcrypto_authz_initable_init;
}

static void qcrypto_authz_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec) {
  auto *priv = authz_priv(QCRYPTO_AUTHZ(object));
  switch (prop_id) {
    case PROP_ID:
      g_free(priv->id);
      priv->id = g_value_dup_string(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec) {
  auto *priv = authz_priv(QCRYPTO_AUTHZ(object));
  switch (prop_id) {
    case PROP_ID:
      g_value_set_string(value, priv->id);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_finalize(GObject *object) {
  g_free(authz_priv(QCRYPTO_AUTHZ(object))->id);
  G_OBJECT_CLASS(qcrypto_authz_parent_class)->finalize(object);
}

static void qcrypto_authz_class_init(QCryptoAuthzClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_authz_set_property;
  object_class->get_property = qcrypto_authz_get_property;
  object_class->finalize = qcrypto_authz_finalize;
  g_object_class_install_property(
      object_class, PROP_ID,
      g_param_spec_string("id", "ID", "Object id, used in messages", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                   G_PARAM_STATIC_STRINGS)));
}

static void qcrypto_authz_init(QCryptoAuthz *) {}

const char *qcrypto_authz_get_id(QCryptoAuthz *authz) {
  g_return_val_if_fail(QCRYPTO_IS_AUTHZ(authz), "");
  const char *id = authz_priv(authz)->id;
  return id ? id : "";
}

gboolean qcrypto_authz_is_allowed(QCryptoAuthz *authz, const char *identity, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_AUTHZ(authz), FALSE);
  g_return_val_if_fail(identity != nullptr, FALSE);
  GError *local = nullptr;
  if (QCRYPTO_AUTHZ_GET_CLASS(authz)->is_allowed(authz, identity, &local)) return TRUE;
  if (g_error_matches(local, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED)) {
    /* The subclass explained the denial itself (naming id and identity). */
    g_propagate_error(error, local);
  } else if (local) {
    g_propagate_prefixed_error(error, local,
                               _("Authorization object '%s' could not check '%s': "),
                               qcrypto_authz_get_id(authz), identity);
  } else {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("Authorization object '%s' denies access to '%s'; add the identity to its "
                  "rules if it should be allowed"),
                qcrypto_authz_get_id(authz), identity);
  }
  return FALSE;
}
