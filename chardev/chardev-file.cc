#include "config.h"

#include "chardev/chardev-file.h"
#include "qio/channel-file.h"
#include "qio/error.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include <cerrno>

namespace qio::chardev {

std::unique_ptr<ChardevFile> ChardevFile::create(ChardevOptions &opts, GMainContext *context,
                                                 GError **error) {
  std::unique_ptr<ChardevFile> self(new ChardevFile(opts.id(), context));
  self->path_ = opts.take_string("path");
  if (!opts.take_bool("append", false, &self->append_, error)) return nullptr;
  if (self->path_.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': the file backend needs path=FILE"), opts.id().c_str());
    return nullptr;
  }
  return self;
}

bool ChardevFile::open(GError **error) {
  /* O_NONBLOCK: opening a FIFO nobody reads would otherwise wait for a
   * reader, with qiod's main loop (or its start-up) stuck in open(). */
  int flags = O_WRONLY | O_CREAT | O_NONBLOCK | (append_ ? O_APPEND : O_TRUNC);
  g_autoptr(QIOChannelFile) fioc = qio_channel_file_new_path(path_.c_str(), flags, 0666, error);
  if (!fioc) {
    /* ENXIO: a FIFO opened for writing without waiting, and no reader. */
    GStatBuf st;
    if (g_error_matches(*error, G_IO_ERROR, g_io_error_from_errno(ENXIO)) &&
        g_stat(path_.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
      g_clear_error(error);
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("chardev '%s': the FIFO '%s' has no reader; start its reader first, or "
                    "use the pipe backend"),
                  id().c_str(), path_.c_str());
      return false;
    }
    g_prefix_error(error, _("chardev '%s': "), id().c_str());
    return false;
  }
  set_channels(nullptr, QIO_CHANNEL(fioc));
  return true;
}

}  // namespace qio::chardev
