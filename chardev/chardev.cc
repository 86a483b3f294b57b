#include "config.h"

#include "chardev/chardev.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::chardev {

Chardev::Chardev(std::string id, const char *backend, GMainContext *context)
    : id_(std::move(id)), backend_(backend), context_(context) {}

Chardev::~Chardev() {
  remove_source(read_watch_);
  remove_source(write_watch_);
  g_clear_object(&in_);
  g_clear_object(&out_ioc_);
}

void Chardev::open_async(OpenDone done) {
  GError *error = nullptr;
  done(open(&error) ? nullptr : error);
}

bool Chardev::attach(ChardevFrontend *frontend, GError **error) {
  if (frontend_ && frontend_ != frontend) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Chardev '%s' is already in use by another frontend; create one chardev "
                  "per frontend"),
                id_.c_str());
    return false;
  }
  frontend_ = frontend;
  if (open_) frontend_->event(ChardevEvent::Opened);
  accept_input();
  return true;
}

void Chardev::detach(ChardevFrontend *frontend) {
  if (frontend_ == frontend) frontend_ = nullptr;
}

void Chardev::describe(JsonObject *) const {}

void Chardev::remove_source(guint &id) {
  if (!id) return;
  GSource *src = g_main_context_find_source_by_id(context_, id);
  if (src) g_source_destroy(src);
  id = 0;
}

void Chardev::set_open(bool open) {
  if (open_ == open) return;
  open_ = open;
  if (frontend_) frontend_->event(open ? ChardevEvent::Opened : ChardevEvent::Closed);
}

void Chardev::set_channels(QIOChannel *in, QIOChannel *out) {
  drop_channels();
  in_ = in ? QIO_CHANNEL(g_object_ref(in)) : nullptr;
  out_ioc_ = out ? QIO_CHANNEL(g_object_ref(out)) : nullptr;
  if (in_) qio_channel_set_blocking(in_, FALSE, nullptr);
  if (out_ioc_) qio_channel_set_blocking(out_ioc_, FALSE, nullptr);
  set_open(true);
  watch_input();
}

void Chardev::drop_channels(bool close) {
  remove_source(read_watch_);
  remove_source(write_watch_);
  out_.clear();
  out_offset_ = 0;
  /* A socket shared as input and output is closed once. */
  if (close && in_) qio_channel_close(in_, nullptr);
  if (close && out_ioc_ && out_ioc_ != in_) qio_channel_close(out_ioc_, nullptr);
  g_clear_object(&in_);
  g_clear_object(&out_ioc_);
  set_open(false);
}

void Chardev::hangup() { drop_channels(); }

void Chardev::deliver(std::string_view bytes) {
  if (frontend_) {
    if (!bytes.empty()) frontend_->read(bytes);
    return;
  }
  unclaimed_.append(bytes);
  if (unclaimed_.size() > kMaxUnclaimed) unclaimed_.erase(0, unclaimed_.size() - kMaxUnclaimed);
}

std::string Chardev::take_unclaimed(gsize max) {
  std::string out = unclaimed_.substr(0, max);
  unclaimed_.erase(0, out.size());
  return out;
}

void Chardev::accept_input() {
  if (in_ && !read_watch_) watch_input();
}

void Chardev::watch_input() {
  if (!in_ || read_watch_) return;
  if (frontend_ && frontend_->can_read() == 0) return;
  read_watch_ = qio_channel_add_watch_full(in_, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP),
                                           on_readable, this, nullptr, context_);
}

gboolean Chardev::on_readable(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<Chardev *>(data);
  /* Without a frontend, bytes are read (and only the newest kept) so the
   * peer never stalls. */
  gsize room = self->frontend_ ? self->frontend_->can_read() : self->inbuf_.size();
  if (room == 0) {
    self->read_watch_ = 0;
    return G_SOURCE_REMOVE;
  }
  gsize want = MIN(room, self->inbuf_.size());
  g_autoptr(GError) error = nullptr;
  gssize n = qio_channel_read(self->in_, self->inbuf_.data(), want, &error);
  if (n == QIO_CHANNEL_ERR_BLOCK) return G_SOURCE_CONTINUE;
  if (n <= 0) {
    if (error) g_info(_("chardev '%s': read failed: %s"), self->id_.c_str(), error->message);
    self->read_watch_ = 0;
    self->hangup();
    return G_SOURCE_REMOVE;
  }
  self->filter_input(std::string_view(self->inbuf_.data(), static_cast<gsize>(n)));
  return G_SOURCE_CONTINUE;
}

gsize Chardev::write(std::string_view data) {
  if (!out_ioc_) return data.size();
  gsize room = kMaxQueued > pending_output() ? kMaxQueued - pending_output() : 0;
  gsize take = MIN(room, data.size());
  out_.append(data.substr(0, take));
  if (!write_watch_ && !flush_output()) return take;
  watch_output();
  return take;
}

/* Writes what the channel takes now; false when the channel failed (the
 * chardev has then hung up). */
bool Chardev::flush_output() {
  while (pending_output() > 0) {
    g_autoptr(GError) error = nullptr;
    gssize n = qio_channel_write(out_ioc_, out_.data() + out_offset_, pending_output(), &error);
    if (n == QIO_CHANNEL_ERR_BLOCK) break;
    if (n < 0) {
      g_info(_("chardev '%s': write failed: %s"), id_.c_str(), error->message);
      hangup();
      return false;
    }
    out_offset_ += static_cast<gsize>(n);
  }
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  }
  return true;
}

void Chardev::watch_output() {
  if (!out_ioc_ || write_watch_ || pending_output() == 0) return;
  write_watch_ =
      qio_channel_add_watch_full(out_ioc_, G_IO_OUT, on_writable, this, nullptr, context_);
}

gboolean Chardev::on_writable(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<Chardev *>(data);
  self->write_watch_ = 0;
  if (self->flush_output()) self->watch_output();
  return G_SOURCE_REMOVE;
}

}  // namespace qio::chardev
