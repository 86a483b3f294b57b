/* QCryptoAuthz: the abstract base of every authorization object
 * (authz-simple, authz-list, authz-listfile, authz-pam).  A consumer asks
 * it whether a peer identity (an x509 distinguished name or a SASL user
 * name) may proceed.  Objects are created with g_initable_new(), which
 * runs the subclass's "complete" step (validation, loading files). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QCRYPTO_TYPE_AUTHZ (qcrypto_authz_get_type())
G_DECLARE_DERIVABLE_TYPE(QCryptoAuthz, qcrypto_authz, QCRYPTO, AUTHZ, GObject)

struct _QCryptoAuthzClass {
  GObjectClass parent_class;

  /* Decides for @identity.  Returns TRUE to allow; FALSE with @error unset
   * to deny (the base class then reports the denial); FALSE with @error set
   * when the check itself failed.  May be called from any thread. */
  gboolean (*is_allowed)(QCryptoAuthz *authz, const char *identity, GError **error);
  /* Optional "complete" step, run once by GInitable init after the
   * properties are set. */
  gboolean (*complete)(QCryptoAuthz *authz, GError **error);

  gpointer padding[8];
};

/* The object id ("id" property) used in messages; never NULL. */
const char *qcrypto_authz_get_id(QCryptoAuthz *authz);

/* TRUE if @identity may proceed.  Otherwise FALSE and @error set: a denial
 * is QCRYPTO_ERROR_ACCESS_DENIED naming the authz id and the identity; any
 * other code means the check could not be made (also a refusal). */
gboolean qcrypto_authz_is_allowed(QCryptoAuthz *authz, const char *identity, GError **error);

G_END_DECLS
