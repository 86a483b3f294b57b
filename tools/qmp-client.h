/*
 * QmpClient: a synchronous QMP client over any QIOChannel, for qio-ctl.
 * Reads with a deadline (a private main context waits on the channel),
 * keeps events that arrive while waiting for a reply.
 */
#pragma once

#include "monitor/json-splitter.h"
#include "qio/channel.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <deque>
#include <string>

namespace qio::tools {

class QmpClient {
 public:
  /* Takes a reference on @ioc and makes it non-blocking. */
  explicit QmpClient(QIOChannel *ioc);
  ~QmpClient();
  QmpClient(const QmpClient &) = delete;
  QmpClient &operator=(const QmpClient &) = delete;

  /* Reads the greeting and negotiates capabilities. */
  bool handshake(gint64 timeout_ms, GError **error);
  /* Runs @command; returns the whole reply object ("return" or "error"),
   * or nullptr on a transport failure or timeout. */
  JsonNode *execute(const char *command, JsonObject *args, gint64 timeout_ms, GError **error);
  /* The next event (queued or new); nullptr on timeout (no error set) or
   * failure.  @timeout_ms < 0 waits forever. */
  JsonNode *next_event(gint64 timeout_ms, GError **error);

 private:
  JsonNode *read_message(gint64 deadline, GError **error);
  bool write_all(const std::string &text, GError **error);

  QIOChannel *ioc_;
  GMainContext *context_;
  monitor::JsonSplitter splitter_;
  std::deque<std::string> pending_;
  std::deque<JsonNode *> events_;
  guint64 next_id_ = 1;
};

}  // namespace qio::tools
