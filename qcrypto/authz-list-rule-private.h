/* JSON readers shared by authz-list (rules given as JSON) and
 * authz-listfile (a JSON file); internal to libqcrypto. */
#pragma once

#include "qcrypto/authz-list-rule.h"
#include "qcrypto/json-parse.h"

#include <json-glib/json-glib.h>

/* An array node of rule objects; errors name the rule by its index. */
QCryptoAuthzListRules *qcrypto_authz_list_rules_from_node(JsonNode *node, GError **error);
/* A string node "allow" or "deny". */
gboolean qcrypto_authz_list_policy_from_node(JsonNode *node, QCryptoAuthzListPolicy *policy,
                                             GError **error);
