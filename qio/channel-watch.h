/*
 * GSources for channels backed by file descriptors: the building block of
 * every fd-based channel's io_create_watch.
 */
#pragma once

#include "qio/channel.h"

G_BEGIN_DECLS

/* Fires when @fd is ready for any of @condition (G_IO_HUP and G_IO_ERR
 * always wake it); the callback is a QIOChannelFunc given @ioc. */
GSource *qio_channel_create_fd_watch(QIOChannel *ioc, int fd, GIOCondition condition);

/* As above over a read descriptor and a write descriptor (pipes):
 * G_IO_IN is watched on @fd_read and G_IO_OUT on @fd_write. */
GSource *qio_channel_create_fd_pair_watch(QIOChannel *ioc, int fd_read, int fd_write,
                                          GIOCondition condition);

/* A watch that is always ready: for channels over memory or nothing
 * (buffer, null), whose I/O never blocks.  It reports @condition
 * restricted to G_IO_IN and G_IO_OUT. */
GSource *qio_channel_create_ready_watch(QIOChannel *ioc, GIOCondition condition);

/* Whether @layer holds data already decoded from its master, which the
 * master's descriptor cannot show. */
typedef gboolean (*QIOChannelPendingFunc)(QIOChannel *layer);

/* The watch of a security layer (TLS, SASL) over @master: fires for what
 * the master's watch reports and, when @condition has G_IO_IN, while
 * @pending says @layer holds decoded data.  The callback is a
 * QIOChannelFunc given @layer. */
GSource *qio_channel_create_layer_watch(QIOChannel *layer, QIOChannel *master,
                                        GIOCondition condition, QIOChannelPendingFunc pending);

G_END_DECLS
