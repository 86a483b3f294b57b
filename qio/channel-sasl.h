/*
 * QIOChannelSASL: the security layer a SASL authentication negotiated
 * (DIGEST-MD5, GSSAPI: SSF above 0), over any other channel (the "master").
 * Create it once the session is done; from then on every byte in both
 * directions goes through the session's encode and decode.  Writes go out
 * as packets of at most SASL_MAXOUTBUF plaintext bytes; reads return
 * decoded data as soon as a packet is complete.  A packet the master does
 * not take at once is kept and sent first by the next write, which must
 * begin with the data not yet reported written (as qio_channel_writev_all()
 * does after QIO_CHANNEL_ERR_BLOCK or a short count).  close and shutdown
 * go to the master.  One thread may read while another writes; G_IO_IN
 * watches belong to the reading thread.
 */
#pragma once

#include "qcrypto/sasl-session.h"
#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_SASL (qio_channel_sasl_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelSASL, qio_channel_sasl, QIO, CHANNEL_SASL, QIOChannel)

/* Fails unless @session is done with an SSF above 0; with SSF 0 there is
 * no layer, and the master is used as it is.  The new channel, and
 * @master with it, are blocking; qio_channel_set_blocking() on the new
 * channel sets both. */
QIOChannelSASL *qio_channel_sasl_new(QIOChannel *master, QCryptoSASLSession *session,
                                     GError **error);

G_END_DECLS
