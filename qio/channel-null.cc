#include "config.h"

#include "qio/channel-null.h"
#include "qio/channel-watch.h"

#include <glib/gi18n-lib.h>

struct _QIOChannelNull {
  QIOChannel parent_instance;
  gboolean closed;
};

G_DEFINE_FINAL_TYPE(QIOChannelNull, qio_channel_null, QIO_TYPE_CHANNEL)

static gboolean null_check_open(QIOChannel *ioc, GError **error) {
  if (!QIO_CHANNEL_NULL(ioc)->closed) return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("Channel '%s' is closed"),
              qio_channel_get_name(ioc));
  return FALSE;
}

static gssize null_readv(QIOChannel *ioc, const struct iovec *, gsize, int **, gsize *,
                         GError **error) {
  return null_check_open(ioc, error) ? 0 : -1;
}

static gssize null_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *,
                          gsize, int, GError **error) {
  if (!null_check_open(ioc, error)) return -1;
  gsize total = 0;
  for (gsize i = 0; i < niov; i++) total += iov[i].iov_len;
  return static_cast<gssize>(total);
}

static gboolean null_close(QIOChannel *ioc, GError **error) {
  if (!null_check_open(ioc, error)) return FALSE;
  QIO_CHANNEL_NULL(ioc)->closed = TRUE;
  return TRUE;
}

static gboolean null_set_blocking(QIOChannel *ioc, gboolean, GError **error) {
  return null_check_open(ioc, error);
}

static void qio_channel_null_class_init(QIOChannelNullClass *klass) {
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = null_readv;
  ioc_class->io_writev = null_writev;
  ioc_class->io_close = null_close;
  ioc_class->io_create_watch = qio_channel_create_ready_watch;
  ioc_class->io_set_blocking = null_set_blocking;
}

static void qio_channel_null_init(QIOChannelNull *) {}

QIOChannelNull *qio_channel_null_new(void) {
  return QIO_CHANNEL_NULL(g_object_new(QIO_TYPE_CHANNEL_NULL, nullptr));
}
