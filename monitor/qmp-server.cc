#include "config.h"

#include "monitor/qmp-server.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-session.h"

#include <glib/gi18n-lib.h>

#include <cstdio>

namespace qio::monitor {

std::string qmp_to_line(JsonNode *node) {
  g_autofree char *text = json_to_string(node, FALSE);
  /* QMP is UTF-8, but a peer's words (a migration destination's refusal,
   * an NBD server's message) may not be; json-glib passes them through.
   * Only bytes inside strings can be invalid, so the JSON stays intact. */
  if (!g_utf8_validate(text, -1, nullptr)) {
    char *valid = g_utf8_make_valid(text, -1);
    g_free(text);
    text = valid;
  }
  std::string line(text);
  line += "\r\n";
  return line;
}

JsonNode *qmp_take_object(JsonObject *obj) {
  JsonNode *node = json_node_init_object(json_node_alloc(), obj);
  json_object_unref(obj);
  return node;
}

JsonNode *qmp_take_array(JsonArray *arr) {
  JsonNode *node = json_node_init_array(json_node_alloc(), arr);
  json_array_unref(arr);
  return node;
}

JsonNode *qmp_empty_object() { return qmp_take_object(json_object_new()); }

JsonNode *qmp_error_reply(const GError *error, JsonNode *id) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "class");
  json_builder_add_string_value(b, qmp_error_class_name(error));
  json_builder_set_member_name(b, "desc");
  json_builder_add_string_value(b, error->message);
  json_builder_end_object(b);
  if (id) {
    json_builder_set_member_name(b, "id");
    json_builder_add_value(b, json_node_copy(id));
  }
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

static JsonNode *return_reply(JsonNode *value, JsonNode *id) {
  JsonObject *obj = json_object_new();
  json_object_set_member(obj, "return", value);
  if (id) json_object_set_member(obj, "id", json_node_copy(id));
  return qmp_take_object(obj);
}

QmpServer::QmpServer(GMainContext *context, QmpLimits limits)
    : context_(context ? g_main_context_ref(context) : g_main_context_ref_thread_default()),
      limits_(limits) {}

static void destroy_source(GMainContext *context, guint &id) {
  if (!id) return;
  GSource *source = g_main_context_find_source_by_id(context, id);
  if (source) g_source_destroy(source);
  id = 0;
}

QmpServer::~QmpServer() {
  std::vector<QmpSession *> open;
  for (auto &entry : sessions_) open.push_back(entry.first);
  for (QmpSession *s : open) s->close();
  dead_.clear();
  destroy_source(context_, reap_source_);
  destroy_source(context_, drain_timer_);
  g_main_context_unref(context_);
}

void QmpServer::add_command(QmpCommand command) {
  std::string name = command.name;
  commands_[name] = std::move(command);
}

std::vector<std::string> QmpServer::command_names() const {
  std::vector<std::string> names{"qmp_capabilities"};
  for (const auto &entry : commands_) names.push_back(entry.first);
  return names;
}

bool QmpServer::add_client(QIOChannel *ioc) {
  if (sessions_.size() >= limits_.max_clients) {
    if (refusal_log_.allow()) {
      g_message(_("QMP: refusing client '%s': already %u clients connected"),
                qio_channel_get_name(ioc), limits_.max_clients);
    }
    qio_channel_close(ioc, nullptr);
    return false;
  }
  auto session = std::make_shared<QmpSession>(*this, ioc, next_session_id_++);
  QmpSession *s = session.get();
  sessions_[s] = std::move(session);
  s->start();
  return true;
}

void QmpServer::session_closed(QmpSession *session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  dead_.push_back(std::move(it->second));
  sessions_.erase(it);
  /* The session may be inside its own watch callback: free it later. */
  if (!reap_source_) {
    GSource *idle = g_idle_source_new();
    g_source_set_callback(
        idle,
        [](gpointer data) noexcept -> gboolean {
          auto *self = static_cast<QmpServer *>(data);
          self->reap_source_ = 0;
          self->dead_.clear();
          self->check_drained();
          return G_SOURCE_REMOVE;
        },
        this, nullptr);
    reap_source_ = g_source_attach(idle, context_);
    g_source_unref(idle);
  }
}

void QmpServer::emit_event(const char *name, JsonNode *data) {
  gint64 now = g_get_real_time();
  JsonObject *obj = json_object_new();
  json_object_set_string_member(obj, "event", name);
  if (data) json_object_set_member(obj, "data", data);
  JsonObject *ts = json_object_new();
  json_object_set_int_member(ts, "seconds", now / G_USEC_PER_SEC);
  json_object_set_int_member(ts, "microseconds", now % G_USEC_PER_SEC);
  json_object_set_object_member(obj, "timestamp", ts);
  g_autoptr(JsonNode) node = qmp_take_object(obj);
  std::string line = qmp_to_line(node);
  std::vector<QmpSession *> targets;
  for (auto &entry : sessions_)
    if (entry.first->negotiated()) targets.push_back(entry.first);
  for (QmpSession *s : targets) s->send(line);
}

void QmpServer::drain(guint timeout_ms, std::function<void()> done) {
  drained_ = std::move(done);
  GSource *timer = g_timeout_source_new(timeout_ms);
  g_source_set_callback(
      timer,
      [](gpointer data) noexcept -> gboolean {
        auto *self = static_cast<QmpServer *>(data);
        self->drain_timer_ = 0;
        std::vector<QmpSession *> open;
        for (auto &entry : self->sessions_) open.push_back(entry.first);
        for (QmpSession *s : open) s->close();
        self->check_drained();
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
  drain_timer_ = g_source_attach(timer, context_);
  g_source_unref(timer);
  std::vector<QmpSession *> open;
  for (auto &entry : sessions_) open.push_back(entry.first);
  for (QmpSession *s : open) s->close_when_flushed();
  check_drained();
}

void QmpServer::check_drained() {
  if (!drained_ || !sessions_.empty()) return;
  destroy_source(context_, drain_timer_);
  auto done = std::move(drained_);
  drained_ = nullptr;
  done();
}

JsonNode *QmpServer::greeting() const {
  unsigned major = 0, minor = 0, micro = 0;
  sscanf(PACKAGE_VERSION, "%u.%u.%u", &major, &minor, &micro);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "QMP");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "version");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "qemu");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "major");
  json_builder_add_int_value(b, major);
  json_builder_set_member_name(b, "minor");
  json_builder_add_int_value(b, minor);
  json_builder_set_member_name(b, "micro");
  json_builder_add_int_value(b, micro);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "package");
  json_builder_add_string_value(b, PACKAGE_STRING);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "capabilities");
  json_builder_begin_array(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

static const char *type_name(QmpArgType type) {
  switch (type) {
    case QmpArgType::String: return "string";
    case QmpArgType::Int: return "int";
    case QmpArgType::Bool: return "bool";
    case QmpArgType::Number: return "number";
    case QmpArgType::Object: return "object";
    case QmpArgType::Array: return "array";
    case QmpArgType::Any: return "any";
  }
  return "any";
}

static bool type_matches(JsonNode *node, QmpArgType type) {
  GType vt = JSON_NODE_HOLDS_VALUE(node) ? json_node_get_value_type(node) : G_TYPE_INVALID;
  switch (type) {
    case QmpArgType::String: return vt == G_TYPE_STRING;
    case QmpArgType::Int: return vt == G_TYPE_INT64;
    case QmpArgType::Bool: return vt == G_TYPE_BOOLEAN;
    case QmpArgType::Number: return vt == G_TYPE_INT64 || vt == G_TYPE_DOUBLE;
    case QmpArgType::Object: return JSON_NODE_HOLDS_OBJECT(node);
    case QmpArgType::Array: return JSON_NODE_HOLDS_ARRAY(node);
    case QmpArgType::Any: return true;
  }
  return false;
}

static bool check_args(const std::string &command, const std::vector<QmpArg> &specs,
                       bool extra_args, JsonObject *args, GError **error) {
  g_autoptr(GList) members = json_object_get_members(args);
  for (GList *l = members; l; l = l->next) {
    auto *name = static_cast<const char *>(l->data);
    const QmpArg *spec = nullptr;
    for (const auto &s : specs)
      if (g_str_equal(s.name, name)) spec = &s;
    if (!spec) {
      if (extra_args) continue;
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Parameter '%s' is unexpected for command '%s'"), name, command.c_str());
      return false;
    }
    if (!type_matches(json_object_get_member(args, name), spec->type)) {
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Invalid parameter type for '%s', expected: %s"), name,
                  type_name(spec->type));
      return false;
    }
  }
  for (const auto &s : specs) {
    if (!s.optional && !json_object_has_member(args, s.name)) {
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Parameter '%s' is missing for command '%s'"), s.name, command.c_str());
      return false;
    }
  }
  return true;
}

static JsonNode *negotiate(QmpSession &session, JsonObject *args, GError **error) {
  static const std::vector<QmpArg> specs{{"enable", QmpArgType::Array, true}};
  if (!check_args("qmp_capabilities", specs, false, args, error)) return nullptr;
  if (json_object_has_member(args, "enable")) {
    JsonArray *caps = json_object_get_array_member(args, "enable");
    for (guint i = 0; i < json_array_get_length(caps); i++) {
      JsonNode *cap = json_array_get_element(caps, i);
      const char *name = JSON_NODE_HOLDS_VALUE(cap) &&
                                 json_node_get_value_type(cap) == G_TYPE_STRING
                             ? json_node_get_string(cap)
                             : "?";
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Capability '%s' is not available; qiod offers none"), name);
      return nullptr;
    }
  }
  session.set_negotiated();
  return qmp_empty_object();
}

void QmpServer::dispatch(QmpSession &session, JsonNode *request,
                         std::function<void(JsonNode *)> reply) {
  const QmpCommand *async = nullptr;
  JsonObject *args = nullptr;
  JsonNode *id = nullptr;
  g_autoptr(JsonNode) now = execute(session, request, &async, &args, &id);
  if (now) {
    reply(now);
    return;
  }
  JsonNode *id_copy = id ? json_node_copy(id) : nullptr;
  g_autoptr(JsonObject) empty = json_object_new();
  async->async_handler(args ? args : empty, [reply = std::move(reply), id_copy](JsonNode *result, GError *error) {
    g_autoptr(JsonNode) r = result ? return_reply(result, id_copy) : qmp_error_reply(error, id_copy);
    if (error) g_error_free(error);
    if (id_copy) json_node_unref(id_copy);
    reply(r);
  });
}

/* The reply to @request, or nullptr when it started an asynchronous
 * command (@async, with its @args and the request's @id). */
JsonNode *QmpServer::execute(QmpSession &session, JsonNode *request, const QmpCommand **async,
                             JsonObject **args_out, JsonNode **id_out) {
  g_autoptr(GError) error = nullptr;
  if (!request || !JSON_NODE_HOLDS_OBJECT(request)) {
    error = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC,
                                _("QMP input must be a JSON object"));
    return qmp_error_reply(error, nullptr);
  }
  JsonObject *obj = json_node_get_object(request);
  JsonNode *id = json_object_get_member(obj, "id");
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    auto *name = static_cast<const char *>(l->data);
    if (!g_str_equal(name, "execute") && !g_str_equal(name, "arguments") &&
        !g_str_equal(name, "id")) {
      error = g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, _("QMP input member '%s' is unexpected"),
                          name);
      return qmp_error_reply(error, id);
    }
  }
  JsonNode *execute = json_object_get_member(obj, "execute");
  if (!execute) {
    error = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC,
                                _("QMP input lacks member 'execute'"));
    return qmp_error_reply(error, id);
  }
  if (!type_matches(execute, QmpArgType::String)) {
    error = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC,
                                _("QMP input member 'execute' must be a string"));
    return qmp_error_reply(error, id);
  }
  JsonNode *args_node = json_object_get_member(obj, "arguments");
  if (args_node && !JSON_NODE_HOLDS_OBJECT(args_node)) {
    error = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC,
                                _("QMP input member 'arguments' must be an object"));
    return qmp_error_reply(error, id);
  }
  g_autoptr(JsonObject) empty = json_object_new();
  JsonObject *args = args_node ? json_node_get_object(args_node) : empty;
  const char *name = json_node_get_string(execute);

  JsonNode *result = nullptr;
  if (g_str_equal(name, "qmp_capabilities")) {
    if (session.negotiated())
      error = g_error_new_literal(QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                                  _("Capabilities negotiation is already complete, command ignored"));
    else
      result = negotiate(session, args, &error);
  } else if (!session.negotiated()) {
    error = g_error_new_literal(QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                                _("Expecting capabilities negotiation with 'qmp_capabilities'"));
  } else {
    auto it = commands_.find(name);
    if (it == commands_.end()) {
      error = g_error_new(QMP_ERROR, QMP_ERROR_COMMAND_NOT_FOUND,
                          _("The command %s has not been found; query-commands lists them"),
                          name);
    } else if (it->second.async_handler) {
      const QmpCommand &command = it->second;
      if (check_args(command.name, command.args, command.extra_args, args, &error)) {
        *async = &command;
        /* Not the local empty object: it dies with this frame. */
        *args_out = args_node ? args : nullptr;
        *id_out = id;
        return nullptr;
      }
    } else {
      current_ = &session;
      result = run_command(it->second, args, &error);
      current_ = nullptr;
    }
  }
  if (!result) return qmp_error_reply(error, id);
  return return_reply(result, id);
}

JsonNode *QmpServer::run_command(const QmpCommand &command, JsonObject *args, GError **error) {
  if (!check_args(command.name, command.args, command.extra_args, args, error)) return nullptr;
  JsonNode *result = command.handler(args, error);
  g_return_val_if_fail(result || (error && *error), nullptr);
  return result;
}

}  // namespace qio::monitor
