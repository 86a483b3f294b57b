/*
 * QIOChannelTLS: TLS over any other channel (the "master": a socket, a
 * pipe, a command, even another security layer).  Create it with the
 * credentials object, run the handshake (asynchronously in a main context,
 * or synchronously in a worker thread), then use it like any channel.
 * shutdown and close send the TLS bye (over a non-blocking master only if
 * it goes out at once: they never wait for the peer); a peer that closes
 * without one is reported as QCRYPTO_ERROR_PREMATURE_CLOSE.  One thread
 * may read while another writes.
 */
#pragma once

#include "qcrypto/tls-creds.h"
#include "qcrypto/tls-session.h"
#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_TLS (qio_channel_tls_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelTLS, qio_channel_tls, QIO, CHANNEL_TLS, QIOChannel)

/* A server over @master with server credentials.  @authz (may be NULL)
 * is asked about the client's identity (x509 DN or PSK user name). */
QIOChannelTLS *qio_channel_tls_new_server(QIOChannel *master, QCryptoTLSCreds *creds,
                                          QCryptoAuthz *authz, GError **error);
/* A client over @master; @hostname is checked against the server's
 * certificate (DNS name or IP address). */
QIOChannelTLS *qio_channel_tls_new_client(QIOChannel *master, QCryptoTLSCreds *creds,
                                          const char *hostname, GError **error);

/* Runs the handshake in @context (NULL: the thread-default context) on a
 * non-blocking master; @callback runs there when it is over. */
void qio_channel_tls_handshake(QIOChannelTLS *tioc, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data,
                               GMainContext *context);
gboolean qio_channel_tls_handshake_finish(QIOChannelTLS *tioc, GAsyncResult *result,
                                          GError **error);
/* The handshake in the calling thread (blocking or not).  @cancellable is
 * checked between the handshake's steps only, not while it waits for the
 * peer: to end a handshake from another thread, shut the master down. */
gboolean qio_channel_tls_handshake_sync(QIOChannelTLS *tioc, GCancellable *cancellable,
                                        GError **error);

QIOChannel *qio_channel_tls_get_master(QIOChannelTLS *tioc);
QCryptoTLSSession *qio_channel_tls_get_session(QIOChannelTLS *tioc);
/* Protocol, cipher, peer identity and handshake time; NULL before the
 * handshake completed. */
QCryptoTLSSessionReport *qio_channel_tls_get_report(QIOChannelTLS *tioc);

G_END_DECLS
