#include "config.h"

#include "ui/qmp-vnc-commands.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::ui {

namespace {

JsonNode *query_vnc(VncServer *vnc) {
  JsonObject *o = json_object_new();
  json_object_set_boolean_member(o, "enabled", vnc != nullptr);
  if (!vnc) return monitor::qmp_take_object(o);
  json_object_set_string_member(o, "host", vnc->host().c_str());
  json_object_set_string_member(o, "service", vnc->service().c_str());
  json_object_set_string_member(o, "family", vnc->family().c_str());
  json_object_set_string_member(o, "auth", vnc->auth_name());
  std::string ws = vnc->websocket_service();
  if (!ws.empty()) json_object_set_string_member(o, "websocket-service", ws.c_str());
  JsonArray *clients = json_array_new();
  for (const auto &c : vnc->clients()) {
    JsonObject *ci = json_object_new();
    json_object_set_string_member(ci, "host", c.host.c_str());
    json_object_set_string_member(ci, "service", c.service.c_str());
    json_object_set_string_member(ci, "family", c.family.c_str());
    json_object_set_boolean_member(ci, "websocket", c.websocket);
    if (!c.x509_dname.empty()) json_object_set_string_member(ci, "x509_dname", c.x509_dname.c_str());
    if (!c.sasl_username.empty())
      json_object_set_string_member(ci, "sasl_username", c.sasl_username.c_str());
    json_object_set_string_member(ci, "encoding", c.encoding.c_str());
    json_array_add_object_element(clients, ci);
  }
  json_object_set_array_member(o, "clients", clients);
  return monitor::qmp_take_object(o);
}

bool need_vnc(VncServer *vnc, GError **error) {
  if (vnc) return true;
  g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
              _("qiod has no VNC server; start it with -vnc HOST:DISPLAY"));
  return false;
}

/* QEMU's "display" names a VNC display by its id; qiod has one, QEMU's
 * default id "default". */
bool need_vnc_protocol(const char *command, JsonObject *args, GError **error) {
  const char *protocol = json_object_get_string_member(args, "protocol");
  if (!g_str_equal(protocol, "vnc")) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("%s: protocol '%s' is not served by qiod; use \"vnc\""), command, protocol);
    return false;
  }
  const char *display = json_object_get_string_member_with_default(args, "display", "default");
  if (g_str_equal(display, "default")) return true;
  g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
              _("%s: qiod has no VNC display '%s'; its one display is \"default\""), command,
              display);
  return false;
}

/* As in QEMU, VNC clients in session always keep their session. */
bool check_connected(JsonObject *args, GError **error) {
  const char *connected = json_object_get_string_member_with_default(args, "connected", "keep");
  if (g_str_equal(connected, "keep")) return true;
  if (g_str_equal(connected, "fail") || g_str_equal(connected, "disconnect"))
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("set_password: VNC supports only connected \"keep\", not \"%s\""),
                connected);
  else
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("set_password: connected '%s' is not \"keep\", \"fail\" or \"disconnect\""),
                connected);
  return false;
}

}  // namespace

void qmp_register_vnc_commands(monitor::QmpServer &server, VncServer *vnc) {
  server.add_command({"query-vnc", {}, false, [vnc](JsonObject *, GError **) {
                        return query_vnc(vnc);
                      }});
  server.add_command({"set_password",
                      {{"protocol", monitor::QmpArgType::String},
                       {"password", monitor::QmpArgType::String},
                       {"connected", monitor::QmpArgType::String, true},
                       {"display", monitor::QmpArgType::String, true}},
                      false, [vnc](JsonObject *args, GError **error) -> JsonNode * {
                        if (!need_vnc_protocol("set_password", args, error) ||
                            !check_connected(args, error) || !need_vnc(vnc, error) ||
                            !vnc->set_password(json_object_get_string_member(args, "password"),
                                               error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"expire_password",
                      {{"protocol", monitor::QmpArgType::String},
                       {"time", monitor::QmpArgType::String},
                       {"display", monitor::QmpArgType::String, true}},
                      false, [vnc](JsonObject *args, GError **error) -> JsonNode * {
                        if (!need_vnc_protocol("expire_password", args, error) ||
                            !need_vnc(vnc, error) ||
                            !vnc->expire_password(json_object_get_string_member(args, "time"),
                                                  error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"change-vnc-password",
                      {{"password", monitor::QmpArgType::String}},
                      false, [vnc](JsonObject *args, GError **error) -> JsonNode * {
                        if (!need_vnc(vnc, error) ||
                            !vnc->set_password(json_object_get_string_member(args, "password"),
                                               error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"display-reload",
                      {{"type", monitor::QmpArgType::String},
                       {"tls-certs", monitor::QmpArgType::Bool, true}},
                      false, [vnc](JsonObject *args, GError **error) -> JsonNode * {
                        const char *type = json_object_get_string_member(args, "type");
                        if (!g_str_equal(type, "vnc")) {
                          g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                                      _("display-reload: type '%s' is not a display of qiod; "
                                        "use \"vnc\""),
                                      type);
                          return nullptr;
                        }
                        if (!need_vnc(vnc, error)) return nullptr;
                        if (json_object_has_member(args, "tls-certs") &&
                            json_object_get_boolean_member(args, "tls-certs") &&
                            !vnc->reload_tls(error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
}

}  // namespace qio::ui
