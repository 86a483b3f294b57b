#include "config.h"

#include "monitor/qmp-tls-commands.h"
#include "qcrypto/tls-creds.h"
#include "qom/object-registry.h"

#include <glib/gi18n-lib.h>

#include <set>
#include <string>

namespace qio::monitor {

static constexpr gint64 kSecondsPerDay = 24 * 60 * 60;

/* One certificate or CRL as query-tls-creds and TLS_CREDS_EXPIRING show
 * it; a CRL's expiry is its next update, its subject the issuer's. */
static JsonObject *cert_info(const QCryptoTLSCertExpiry *cert) {
  JsonObject *c = json_object_new();
  json_object_set_string_member(c, "kind",
                                cert->kind == QCRYPTO_TLS_EXPIRY_CRL ? "crl" : "certificate");
  json_object_set_string_member(c, "file", cert->file);
  json_object_set_string_member(c, "subject", cert->subject);
  g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(cert->expiry);
  g_autofree char *iso = when ? g_date_time_format_iso8601(when) : g_strdup("");
  json_object_set_string_member(c, "expiry", iso);
  json_object_set_int_member(c, "expiry-seconds", cert->expiry);
  gint64 left = cert->expiry - g_get_real_time() / G_USEC_PER_SEC;
  json_object_set_int_member(c, "days-left", left / kSecondsPerDay);
  return c;
}

template <typename F>
static void for_each_tls_creds(F &&f) {
  g_auto(GStrv) ids = qom_object_list_ids();
  for (char **id = ids; id && *id; id++) {
    GObject *obj = qom_object_lookup(*id);
    if (obj && QCRYPTO_IS_TLS_CREDS(obj)) f(*id, QCRYPTO_TLS_CREDS(obj));
  }
}

static JsonNode *query_tls_creds() {
  JsonArray *list = json_array_new();
  for_each_tls_creds([list](const char *id, QCryptoTLSCreds *creds) {
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "id", id);
    const char *type = qom_type_name(G_OBJECT_TYPE(creds));
    json_object_set_string_member(o, "type", type ? type : G_OBJECT_TYPE_NAME(creds));
    json_object_set_string_member(o, "endpoint",
                                  qcrypto_tls_creds_get_endpoint(creds) ==
                                          QCRYPTO_TLS_CREDS_ENDPOINT_SERVER
                                      ? "server"
                                      : "client");
    const char *dir = qcrypto_tls_creds_get_dir(creds);
    if (dir) json_object_set_string_member(o, "dir", dir);
    json_object_set_boolean_member(o, "verify-peer", qcrypto_tls_creds_get_verify_peer(creds));
    /* Everything: "expiring within G_MAXUINT days" is all of them. */
    g_autoptr(GPtrArray) certs = qcrypto_tls_creds_get_expiring(creds, G_MAXUINT);
    JsonArray *cert_list = json_array_new(), *crl_list = json_array_new();
    for (guint i = 0; certs && i < certs->len; i++) {
      auto *cert = static_cast<QCryptoTLSCertExpiry *>(g_ptr_array_index(certs, i));
      json_array_add_object_element(cert->kind == QCRYPTO_TLS_EXPIRY_CRL ? crl_list : cert_list,
                                    cert_info(cert));
    }
    json_object_set_array_member(o, "certificates", cert_list);
    json_object_set_array_member(o, "revocation-lists", crl_list);
    json_array_add_object_element(list, o);
  });
  return qmp_take_array(list);
}

void qmp_check_tls_expiry(QmpServer &server, guint days) {
  /* Warned certificates and CRLs: id, file, subject and expiry, so a
   * reloaded one with a new date is reported again. */
  static std::set<std::string> warned;
  for_each_tls_creds([&](const char *id, QCryptoTLSCreds *creds) {
    g_autoptr(GPtrArray) certs = qcrypto_tls_creds_get_expiring(creds, days);
    for (guint i = 0; certs && i < certs->len; i++) {
      auto *cert = static_cast<QCryptoTLSCertExpiry *>(g_ptr_array_index(certs, i));
      g_autofree char *key = g_strdup_printf("%s\n%s\n%s\n%" G_GINT64_FORMAT, id, cert->file,
                                             cert->subject, cert->expiry);
      if (!warned.insert(key).second) continue;
      JsonObject *data = cert_info(cert);
      json_object_set_string_member(data, "id", id);
      server.emit_event("TLS_CREDS_EXPIRING", json_node_init_object(json_node_alloc(), data));
      json_object_unref(data);
    }
  });
}

/* Loads the credentials' files again: new sessions use them, sessions
 * under way keep what they started with; on failure nothing changes. */
static JsonNode *tls_creds_reload(JsonObject *args, GError **error) {
  const char *id = json_object_get_string_member(args, "id");
  g_autoptr(QCryptoTLSCreds) creds = static_cast<QCryptoTLSCreds *>(
      qom_object_ref_typed(id, QCRYPTO_TYPE_TLS_CREDS, _("TLS credentials"), error));
  if (!creds || !qcrypto_tls_creds_reload(creds, error)) return nullptr;
  return qmp_empty_object();
}

void qmp_register_tls_commands(QmpServer &server) {
  server.add_command({"query-tls-creds", {}, false,
                      [](JsonObject *, GError **) { return query_tls_creds(); }});
  server.add_command({"tls-creds-reload", {{"id", QmpArgType::String}}, false, tls_creds_reload});
}

}  // namespace qio::monitor
