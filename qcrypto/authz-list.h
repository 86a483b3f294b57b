/* QCryptoAuthzList (QOM type "authz-list"): an ordered list of rules
 * (`rules`), each matching identities exactly or by glob; the first
 * matching rule decides, and `policy` (default deny) decides when none
 * matches.  Rules can be replaced or appended at run time; checks from
 * other threads see either the old or the new list. */
#pragma once

#include "qcrypto/authz.h"
#include "qcrypto/authz-list-rule.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_AUTHZ_LIST (qcrypto_authz_list_get_type())
G_DECLARE_FINAL_TYPE(QCryptoAuthzList, qcrypto_authz_list, QCRYPTO, AUTHZ_LIST, QCryptoAuthz)

QCryptoAuthzList *qcrypto_authz_list_new(const char *id, QCryptoAuthzListPolicy policy,
                                         GError **error);

void qcrypto_authz_list_append_rule(QCryptoAuthzList *list, const char *match,
                                    QCryptoAuthzListPolicy policy, QCryptoAuthzListFormat format);
/* Replaces the rules by a JSON array (see qcrypto_authz_list_rules_parse);
 * on error the rules are unchanged and the message names the object. */
gboolean qcrypto_authz_list_set_rules_json(QCryptoAuthzList *list, const char *json,
                                           GError **error);
/* A new reference to the current rules (not to be modified). */
QCryptoAuthzListRules *qcrypto_authz_list_get_rules(QCryptoAuthzList *list);

G_END_DECLS
