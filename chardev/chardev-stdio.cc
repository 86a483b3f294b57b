#include "config.h"

#include "chardev/chardev-stdio.h"
#include "qio/channel-file.h"

#include <cerrno>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <unistd.h>

namespace qio::chardev {

ChardevStdio::~ChardevStdio() {
  if (saved_in_flags_ >= 0) fcntl(STDIN_FILENO, F_SETFL, saved_in_flags_);
  if (saved_out_flags_ >= 0) fcntl(STDOUT_FILENO, F_SETFL, saved_out_flags_);
}

bool ChardevStdio::open(GError **error) {
  if (saved_in_flags_ < 0) saved_in_flags_ = fcntl(STDIN_FILENO, F_GETFL);
  if (saved_out_flags_ < 0) saved_out_flags_ = fcntl(STDOUT_FILENO, F_GETFL);
  /* Copies, so that closing the chardev leaves qiod's own streams. */
  int in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  int out = in < 0 ? -1 : fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0) {
    int err = errno;
    if (in >= 0) close(in);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("chardev '%s': cannot use standard input and output: %s"), id().c_str(),
                g_strerror(err));
    return false;
  }
  g_autoptr(QIOChannelFile) r = qio_channel_file_new_fd(in);
  g_autoptr(QIOChannelFile) w = qio_channel_file_new_fd(out);
  set_channels(QIO_CHANNEL(r), QIO_CHANNEL(w));
  return true;
}

}  // namespace qio::chardev
