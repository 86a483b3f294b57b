/*
 * QmpSession: one QMP client of a QmpServer.  A coroutine on the server's
 * main context reads requests through a JsonSplitter and dispatches them;
 * replies and events go to a capped output queue that a channel watch
 * drains (a client that stops reading is disconnected once the cap is
 * hit).  The output side stays a watch because events are queued at any
 * time, not in the order of the request loop.
 */
#pragma once

#include "monitor/json-splitter.h"
#include "qio/channel.h"
#include "qio/coroutine.h"

#include <glib.h>

#include <array>
#include <coroutine>
#include <deque>
#include <memory>
#include <string>
#include <vector>
#include <variant>

namespace qio::monitor {

class QmpServer;

class QmpSession : public std::enable_shared_from_this<QmpSession> {
 public:
  QmpSession(QmpServer &server, QIOChannel *ioc, guint64 id);
  ~QmpSession();
  QmpSession(const QmpSession &) = delete;
  QmpSession &operator=(const QmpSession &) = delete;

  /* Sends the greeting and starts reading. */
  void start();
  /* Queues one serialised message; disconnects when over the cap. */
  void send(const std::string &line);
  /* Stop reading; close once the output queue is empty. */
  void close_when_flushed();
  void close();

  bool negotiated() const { return negotiated_; }
  void set_negotiated() { negotiated_ = true; }
  bool closed() const { return closed_; }
  guint64 id() const { return id_; }
  const char *name() const;
  gsize queued() const { return out_.size() - out_offset_; }
  /* The descriptor received (SCM_RIGHTS) most recently and not yet taken,
   * owned by the caller; -1 if none. */
  int take_fd();

 private:
  static gboolean on_writable(QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept;
  static qio::Task<void> read_loop(std::shared_ptr<QmpSession> self);
  void feed(gsize n);
  bool flush_some();
  struct Pending;
  struct ReplyWait {
    std::shared_ptr<Pending> pending;
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h) noexcept;
    void await_resume() const noexcept {}
  };
  ReplyWait handle_message(const std::string &text);
  void remove_source(guint &id);
  void watch_output();

  QmpServer &server_;
  QIOChannel *ioc_;
  guint64 id_;
  JsonSplitter splitter_;
  std::string out_;
  gsize out_offset_ = 0;
  GCancellable *cancellable_; /* wakes and ends the reader */
  guint write_watch_ = 0;
  bool negotiated_ = false;
  bool closing_ = false;
  bool closed_ = false;
  std::array<char, 65536> inbuf_;
  std::vector<int> fds_;
  /* Framed requests and framing faults, in stream order. */
  std::deque<std::variant<std::string, JsonSplitter::Fault>> inbox_;
};

}  // namespace qio::monitor
