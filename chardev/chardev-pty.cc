#include "config.h"

#include "chardev/chardev-pty.h"

#include <glib/gi18n-lib.h>

namespace qio::chardev {

ChardevPty::~ChardevPty() {
  if (poll_timer_) {
    GSource *src = g_main_context_find_source_by_id(context(), poll_timer_);
    if (src) g_source_destroy(src);
  }
  drop_channels();
  g_clear_object(&master_);
}

bool ChardevPty::open(GError **error) {
  char *name = nullptr;
  master_ = qio_channel_file_new_pty(&name, error);
  if (!master_) {
    g_prefix_error(error, _("chardev '%s': "), id().c_str());
    return false;
  }
  slave_ = name;
  g_free(name);
  g_message(_("chardev '%s': redirected to %s"), id().c_str(), slave_.c_str());
  set_channels(QIO_CHANNEL(master_), QIO_CHANNEL(master_));
  return true;
}

void ChardevPty::hangup() {
  /* The slave side was closed: keep the master, stop reading, look again
   * in a second. */
  drop_channels(false);
  if (poll_timer_) return;
  GSource *t = g_timeout_source_new(1000);
  g_source_set_callback(t, on_poll, this, nullptr);
  poll_timer_ = g_source_attach(t, context());
  g_source_unref(t);
}

gboolean ChardevPty::on_poll(gpointer data) noexcept {
  auto *self = static_cast<ChardevPty *>(data);
  self->poll_timer_ = 0;
  self->set_channels(QIO_CHANNEL(self->master_), QIO_CHANNEL(self->master_));
  return G_SOURCE_REMOVE;
}

}  // namespace qio::chardev
