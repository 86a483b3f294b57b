#include "config.h"

#include "monitor/qmp-nbd-commands.h"
#include "monitor/qmp-error.h"
#include "nbd/server.h"
#include "qom/object-registry.h"

#include <glib/gi18n-lib.h>

#include <cstdarg>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>

namespace qio::monitor {

namespace {

struct NbdState {
  NbdState(QmpServer &q, host::Guest &g) : qmp(q), guest(g) {}
  ~NbdState() { stop(); }
  NbdState(const NbdState &) = delete;
  NbdState &operator=(const NbdState &) = delete;

  void stop() {
    if (!server) return;
    nbd_server_shutdown(server);
    g_clear_object(&server);
    if (!unix_path.empty()) unlink(unix_path.c_str());
    unix_path.clear();
    export_ids.clear();
    for (auto &[name, disk] : writable_disks) disk->remove_writable_export();
    writable_disks.clear();
  }

  QmpServer &qmp;
  host::Guest &guest;
  NBDServer *server = nullptr;
  std::string unix_path; /* removed when the server stops */
  std::map<std::string, std::string> export_ids; /* block-export id -> export name */
  /* Writable exports by name: their drives cannot be mirrored meanwhile. */
  std::map<std::string, host::GuestDisk *> writable_disks;
};

void set_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void set_error(GError **error, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error_literal(error, QMP_ERROR, QMP_ERROR_GENERIC, msg);
}

/* A member that QEMU sends as a string ("port": "10809") but clients also
 * send as a number. */
bool get_port(JsonObject *obj, const char *member, guint32 max, guint32 *port, GError **error) {
  JsonNode *node = json_object_get_member(obj, member);
  if (!node || !JSON_NODE_HOLDS_VALUE(node)) {
    set_error(error, _("Parameter 'addr.%s' is missing or neither a string nor a number"),
              member);
    return false;
  }
  gint64 v = -1;
  if (json_node_get_value_type(node) == G_TYPE_INT64) {
    v = json_node_get_int(node);
  } else if (json_node_get_value_type(node) == G_TYPE_STRING) {
    const char *s = json_node_get_string(node);
    guint64 u;
    if (g_ascii_string_to_unsigned(s, 10, 0, max, &u, nullptr)) v = static_cast<gint64>(u);
  }
  if (v < 0 || v > max) {
    set_error(error, _("Parameter 'addr.%s' must be a number from 0 to %u"), member, max);
    return false;
  }
  *port = static_cast<guint32>(v);
  return true;
}

const char *get_string(JsonObject *obj, const char *member, GError **error) {
  JsonNode *node = json_object_get_member(obj, member);
  if (!node || json_node_get_value_type(node) != G_TYPE_STRING || !*json_node_get_string(node)) {
    set_error(error, _("Parameter 'addr.%s' is missing or not a non-empty string"), member);
    return nullptr;
  }
  return json_node_get_string(node);
}

}  // namespace

/* QEMU's SocketAddress ({"type": "inet", "host": ..., "port": ...}) or the
 * legacy form nbd-server-start also accepts ({"type": ..., "data": {...}}). */
static QIOSocketAddress *parse_socket_address(JsonObject *addr, GError **error) {
  JsonNode *type_node = json_object_get_member(addr, "type");
  if (!type_node || json_node_get_value_type(type_node) != G_TYPE_STRING) {
    set_error(error, _("Parameter 'addr.type' is missing; use \"inet\", \"unix\" or \"vsock\""));
    return nullptr;
  }
  const char *type = json_node_get_string(type_node);
  JsonObject *data = addr;
  if (json_object_has_member(addr, "data")) {
    JsonNode *d = json_object_get_member(addr, "data");
    if (!JSON_NODE_HOLDS_OBJECT(d)) {
      set_error(error, _("Parameter 'addr.data' must be an object"));
      return nullptr;
    }
    data = json_node_get_object(d);
  }
  if (g_str_equal(type, "inet")) {
    const char *host = get_string(data, "host", error);
    guint32 port;
    if (!host || !get_port(data, "port", G_MAXUINT16, &port, error)) return nullptr;
    return qio_socket_address_new_inet(host, static_cast<guint16>(port));
  }
  if (g_str_equal(type, "unix")) {
    const char *path = get_string(data, "path", error);
    if (!path) return nullptr;
    JsonNode *abs = json_object_get_member(data, "abstract");
    return qio_socket_address_new_unix(path, abs && JSON_NODE_HOLDS_VALUE(abs) &&
                                                 json_node_get_value_type(abs) == G_TYPE_BOOLEAN &&
                                                 json_node_get_boolean(abs));
  }
  if (g_str_equal(type, "vsock")) {
    guint32 cid, port;
    if (!get_port(data, "cid", G_MAXUINT32, &cid, error) ||
        !get_port(data, "port", G_MAXUINT32, &port, error))
      return nullptr;
    return qio_socket_address_new_vsock(cid, port);
  }
  set_error(error, _("Parameter 'addr.type' has unknown value '%s'; use \"inet\", \"unix\" or "
                     "\"vsock\""),
            type);
  return nullptr;
}

bool qmp_get_count(JsonObject *args, const char *name, guint *out, GError **error) {
  if (!json_object_has_member(args, name)) return true;
  gint64 v = json_object_get_int_member(args, name);
  if (v < 0 || v > G_MAXUINT) {
    set_error(error, _("Parameter '%s' must be between 0 and %u (got %lld)"), name, G_MAXUINT,
              static_cast<long long>(v));
    return false;
  }
  *out = static_cast<guint>(v);
  return true;
}

host::GuestDisk *qmp_find_drive(host::Guest &guest, const char *id, GError **error) {
  host::GuestDisk *disk = guest.find_disk(id);
  if (!disk)
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                _("Drive '%s' not found; use the id of a -drive"), id);
  return disk;
}

QCryptoTLSCreds *qmp_lookup_tls_creds(const char *id, QCryptoTLSCredsEndpoint endpoint,
                                      GError **error) {
  g_autoptr(QCryptoTLSCreds) creds = static_cast<QCryptoTLSCreds *>(
      qom_object_ref_typed(id, QCRYPTO_TYPE_TLS_CREDS, "TLS credentials", error));
  if (!creds) return nullptr;
  if (qcrypto_tls_creds_get_endpoint(creds) == endpoint)
    return static_cast<QCryptoTLSCreds *>(g_steal_pointer(&creds));
  if (endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER)
    set_error(error, _("TLS credentials '%s' are for a client; the NBD server needs "
                       "credentials with endpoint=server"),
              id);
  else
    set_error(error, _("TLS credentials '%s' are for a server; drive-mirror needs credentials "
                       "with endpoint=client"),
              id);
  return nullptr;
}

static JsonNode *server_start(NbdState &st, JsonObject *args, GError **error) {
  if (st.server) {
    set_error(error, _("NBD server already running; stop it first with nbd-server-stop"));
    return nullptr;
  }
  guint max_connections = 0, handshake = 10;
  if (!qmp_get_count(args, "max-connections", &max_connections, error) ||
      !qmp_get_count(args, "handshake-max-seconds", &handshake, error))
    return nullptr;
  g_autoptr(QIOSocketAddress) addr =
      parse_socket_address(json_object_get_object_member(args, "addr"), error);
  if (!addr) return nullptr;
  const char *creds_id = json_object_get_string_member_with_default(args, "tls-creds", nullptr);
  const char *authz_id = json_object_get_string_member_with_default(args, "tls-authz", nullptr);
  if (authz_id && !creds_id) {
    set_error(error, _("'tls-authz' needs 'tls-creds': authorization checks TLS identities"));
    return nullptr;
  }
  g_autoptr(QCryptoTLSCreds) creds = nullptr;
  if (creds_id &&
      !(creds = qmp_lookup_tls_creds(creds_id, QCRYPTO_TLS_CREDS_ENDPOINT_SERVER, error)))
    return nullptr;
  g_autoptr(QCryptoAuthz) authz = nullptr;
  if (authz_id) {
    authz = static_cast<QCryptoAuthz *>(
        qom_object_ref_typed(authz_id, QCRYPTO_TYPE_AUTHZ, "authorization", error));
    if (!authz) return nullptr;
  }
  g_autoptr(NBDServer) server = nbd_server_new(st.qmp.context());
  nbd_server_set_max_connections(server, max_connections);
  nbd_server_set_handshake_max_seconds(server, handshake);
  nbd_server_set_tls(server, creds, authz);
  if (!nbd_server_listen(server, addr, error)) return nullptr;
  st.server = NBD_SERVER(g_steal_pointer(&server));
  if (qio_socket_address_get_kind(addr) == QIO_SOCKET_ADDRESS_UNIX &&
      !qio_socket_address_is_abstract(addr))
    st.unix_path = qio_socket_address_get_path(addr);
  return qmp_empty_object();
}

/* @args: the command's, for the optional name, writable and description. */
static bool add_export(NbdState &st, const char *device, const char *name, JsonObject *args,
                       GError **error) {
  bool writable = json_object_get_boolean_member_with_default(args, "writable", FALSE);
  if (!st.server) {
    set_error(error, _("NBD server not running; start it first with nbd-server-start"));
    return false;
  }
  host::GuestDisk *disk = qmp_find_drive(st.guest, device, error);
  if (!disk) return false;
  if (writable && !disk->mirror_job().empty()) {
    set_error(error,
              _("Drive '%s' is being mirrored by job '%s', which would miss writes through "
                "NBD; add the export read-only, or wait for the job to end"),
              device, disk->mirror_job().c_str());
    return false;
  }
  if (!name) name = device;
  if (nbd_server_lookup_export(st.server, name)) {
    set_error(error, _("NBD export '%s' already exists; choose another name"), name);
    return false;
  }
  g_autoptr(NBDExport) exp = nbd_export_new(name, disk->path().c_str(), !writable, error);
  if (!exp) return false;
  g_autofree char *desc = g_strdup_printf("qiod drive %s", device);
  if (!nbd_export_set_description(
          exp, json_object_get_string_member_with_default(args, "description", desc), error) ||
      !nbd_server_add_export(st.server, exp, error))
    return false;
  if (writable) {
    disk->add_writable_export();
    st.writable_disks[name] = disk;
  }
  return true;
}

static bool remove_export(NbdState &st, const char *name, JsonObject *args, GError **error) {
  if (!st.server) {
    set_error(error, _("NBD server not running; there is no export '%s' to remove"), name);
    return false;
  }
  const char *mode = json_object_get_string_member_with_default(args, "mode", "safe");
  if (!g_str_equal(mode, "safe") && !g_str_equal(mode, "hard")) {
    set_error(error, _("Parameter 'mode' has unknown value '%s'; use \"safe\" or \"hard\""),
              mode);
    return false;
  }
  if (!nbd_server_remove_export(st.server, name, g_str_equal(mode, "hard"), error)) return false;
  if (auto it = st.writable_disks.find(name); it != st.writable_disks.end()) {
    it->second->remove_writable_export();
    st.writable_disks.erase(it);
  }
  std::string id = name;
  for (auto it = st.export_ids.begin(); it != st.export_ids.end(); ++it)
    if (it->second == name) {
      id = it->first;
      st.export_ids.erase(it);
      break;
    }
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "id", id.c_str());
  st.qmp.emit_event("BLOCK_EXPORT_DELETED", qmp_take_object(data));
  return true;
}

void qmp_register_nbd_commands(QmpServer &server, host::Guest &guest) {
  auto st = std::make_shared<NbdState>(server, guest);
  server.add_command({"nbd-server-start",
                      {{"addr", QmpArgType::Object},
                       {"tls-creds", QmpArgType::String, true},
                       {"tls-authz", QmpArgType::String, true},
                       {"max-connections", QmpArgType::Int, true},
                       {"handshake-max-seconds", QmpArgType::Int, true}},
                      false, [st](JsonObject *args, GError **error) {
                        return server_start(*st, args, error);
                      }});
  server.add_command({"nbd-server-add",
                      {{"device", QmpArgType::String},
                       {"name", QmpArgType::String, true},
                       {"writable", QmpArgType::Bool, true},
                       {"description", QmpArgType::String, true}},
                      false, [st](JsonObject *args, GError **error) -> JsonNode * {
                        if (!add_export(*st, json_object_get_string_member(args, "device"),
                                        json_object_get_string_member_with_default(args, "name",
                                                                                   nullptr),
                                        args, error))
                          return nullptr;
                        return qmp_empty_object();
                      }});
  server.add_command(
      {"block-export-add",
       {{"type", QmpArgType::String},
        {"id", QmpArgType::String},
        {"node-name", QmpArgType::String},
        {"name", QmpArgType::String, true},
        {"writable", QmpArgType::Bool, true},
        {"description", QmpArgType::String, true}},
       false, [st](JsonObject *args, GError **error) -> JsonNode * {
         const char *type = json_object_get_string_member(args, "type");
         const char *id = json_object_get_string_member(args, "id");
         if (!g_str_equal(type, "nbd")) {
           set_error(error, _("Block export '%s': type '%s' is not supported; use \"nbd\""), id,
                     type);
           return nullptr;
         }
         if (st->export_ids.count(id)) {
           set_error(error, _("Block export id '%s' is already in use; choose another id"), id);
           return nullptr;
         }
         const char *node = json_object_get_string_member(args, "node-name");
         const char *name = json_object_get_string_member_with_default(args, "name", node);
         if (!add_export(*st, node, name, args, error))
           return nullptr;
         st->export_ids[id] = name;
         return qmp_empty_object();
       }});
  server.add_command({"nbd-server-remove",
                      {{"name", QmpArgType::String}, {"mode", QmpArgType::String, true}}, false,
                      [st](JsonObject *args, GError **error) -> JsonNode * {
                        if (!remove_export(*st, json_object_get_string_member(args, "name"),
                                           args, error))
                          return nullptr;
                        return qmp_empty_object();
                      }});
  server.add_command({"block-export-del",
                      {{"id", QmpArgType::String}, {"mode", QmpArgType::String, true}}, false,
                      [st](JsonObject *args, GError **error) -> JsonNode * {
                        const char *id = json_object_get_string_member(args, "id");
                        auto it = st->export_ids.find(id);
                        if (it == st->export_ids.end()) {
                          set_error(error, _("Block export '%s' not found; see the ids given to "
                                             "block-export-add"),
                                    id);
                          return nullptr;
                        }
                        std::string name = it->second;
                        if (!remove_export(*st, name.c_str(), args, error)) return nullptr;
                        return qmp_empty_object();
                      }});
  server.add_command({"nbd-server-stop", {}, false,
                      [st](JsonObject *, GError **error) -> JsonNode * {
                        if (!st->server) {
                          set_error(error, _("NBD server not running; nothing to stop"));
                          return nullptr;
                        }
                        st->stop();
                        return qmp_empty_object();
                      }});
}

}  // namespace qio::monitor
