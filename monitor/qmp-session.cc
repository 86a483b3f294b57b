#include "config.h"

#include "monitor/qmp-session.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-server.h"
#include "qcrypto/json-parse.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

namespace qio::monitor {

/* A client that keeps the loop busy yields to the others after this many
 * reads, so many clients share the daemon fairly. */
static constexpr int kReadsPerWakeup = 4;

QmpSession::QmpSession(QmpServer &server, QIOChannel *ioc, guint64 id)
    : server_(server), ioc_(QIO_CHANNEL(g_object_ref(ioc))), id_(id),
      splitter_(server.limits().max_message, server.limits().max_depth),
      cancellable_(g_cancellable_new()) {}

QmpSession::~QmpSession() {
  close();
  for (int fd : fds_) g_close(fd, nullptr);
  g_object_unref(cancellable_);
  g_object_unref(ioc_);
}

const char *QmpSession::name() const { return qio_channel_get_name(ioc_); }

void QmpSession::remove_source(guint &id) {
  if (!id) return;
  GSource *source = g_main_context_find_source_by_id(server_.context(), id);
  if (source) g_source_destroy(source);
  id = 0;
}

void QmpSession::start() {
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_set_blocking(ioc_, FALSE, &error)) {
    g_message(_("QMP client '%s': cannot make the channel non-blocking: %s; dropping it"),
              name(), error->message);
    close();
    return;
  }
  g_autoptr(JsonNode) hello = server_.greeting();
  send(qmp_to_line(hello));
  qio::spawn(read_loop(shared_from_this()), server_.context());
}

void QmpSession::close() {
  if (closed_) return;
  closed_ = true;
  g_cancellable_cancel(cancellable_);
  remove_source(write_watch_);
  qio_channel_close(ioc_, nullptr);
  server_.session_closed(this);
}

void QmpSession::close_when_flushed() {
  closing_ = true;
  g_cancellable_cancel(cancellable_);
  if (queued() == 0) close();
}

void QmpSession::send(const std::string &line) {
  if (closed_) return;
  if (queued() + line.size() > server_.limits().max_output) {
    g_message(_("QMP client '%s' does not read its replies (%llu bytes queued); disconnecting it"),
              name(), static_cast<unsigned long long>(queued()));
    close();
    return;
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  }
  out_ += line;
  if (!write_watch_ && flush_some()) watch_output();
}

void QmpSession::watch_output() {
  if (closed_ || write_watch_ || queued() == 0) return;
  write_watch_ = qio_channel_add_watch_full(
      ioc_, static_cast<GIOCondition>(G_IO_OUT | G_IO_HUP | G_IO_ERR), on_writable, this,
      nullptr, server_.context());
}

/* Writes what the channel takes now; false once the session closed. */
bool QmpSession::flush_some() {
  while (queued() > 0) {
    g_autoptr(GError) error = nullptr;
    gssize n = qio_channel_write(ioc_, out_.data() + out_offset_, queued(), &error);
    if (n == QIO_CHANNEL_ERR_BLOCK) return true;
    if (n < 0) {
      g_info("QMP client '%s' went away: %s", name(), error->message);
      close();
      return false;
    }
    out_offset_ += static_cast<gsize>(n);
  }
  if (closing_) {
    close();
    return false;
  }
  return true;
}

gboolean QmpSession::on_writable(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<QmpSession *>(data);
  if (!self->flush_some()) {
    self->write_watch_ = 0;
    return G_SOURCE_REMOVE;
  }
  if (self->queued() > 0) return G_SOURCE_CONTINUE;
  self->write_watch_ = 0;
  return G_SOURCE_REMOVE;
}

/* Frames what was read into the inbox (a TooLarge fault comes last). */
void QmpSession::feed(gsize n) {
  splitter_.feed(
      std::string_view(inbuf_.data(), n),
      [this](std::string_view text) { inbox_.emplace_back(std::string(text)); },
      [this](JsonSplitter::Fault fault) { inbox_.emplace_back(fault); });
}

/* The reply to a framing fault. */
static std::string fault_reply(JsonSplitter::Fault fault) {
  const char *desc = nullptr;
  switch (fault) {
    case JsonSplitter::Fault::TooLarge:
      desc = _("QMP request is larger than the limit; the connection is closed");
      break;
    case JsonSplitter::Fault::TooDeep:
      desc = _("QMP request is nested too deeply; it was ignored");
      break;
    case JsonSplitter::Fault::Unbalanced:
      desc = _("JSON parse error: unexpected closing bracket; it was ignored");
      break;
    case JsonSplitter::Fault::Comment:
      desc = _("JSON parse error: comments are not JSON; the request was ignored");
      break;
  }
  g_autoptr(GError) e = g_error_new_literal(QMP_ERROR, QMP_ERROR_GENERIC, desc);
  g_autoptr(JsonNode) reply = qmp_error_reply(e, nullptr);
  return qmp_to_line(reply);
}

/* The request side, top to bottom: read, frame, dispatch, until the peer
 * closes or the session ends.  Holds the session alive while suspended. */
qio::Task<void> QmpSession::read_loop(std::shared_ptr<QmpSession> self) {
  for (int reads = 1; !self->closed_ && !self->closing_; reads++) {
    g_autoptr(GError) error = nullptr;
    /* Descriptors arrive beside a command that names them (getfd), so a
     * UNIX socket is read with readv_full. */
    bool fd_pass = qio_channel_has_feature(self->ioc_, QIO_CHANNEL_FEATURE_FD_PASS);
    gssize n;
    for (;;) {
      struct iovec iov = {self->inbuf_.data(), self->inbuf_.size()};
      int *fds = nullptr;
      gsize nfds = 0;
      n = qio_channel_readv_full(self->ioc_, &iov, 1, fd_pass ? &fds : nullptr,
                                 fd_pass ? &nfds : nullptr, &error);
      if (nfds > 0) {
        /* Only the latest batch waits for a getfd, as in QEMU: a client
         * sending descriptors nobody claims cannot fill the table. */
        for (int fd : self->fds_) g_close(fd, nullptr);
        self->fds_.assign(fds, fds + nfds);
      }
      g_free(fds);
      if (n != QIO_CHANNEL_ERR_BLOCK) break;
      if (co_await qio::wait_io(self->ioc_, G_IO_IN, nullptr, self->cancellable_) == 0) {
        n = 0; /* cancelled: the session is ending */
        break;
      }
    }
    if (self->closed_ || self->closing_) break;
    if (n <= 0) {
      if (n < 0) g_info("QMP client '%s' went away: %s", self->name(), error->message);
      /* The peer may have half-closed after its last request: answer it
       * before closing. */
      self->close_when_flushed();
      break;
    }
    self->feed(static_cast<gsize>(n));
    while (!self->inbox_.empty() && !self->closed_ && !self->closing_) {
      auto item = std::move(self->inbox_.front());
      self->inbox_.pop_front();
      if (auto *text = std::get_if<std::string>(&item)) {
        co_await self->handle_message(*text);
        continue;
      }
      auto fault = std::get<JsonSplitter::Fault>(item);
      self->send(fault_reply(fault));
      if (fault == JsonSplitter::Fault::TooLarge) {
        g_message(_("QMP client '%s' sent a request over %llu bytes; disconnecting it"),
                  self->name(), static_cast<unsigned long long>(self->server_.limits().max_message));
        self->close_when_flushed();
      }
    }
    /* A client that always has data must still let the others run. */
    if (reads % kReadsPerWakeup == 0) co_await qio::sleep(0);
  }
}

int QmpSession::take_fd() {
  if (fds_.empty()) return -1;
  int fd = fds_.back();
  fds_.pop_back();
  return fd;
}

struct QmpSession::Pending {
  bool done = false;
  std::coroutine_handle<> waiter;
};

bool QmpSession::ReplyWait::await_ready() const noexcept { return pending->done; }

void QmpSession::ReplyWait::await_suspend(std::coroutine_handle<> h) noexcept {
  pending->waiter = h;
}

/* Parses and dispatches one request; the awaitable completes when its
 * reply has been queued (at once, except for asynchronous commands). */
QmpSession::ReplyWait QmpSession::handle_message(const std::string &text) {
  auto pending = std::make_shared<Pending>();
  g_autoptr(GError) error = nullptr;
  /* The splitter framed it; qcrypto_json_parse also guards json-glib's
   * recursion, whatever the splitter made of the quotes. */
  g_autoptr(JsonNode) root =
      qcrypto_json_parse(text.data(), static_cast<gssize>(text.size()), &error);
  if (!root) {
    g_autoptr(GError) e =
        g_error_new(QMP_ERROR, QMP_ERROR_GENERIC, _("JSON parse error: %s"), error->message);
    g_autoptr(JsonNode) reply = qmp_error_reply(e, nullptr);
    send(qmp_to_line(reply));
    pending->done = true;
    return {pending};
  }
  server_.dispatch(*this, root,
                   [self = shared_from_this(), pending](JsonNode *reply) {
                     self->send(qmp_to_line(reply));
                     pending->done = true;
                     if (auto h = std::exchange(pending->waiter, nullptr)) h.resume();
                   });
  return {pending};
}

}  // namespace qio::monitor
