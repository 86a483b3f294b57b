#include "config.h"

#include "qio/channel-file.h"
#include "qio/channel-watch.h"

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct _QIOChannelFile {
  QIOChannel parent_instance;
  int fd;
  gboolean is_pty;
};

G_DEFINE_FINAL_TYPE(QIOChannelFile, qio_channel_file, QIO_TYPE_CHANNEL)

static gboolean file_check_open(QIOChannelFile *fioc, GError **error) {
  if (fioc->fd >= 0) return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("Channel '%s' is closed"),
              qio_channel_get_name(QIO_CHANNEL(fioc)));
  return FALSE;
}

/* One readv/writev: EINTR retried, EAGAIN is would-block.  Past IOV_MAX
 * entries the kernel refuses the call; a short transfer is fine. */
static gssize file_io(QIOChannel *ioc, bool write, const struct iovec *iov, gsize niov,
                      GError **error) {
  auto *fioc = QIO_CHANNEL_FILE(ioc);
  if (!file_check_open(fioc, error)) return -1;
  int count = static_cast<int>(MIN(niov, IOV_MAX));
  for (;;) {
    ssize_t len = write ? writev(fioc->fd, iov, count) : readv(fioc->fd, iov, count);
    if (len >= 0) return len;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) return QIO_CHANNEL_ERR_BLOCK;
    /* A pty master reports the slave's hang-up as EIO: that is its EOF. */
    if (err == EIO && fioc->is_pty && !write) return 0;
    if (write)
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                  _("Cannot write to '%s': %s"), qio_channel_get_name(ioc), g_strerror(err));
    else
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                  _("Cannot read from '%s': %s"), qio_channel_get_name(ioc), g_strerror(err));
    return -1;
  }
}

static gssize file_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **,
                         gsize *, GError **error) {
  return file_io(ioc, false, iov, niov, error);
}

static gssize file_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *,
                          gsize, int, GError **error) {
  return file_io(ioc, true, iov, niov, error);
}

static gboolean file_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  auto *fioc = QIO_CHANNEL_FILE(ioc);
  if (!file_check_open(fioc, error)) return FALSE;
  if (!g_unix_set_fd_nonblocking(fioc->fd, !enabled, nullptr)) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot change the blocking mode of '%s': %s"), qio_channel_get_name(ioc),
                g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

static gboolean file_close(QIOChannel *ioc, GError **error) {
  auto *fioc = QIO_CHANNEL_FILE(ioc);
  if (!file_check_open(fioc, error)) return FALSE;
  int fd = fioc->fd;
  fioc->fd = -1;
  /* Linux releases the descriptor even when close() fails. */
  if (close(fd) < 0 && errno != EINTR) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), _("Cannot close '%s': %s"),
                qio_channel_get_name(ioc), g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

static GSource *file_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_fd_watch(ioc, QIO_CHANNEL_FILE(ioc)->fd, condition);
}

static void qio_channel_file_finalize(GObject *object) {
  auto *fioc = QIO_CHANNEL_FILE(object);
  if (fioc->fd >= 0) close(fioc->fd);
  G_OBJECT_CLASS(qio_channel_file_parent_class)->finalize(object);
}

static void qio_channel_file_class_init(QIOChannelFileClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_file_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = file_readv;
  ioc_class->io_writev = file_writev;
  ioc_class->io_close = file_close;
  ioc_class->io_create_watch = file_create_watch;
  ioc_class->io_set_blocking = file_set_blocking;

  /* A write to a pipe without reader must be an error, not the death of
   * the process; a handler the program installed is left alone. */
  struct sigaction action;
  if (sigaction(SIGPIPE, nullptr, &action) == 0 && action.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}

static void qio_channel_file_init(QIOChannelFile *fioc) { fioc->fd = -1; }

QIOChannelFile *qio_channel_file_new_fd(int fd) {
  g_return_val_if_fail(fd >= 0, nullptr);
  auto *fioc = QIO_CHANNEL_FILE(g_object_new(QIO_TYPE_CHANNEL_FILE, nullptr));
  fioc->fd = fd;
  g_autofree char *name = g_strdup_printf("fd %d", fd);
  qio_channel_set_name(QIO_CHANNEL(fioc), name);
  return fioc;
}

QIOChannelFile *qio_channel_file_new_path(const char *path, int flags, mode_t mode,
                                          GError **error) {
  g_return_val_if_fail(path != nullptr, nullptr);
  int fd;
  do {
    fd = open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot open file '%s': %s; check the path and its permissions"), path,
                g_strerror(err));
    return nullptr;
  }
  QIOChannelFile *fioc = qio_channel_file_new_fd(fd);
  qio_channel_set_name(QIO_CHANNEL(fioc), path);
  return fioc;
}

gboolean qio_channel_file_new_pipe(QIOChannelFile **reader, QIOChannelFile **writer,
                                   GError **error) {
  g_return_val_if_fail(reader && writer, FALSE);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot create a pipe: %s; raise the limit of open files"),
                g_strerror(err));
    return FALSE;
  }
  *reader = qio_channel_file_new_fd(fds[0]);
  *writer = qio_channel_file_new_fd(fds[1]);
  g_autofree char *rname = g_strdup_printf("pipe %d (read end)", fds[0]);
  g_autofree char *wname = g_strdup_printf("pipe %d (write end)", fds[1]);
  qio_channel_set_name(QIO_CHANNEL(*reader), rname);
  qio_channel_set_name(QIO_CHANNEL(*writer), wname);
  return TRUE;
}

QIOChannelFile *qio_channel_file_new_pty(char **slave_name, GError **error) {
  g_return_val_if_fail(slave_name != nullptr, nullptr);
  const char *step = "posix_openpt";
  char name[256];
  struct termios tio;
  int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) goto fail;
  step = "grantpt";
  if (grantpt(fd) < 0) goto fail;
  step = "unlockpt";
  if (unlockpt(fd) < 0) goto fail;
  step = "ptsname";
  if (ptsname_r(fd, name, sizeof name) != 0) goto fail;
  /* Raw mode: no echo, no line editing, no CR/LF translation, so a serial
   * console's bytes pass unchanged. */
  step = "tcsetattr";
  if (tcgetattr(fd, &tio) < 0) goto fail;
  cfmakeraw(&tio);
  if (tcsetattr(fd, TCSANOW, &tio) < 0) goto fail;
  {
    QIOChannelFile *fioc = qio_channel_file_new_fd(fd);
    fioc->is_pty = TRUE;
    g_autofree char *chan_name = g_strdup_printf("pty %s", name);
    qio_channel_set_name(QIO_CHANNEL(fioc), chan_name);
    *slave_name = g_strdup(name);
    return fioc;
  }

fail:
  int err = errno;
  if (fd >= 0) close(fd);
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
              _("Cannot open a pseudo-terminal (%s): %s; check that /dev/pts is mounted"),
              step, g_strerror(err));
  return nullptr;
}

int qio_channel_file_get_fd(QIOChannelFile *fioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_FILE(fioc), -1);
  return fioc->fd;
}

off_t qio_channel_file_seek(QIOChannelFile *fioc, off_t offset, int whence, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_FILE(fioc), -1);
  if (!file_check_open(fioc, error)) return -1;
  off_t pos = lseek(fioc->fd, offset, whence);
  if (pos < 0) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), _("Cannot seek in '%s': %s"),
                qio_channel_get_name(QIO_CHANNEL(fioc)), g_strerror(err));
  }
  return pos;
}
