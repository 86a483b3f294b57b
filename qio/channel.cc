#include "config.h"

#include "qio/channel.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace {

struct QIOChannelPrivate {
  guint features;
  char *name;
};

}  // namespace

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(QIOChannel, qio_channel, G_TYPE_OBJECT)

static void qio_channel_finalize(GObject *object) {
  auto *priv = static_cast<QIOChannelPrivate *>(
      qio_channel_get_instance_private(QIO_CHANNEL(object)));
  g_free(priv->name);
  G_OBJECT_CLASS(qio_channel_parent_class)->finalize(object);
}

static void qio_channel_class_init(QIOChannelClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_finalize;
}

static void qio_channel_init(QIOChannel *) {}

static QIOChannelPrivate *channel_priv(QIOChannel *ioc) {
  return static_cast<QIOChannelPrivate *>(qio_channel_get_instance_private(ioc));
}

gboolean qio_channel_has_feature(QIOChannel *ioc, QIOChannelFeature feature) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), FALSE);
  return (channel_priv(ioc)->features & feature) != 0;
}

void qio_channel_set_feature(QIOChannel *ioc, QIOChannelFeature feature) {
  g_return_if_fail(QIO_IS_CHANNEL(ioc));
  channel_priv(ioc)->features |= feature;
}

void qio_channel_set_name(QIOChannel *ioc, const char *name) {
  g_return_if_fail(QIO_IS_CHANNEL(ioc));
  QIOChannelPrivate *priv = channel_priv(ioc);
  g_free(priv->name);
  priv->name = g_strdup(name);
}

const char *qio_channel_get_name(QIOChannel *ioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), nullptr);
  const char *name = channel_priv(ioc)->name;
  return name ? name : G_OBJECT_TYPE_NAME(ioc);
}

gssize qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                              int **fds, gsize *nfds, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), -1);
  if ((fds || nfds) && !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' cannot receive file descriptors"),
                qio_channel_get_name(ioc));
    return -1;
  }
  return QIO_CHANNEL_GET_CLASS(ioc)->io_readv(ioc, iov, niov, fds, nfds, error);
}

gssize qio_channel_writev_full(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                               const int *fds, gsize nfds, int flags, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), -1);
  if (nfds && !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' cannot send file descriptors"), qio_channel_get_name(ioc));
    return -1;
  }
  if ((flags & QIO_CHANNEL_WRITE_FLAG_ZERO_COPY) &&
      !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' cannot send without copying (zero-copy); "
                  "write without the zero-copy flag"),
                qio_channel_get_name(ioc));
    return -1;
  }
  if ((flags & QIO_CHANNEL_WRITE_FLAG_DONTWAIT) &&
      !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_WRITE_DONTWAIT)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' cannot be told not to wait for one write; "
                  "make it non-blocking instead"),
                qio_channel_get_name(ioc));
    return -1;
  }
  return QIO_CHANNEL_GET_CLASS(ioc)->io_writev(ioc, iov, niov, fds, nfds, flags, error);
}

gssize qio_channel_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                         GError **error) {
  return qio_channel_readv_full(ioc, iov, niov, nullptr, nullptr, error);
}

gssize qio_channel_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                          GError **error) {
  return qio_channel_writev_full(ioc, iov, niov, nullptr, 0, 0, error);
}

gssize qio_channel_read(QIOChannel *ioc, void *buf, gsize len, GError **error) {
  struct iovec iov = {buf, len};
  return qio_channel_readv_full(ioc, &iov, 1, nullptr, nullptr, error);
}

gssize qio_channel_write(QIOChannel *ioc, const void *buf, gsize len, GError **error) {
  struct iovec iov = {const_cast<void *>(buf), len};
  return qio_channel_writev_full(ioc, &iov, 1, nullptr, 0, 0, error);
}

namespace {

/* A private, advancing copy of the caller's iovec array: the *_all loops
 * consume it without touching the caller's. Small arrays stay on the stack. */
class IovCursor {
 public:
  IovCursor(const struct iovec *iov, gsize niov) {
    if (niov <= kInline) {
      std::copy(iov, iov + niov, inline_);
      data_ = inline_;
    } else {
      heap_.assign(iov, iov + niov);
      data_ = heap_.data();
    }
    end_ = data_ + niov;
    skip_empty();
  }
  bool done() const { return data_ == end_; }
  const struct iovec *iov() const { return data_; }
  gsize niov() const { return static_cast<gsize>(end_ - data_); }
  void advance(gsize bytes) {
    while (bytes > 0 && data_ != end_) {
      gsize step = std::min(bytes, data_->iov_len);
      data_->iov_base = static_cast<char *>(data_->iov_base) + step;
      data_->iov_len -= step;
      bytes -= step;
      skip_empty();
    }
  }

 private:
  void skip_empty() {
    while (data_ != end_ && data_->iov_len == 0) ++data_;
  }
  static constexpr gsize kInline = 16;
  struct iovec inline_[kInline];
  std::vector<struct iovec> heap_;
  struct iovec *data_;
  struct iovec *end_;
};

void close_fds(int *fds, gsize nfds) {
  for (gsize i = 0; i < nfds; i++) close(fds[i]);
}

}  // namespace

int qio_channel_readv_full_all_eof(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                   int **fds, gsize *nfds, GError **error) {
  IovCursor cursor(iov, niov);
  bool partial = false;
  int *got_fds = nullptr;
  gsize got_nfds = 0;
  if (fds) *fds = nullptr;
  if (nfds) *nfds = 0;

  while (!cursor.done()) {
    int *new_fds = nullptr;
    gsize new_nfds = 0;
    gssize len = qio_channel_readv_full(ioc, cursor.iov(), cursor.niov(),
                                        (fds && !got_fds) ? &new_fds : nullptr,
                                        (fds && !got_fds) ? &new_nfds : nullptr, error);
    if (len == QIO_CHANNEL_ERR_BLOCK) {
      qio_channel_wait(ioc, G_IO_IN);
      continue;
    }
    if (len < 0) goto fail;
    if (new_nfds) {
      got_fds = new_fds;
      got_nfds = new_nfds;
    } else {
      g_free(new_fds);
    }
    if (len == 0) {
      if (!partial && !got_fds) return 0;
      g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                  _("Channel '%s' was closed by the peer in the middle of a message"),
                  qio_channel_get_name(ioc));
      goto fail;
    }
    partial = true;
    cursor.advance(static_cast<gsize>(len));
  }
  if (fds) {
    *fds = got_fds;
    *nfds = got_nfds;
  }
  return 1;

fail:
  close_fds(got_fds, got_nfds);
  g_free(got_fds);
  return -1;
}

int qio_channel_readv_all_eof(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                              GError **error) {
  return qio_channel_readv_full_all_eof(ioc, iov, niov, nullptr, nullptr, error);
}

gboolean qio_channel_readv_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                    int **fds, gsize *nfds, GError **error) {
  int ret = qio_channel_readv_full_all_eof(ioc, iov, niov, fds, nfds, error);
  if (ret == 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                _("Channel '%s' was closed by the peer before a message arrived"),
                qio_channel_get_name(ioc));
  }
  return ret == 1;
}

gboolean qio_channel_readv_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                               GError **error) {
  return qio_channel_readv_full_all(ioc, iov, niov, nullptr, nullptr, error);
}

gboolean qio_channel_read_all(QIOChannel *ioc, void *buf, gsize len, GError **error) {
  struct iovec iov = {buf, len};
  return qio_channel_readv_all(ioc, &iov, 1, error);
}

gboolean qio_channel_writev_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                     const int *fds, gsize nfds, int flags,
                                     GError **error) {
  IovCursor cursor(iov, niov);
  while (!cursor.done() || nfds) {
    gssize len = qio_channel_writev_full(ioc, cursor.iov(), cursor.niov(), fds, nfds,
                                         flags, error);
    if (len == QIO_CHANNEL_ERR_BLOCK) {
      qio_channel_wait(ioc, G_IO_OUT);
      continue;
    }
    if (len < 0) return FALSE;
    /* Descriptors travel with the first byte only. */
    fds = nullptr;
    nfds = 0;
    cursor.advance(static_cast<gsize>(len));
  }
  return TRUE;
}

gboolean qio_channel_writev_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                GError **error) {
  return qio_channel_writev_full_all(ioc, iov, niov, nullptr, 0, 0, error);
}

gboolean qio_channel_write_all(QIOChannel *ioc, const void *buf, gsize len, GError **error) {
  struct iovec iov = {const_cast<void *>(buf), len};
  return qio_channel_writev_all(ioc, &iov, 1, error);
}

gboolean qio_channel_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), FALSE);
  return QIO_CHANNEL_GET_CLASS(ioc)->io_set_blocking(ioc, enabled, error);
}

gboolean qio_channel_close(QIOChannel *ioc, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), FALSE);
  return QIO_CHANNEL_GET_CLASS(ioc)->io_close(ioc, error);
}

gboolean qio_channel_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), FALSE);
  QIOChannelClass *klass = QIO_CHANNEL_GET_CLASS(ioc);
  if (!klass->io_shutdown) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' does not support shutdown"), qio_channel_get_name(ioc));
    return FALSE;
  }
  return klass->io_shutdown(ioc, how, error);
}

void qio_channel_set_delay(QIOChannel *ioc, gboolean enabled) {
  g_return_if_fail(QIO_IS_CHANNEL(ioc));
  QIOChannelClass *klass = QIO_CHANNEL_GET_CLASS(ioc);
  if (klass->io_set_delay) klass->io_set_delay(ioc, enabled);
}

void qio_channel_set_cork(QIOChannel *ioc, gboolean enabled) {
  g_return_if_fail(QIO_IS_CHANNEL(ioc));
  QIOChannelClass *klass = QIO_CHANNEL_GET_CLASS(ioc);
  if (klass->io_set_cork) klass->io_set_cork(ioc, enabled);
}

void qio_channel_set_read_low_water(QIOChannel *ioc, gsize bytes) {
  g_return_if_fail(QIO_IS_CHANNEL(ioc));
  QIOChannelClass *klass = QIO_CHANNEL_GET_CLASS(ioc);
  if (klass->io_set_read_low_water) klass->io_set_read_low_water(ioc, bytes);
}

int qio_channel_flush(QIOChannel *ioc, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), -1);
  QIOChannelClass *klass = QIO_CHANNEL_GET_CLASS(ioc);
  /* Only zero-copy writes need flushing; other channels are always done. */
  if (!klass->io_flush ||
      !qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY))
    return 0;
  return klass->io_flush(ioc, error);
}

GSource *qio_channel_create_watch(QIOChannel *ioc, GIOCondition condition) {
  g_return_val_if_fail(QIO_IS_CHANNEL(ioc), nullptr);
  GSource *source = QIO_CHANNEL_GET_CLASS(ioc)->io_create_watch(ioc, condition);
  g_source_set_name(source, qio_channel_get_name(ioc));
  return source;
}

guint qio_channel_add_watch_full(QIOChannel *ioc, GIOCondition condition,
                                  QIOChannelFunc func, gpointer user_data,
                                  GDestroyNotify notify, GMainContext *context) {
  GSource *source = qio_channel_create_watch(ioc, condition);
  g_source_set_callback(source, G_SOURCE_FUNC(func), user_data, notify);
  guint id = g_source_attach(source, context);
  g_source_unref(source);
  return id;
}

guint qio_channel_add_watch(QIOChannel *ioc, GIOCondition condition, QIOChannelFunc func,
                            gpointer user_data, GDestroyNotify notify) {
  return qio_channel_add_watch_full(ioc, condition, func, user_data, notify, nullptr);
}

void qio_channel_wait(QIOChannel *ioc, GIOCondition condition) {
  g_autoptr(GMainContext) context = g_main_context_new();
  bool ready = false;
  GSource *source = qio_channel_create_watch(ioc, condition);
  g_source_set_callback(
      source,
      G_SOURCE_FUNC(+[](QIOChannel *, GIOCondition, gpointer data) noexcept -> gboolean {
        *static_cast<bool *>(data) = true;
        return G_SOURCE_REMOVE;
      }),
      &ready, nullptr);
  g_source_attach(source, context);
  while (!ready) g_main_context_iteration(context, TRUE);
  g_source_destroy(source);
  g_source_unref(source);
}
