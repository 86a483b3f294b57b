#include "config.h"

#include "chardev/chardev-qmp.h"
#include "chardev/chardev-pty.h"
#include "chardev/chardev-ringbuf.h"
#include "qcrypto/base64.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>
#include <string>

namespace qio::chardev {

using monitor::QmpArgType;

namespace {

/* Whether "format" is base64 (or utf8, the default). */
bool format_arg(JsonObject *args, bool *base64, GError **error) {
  const char *format = json_object_get_string_member_with_default(args, "format", "utf8");
  *base64 = g_str_equal(format, "base64");
  if (!*base64 && !g_str_equal(format, "utf8")) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Parameter 'format': '%s' is not a data format; use utf8 or base64"), format);
    return false;
  }
  return true;
}

/* The "data" argument; with format=base64 malformed text is refused, not
 * written as whatever GLib's lenient decoder makes of it. */
bool data_arg(JsonObject *args, bool base64, std::string *out, GError **error) {
  const char *data = json_object_get_string_member(args, "data");
  if (!base64) {
    *out = data;
    return true;
  }
  if (!*data) {
    out->clear();
    return true;
  }
  gsize len = 0;
  g_autofree guint8 *bytes = qcrypto_base64_decode_strict(data, strlen(data), &len);
  if (!bytes) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Parameter 'data' is not valid base64; send the bytes base64-encoded "
                  "or use format=utf8"));
    return false;
  }
  out->assign(reinterpret_cast<const char *>(bytes), len);
  return true;
}

/* The "size" argument of the read commands, which must not be negative. */
bool size_arg(JsonObject *args, gint64 *size, GError **error) {
  *size = json_object_get_int_member(args, "size");
  if (*size >= 0) return true;
  g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
              _("Parameter 'size' must not be negative (got %lld)"),
              static_cast<long long>(*size));
  return false;
}

/* @bytes as a JSON string; invalid UTF-8 becomes U+FFFD, as QEMU does. */
JsonNode *data_node(const std::string &bytes, bool base64) {
  g_autofree char *text =
      base64 ? g_base64_encode(reinterpret_cast<const guchar *>(bytes.data()), bytes.size())
             : g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size()));
  JsonNode *node = json_node_new(JSON_NODE_VALUE);
  json_node_set_string(node, text);
  return node;
}

/* ringbuf-write and ringbuf-read: the ringbuf named by "device", and
 * whether "format" is base64. */
ChardevRingbuf *ringbuf_args(ChardevSet &set, JsonObject *args, bool *base64, GError **error) {
  if (!format_arg(args, base64, error)) return nullptr;
  const char *id = json_object_get_string_member(args, "device");
  Chardev *dev = set.lookup(id, error);
  if (!dev) return nullptr;
  auto *ring = dynamic_cast<ChardevRingbuf *>(dev);
  if (!ring)
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Chardev '%s' is not a ringbuf (its backend is %s)"), id, dev->backend());
  return ring;
}

}  // namespace

void qmp_register_chardev_commands(monitor::QmpServer &server, ChardevSet &set) {
  monitor::QmpCommand add{"chardev-add",
                          {{"id", QmpArgType::String}, {"backend", QmpArgType::Object}}};
  /* Asynchronous: a socket client connecting must not hold the loop. */
  add.async_handler = [&set](JsonObject *args, monitor::QmpCompletion done) {
    GError *error = nullptr;
    auto opts = ChardevOptions::from_qmp(args, &error);
    if (!opts) return done(nullptr, error);
    set.add_async(*opts, [done](Chardev *dev, GError *add_error) {
      if (!dev) return done(nullptr, add_error);
      JsonObject *ret = json_object_new();
      if (auto *pty = dynamic_cast<ChardevPty *>(dev))
        json_object_set_string_member(ret, "pty", pty->filename().substr(4).c_str());
      done(monitor::qmp_take_object(ret), nullptr);
    });
  };
  server.add_command(std::move(add));
  server.add_command({"chardev-remove", {{"id", QmpArgType::String}}, false,
                      [&set](JsonObject *args, GError **error) -> JsonNode * {
                        if (!set.remove(json_object_get_string_member(args, "id"), error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"query-chardev", {}, false,
                      [&set](JsonObject *, GError **) { return set.query(); }});
  /* qiod's extensions (x-): talk over a chardev that has no frontend,
   * to test and diagnose peers (QEMU's monitor over TLS, for one). */
  server.add_command({"x-chardev-write",
                      {{"id", QmpArgType::String},
                       {"data", QmpArgType::String},
                       {"format", QmpArgType::String, true}},
                      false,
                      [&set](JsonObject *args, GError **error) -> JsonNode * {
                        bool base64 = false;
                        if (!format_arg(args, &base64, error)) return nullptr;
                        const char *id = json_object_get_string_member(args, "id");
                        Chardev *dev = set.lookup(id, error);
                        if (!dev) return nullptr;
                        if (dev->frontend()) {
                          g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                                      _("Chardev '%s' is busy: a frontend (serial port or "
                                        "monitor) uses it"),
                                      id);
                          return nullptr;
                        }
                        std::string data;
                        if (!data_arg(args, base64, &data, error)) return nullptr;
                        JsonObject *ret = json_object_new();
                        json_object_set_int_member(ret, "written",
                                                   static_cast<gint64>(dev->write(data)));
                        return monitor::qmp_take_object(ret);
                      }});
  server.add_command({"x-chardev-read",
                      {{"id", QmpArgType::String},
                       {"size", QmpArgType::Int},
                       {"format", QmpArgType::String, true}},
                      false,
                      [&set](JsonObject *args, GError **error) -> JsonNode * {
                        bool base64 = false;
                        if (!format_arg(args, &base64, error)) return nullptr;
                        Chardev *dev = set.lookup(json_object_get_string_member(args, "id"),
                                                  error);
                        if (!dev) return nullptr;
                        gint64 size = 0;
                        if (!size_arg(args, &size, error)) return nullptr;
                        return data_node(dev->take_unclaimed(static_cast<gsize>(size)), base64);
                      }});
  server.add_command(
      {"ringbuf-write",
       {{"device", QmpArgType::String},
        {"data", QmpArgType::String},
        {"format", QmpArgType::String, true}},
       false,
       [&set](JsonObject *args, GError **error) -> JsonNode * {
         bool base64 = false;
         ChardevRingbuf *ring = ringbuf_args(set, args, &base64, error);
         if (!ring) return nullptr;
         std::string data;
         if (!data_arg(args, base64, &data, error)) return nullptr;
         ring->write(data);
         return monitor::qmp_empty_object();
       }});
  server.add_command(
      {"ringbuf-read",
       {{"device", QmpArgType::String},
        {"size", QmpArgType::Int},
        {"format", QmpArgType::String, true}},
       false,
       [&set](JsonObject *args, GError **error) -> JsonNode * {
         bool base64 = false;
         ChardevRingbuf *ring = ringbuf_args(set, args, &base64, error);
         if (!ring) return nullptr;
         gint64 size = 0;
         if (!size_arg(args, &size, error)) return nullptr;
         return data_node(ring->read(static_cast<gsize>(size)), base64);
       }});
}

}  // namespace qio::chardev
