/* QIOChannelNull: a channel to nowhere.  Reads return end of file,
 * writes accept and discard every byte, watches are always ready; once
 * closed, every operation fails with G_IO_ERROR_CLOSED.  For sinks and
 * sources nobody listens to (a chardev backend "null", tests). */
#pragma once

#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_NULL (qio_channel_null_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelNull, qio_channel_null, QIO, CHANNEL_NULL, QIOChannel)

QIOChannelNull *qio_channel_null_new(void);

G_END_DECLS
