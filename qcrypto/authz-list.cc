#include "config.h"

#include "qcrypto/authz-list.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

struct _QCryptoAuthzList {
  QCryptoAuthz parent_instance;
  /* Copy on write: a rules array is never changed once published, so a
   * check holds the lock only to take a reference. */
  GMutex lock;
  GPtrArray *rules;
  int policy; /* QCryptoAuthzListPolicy, read atomically */
};

namespace {
enum { PROP_0, PROP_POLICY, PROP_RULES };
}

G_DEFINE_FINAL_TYPE(QCryptoAuthzList, qcrypto_authz_list, QCRYPTO_TYPE_AUTHZ)

static GPtrArray *rules_copy(GPtrArray *rules) {
  GPtrArray *copy = qcrypto_authz_list_rules_new();
  for (guint i = 0; rules && i < rules->len; i++)
    g_ptr_array_add(copy, qcrypto_authz_list_rule_copy(
                              static_cast<QCryptoAuthzListRule *>(g_ptr_array_index(rules, i))));
  return copy;
}

/* Publishes @rules (takes the reference). */
static void authz_list_swap(QCryptoAuthzList *list, GPtrArray *rules) {
  g_mutex_lock(&list->lock);
  GPtrArray *old = list->rules;
  list->rules = rules;
  g_mutex_unlock(&list->lock);
  g_ptr_array_unref(old);
}

static gboolean authz_list_is_allowed(QCryptoAuthz *authz, const char *identity, GError **) {
  auto *list = QCRYPTO_AUTHZ_LIST(authz);
  g_autoptr(GPtrArray) rules = qcrypto_authz_list_get_rules(list);
  auto policy = static_cast<QCryptoAuthzListPolicy>(g_atomic_int_get(&list->policy));
  return qcrypto_authz_list_rules_decide(rules, policy, identity) ==
         QCRYPTO_AUTHZ_LIST_POLICY_ALLOW;
}

static void qcrypto_authz_list_set_property(GObject *object, guint prop_id, const GValue *value,
                                            GParamSpec *pspec) {
  auto *list = QCRYPTO_AUTHZ_LIST(object);
  switch (prop_id) {
    case PROP_POLICY:
      g_atomic_int_set(&list->policy, g_value_get_enum(value));
      break;
    case PROP_RULES:
      authz_list_swap(list, rules_copy(static_cast<GPtrArray *>(g_value_get_boxed(value))));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_list_get_property(GObject *object, guint prop_id, GValue *value,
                                            GParamSpec *pspec) {
  auto *list = QCRYPTO_AUTHZ_LIST(object);
  switch (prop_id) {
    case PROP_POLICY:
      g_value_set_enum(value, g_atomic_int_get(&list->policy));
      break;
    case PROP_RULES:
      g_value_take_boxed(value, qcrypto_authz_list_get_rules(list));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_list_finalize(GObject *object) {
  auto *list = QCRYPTO_AUTHZ_LIST(object);
  g_ptr_array_unref(list->rules);
  g_mutex_clear(&list->lock);
  G_OBJECT_CLASS(qcrypto_authz_list_parent_class)->finalize(object);
}

static void qcrypto_authz_list_class_init(QCryptoAuthzListClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_authz_list_set_property;
  object_class->get_property = qcrypto_authz_list_get_property;
  object_class->finalize = qcrypto_authz_list_finalize;
  QCRYPTO_AUTHZ_CLASS(klass)->is_allowed = authz_list_is_allowed;
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      object_class, PROP_POLICY,
      g_param_spec_enum("policy", "Policy", "Decision when no rule matches: allow or deny",
                        QCRYPTO_TYPE_AUTHZ_LIST_POLICY, QCRYPTO_AUTHZ_LIST_POLICY_DENY, flags));
  g_object_class_install_property(
      object_class, PROP_RULES,
      g_param_spec_boxed("rules", "Rules", "Rules checked in order; the first match decides",
                         QCRYPTO_TYPE_AUTHZ_LIST_RULES, flags));
}

static void qcrypto_authz_list_init(QCryptoAuthzList *list) {
  g_mutex_init(&list->lock);
  list->rules = qcrypto_authz_list_rules_new();
  list->policy = QCRYPTO_AUTHZ_LIST_POLICY_DENY;
}

QCryptoAuthzList *qcrypto_authz_list_new(const char *id, QCryptoAuthzListPolicy policy,
                                         GError **error) {
  gpointer object = g_initable_new(QCRYPTO_TYPE_AUTHZ_LIST, nullptr, error, "id", id, "policy",
                                   policy, nullptr);
  return object ? QCRYPTO_AUTHZ_LIST(object) : nullptr;
}

void qcrypto_authz_list_append_rule(QCryptoAuthzList *list, const char *match,
                                    QCryptoAuthzListPolicy policy,
                                    QCryptoAuthzListFormat format) {
  g_return_if_fail(QCRYPTO_IS_AUTHZ_LIST(list));
  g_return_if_fail(match != nullptr);
  g_autoptr(GPtrArray) current = qcrypto_authz_list_get_rules(list);
  GPtrArray *rules = rules_copy(current);
  g_ptr_array_add(rules, qcrypto_authz_list_rule_new(match, policy, format));
  authz_list_swap(list, rules);
  g_object_notify(G_OBJECT(list), "rules");
}

gboolean qcrypto_authz_list_set_rules_json(QCryptoAuthzList *list, const char *json,
                                           GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_AUTHZ_LIST(list), FALSE);
  GError *local = nullptr;
  GPtrArray *rules = qcrypto_authz_list_rules_parse(json, &local);
  if (!rules) {
    g_propagate_prefixed_error(error, local, _("Authorization object '%s': "),
                               qcrypto_authz_get_id(QCRYPTO_AUTHZ(list)));
    return FALSE;
  }
  authz_list_swap(list, rules);
  g_object_notify(G_OBJECT(list), "rules");
  return TRUE;
}

QCryptoAuthzListRules *qcrypto_authz_list_get_rules(QCryptoAuthzList *list) {
  g_return_val_if_fail(QCRYPTO_IS_AUTHZ_LIST(list), nullptr);
  g_mutex_lock(&list->lock);
  GPtrArray *rules = g_ptr_array_ref(list->rules);
  g_mutex_unlock(&list->lock);
  return rules;
}
