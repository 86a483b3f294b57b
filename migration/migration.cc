#include "config.h"

#include "migration/migration.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-server.h"
#include "qcrypto/tls-creds-x509.h"
#include "qom/object-registry.h"

#include <glib/gi18n-lib.h>

namespace qio::migration {

Migration::Migration(host::Guest &guest, EventFunc emit,
                     std::function<void(const GError *)> incoming_done)
    : guest_(guest), emit_(std::move(emit)),
      incoming_done_(std::move(incoming_done)), stats_(std::make_shared<MigrationStats>()) {}

Migration::~Migration() {
  /* Threads waiting for a loop that no longer runs are released. */
  main_calls_.close();
  source_.reset();
  incoming_.reset();
}

void Migration::status_changed(MigrationStatus status) {
  if (!caps_.events) return;
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "status", migration_status_name(status));
  emit_("MIGRATION", monitor::qmp_take_object(data));
}

MigrationContext Migration::context() {
  return {guest_, g_main_context_default(),
          [this](MigrationStatus s) { status_changed(s); },
          [this](std::function<void()> fn) { main_calls_.run(std::move(fn)); },
          [this](const char *name) { emit_(name, nullptr); }, complete_mirrors_};
}

bool Migration::busy() const {
  auto s = stats_->status.load();
  return s == MigrationStatus::Setup || s == MigrationStatus::Active ||
         s == MigrationStatus::Device || s == MigrationStatus::Cancelling;
}

QCryptoTLSCreds *Migration::lookup_creds(QCryptoTLSCredsEndpoint endpoint, GError **error) {
  if (params_.tls_creds.empty()) return nullptr;
  auto *creds = static_cast<QCryptoTLSCreds *>(qom_object_ref_typed(
      params_.tls_creds.c_str(), QCRYPTO_TYPE_TLS_CREDS, "TLS credentials", error));
  if (!creds) return nullptr;
  if (qcrypto_tls_creds_get_endpoint(creds) != endpoint) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT
                    ? _("TLS credentials '%s' are for a server; the migration source needs "
                        "credentials with endpoint=client")
                    : _("TLS credentials '%s' are for a client; the migration destination "
                        "needs credentials with endpoint=server"),
                params_.tls_creds.c_str());
    g_object_unref(creds);
    return nullptr;
  }
  return creds;
}

static bool refuse(GError **error, const char *message) {
  g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC, message);
  return false;
}

bool Migration::migrate(const char *uri_text, GError **error) {
  if (busy())
    return refuse(error, _("A migration is already in progress; wait for it or use "
                           "migrate_cancel"));
  /* Until then the guest is empty; once it came in, it may move on. */
  if (guest_.status() == std::string("inmigrate"))
    return refuse(error, _("The guest is waiting for an incoming migration; it can migrate "
                           "out once that has completed"));
  if (guest_.status() == std::string("postmigrate"))
    return refuse(error, _("The guest has already migrated away; its state lives on the "
                           "destination now"));
  MigrationUri uri;
  if (!migration_uri_parse(uri_text, uri, error)) return false;
  if (caps_.multifd && !uri.is_socket())
    return refuse(error, _("The multifd capability needs a tcp: or unix: URI (several "
                           "connections); turn multifd off for fd: and exec:"));
  if (caps_.zero_copy_send && !params_.tls_creds.empty())
    return refuse(error, _("zero-copy-send cannot be used with TLS (the data is encrypted "
                           "into new buffers); clear tls-creds or the capability"));
  g_autoptr(GError) local = nullptr;
  QCryptoTLSCreds *creds = lookup_creds(QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, &local);
  if (local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  g_autoptr(QCryptoTLSCreds) creds_ref = creds;
  if (creds && QCRYPTO_IS_TLS_CREDS_X509(creds) && params_.tls_hostname.empty() &&
      uri.kind != MigrationUri::Kind::Tcp) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Migration to '%s' with x509 credentials '%s' needs the tls-hostname "
                  "parameter (the name in the destination's certificate): only tcp: URIs "
                  "carry a host name"),
                uri_text, params_.tls_creds.c_str());
    return false;
  }
  if (source_) source_->join();
  source_.reset();
  stats_ = std::make_shared<MigrationStats>();
  stats_->status = MigrationStatus::Setup;
  stats_->outgoing = true;
  status_changed(MigrationStatus::Setup);
  source_ = std::make_unique<MigrationSource>(context(), uri, params_, caps_, creds, stats_);
  source_->start();
  return true;
}

bool Migration::cancel(GError **) {
  if (source_ && !source_->finished()) source_->cancel();
  return true;
}

bool Migration::incoming(const char *uri_text, GError **error) {
  if (incoming_)
    return refuse(error, _("An incoming migration was already started; migrate-incoming "
                           "works once"));
  if (!deferred_)
    return refuse(error, _("migrate-incoming needs qiod started with -incoming defer"));
  if (busy()) return refuse(error, _("A migration is in progress"));
  MigrationUri uri;
  if (!migration_uri_parse(uri_text, uri, error)) return false;
  if (caps_.multifd && !uri.is_socket())
    return refuse(error, _("The multifd capability needs a tcp: or unix: URI (several "
                           "connections); turn multifd off for fd: and exec:"));
  g_autoptr(GError) local = nullptr;
  g_autoptr(QCryptoTLSCreds) creds = lookup_creds(QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, &local);
  if (local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  g_autoptr(QCryptoAuthz) authz = nullptr;
  if (!params_.tls_authz.empty()) {
    authz = static_cast<QCryptoAuthz *>(qom_object_ref_typed(
        params_.tls_authz.c_str(), QCRYPTO_TYPE_AUTHZ, "authorization", error));
    if (!authz) return false;
  }
  stats_ = std::make_shared<MigrationStats>();
  auto incoming = std::make_unique<MigrationIncoming>(context(), uri, params_, caps_, creds,
                                                      authz, stats_,
                                                      incoming_done_);
  if (!incoming->start(error)) return false;
  incoming_ = std::move(incoming);
  deferred_ = false;
  return true;
}

static gint64 ms(gint64 us) { return us / 1000; }

JsonNode *Migration::query() const {
  JsonObject *obj = json_object_new();
  auto &s = *stats_;
  MigrationStatus status = s.status.load();
  if (status == MigrationStatus::None) return monitor::qmp_take_object(obj);
  json_object_set_string_member(obj, "status", migration_status_name(status));
  gint64 now = s.end_us ? s.end_us.load() : g_get_monotonic_time();
  gint64 total_us = MAX(now - s.start_us, 1);
  guint64 transferred = s.transferred;
  json_object_set_int_member(obj, "total-time", ms(total_us));
  json_object_set_int_member(obj, "setup-time", ms(s.setup_us));
  if (status == MigrationStatus::Completed && s.outgoing)
    json_object_set_int_member(obj, "downtime", ms(s.downtime_us));
  double throughput = static_cast<double>(transferred) * 1e6 / static_cast<double>(total_us);
  json_object_set_int_member(obj, "throughput", static_cast<gint64>(throughput));
  json_object_set_int_member(obj, "iterations", static_cast<gint64>(s.iterations));
  JsonObject *ram = json_object_new();
  json_object_set_int_member(ram, "transferred", static_cast<gint64>(transferred));
  json_object_set_int_member(ram, "remaining", static_cast<gint64>(s.remaining));
  json_object_set_int_member(ram, "total", static_cast<gint64>(s.ram_total));
  json_object_set_int_member(ram, "normal", static_cast<gint64>(s.pages));
  json_object_set_int_member(ram, "normal-bytes",
                             static_cast<gint64>(s.pages * host::kGuestPageSize));
  json_object_set_int_member(ram, "dirty-sync-count", static_cast<gint64>(s.iterations));
  json_object_set_double_member(ram, "mbps", throughput * 8 / 1e6);
  json_object_set_int_member(ram, "bandwidth", static_cast<gint64>(s.bandwidth));
  json_object_set_object_member(obj, "ram", ram);
  {
    std::lock_guard guard(s.lock);
    JsonArray *channels = json_array_new();
    for (const auto &c : s.channels) {
      JsonObject *co = json_object_new();
      json_object_set_string_member(co, "channel", c.name.c_str());
      json_object_set_boolean_member(co, "tls", !c.protocol.empty());
      if (!c.protocol.empty()) {
        json_object_set_string_member(co, "protocol", c.protocol.c_str());
        json_object_set_string_member(co, "cipher", c.cipher.c_str());
        json_object_set_string_member(co, "key-exchange", c.kx.c_str());
        json_object_set_string_member(co, "peer", c.peer.c_str());
        json_object_set_boolean_member(co, "resumed", c.resumed);
        json_object_set_int_member(co, "handshake-us", c.handshake_us);
      }
      json_array_add_object_element(channels, co);
    }
    json_object_set_array_member(obj, "channels", channels);
    if (!s.error.empty()) json_object_set_string_member(obj, "error-desc", s.error.c_str());
  }
  return monitor::qmp_take_object(obj);
}

static bool get_uint(JsonObject *args, const char *name, guint64 max, guint64 &out,
                     GError **error) {
  if (!json_object_has_member(args, name)) return true;
  gint64 v = json_object_get_int_member(args, name);
  if (v < 0 || static_cast<guint64>(v) > max) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Parameter '%s' expects a value between 0 and %llu"), name,
                static_cast<unsigned long long>(max));
    return false;
  }
  out = static_cast<guint64>(v);
  return true;
}

bool Migration::set_parameters(JsonObject *args, GError **error) {
  if (busy()) return refuse_change(false, error);
  MigrationParameters p = params_;
  guint64 channels = p.multifd_channels;
  if (!get_uint(args, "max-bandwidth", G_MAXINT64, p.max_bandwidth, error) ||
      !get_uint(args, "downtime-limit", 2000000, p.downtime_limit, error) ||
      !get_uint(args, "multifd-channels", 255, channels, error))
    return false;
  if (channels == 0) return refuse(error, _("Parameter 'multifd-channels' expects 1 to 255"));
  p.multifd_channels = static_cast<guint32>(channels);
  if (json_object_has_member(args, "multifd-compression") &&
      !compression_from_name(json_object_get_string_member(args, "multifd-compression"),
                             p.multifd_compression)) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Parameter 'multifd-compression' expects none, zlib or zstd, not '%s'"),
                json_object_get_string_member(args, "multifd-compression"));
    return false;
  }
  /* QEMU accepts JSON null for the TLS strings too, meaning "". */
  for (auto [name, field] : {std::pair{"tls-creds", &p.tls_creds},
                             std::pair{"tls-hostname", &p.tls_hostname},
                             std::pair{"tls-authz", &p.tls_authz}}) {
    JsonNode *n = json_object_get_member(args, name);
    if (!n) continue;
    if (JSON_NODE_HOLDS_NULL(n)) {
      field->clear();
    } else if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
      *field = json_node_get_string(n);
    } else {
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Invalid parameter type for '%s', expected: string"), name);
      return false;
    }
  }
  params_ = p;
  return true;
}

JsonNode *Migration::query_parameters() const {
  JsonObject *obj = json_object_new();
  json_object_set_string_member(obj, "tls-creds", params_.tls_creds.c_str());
  json_object_set_string_member(obj, "tls-hostname", params_.tls_hostname.c_str());
  json_object_set_string_member(obj, "tls-authz", params_.tls_authz.c_str());
  json_object_set_int_member(obj, "max-bandwidth", static_cast<gint64>(params_.max_bandwidth));
  json_object_set_int_member(obj, "downtime-limit", static_cast<gint64>(params_.downtime_limit));
  json_object_set_int_member(obj, "multifd-channels", params_.multifd_channels);
  json_object_set_string_member(obj, "multifd-compression",
                                compression_name(params_.multifd_compression));
  return monitor::qmp_take_object(obj);
}

/* A destination listening for its source counts as migrating: say how to
 * set things before that. */
bool Migration::refuse_change(bool capabilities, GError **error) const {
  if (incoming_ && stats_->status.load() == MigrationStatus::Setup)
    return refuse(error, capabilities
                             ? _("Migration capabilities cannot change once the destination "
                                 "listens; start qiod with -incoming defer and set them before "
                                 "migrate-incoming")
                             : _("Migration parameters cannot change once the destination "
                                 "listens; start qiod with -incoming defer and set them before "
                                 "migrate-incoming"));
  return refuse(error, capabilities ? _("Migration capabilities cannot change during a migration")
                                    : _("Migration parameters cannot change during a migration"));
}

bool Migration::set_capabilities(JsonArray *list, GError **error) {
  if (busy()) return refuse_change(true, error);
  MigrationCapabilities c = caps_;
  for (guint i = 0; i < json_array_get_length(list); i++) {
    JsonNode *n = json_array_get_element(list, i);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : nullptr;
    JsonNode *name = o ? json_object_get_member(o, "capability") : nullptr;
    JsonNode *state = o ? json_object_get_member(o, "state") : nullptr;
    if (!name || json_node_get_value_type(name) != G_TYPE_STRING || !state ||
        json_node_get_value_type(state) != G_TYPE_BOOLEAN)
      return refuse(error, _("Each capability must be {\"capability\": NAME, \"state\": "
                             "true|false}"));
    const char *cap = json_node_get_string(name);
    bool on = json_node_get_boolean(state);
    if (g_str_equal(cap, "multifd"))
      c.multifd = on;
    else if (g_str_equal(cap, "return-path"))
      c.return_path = on;
    else if (g_str_equal(cap, "zero-copy-send"))
      c.zero_copy_send = on;
    else if (g_str_equal(cap, "events"))
      c.events = on;
    else {
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Unknown migration capability '%s'; qiod knows multifd, return-path, "
                    "zero-copy-send and events"),
                  cap);
      return false;
    }
  }
  caps_ = c;
  return true;
}

JsonNode *Migration::query_capabilities() const {
  JsonArray *list = json_array_new();
  for (auto [name, on] : {std::pair{"multifd", caps_.multifd},
                          std::pair{"return-path", caps_.return_path},
                          std::pair{"zero-copy-send", caps_.zero_copy_send},
                          std::pair{"events", caps_.events}}) {
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "capability", name);
    json_object_set_boolean_member(o, "state", on);
    json_array_add_object_element(list, o);
  }
  return monitor::qmp_take_array(list);
}

}  // namespace qio::migration
