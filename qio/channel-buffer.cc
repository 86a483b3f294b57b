#include "config.h"

#include "qio/channel-buffer.h"
#include "qio/channel-watch.h"
#include "qio/error.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstring>

struct _QIOChannelBuffer {
  QIOChannel parent_instance;
  GByteArray *data;
  gsize offset;
  gboolean closed;
};

G_DEFINE_FINAL_TYPE(QIOChannelBuffer, qio_channel_buffer, QIO_TYPE_CHANNEL)

static gboolean buffer_check_open(QIOChannelBuffer *bioc, GError **error) {
  if (!bioc->closed) return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("Channel '%s' is closed"),
              qio_channel_get_name(QIO_CHANNEL(bioc)));
  return FALSE;
}

static gssize buffer_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **,
                           gsize *, GError **error) {
  auto *bioc = QIO_CHANNEL_BUFFER(ioc);
  if (!buffer_check_open(bioc, error)) return -1;
  gsize total = 0;
  for (gsize i = 0; i < niov && bioc->offset < bioc->data->len; i++) {
    gsize n = std::min<gsize>(iov[i].iov_len, bioc->data->len - bioc->offset);
    memcpy(iov[i].iov_base, bioc->data->data + bioc->offset, n);
    bioc->offset += n;
    total += n;
  }
  return static_cast<gssize>(total);
}

static gssize buffer_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                            const int *, gsize, int, GError **error) {
  auto *bioc = QIO_CHANNEL_BUFFER(ioc);
  if (!buffer_check_open(bioc, error)) return -1;
  gsize total = 0;
  for (gsize i = 0; i < niov; i++) total += iov[i].iov_len;
  if (bioc->offset + total > bioc->data->len)
    g_byte_array_set_size(bioc->data, static_cast<guint>(bioc->offset + total));
  for (gsize i = 0; i < niov; i++) {
    memcpy(bioc->data->data + bioc->offset, iov[i].iov_base, iov[i].iov_len);
    bioc->offset += iov[i].iov_len;
  }
  return static_cast<gssize>(total);
}

static gboolean buffer_close(QIOChannel *ioc, GError **) {
  QIO_CHANNEL_BUFFER(ioc)->closed = TRUE;
  return TRUE;
}

static gboolean buffer_set_blocking(QIOChannel *, gboolean, GError **) { return TRUE; }

static gboolean buffer_shutdown(QIOChannel *ioc, QIOChannelShutdown, GError **) {
  QIO_CHANNEL_BUFFER(ioc)->closed = TRUE;
  return TRUE;
}

static void qio_channel_buffer_finalize(GObject *object) {
  g_byte_array_unref(QIO_CHANNEL_BUFFER(object)->data);
  G_OBJECT_CLASS(qio_channel_buffer_parent_class)->finalize(object);
}

static void qio_channel_buffer_class_init(QIOChannelBufferClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_buffer_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = buffer_readv;
  ioc_class->io_writev = buffer_writev;
  ioc_class->io_close = buffer_close;
  /* Memory is always readable (EOF counts) and writable. */
  ioc_class->io_create_watch = qio_channel_create_ready_watch;
  ioc_class->io_set_blocking = buffer_set_blocking;
  ioc_class->io_shutdown = buffer_shutdown;
}

static void qio_channel_buffer_init(QIOChannelBuffer *bioc) {
  bioc->data = g_byte_array_new();
  qio_channel_set_feature(QIO_CHANNEL(bioc), QIO_CHANNEL_FEATURE_SHUTDOWN);
}

QIOChannelBuffer *qio_channel_buffer_new(gsize capacity) {
  auto *bioc = QIO_CHANNEL_BUFFER(g_object_new(QIO_TYPE_CHANNEL_BUFFER, nullptr));
  g_byte_array_set_size(bioc->data, static_cast<guint>(capacity));
  g_byte_array_set_size(bioc->data, 0);
  return bioc;
}

QIOChannelBuffer *qio_channel_buffer_new_with_data(const void *data, gsize len) {
  auto *bioc = QIO_CHANNEL_BUFFER(g_object_new(QIO_TYPE_CHANNEL_BUFFER, nullptr));
  g_byte_array_append(bioc->data, static_cast<const guint8 *>(data), static_cast<guint>(len));
  return bioc;
}

const guint8 *qio_channel_buffer_get_data(QIOChannelBuffer *bioc, gsize *len) {
  g_return_val_if_fail(QIO_IS_CHANNEL_BUFFER(bioc), nullptr);
  if (len) *len = bioc->data->len;
  return bioc->data->data;
}

gsize qio_channel_buffer_get_offset(QIOChannelBuffer *bioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_BUFFER(bioc), 0);
  return bioc->offset;
}

void qio_channel_buffer_rewind(QIOChannelBuffer *bioc) {
  g_return_if_fail(QIO_IS_CHANNEL_BUFFER(bioc));
  bioc->offset = 0;
}
