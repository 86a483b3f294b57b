/* QCryptoAuthzListRule: one rule of an authz-list or authz-listfile
 * object ({"match": ..., "policy": "allow"|"deny", "format":
 * "exact"|"glob"}), and QCryptoAuthzListRules, the GPtrArray of rules
 * that is the type of their "rules" property. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum {
  QCRYPTO_AUTHZ_LIST_POLICY_DENY,
  QCRYPTO_AUTHZ_LIST_POLICY_ALLOW,
} QCryptoAuthzListPolicy;

#define QCRYPTO_TYPE_AUTHZ_LIST_POLICY (qcrypto_authz_list_policy_get_type())
GType qcrypto_authz_list_policy_get_type(void);

typedef enum {
  QCRYPTO_AUTHZ_LIST_FORMAT_EXACT, /* the identity equals `match` */
  QCRYPTO_AUTHZ_LIST_FORMAT_GLOB,  /* `match` is an fnmatch(3) pattern (*, ?, [...]) */
} QCryptoAuthzListFormat;

#define QCRYPTO_TYPE_AUTHZ_LIST_FORMAT (qcrypto_authz_list_format_get_type())
GType qcrypto_authz_list_format_get_type(void);

typedef struct {
  char *match;
  QCryptoAuthzListPolicy policy;
  QCryptoAuthzListFormat format;
} QCryptoAuthzListRule;

#define QCRYPTO_TYPE_AUTHZ_LIST_RULE (qcrypto_authz_list_rule_get_type())
GType qcrypto_authz_list_rule_get_type(void);

QCryptoAuthzListRule *qcrypto_authz_list_rule_new(const char *match,
                                                  QCryptoAuthzListPolicy policy,
                                                  QCryptoAuthzListFormat format);
QCryptoAuthzListRule *qcrypto_authz_list_rule_copy(const QCryptoAuthzListRule *rule);
void qcrypto_authz_list_rule_free(QCryptoAuthzListRule *rule);
/* TRUE if @identity matches the rule's pattern. */
gboolean qcrypto_authz_list_rule_matches(const QCryptoAuthzListRule *rule, const char *identity);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoAuthzListRule, qcrypto_authz_list_rule_free)

/* A GPtrArray of QCryptoAuthzListRule (it frees its rules), boxed by
 * reference count. */
typedef GPtrArray QCryptoAuthzListRules;
#define QCRYPTO_TYPE_AUTHZ_LIST_RULES (qcrypto_authz_list_rules_get_type())
GType qcrypto_authz_list_rules_get_type(void);

QCryptoAuthzListRules *qcrypto_authz_list_rules_new(void);
/* Parses a JSON array of rule objects, e.g.
 * [{"match": "CN=alice", "policy": "allow"},
 *  {"match": "CN=*.example.com", "policy": "allow", "format": "glob"}]
 * "match" and "policy" are required, "format" defaults to exact. */
QCryptoAuthzListRules *qcrypto_authz_list_rules_parse(const char *json, GError **error);
/* The policy of the first rule matching @identity, else @default_policy. */
QCryptoAuthzListPolicy qcrypto_authz_list_rules_decide(QCryptoAuthzListRules *rules,
                                                      QCryptoAuthzListPolicy default_policy,
                                                      const char *identity);

G_END_DECLS
