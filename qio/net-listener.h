/*
 * QIONetListener: a server socket set.  One listener opens a listening
 * QIOChannelSocket for every address a name resolves to (localhost: ::1
 * and 127.0.0.1, all on the same port) and hands each accepted client to
 * a callback in a chosen GMainContext.
 */
#pragma once

#include "qio/channel-socket.h"

G_BEGIN_DECLS

#define QIO_TYPE_NET_LISTENER (qio_net_listener_get_type())
G_DECLARE_FINAL_TYPE(QIONetListener, qio_net_listener, QIO, NET_LISTENER, GObject)

/* Receives a new, blocking client channel; keep a reference to keep it. */
typedef void (*QIONetListenerClientFunc)(QIONetListener *listener, QIOChannelSocket *client,
                                         gpointer user_data);

QIONetListener *qio_net_listener_new(void);
/* Names the listener in diagnostics and its clients' channel names. */
void qio_net_listener_set_name(QIONetListener *listener, const char *name);

/* Listens on every address @addr resolves to.  With port 0 the first
 * socket gets a port from the kernel and the others reuse it.  Fails, with
 * nothing opened, if any address cannot be bound. */
gboolean qio_net_listener_open_sync(QIONetListener *listener, QIOSocketAddress *addr,
                                    int backlog, GError **error);
/* As above, resolving and binding in a worker thread; @callback runs in
 * @context (NULL: the caller's thread-default context), and
 * qio_net_listener_open_finish() adds the sockets to the listener. */
void qio_net_listener_open_async(QIONetListener *listener, QIOSocketAddress *addr, int backlog,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data, GMainContext *context);
gboolean qio_net_listener_open_finish(QIONetListener *listener, GAsyncResult *result,
                                      GError **error);
/* Adds an already listening channel. */
void qio_net_listener_add(QIONetListener *listener, QIOChannelSocket *sioc);

/* Installs (or with @func NULL removes) the accept callback; it runs in
 * @context (NULL: the global default context).  @notify frees @user_data
 * when the callback is replaced or the listener disconnects. */
void qio_net_listener_set_client_func(QIONetListener *listener, QIONetListenerClientFunc func,
                                      gpointer user_data, GDestroyNotify notify,
                                      GMainContext *context);

/* Blocks until a client connects to any socket and returns it; the client
 * callback, if any, is bypassed for this client. */
QIOChannelSocket *qio_net_listener_wait_client(QIONetListener *listener, GError **error);

gsize qio_net_listener_get_n_sockets(QIONetListener *listener);
/* Borrowed. */
QIOChannelSocket *qio_net_listener_get_socket(QIONetListener *listener, gsize index);
/* The local address of socket @index, with its real port. */
QIOSocketAddress *qio_net_listener_get_address(QIONetListener *listener, gsize index,
                                               GError **error);
gboolean qio_net_listener_is_connected(QIONetListener *listener);

/* Stops accepting: removes the callback and closes every socket. */
void qio_net_listener_disconnect(QIONetListener *listener);

G_END_DECLS
