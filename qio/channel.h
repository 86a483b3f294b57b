/*
 * QIOChannel: the abstract I/O channel every qio transport and security
 * layer implements.  The data path reports "would block" as the return
 * value QIO_CHANNEL_ERR_BLOCK and allocates nothing per call.
 */
#pragma once

#include <gio/gio.h>
#include <sys/uio.h>

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL (qio_channel_get_type())
G_DECLARE_DERIVABLE_TYPE(QIOChannel, qio_channel, QIO, CHANNEL, GObject)

/* Returned by the I/O functions of a non-blocking channel that cannot make
 * progress now; no GError is set. */
#define QIO_CHANNEL_ERR_BLOCK (-2)

typedef enum {
  QIO_CHANNEL_FEATURE_FD_PASS = 1 << 0,
  QIO_CHANNEL_FEATURE_SHUTDOWN = 1 << 1,
  QIO_CHANNEL_FEATURE_LISTEN = 1 << 2,
  QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY = 1 << 3,
  /* Writes may be told not to wait (QIO_CHANNEL_WRITE_FLAG_DONTWAIT),
   * whatever the channel's blocking mode. */
  QIO_CHANNEL_FEATURE_WRITE_DONTWAIT = 1 << 4,
} QIOChannelFeature;

typedef enum {
  QIO_CHANNEL_SHUTDOWN_READ = 1,
  QIO_CHANNEL_SHUTDOWN_WRITE = 2,
  QIO_CHANNEL_SHUTDOWN_BOTH = 3,
} QIOChannelShutdown;

typedef enum {
  QIO_CHANNEL_WRITE_FLAG_NONE = 0,
  /* The caller keeps the buffers unchanged until qio_channel_flush(). */
  QIO_CHANNEL_WRITE_FLAG_ZERO_COPY = 1 << 0,
  /* Return QIO_CHANNEL_ERR_BLOCK rather than wait, even when blocking. */
  QIO_CHANNEL_WRITE_FLAG_DONTWAIT = 1 << 1,
} QIOChannelWriteFlags;

/* Callback of a channel watch; return G_SOURCE_CONTINUE to keep it. */
typedef gboolean (*QIOChannelFunc)(QIOChannel *ioc, GIOCondition condition,
                                   gpointer user_data);
/* The QIOChannelFunc stored as a watch's GSourceFunc. */
#define QIO_CHANNEL_FUNC(f) ((QIOChannelFunc)(void (*)(void))(f))

struct _QIOChannelClass {
  GObjectClass parent_class;

  /* Mandatory. */
  gssize (*io_readv)(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                     int **fds, gsize *nfds, GError **error);
  gssize (*io_writev)(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                      const int *fds, gsize nfds, int flags, GError **error);
  gboolean (*io_close)(QIOChannel *ioc, GError **error);
  GSource *(*io_create_watch)(QIOChannel *ioc, GIOCondition condition);
  gboolean (*io_set_blocking)(QIOChannel *ioc, gboolean enabled, GError **error);

  /* Optional; a missing one reports QIO_ERROR_NOT_SUPPORTED, except the
   * hints set_delay and set_cork, which are then ignored. */
  gboolean (*io_shutdown)(QIOChannel *ioc, QIOChannelShutdown how, GError **error);
  void (*io_set_delay)(QIOChannel *ioc, gboolean enabled);
  void (*io_set_cork)(QIOChannel *ioc, gboolean enabled);
  int (*io_flush)(QIOChannel *ioc, GError **error);
  /* Optional hint, ignored when missing.  A layer that buffers what it
   * reads must pass on @bytes less what it may hold, never @bytes as is. */
  void (*io_set_read_low_water)(QIOChannel *ioc, gsize bytes);

  gpointer padding[11];
};

/* Features and diagnostics. */
gboolean qio_channel_has_feature(QIOChannel *ioc, QIOChannelFeature feature);
void qio_channel_set_feature(QIOChannel *ioc, QIOChannelFeature feature);
void qio_channel_set_name(QIOChannel *ioc, const char *name);
const char *qio_channel_get_name(QIOChannel *ioc);

/* One system call's worth of I/O.  Return the byte count, 0 at end of file
 * (reads), QIO_CHANNEL_ERR_BLOCK, or -1 with @error set.  Received
 * descriptors are returned in a g_new() array the caller frees and closes. */
gssize qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                              int **fds, gsize *nfds, GError **error);
gssize qio_channel_writev_full(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                               const int *fds, gsize nfds, int flags, GError **error);
gssize qio_channel_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                         GError **error);
gssize qio_channel_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                          GError **error);
gssize qio_channel_read(QIOChannel *ioc, void *buf, gsize len, GError **error);
gssize qio_channel_write(QIOChannel *ioc, const void *buf, gsize len, GError **error);

/* Loop until every byte moved: blocking channels block, non-blocking ones
 * wait with qio_channel_wait().  The _eof variants return 0 when the peer
 * closed before the first byte, 1 on success, -1 on error; a close in the
 * middle is an error (QIO_ERROR_EOF).  The others return TRUE on success. */
int qio_channel_readv_full_all_eof(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                   int **fds, gsize *nfds, GError **error);
int qio_channel_readv_all_eof(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                              GError **error);
gboolean qio_channel_readv_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                    int **fds, gsize *nfds, GError **error);
gboolean qio_channel_readv_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                               GError **error);
gboolean qio_channel_read_all(QIOChannel *ioc, void *buf, gsize len, GError **error);
gboolean qio_channel_writev_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                     const int *fds, gsize nfds, int flags, GError **error);
gboolean qio_channel_writev_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                GError **error);
gboolean qio_channel_write_all(QIOChannel *ioc, const void *buf, gsize len, GError **error);

gboolean qio_channel_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error);
gboolean qio_channel_close(QIOChannel *ioc, GError **error);
gboolean qio_channel_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error);
void qio_channel_set_delay(QIOChannel *ioc, gboolean enabled);
void qio_channel_set_cork(QIOChannel *ioc, gboolean enabled);
/* A hint for a reader waiting for a message of known length: it cannot go
 * on before @bytes more bytes arrive, so a G_IO_IN watch need not wake it
 * for fewer (each packet of a bulk transfer then stops waking it; over
 * loopback the sender's CPU pays for those wakeups).  Never pass more than
 * the peer is bound to send, or the watch waits for bytes that never come;
 * the peer closing still wakes it.  0 wakes at every byte again.  Call it
 * from the reading thread.  Channels that cannot use the hint ignore it
 * (only TCP sockets use it, and TLS over them). */
void qio_channel_set_read_low_water(QIOChannel *ioc, gsize bytes);
/* Waits for zero-copy writes to complete.  Returns 0 when all were sent
 * without copying, 1 when the kernel fell back to copying, -1 on error. */
int qio_channel_flush(QIOChannel *ioc, GError **error);

/* Watches.  The source holds a reference on @ioc until destroyed. */
GSource *qio_channel_create_watch(QIOChannel *ioc, GIOCondition condition);
guint qio_channel_add_watch(QIOChannel *ioc, GIOCondition condition, QIOChannelFunc func,
                            gpointer user_data, GDestroyNotify notify);
/* As above, attached to @context (NULL: the global default context). */
guint qio_channel_add_watch_full(QIOChannel *ioc, GIOCondition condition,
                                  QIOChannelFunc func, gpointer user_data,
                                  GDestroyNotify notify, GMainContext *context);
/* Blocks the calling thread until @condition holds on @ioc; runs only a
 * private main context, so no other callback of the thread runs meanwhile. */
void qio_channel_wait(QIOChannel *ioc, GIOCondition condition);

G_END_DECLS
