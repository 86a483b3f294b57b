#include "config.h"

#include "qcrypto/authz-list-rule-private.h"
#include "qcrypto/error.h"

#include <fnmatch.h>
#include <glib/gi18n-lib.h>

#include <cstring>

G_DEFINE_ENUM_TYPE(QCryptoAuthzListPolicy, qcrypto_authz_list_policy,
                   G_DEFINE_ENUM_VALUE(QCRYPTO_AUTHZ_LIST_POLICY_DENY, "deny"),
                   G_DEFINE_ENUM_VALUE(QCRYPTO_AUTHZ_LIST_POLICY_ALLOW, "allow"))

G_DEFINE_ENUM_TYPE(QCryptoAuthzListFormat, qcrypto_authz_list_format,
                   G_DEFINE_ENUM_VALUE(QCRYPTO_AUTHZ_LIST_FORMAT_EXACT, "exact"),
                   G_DEFINE_ENUM_VALUE(QCRYPTO_AUTHZ_LIST_FORMAT_GLOB, "glob"))

G_DEFINE_BOXED_TYPE(QCryptoAuthzListRule, qcrypto_authz_list_rule, qcrypto_authz_list_rule_copy,
                    qcrypto_authz_list_rule_free)

G_DEFINE_BOXED_TYPE(QCryptoAuthzListRules, qcrypto_authz_list_rules, g_ptr_array_ref,
                    g_ptr_array_unref)

QCryptoAuthzListRule *qcrypto_authz_list_rule_new(const char *match,
                                                  QCryptoAuthzListPolicy policy,
                                                  QCryptoAuthzListFormat format) {
  g_return_val_if_fail(match != nullptr, nullptr);
  auto *rule = g_new0(QCryptoAuthzListRule, 1);
  rule->match = g_strdup(match);
  rule->policy = policy;
  rule->format = format;
  return rule;
}

QCryptoAuthzListRule *qcrypto_authz_list_rule_copy(const QCryptoAuthzListRule *rule) {
  return qcrypto_authz_list_rule_new(rule->match, rule->policy, rule->format);
}

void qcrypto_authz_list_rule_free(QCryptoAuthzListRule *rule) {
  if (!rule) return;
  g_free(rule->match);
  g_free(rule);
}

gboolean qcrypto_authz_list_rule_matches(const QCryptoAuthzListRule *rule, const char *identity) {
  if (rule->format == QCRYPTO_AUTHZ_LIST_FORMAT_GLOB)
    return fnmatch(rule->match, identity, 0) == 0;
  return strcmp(rule->match, identity) == 0;
}

QCryptoAuthzListRules *qcrypto_authz_list_rules_new(void) {
  return g_ptr_array_new_with_free_func(
      [](gpointer rule) noexcept { qcrypto_authz_list_rule_free(static_cast<QCryptoAuthzListRule *>(rule)); });
}

QCryptoAuthzListPolicy qcrypto_authz_list_rules_decide(QCryptoAuthzListRules *rules,
                                                      QCryptoAuthzListPolicy default_policy,
                                                      const char *identity) {
  for (guint i = 0; rules && i < rules->len; i++) {
    auto *rule = static_cast<QCryptoAuthzListRule *>(g_ptr_array_index(rules, i));
    if (qcrypto_authz_list_rule_matches(rule, identity)) return rule->policy;
  }
  return default_policy;
}

/* Reads the nick of @enum_type from a string node. */
static gboolean enum_from_node(JsonNode *node, GType enum_type, const char *what, int *out,
                               GError **error) {
  const char *nick = JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
                         ? json_node_get_string(node)
                         : nullptr;
  g_autoptr(GEnumClass) klass = static_cast<GEnumClass *>(g_type_class_ref(enum_type));
  GEnumValue *value = nick ? g_enum_get_value_by_nick(klass, nick) : nullptr;
  if (!value) {
    g_autoptr(GString) valid = g_string_new(nullptr);
    for (guint i = 0; i < klass->n_values; i++)
      g_string_append_printf(valid, "%s%s", i ? ", " : "", klass->values[i].value_nick);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("'%s' must be one of %s, not '%s'"), what, valid->str,
                nick ? nick : json_node_type_name(node));
    return FALSE;
  }
  *out = value->value;
  return TRUE;
}

gboolean qcrypto_authz_list_policy_from_node(JsonNode *node, QCryptoAuthzListPolicy *policy,
                                             GError **error) {
  int value;
  if (!enum_from_node(node, QCRYPTO_TYPE_AUTHZ_LIST_POLICY, "policy", &value, error)) return FALSE;
  *policy = static_cast<QCryptoAuthzListPolicy>(value);
  return TRUE;
}

static QCryptoAuthzListRule *rule_from_node(JsonNode *node, guint index, GError **error) {
  if (!JSON_NODE_HOLDS_OBJECT(node)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("rule %u is not an object; write {\"match\": ..., \"policy\": ...}"), index);
    return nullptr;
  }
  JsonObject *object = json_node_get_object(node);
  g_autoptr(GList) members = json_object_get_members(object);
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    if (strcmp(key, "match") != 0 && strcmp(key, "policy") != 0 && strcmp(key, "format") != 0) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("rule %u has an unknown key '%s'; a rule has 'match', 'policy' and "
                    "optionally 'format'"),
                  index, key);
      return nullptr;
    }
  }
  JsonNode *match = json_object_get_member(object, "match");
  if (!match || !JSON_NODE_HOLDS_VALUE(match) ||
      json_node_get_value_type(match) != G_TYPE_STRING) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("rule %u needs a string 'match' (the identity or glob pattern)"), index);
    return nullptr;
  }
  JsonNode *policy_node = json_object_get_member(object, "policy");
  if (!policy_node) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("rule %u needs a 'policy' (allow or deny)"), index);
    return nullptr;
  }
  int policy;
  int format = QCRYPTO_AUTHZ_LIST_FORMAT_EXACT;
  JsonNode *format_node = json_object_get_member(object, "format");
  GError *local = nullptr;
  if (!enum_from_node(policy_node, QCRYPTO_TYPE_AUTHZ_LIST_POLICY, "policy", &policy, &local) ||
      (format_node &&
       !enum_from_node(format_node, QCRYPTO_TYPE_AUTHZ_LIST_FORMAT, "format", &format, &local))) {
    g_propagate_prefixed_error(error, local, _("rule %u: "), index);
    return nullptr;
  }
  return qcrypto_authz_list_rule_new(json_node_get_string(match),
                                     static_cast<QCryptoAuthzListPolicy>(policy),
                                     static_cast<QCryptoAuthzListFormat>(format));
}

QCryptoAuthzListRules *qcrypto_authz_list_rules_from_node(JsonNode *node, GError **error) {
  if (!JSON_NODE_HOLDS_ARRAY(node)) {
    g_set_error_literal(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                        _("'rules' must be a JSON array of rule objects"));
    return nullptr;
  }
  JsonArray *array = json_node_get_array(node);
  g_autoptr(GPtrArray) rules = qcrypto_authz_list_rules_new();
  for (guint i = 0; i < json_array_get_length(array); i++) {
    QCryptoAuthzListRule *rule = rule_from_node(json_array_get_element(array, i), i, error);
    if (!rule) return nullptr;
    g_ptr_array_add(rules, rule);
  }
  return static_cast<QCryptoAuthzListRules *>(g_steal_pointer(&rules));
}

QCryptoAuthzListRules *qcrypto_authz_list_rules_parse(const char *json, GError **error) {
  g_return_val_if_fail(json != nullptr, nullptr);
  g_autoptr(JsonNode) root = qcrypto_json_parse(json, -1, error);
  return root ? qcrypto_authz_list_rules_from_node(root, error) : nullptr;
}
