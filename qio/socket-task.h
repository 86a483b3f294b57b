/*
 * Internal (not installed): the GTask behind the asynchronous socket
 * operations of QIOChannelSocket and QIONetListener.
 */
#pragma once

#include "qio/socket-address.h"

G_BEGIN_DECLS

/* A GTask whose callback runs in @context (NULL: the caller's
 * thread-default context) and that carries @addr and @backlog. */
GTask *qio_socket_task_new(gpointer source, QIOSocketAddress *addr, int backlog,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data, GMainContext *context, gpointer tag);
QIOSocketAddress *qio_socket_task_get_address(GTask *task);
int qio_socket_task_get_backlog(GTask *task);

G_END_DECLS
