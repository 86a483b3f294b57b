/* QIOChannelBuffer: a channel over a growable memory buffer.  Writes
 * append at the current offset, reads consume from it; always ready. */
#pragma once

#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_BUFFER (qio_channel_buffer_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelBuffer, qio_channel_buffer, QIO, CHANNEL_BUFFER, QIOChannel)

QIOChannelBuffer *qio_channel_buffer_new(gsize capacity);
/* A buffer holding a copy of @data, positioned at its start for reading. */
QIOChannelBuffer *qio_channel_buffer_new_with_data(const void *data, gsize len);
const guint8 *qio_channel_buffer_get_data(QIOChannelBuffer *bioc, gsize *len);
gsize qio_channel_buffer_get_offset(QIOChannelBuffer *bioc);
/* Moves the offset to the start, so that what was written can be read. */
void qio_channel_buffer_rewind(QIOChannelBuffer *bioc);

G_END_DECLS
