#include "config.h"

#include "chardev/monitor-frontend.h"
#include "qio/channel-socket.h"

#include <glib/gi18n-lib.h>

namespace qio::chardev {

namespace {
/* Session output waits while the chardev holds this much unsent. */
constexpr gsize kHighWater = Chardev::kMaxQueued / 2;
constexpr guint kRetryMs = 10;
}  // namespace

std::unique_ptr<MonitorFrontend> MonitorFrontend::attach(monitor::QmpServer &server,
                                                         Chardev &chardev, GError **error) {
  std::unique_ptr<MonitorFrontend> self(new MonitorFrontend(server, chardev));
  if (!chardev.attach(self.get(), error)) return nullptr;
  return self;
}

MonitorFrontend::~MonitorFrontend() {
  chardev_.detach(this);
  end_session();
}

void MonitorFrontend::remove_source(guint &id) {
  if (!id) return;
  GSource *src = g_main_context_find_source_by_id(server_.context(), id);
  if (src) g_source_destroy(src);
  id = 0;
}

void MonitorFrontend::event(ChardevEvent event) {
  /* A break means nothing to QMP; the session goes on. */
  if (event == ChardevEvent::Break) return;
  end_session();
  if (event == ChardevEvent::Opened) start_session();
}

void MonitorFrontend::start_session() {
  QIOChannelSocket *mine = nullptr, *theirs = nullptr;
  g_autoptr(GError) error = nullptr;
  if (!qio_channel_socket_new_pair(&mine, &theirs, &error)) {
    g_warning(_("chardev '%s': cannot start a QMP session: %s"), chardev_.id().c_str(),
              error->message);
    return;
  }
  g_autoptr(QIOChannelSocket) session_end = theirs;
  local_ = QIO_CHANNEL(mine);
  qio_channel_set_name(QIO_CHANNEL(session_end), chardev_.id().c_str());
  qio_channel_set_blocking(local_, FALSE, nullptr);
  if (!server_.add_client(QIO_CHANNEL(session_end))) {
    end_session();
    return;
  }
  watch_session_output();
}

void MonitorFrontend::end_session() {
  remove_source(out_watch_);
  remove_source(in_watch_);
  remove_source(retry_timer_);
  to_session_.clear();
  if (local_) {
    /* The session sees end of file and closes itself. */
    qio_channel_close(local_, nullptr);
    g_clear_object(&local_);
  }
}

void MonitorFrontend::watch_session_output() {
  if (!local_ || out_watch_) return;
  out_watch_ = qio_channel_add_watch_full(local_, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP),
                                          on_session_output, this, nullptr, server_.context());
}

gboolean MonitorFrontend::on_retry(gpointer data) noexcept {
  auto *self = static_cast<MonitorFrontend *>(data);
  self->retry_timer_ = 0;
  self->watch_session_output();
  return G_SOURCE_REMOVE;
}

gboolean MonitorFrontend::on_session_output(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<MonitorFrontend *>(data);
  if (self->chardev_.pending_output() > kHighWater) {
    /* The peer reads slowly: let the chardev drain first. */
    self->out_watch_ = 0;
    GSource *t = g_timeout_source_new(kRetryMs);
    g_source_set_callback(t, on_retry, self, nullptr);
    self->retry_timer_ = g_source_attach(t, self->server_.context());
    g_source_unref(t);
    return G_SOURCE_REMOVE;
  }
  gssize n = qio_channel_read(self->local_, self->buf_.data(), self->buf_.size(), nullptr);
  if (n == QIO_CHANNEL_ERR_BLOCK) return G_SOURCE_CONTINUE;
  if (n <= 0) {
    /* The session ended (quit, or the client limit). */
    self->out_watch_ = 0;
    self->end_session();
    return G_SOURCE_REMOVE;
  }
  self->chardev_.write(std::string_view(self->buf_.data(), static_cast<gsize>(n)));
  return G_SOURCE_CONTINUE;
}

gsize MonitorFrontend::can_read() { return to_session_.empty() ? buf_.size() : 0; }

void MonitorFrontend::read(std::string_view bytes) {
  if (!local_) return;
  to_session_.append(bytes);
  on_session_input(local_, G_IO_OUT, this);
}

gboolean MonitorFrontend::on_session_input(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<MonitorFrontend *>(data);
  while (!self->to_session_.empty()) {
    gssize n = qio_channel_write(self->local_, self->to_session_.data(),
                                 self->to_session_.size(), nullptr);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      if (!self->in_watch_)
        self->in_watch_ = qio_channel_add_watch_full(self->local_, G_IO_OUT, on_session_input,
                                                     self, nullptr, self->server_.context());
      return G_SOURCE_CONTINUE;
    }
    if (n < 0) {
      self->in_watch_ = 0;
      self->end_session();
      return G_SOURCE_REMOVE;
    }
    self->to_session_.erase(0, static_cast<gsize>(n));
  }
  if (self->in_watch_) {
    GSource *src = g_main_context_find_source_by_id(self->server_.context(), self->in_watch_);
    self->in_watch_ = 0;
    if (src) g_source_destroy(src);
  }
  self->chardev_.accept_input();
  return G_SOURCE_REMOVE;
}

}  // namespace qio::chardev
