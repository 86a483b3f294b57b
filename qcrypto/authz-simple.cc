#include "config.h"

#include "qcrypto/authz-simple.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>

struct _QCryptoAuthzSimple {
  QCryptoAuthz parent_instance;
  char *identity;
};

namespace {
enum { PROP_0, PROP_IDENTITY };
}

G_DEFINE_FINAL_TYPE(QCryptoAuthzSimple, qcrypto_authz_simple, QCRYPTO_TYPE_AUTHZ)

static gboolean authz_simple_is_allowed(QCryptoAuthz *authz, const char *identity, GError **) {
  return strcmp(QCRYPTO_AUTHZ_SIMPLE(authz)->identity, identity) == 0;
}

static gboolean authz_simple_complete(QCryptoAuthz *authz, GError **error) {
  if (QCRYPTO_AUTHZ_SIMPLE(authz)->identity) return TRUE;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
              _("Authorization object '%s' needs 'identity' (the x509 distinguished name or "
                "SASL user name to allow)"),
              qcrypto_authz_get_id(authz));
  return FALSE;
}

static void qcrypto_authz_simple_set_property(GObject *object, guint prop_id,
                                              const GValue *value, GParamSpec *pspec) {
  auto *simple = QCRYPTO_AUTHZ_SIMPLE(object);
  if (prop_id != PROP_IDENTITY) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  g_free(simple->identity);
  simple->identity = g_value_dup_string(value);
}

static void qcrypto_authz_simple_get_property(GObject *object, guint prop_id, GValue *value,
                                              GParamSpec *pspec) {
  if (prop_id != PROP_IDENTITY) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  g_value_set_string(value, QCRYPTO_AUTHZ_SIMPLE(object)->identity);
}

static void qcrypto_authz_simple_finalize(GObject *object) {
  g_free(QCRYPTO_AUTHZ_SIMPLE(object)->identity);
  G_OBJECT_CLASS(qcrypto_authz_simple_parent_class)->finalize(object);
}

static void qcrypto_authz_simple_class_init(QCryptoAuthzSimpleClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_authz_simple_set_property;
  object_class->get_property = qcrypto_authz_simple_get_property;
  object_class->finalize = qcrypto_authz_simple_finalize;
  QCRYPTO_AUTHZ_CLASS(klass)->is_allowed = authz_simple_is_allowed;
  QCRYPTO_AUTHZ_CLASS(klass)->complete = authz_simple_complete;
  /* Construct-only: the identity is read without a lock from any thread. */
  g_object_class_install_property(
      object_class, PROP_IDENTITY,
      g_param_spec_string("identity", "Identity", "The one identity allowed", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                   G_PARAM_STATIC_STRINGS)));
}

static void qcrypto_authz_simple_init(QCryptoAuthzSimple *) {}

QCryptoAuthzSimple *qcrypto_authz_simple_new(const char *id, const char *identity,
                                             GError **error) {
  gpointer object = g_initable_new(QCRYPTO_TYPE_AUTHZ_SIMPLE, nullptr, error, "id", id,
                                   "identity", identity, nullptr);
  return object ? QCRYPTO_AUTHZ_SIMPLE(object) : nullptr;
}
