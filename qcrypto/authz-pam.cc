#include "config.h"

#include "qcrypto/authz-pam.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>
#include <security/pam_appl.h>

#include <cstring>

struct _QCryptoAuthzPAM {
  QCryptoAuthz parent_instance;
  char *service;
};

namespace {

enum { PROP_0, PROP_SERVICE };

/* The account stack has no one to talk to: refuse any prompt. */
int pam_no_conversation(int, const struct pam_message **, struct pam_response **,
                        void *) noexcept {
  return PAM_CONV_ERR;
}

}  // namespace

G_DEFINE_FINAL_TYPE(QCryptoAuthzPAM, qcrypto_authz_pam, QCRYPTO_TYPE_AUTHZ)

static gboolean authz_pam_is_allowed(QCryptoAuthz *authz, const char *identity, GError **error) {
  auto *pam = QCRYPTO_AUTHZ_PAM(authz);
  const struct pam_conv conv = {pam_no_conversation, nullptr};
  pam_handle_t *handle = nullptr;
  int rc = pam_start(pam->service, identity, &conv, &handle);
  if (rc != PAM_SUCCESS) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("PAM service '%s' cannot be started: %s; check /etc/pam.d/%s"), pam->service,
                pam_strerror(handle, rc), pam->service);
    if (handle) pam_end(handle, rc);
    return FALSE;
  }
  rc = pam_acct_mgmt(handle, PAM_SILENT);
  if (rc != PAM_SUCCESS) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("Authorization object '%s' denies access to '%s': the account stack of PAM "
                  "service '%s' refused it (%s)"),
                qcrypto_authz_get_id(authz), identity, pam->service, pam_strerror(handle, rc));
  }
  pam_end(handle, rc);
  return rc == PAM_SUCCESS;
}

static gboolean authz_pam_complete(QCryptoAuthz *authz, GError **error) {
  const char *service = QCRYPTO_AUTHZ_PAM(authz)->service;
  if (service && *service && !strchr(service, '/')) return TRUE;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
              _("Authorization object '%s' needs 'service', the name of a PAM service in "
                "/etc/pam.d (without '/')"),
              qcrypto_authz_get_id(authz));
  return FALSE;
}

static void qcrypto_authz_pam_set_property(GObject *object, guint prop_id, const GValue *value,
                                           GParamSpec *pspec) {
  if (prop_id != PROP_SERVICE) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  auto *pam = QCRYPTO_AUTHZ_PAM(object);
  g_free(pam->service);
  pam->service = g_value_dup_string(value);
}

static void qcrypto_authz_pam_get_property(GObject *object, guint prop_id, GValue *value,
                                           GParamSpec *pspec) {
  if (prop_id != PROP_SERVICE) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    return;
  }
  g_value_set_string(value, QCRYPTO_AUTHZ_PAM(object)->service);
}

static void qcrypto_authz_pam_finalize(GObject *object) {
  g_free(QCRYPTO_AUTHZ_PAM(object)->service);
  G_OBJECT_CLASS(qcrypto_authz_pam_parent_class)->finalize(object);
}

static void qcrypto_authz_pam_class_init(QCryptoAuthzPAMClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_authz_pam_set_property;
  object_class->get_property = qcrypto_authz_pam_get_property;
  object_class->finalize = qcrypto_authz_pam_finalize;
  QCRYPTO_AUTHZ_CLASS(klass)->is_allowed = authz_pam_is_allowed;
  QCRYPTO_AUTHZ_CLASS(klass)->complete = authz_pam_complete;
  g_object_class_install_property(
      object_class, PROP_SERVICE,
      g_param_spec_string("service", "Service", "PAM service name", nullptr,
                          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                   G_PARAM_STATIC_STRINGS)));
}

static void qcrypto_authz_pam_init(QCryptoAuthzPAM *) {}

QCryptoAuthzPAM *qcrypto_authz_pam_new(const char *id, const char *service, GError **error) {
  gpointer object = g_initable_new(QCRYPTO_TYPE_AUTHZ_PAM, nullptr, error, "id", id, "service",
                                   service, nullptr);
  return object ? QCRYPTO_AUTHZ_PAM(object) : nullptr;
}
