/* QCryptoAuthzSimple (QOM type "authz-simple"): allows exactly one
 * identity (`identity`: an x509 distinguished name or a SASL user name). */
#pragma once

#include "qcrypto/authz.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_AUTHZ_SIMPLE (qcrypto_authz_simple_get_type())
G_DECLARE_FINAL_TYPE(QCryptoAuthzSimple, qcrypto_authz_simple, QCRYPTO, AUTHZ_SIMPLE,
                     QCryptoAuthz)

QCryptoAuthzSimple *qcrypto_authz_simple_new(const char *id, const char *identity,
                                             GError **error);

G_END_DECLS
