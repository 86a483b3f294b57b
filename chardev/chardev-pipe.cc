#include "config.h"

#include "chardev/chardev-pipe.h"
#include "qio/channel-file.h"
#include "qio/error.h"

#include <fcntl.h>
#include <glib/gi18n-lib.h>

namespace qio::chardev {

std::unique_ptr<ChardevPipe> ChardevPipe::create(ChardevOptions &opts, GMainContext *context,
                                                 GError **error) {
  std::unique_ptr<ChardevPipe> self(new ChardevPipe(opts.id(), context));
  self->path_ = opts.take_string("path");
  if (self->path_.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': the pipe backend needs path=PATH (PATH.in and PATH.out, or "
                  "one FIFO PATH)"),
                opts.id().c_str());
    return nullptr;
  }
  return self;
}

bool ChardevPipe::open(GError **error) {
  std::string in = path_ + ".in", out = path_ + ".out";
  /* O_RDWR on a FIFO does not wait for the other side to open it. */
  if (g_file_test(in.c_str(), G_FILE_TEST_EXISTS) &&
      g_file_test(out.c_str(), G_FILE_TEST_EXISTS)) {
    g_autoptr(QIOChannelFile) r = qio_channel_file_new_path(in.c_str(), O_RDWR, 0, error);
    g_autoptr(QIOChannelFile) w = r ? qio_channel_file_new_path(out.c_str(), O_RDWR, 0, error)
                                    : nullptr;
    if (!w) {
      g_prefix_error(error, _("chardev '%s': "), id().c_str());
      return false;
    }
    set_channels(QIO_CHANNEL(r), QIO_CHANNEL(w));
    return true;
  }
  g_autoptr(QIOChannelFile) rw = qio_channel_file_new_path(path_.c_str(), O_RDWR, 0, error);
  if (!rw) {
    g_prefix_error(error, _("chardev '%s': "), id().c_str());
    return false;
  }
  set_channels(QIO_CHANNEL(rw), QIO_CHANNEL(rw));
  return true;
}

}  // namespace qio::chardev
