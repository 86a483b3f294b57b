/* QCryptoAuthzPAM (QOM type "authz-pam"): asks the PAM account stack of
 * `service` (/etc/pam.d/SERVICE) whether the identity, taken as a user
 * name, may log in (pam_acct_mgmt).  No password is asked: the peer was
 * authenticated by TLS or SASL already. */
#pragma once

#include "qcrypto/authz.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_AUTHZ_PAM (qcrypto_authz_pam_get_type())
G_DECLARE_FINAL_TYPE(QCryptoAuthzPAM, qcrypto_authz_pam, QCRYPTO, AUTHZ_PAM, QCryptoAuthz)

QCryptoAuthzPAM *qcrypto_authz_pam_new(const char *id, const char *service, GError **error);

G_END_DECLS
