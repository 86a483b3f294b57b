/*
 * QIOChannelSocket: a channel over a stream socket (TCP over IPv4 or IPv6,
 * UNIX, vsock).  readv/writev are one recvmsg/sendmsg on the caller's
 * iovecs; UNIX sockets pass descriptors (QIO_CHANNEL_FEATURE_FD_PASS).
 */
#pragma once

#include "qio/channel.h"
#include "qio/socket-address.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_SOCKET (qio_channel_socket_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelSocket, qio_channel_socket, QIO, CHANNEL_SOCKET, QIOChannel)

/* A channel without a socket yet: connect or listen it. */
QIOChannelSocket *qio_channel_socket_new(void);
/* Takes ownership of @fd, which must be a socket (connected or listening). */
QIOChannelSocket *qio_channel_socket_new_fd(int fd, GError **error);
/* Two connected UNIX stream channels (socketpair). */
gboolean qio_channel_socket_new_pair(QIOChannelSocket **first, QIOChannelSocket **second,
                                     GError **error);

/* Connects to the first address @addr resolves to that accepts; an fd:
 * address adopts the named, already connected descriptor.  The channel is
 * blocking afterwards.  Errors name the address. */
gboolean qio_channel_socket_connect_sync(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                         GError **error);
/* As above; cancelling @cancellable from another thread ends a connect in
 * progress (G_IO_ERROR_CANCELLED). */
gboolean qio_channel_socket_connect_sync_cancellable(QIOChannelSocket *sioc,
                                                     QIOSocketAddress *addr,
                                                     GCancellable *cancellable, GError **error);
/* As above in a worker thread, which owns @sioc until @callback runs in
 * @context (NULL: the thread-default context of the caller): do not use
 * the channel meanwhile.  Cancelling @cancellable aborts a connect in
 * progress and leaves the channel without a socket. */
void qio_channel_socket_connect_async(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data, GMainContext *context);
gboolean qio_channel_socket_connect_finish(QIOChannelSocket *sioc, GAsyncResult *result,
                                           GError **error);

/* Binds and listens on the first address @addr resolves to (port 0: the
 * kernel picks one, see get_local_address).  A UNIX path is created and
 * removed again by close.  @backlog <= 0 means SOMAXCONN. */
gboolean qio_channel_socket_listen_sync(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                        int backlog, GError **error);
void qio_channel_socket_listen_async(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                     int backlog, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data,
                                     GMainContext *context);
gboolean qio_channel_socket_listen_finish(QIOChannelSocket *sioc, GAsyncResult *result,
                                          GError **error);

/* Accepts one client as a new blocking channel.  On a non-blocking
 * listener with no client waiting, returns NULL with G_IO_ERROR_WOULD_BLOCK. */
QIOChannelSocket *qio_channel_socket_accept(QIOChannelSocket *sioc, GError **error);

QIOSocketAddress *qio_channel_socket_get_local_address(QIOChannelSocket *sioc,
                                                       GError **error);
QIOSocketAddress *qio_channel_socket_get_remote_address(QIOChannelSocket *sioc,
                                                        GError **error);
/* The socket descriptor, still owned by the channel; -1 when closed. */
int qio_channel_socket_get_fd(QIOChannelSocket *sioc);

/* Opts in to MSG_ZEROCOPY (SO_ZEROCOPY): on success the channel has
 * QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY; writes with
 * QIO_CHANNEL_WRITE_FLAG_ZERO_COPY must be followed by qio_channel_flush()
 * before their buffers change. */
gboolean qio_channel_socket_enable_zero_copy(QIOChannelSocket *sioc, GError **error);

/* Sends up to @len bytes of the file @fd, from *@offset on, with sendfile(2):
 * the kernel moves page-cache data to the socket without a copy through
 * user space.  Advances *@offset.  Returns the byte count (0: the file ends
 * at *@offset), QIO_CHANNEL_ERR_BLOCK, or -1 with @error set (a read error
 * of the file or a write error of the socket).  A peer that closed is
 * G_IO_ERROR_BROKEN_PIPE: the first call makes the process ignore SIGPIPE
 * unless the program installed its own handler. */
gssize qio_channel_socket_sendfile(QIOChannelSocket *sioc, int fd, guint64 *offset, gsize len,
                                   GError **error);

G_END_DECLS
