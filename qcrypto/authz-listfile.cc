#include "config.h"

#include "qcrypto/authz-listfile.h"
#include "qcrypto/authz-list-rule-private.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>

struct _QCryptoAuthzListFile {
  QCryptoAuthz parent_instance;
  char *filename;
  gboolean refresh;
  GFileMonitor *monitor;
  GMutex lock;
  GPtrArray *rules; /* NULL while the file is broken; never changed once set */
  QCryptoAuthzListPolicy policy;
  char *broken; /* why the file is broken, for denials */
};

namespace {
enum { PROP_0, PROP_FILENAME, PROP_REFRESH };
}

G_DEFINE_FINAL_TYPE(QCryptoAuthzListFile, qcrypto_authz_list_file, QCRYPTO_TYPE_AUTHZ)

/* Reads {"policy": ..., "rules": [...]} from the file. */
static GPtrArray *listfile_read(QCryptoAuthzListFile *listfile, QCryptoAuthzListPolicy *policy,
                                GError **error) {
  g_autofree char *text = nullptr;
  gsize len;
  if (!g_file_get_contents(listfile->filename, &text, &len, error)) return nullptr;
  g_autoptr(JsonNode) root = qcrypto_json_parse(text, static_cast<gssize>(len), error);
  if (!root) return nullptr;
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error_literal(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                        _("the file must hold a JSON object {\"policy\": ..., \"rules\": [...]}"));
    return nullptr;
  }
  JsonObject *object = json_node_get_object(root);
  g_autoptr(GList) members = json_object_get_members(object);
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    if (strcmp(key, "policy") != 0 && strcmp(key, "rules") != 0) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("unknown key '%s'; the file holds 'policy' and 'rules'"), key);
      return nullptr;
    }
  }
  *policy = QCRYPTO_AUTHZ_LIST_POLICY_DENY;
  JsonNode *policy_node = json_object_get_member(object, "policy");
  if (policy_node && !qcrypto_authz_list_policy_from_node(policy_node, policy, error))
    return nullptr;
  JsonNode *rules_node = json_object_get_member(object, "rules");
  if (!rules_node) return qcrypto_authz_list_rules_new();
  return qcrypto_authz_list_rules_from_node(rules_node, error);
}

gboolean qcrypto_authz_list_file_reload(QCryptoAuthzListFile *listfile, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_AUTHZ_LIST_FILE(listfile), FALSE);
  QCryptoAuthzListPolicy policy = QCRYPTO_AUTHZ_LIST_POLICY_DENY;
  GError *local = nullptr;
  GPtrArray *rules = listfile_read(listfile, &policy, &local);
  g_mutex_lock(&listfile->lock);
  GPtrArray *old = listfile->rules;
  listfile->rules = rules;
  listfile->policy = policy;
  g_clear_pointer(&listfile->broken, g_free);
  if (local) listfile->broken = g_strdup(local->message);
  g_mutex_unlock(&listfile->lock);
  if (old) g_ptr_array_unref(old);
  if (!local) return TRUE;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
              _("Authorization object '%s' cannot use rules file '%s': %s; fix the file"),
              qcrypto_authz_get_id(QCRYPTO_AUTHZ(listfile)), listfile->filename, local->message);
  g_error_free(local);
  return FALSE;
}

static void listfile_changed(GFileMonitor *, GFile *, GFile *, GFileMonitorEvent event,
                             gpointer data) noexcept {
  /* Writing a file gives CREATED/CHANGED events while it is half written;
   * CHANGES_DONE_HINT follows when it is complete (also for a file renamed
   * into place), so only that and deletion trigger a reload. */
  if (event != G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT && event != G_FILE_MONITOR_EVENT_DELETED)
    return;
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(data);
  /* A replaced file gives several events; warn once per new fault. */
  g_mutex_lock(&listfile->lock);
  g_autofree char *was_broken = g_strdup(listfile->broken);
  g_mutex_unlock(&listfile->lock);
  g_autoptr(GError) error = nullptr;
  if (qcrypto_authz_list_file_reload(listfile, &error)) return;
  if (!was_broken || strcmp(was_broken, listfile->broken) != 0)
    g_warning(_("%s; until then everyone is denied"), error->message);
}

static gboolean authz_list_file_complete(QCryptoAuthz *authz, GError **error) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(authz);
  if (!listfile->filename) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("Authorization object '%s' needs 'filename' (a JSON rules file)"),
                qcrypto_authz_get_id(authz));
    return FALSE;
  }
  if (!listfile->refresh) return qcrypto_authz_list_file_reload(listfile, error);
  /* Watched before it is read: a change in between is not missed. */
  g_autoptr(GFile) file = g_file_new_for_path(listfile->filename);
  GError *local = nullptr;
  listfile->monitor = g_file_monitor_file(file, G_FILE_MONITOR_NONE, nullptr, &local);
  if (!listfile->monitor) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("Authorization object '%s' cannot watch rules file '%s': %s; set refresh=off "
                  "to load it only once"),
                qcrypto_authz_get_id(authz), listfile->filename, local->message);
    g_error_free(local);
    return FALSE;
  }
  g_signal_connect(listfile->monitor, "changed", G_CALLBACK(listfile_changed), listfile);
  return qcrypto_authz_list_file_reload(listfile, error);
}

static gboolean authz_list_file_is_allowed(QCryptoAuthz *authz, const char *identity,
                                           GError **error) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(authz);
  g_mutex_lock(&listfile->lock);
  GPtrArray *rules = listfile->rules ? g_ptr_array_ref(listfile->rules) : nullptr;
  QCryptoAuthzListPolicy policy = listfile->policy;
  g_autofree char *broken = g_strdup(listfile->broken);
  g_mutex_unlock(&listfile->lock);
  if (!rules) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("Authorization object '%s' denies access to '%s' because its rules file '%s' "
                  "is broken (%s); fix the file"),
                qcrypto_authz_get_id(authz), identity, listfile->filename, broken);
    return FALSE;
  }
  gboolean allowed =
      qcrypto_authz_list_rules_decide(rules, policy, identity) == QCRYPTO_AUTHZ_LIST_POLICY_ALLOW;
  g_ptr_array_unref(rules);
  return allowed;
}

static void qcrypto_authz_list_file_set_property(GObject *object, guint prop_id,
                                                 const GValue *value, GParamSpec *pspec) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(object);
  switch (prop_id) {
    case PROP_FILENAME:
      g_free(listfile->filename);
      listfile->filename = g_value_dup_string(value);
      break;
    case PROP_REFRESH:
      listfile->refresh = g_value_get_boolean(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_list_file_get_property(GObject *object, guint prop_id, GValue *value,
                                                 GParamSpec *pspec) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(object);
  switch (prop_id) {
    case PROP_FILENAME:
      g_value_set_string(value, listfile->filename);
      break;
    case PROP_REFRESH:
      g_value_set_boolean(value, listfile->refresh);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_authz_list_file_dispose(GObject *object) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(object);
  if (listfile->monitor) {
    g_signal_handlers_disconnect_by_data(listfile->monitor, listfile);
    g_file_monitor_cancel(listfile->monitor);
    g_clear_object(&listfile->monitor);
  }
  G_OBJECT_CLASS(qcrypto_authz_list_file_parent_class)->dispose(object);
}

static void qcrypto_authz_list_file_finalize(GObject *object) {
  auto *listfile = QCRYPTO_AUTHZ_LIST_FILE(object);
  g_free(listfile->filename);
  g_free(listfile->broken);
  if (listfile->rules) g_ptr_array_unref(listfile->rules);
  g_mutex_clear(&listfile->lock);
  G_OBJECT_CLASS(qcrypto_authz_list_file_parent_class)->finalize(object);
}

static void qcrypto_authz_list_file_class_init(QCryptoAuthzListFileClass *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_authz_list_file_set_property;
  object_class->get_property = qcrypto_authz_list_file_get_property;
  object_class->dispose = qcrypto_authz_list_file_dispose;
  object_class->finalize = qcrypto_authz_list_file_finalize;
  QCRYPTO_AUTHZ_CLASS(klass)->is_allowed = authz_list_file_is_allowed;
  QCRYPTO_AUTHZ_CLASS(klass)->complete = authz_list_file_complete;
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                        G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      object_class, PROP_FILENAME,
      g_param_spec_string("filename", "File name", "JSON file with policy and rules", nullptr,
                          flags));
  g_object_class_install_property(
      object_class, PROP_REFRESH,
      g_param_spec_boolean("refresh", "Refresh", "Re-read the file when it changes", TRUE,
                           flags));
}

static void qcrypto_authz_list_file_init(QCryptoAuthzListFile *listfile) {
  g_mutex_init(&listfile->lock);
  listfile->refresh = TRUE;
}

QCryptoAuthzListFile *qcrypto_authz_list_file_new(const char *id, const char *filename,
                                                  gboolean refresh, GError **error) {
  gpointer object = g_initable_new(QCRYPTO_TYPE_AUTHZ_LIST_FILE, nullptr, error, "id", id,
                                   "filename", filename, "refresh", refresh, nullptr);
  return object ? QCRYPTO_AUTHZ_LIST_FILE(object) : nullptr;
}
