#include "config.h"

#include "tools/qmp-client.h"
#include "qcrypto/json-parse.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::tools {

QmpClient::QmpClient(QIOChannel *ioc)
    : ioc_(QIO_CHANNEL(g_object_ref(ioc))), context_(g_main_context_new()),
      splitter_(64u << 20, 1024) {
  qio_channel_set_blocking(ioc_, FALSE, nullptr);
}

QmpClient::~QmpClient() {
  for (JsonNode *e : events_) json_node_unref(e);
  qio_channel_close(ioc_, nullptr);
  g_object_unref(ioc_);
  g_main_context_unref(context_);
}

static gboolean on_ready(QIOChannel *, GIOCondition, gpointer data) noexcept {
  *static_cast<bool *>(data) = true;
  return G_SOURCE_REMOVE;
}

/* Waits on the channel's watch in a private context until @deadline
 * (monotonic µs; < 0: none).  False on timeout. */
static bool wait_for(QIOChannel *ioc, GMainContext *context, GIOCondition cond, gint64 deadline) {
  bool ready = false, expired = false;
  GSource *watch = qio_channel_create_watch(ioc, cond);
  g_source_set_callback(watch, G_SOURCE_FUNC(on_ready), &ready,
                        nullptr);
  g_source_attach(watch, context);
  GSource *timer = nullptr;
  if (deadline >= 0) {
    gint64 left = MAX(0, deadline - g_get_monotonic_time());
    timer = g_timeout_source_new(static_cast<guint>(left / 1000));
    g_source_set_callback(
        timer,
        [](gpointer data) noexcept -> gboolean {
          *static_cast<bool *>(data) = true;
          return G_SOURCE_REMOVE;
        },
        &expired, nullptr);
    g_source_attach(timer, context);
  }
  while (!ready && !expired) g_main_context_iteration(context, TRUE);
  g_source_destroy(watch);
  g_source_unref(watch);
  if (timer) {
    g_source_destroy(timer);
    g_source_unref(timer);
  }
  return ready;
}

bool QmpClient::write_all(const std::string &text, GError **error) {
  gsize off = 0;
  while (off < text.size()) {
    gssize n = qio_channel_write(ioc_, text.data() + off, text.size() - off, error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      wait_for(ioc_, context_, G_IO_OUT, -1);
      continue;
    }
    if (n < 0) return false;
    off += static_cast<gsize>(n);
  }
  return true;
}

JsonNode *QmpClient::read_message(gint64 deadline, GError **error) {
  char buf[65536];
  while (pending_.empty()) {
    gssize n = qio_channel_read(ioc_, buf, sizeof buf, error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      if (!wait_for(ioc_, context_, G_IO_IN, deadline)) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_TIMEOUT,
                    _("The QMP server on '%s' did not answer in time"),
                    qio_channel_get_name(ioc_));
        return nullptr;
      }
      continue;
    }
    if (n < 0) return nullptr;
    if (n == 0) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                  _("The QMP server on '%s' closed the connection"), qio_channel_get_name(ioc_));
      return nullptr;
    }
    splitter_.feed(
        std::string_view(buf, static_cast<gsize>(n)),
        [this](std::string_view m) { pending_.emplace_back(m); }, [](monitor::JsonSplitter::Fault) {});
  }
  std::string text = std::move(pending_.front());
  pending_.pop_front();
  g_autoptr(JsonNode) root =
      qcrypto_json_parse(text.c_str(), static_cast<gssize>(text.size()), error);
  if (!root) return nullptr;
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("The QMP server on '%s' sent something other than a JSON object"),
                qio_channel_get_name(ioc_));
    return nullptr;
  }
  return static_cast<JsonNode *>(g_steal_pointer(&root));
}

static gint64 deadline_after(gint64 timeout_ms) {
  return timeout_ms < 0 ? -1 : g_get_monotonic_time() + timeout_ms * 1000;
}

bool QmpClient::handshake(gint64 timeout_ms, GError **error) {
  gint64 deadline = deadline_after(timeout_ms);
  g_autoptr(JsonNode) hello = read_message(deadline, error);
  if (!hello) return false;
  if (!json_object_has_member(json_node_get_object(hello), "QMP")) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("'%s' did not greet with QMP; is it a QMP monitor socket?"),
                qio_channel_get_name(ioc_));
    return false;
  }
  g_autoptr(JsonNode) reply = execute("qmp_capabilities", nullptr, timeout_ms, error);
  if (!reply) return false;
  JsonObject *obj = json_node_get_object(reply);
  if (json_object_has_member(obj, "error")) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL, _("QMP negotiation with '%s' failed: %s"),
                qio_channel_get_name(ioc_),
                json_object_get_string_member_with_default(
                    json_object_get_object_member(obj, "error"), "desc", "?"));
    return false;
  }
  return true;
}

JsonNode *QmpClient::execute(const char *command, JsonObject *args, gint64 timeout_ms,
                             GError **error) {
  gint64 deadline = deadline_after(timeout_ms);
  guint64 id = next_id_++;
  JsonObject *req = json_object_new();
  json_object_set_string_member(req, "execute", command);
  if (args) json_object_set_object_member(req, "arguments", json_object_ref(args));
  json_object_set_int_member(req, "id", static_cast<gint64>(id));
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), req);
  json_object_unref(req);
  g_autofree char *text = json_to_string(node, FALSE);
  if (!write_all(std::string(text) + "\n", error)) return nullptr;
  for (;;) {
    JsonNode *msg = read_message(deadline, error);
    if (!msg) return nullptr;
    JsonObject *obj = json_node_get_object(msg);
    if (json_object_has_member(obj, "event")) {
      events_.push_back(msg);
      continue;
    }
    JsonNode *rid = json_object_get_member(obj, "id");
    if (rid && JSON_NODE_HOLDS_VALUE(rid) && json_node_get_value_type(rid) == G_TYPE_INT64 &&
        static_cast<guint64>(json_node_get_int(rid)) == id)
      return msg;
    /* A reply to something else (a framing error): not ours. */
    json_node_unref(msg);
  }
}

JsonNode *QmpClient::next_event(gint64 timeout_ms, GError **error) {
  if (!events_.empty()) {
    JsonNode *e = events_.front();
    events_.pop_front();
    return e;
  }
  gint64 deadline = deadline_after(timeout_ms);
  for (;;) {
    g_autoptr(GError) local = nullptr;
    JsonNode *msg = read_message(deadline, &local);
    if (!msg) {
      if (!g_error_matches(local, QIO_ERROR, QIO_ERROR_TIMEOUT))
        g_propagate_error(error, g_steal_pointer(&local));
      return nullptr;
    }
    if (json_object_has_member(json_node_get_object(msg), "event")) return msg;
    json_node_unref(msg);
  }
}

}  // namespace qio::tools
