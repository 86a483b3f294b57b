/*
 * QmpServer: a QMP monitor, wire-compatible with QEMU's, serving clients
 * on any QIOChannel (a UNIX or TCP socket today, a TLS chardev later) from
 * a GMainContext.  Holds the command table, checks argument types before a
 * handler runs, and broadcasts events to every negotiated client.
 */
#pragma once

#include "qio/channel.h"
#include "qio/log-limiter.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qio::monitor {

class QmpSession;

enum class QmpArgType { String, Int, Bool, Number, Object, Array, Any };

struct QmpArg {
  const char *name;
  QmpArgType type;
  bool optional = false;
};

/* Completes an asynchronous command: the "return" value or an error;
 * takes ownership of both.  Called in the server's context. */
using QmpCompletion = std::function<void(JsonNode *result, GError *error)>;

struct QmpCommand {
  std::string name;
  std::vector<QmpArg> args;
  /* Arguments beyond @args are passed through unchecked (object-add takes
   * the new object's properties). */
  bool extra_args = false;
  /* Returns the "return" value (owned), or nullptr with @error set. */
  std::function<JsonNode *(JsonObject *args, GError **error)> handler;
  /* Instead of @handler, for work that must not block the loop: starts it
   * (@args are only valid during the call) and calls @done later.  The
   * client's next request waits for the reply, so replies stay in order. */
  std::function<void(JsonObject *args, QmpCompletion done)> async_handler = nullptr;
};

struct QmpLimits {
  gsize max_message = 1 << 20;   /* bytes in one request */
  guint max_depth = 64;          /* nesting of one request */
  gsize max_output = 8u << 20;   /* queued reply/event bytes per client */
  guint max_clients = 64;
};

class QmpServer {
 public:
  explicit QmpServer(GMainContext *context = nullptr, QmpLimits limits = {});
  ~QmpServer();
  QmpServer(const QmpServer &) = delete;
  QmpServer &operator=(const QmpServer &) = delete;

  void add_command(QmpCommand command);
  std::vector<std::string> command_names() const;
  const QmpLimits &limits() const { return limits_; }
  GMainContext *context() const { return context_; }

  /* Serves a new client on @ioc (made non-blocking; a reference is
   * taken).  Returns false and closes @ioc when the client limit is hit. */
  bool add_client(QIOChannel *ioc);
  gsize client_count() const { return sessions_.size(); }

  /* Sends {"event": @name, "data": @data, "timestamp": ...} to every client
   * past capabilities negotiation; takes ownership of @data (may be null). */
  void emit_event(const char *name, JsonNode *data);

  /* Stops reading from all clients, lets their queued output drain, and
   * calls @done once all are gone or after @timeout_ms. */
  void drain(guint timeout_ms, std::function<void()> done);

  /* Runs one request and calls @reply with the reply (borrowed), at once
   * or, for an asynchronous command, when it completes. */
  void dispatch(QmpSession &session, JsonNode *request, std::function<void(JsonNode *)> reply);
  /* The greeting a new client receives. */
  JsonNode *greeting() const;

  /* The session whose command is running (for handlers that use the
   * descriptors it received); nullptr outside a handler. */
  QmpSession *current_session() const { return current_; }

  /* Called by a session that has closed; destroyed from an idle. */
  void session_closed(QmpSession *session);

 private:
  JsonNode *execute(QmpSession &session, JsonNode *request, const QmpCommand **async,
                    JsonObject **args, JsonNode **id);
  JsonNode *run_command(const QmpCommand &command, JsonObject *args, GError **error);
  void check_drained();

  GMainContext *context_;
  QmpLimits limits_;
  std::map<std::string, QmpCommand> commands_;
  /* Shared with each session's reader coroutine, which may outlive the
   * server's hold while it wakes from cancellation. */
  std::map<QmpSession *, std::shared_ptr<QmpSession>> sessions_;
  std::vector<std::shared_ptr<QmpSession>> dead_;
  guint reap_source_ = 0;
  guint64 next_session_id_ = 1;
  qio::LogLimiter refusal_log_; /* refused clients: a line a second */
  std::function<void()> drained_;
  guint drain_timer_ = 0;
  QmpSession *current_ = nullptr;
};

/* Serialises @node as one compact line terminated by CRLF, as QEMU does. */
std::string qmp_to_line(JsonNode *node);
/* {}, the return value of commands that have nothing to report. */
JsonNode *qmp_empty_object();
/* A node holding @obj / @arr; the caller's reference moves into it. */
JsonNode *qmp_take_object(JsonObject *obj);
JsonNode *qmp_take_array(JsonArray *arr);
/* {"error": {"class": ..., "desc": ...}} with @id (borrowed, may be null). */
JsonNode *qmp_error_reply(const GError *error, JsonNode *id);

}  // namespace qio::monitor
