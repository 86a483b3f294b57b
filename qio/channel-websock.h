/*
 * QIOChannelWebsock: the RFC 6455 websocket protocol layered on any
 * QIOChannel (the "master"): plain TCP gives ws, a TLS channel gives wss.
 *
 * The server side is what VNC and chardevs offer to browsers; the client
 * side serves tests and tools.  After the handshake the channel is a byte
 * stream: readv returns the payload of text and binary frames
 * (fragmented messages are joined), writev sends the caller's bytes as
 * binary frames.  Pings are answered, pongs ignored, close frames echoed.
 */
#pragma once

#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_WEBSOCK (qio_channel_websock_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelWebsock, qio_channel_websock, QIO, CHANNEL_WEBSOCK, QIOChannel)

/* Close codes of RFC 6455 section 7.4.1 that qio sends or reports. */
typedef enum {
  QIO_CHANNEL_WEBSOCK_CLOSE_NORMAL = 1000,
  QIO_CHANNEL_WEBSOCK_CLOSE_GOING_AWAY = 1001,
  QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR = 1002,
  QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS = 1005, /* a close frame without a code */
  QIO_CHANNEL_WEBSOCK_CLOSE_TOO_BIG = 1009,
} QIOChannelWebsockCloseCode;

/* The largest request or response head (request line plus headers)
 * accepted during the handshake. */
#define QIO_CHANNEL_WEBSOCK_MAX_HEADER_SIZE 8192
/* Default limit of one frame's payload; see set_max_payload. */
#define QIO_CHANNEL_WEBSOCK_DEFAULT_MAX_PAYLOAD (16 * 1024 * 1024)

/* Both take a reference on @master; run a handshake before any I/O. */
QIOChannelWebsock *qio_channel_websock_new_server(QIOChannel *master);
/* @host goes into the Host header, @path (e.g. "/") into the request line. */
QIOChannelWebsock *qio_channel_websock_new_client(QIOChannel *master, const char *host,
                                                  const char *path);

QIOChannel *qio_channel_websock_get_master(QIOChannelWebsock *wioc);

/* Client only: offer the "binary" subprotocol in the handshake. */
void qio_channel_websock_set_offer_binary(QIOChannelWebsock *wioc, gboolean offer);

/* Frames whose payload is larger than @max bytes are refused with close
 * code 1009; frames this channel sends are at most @max bytes too. */
void qio_channel_websock_set_max_payload(QIOChannelWebsock *wioc, gsize max);
gsize qio_channel_websock_get_max_payload(QIOChannelWebsock *wioc);

/* The asynchronous handshake fails with QIO_ERROR_TIMEOUT when it has not
 * completed @ms milliseconds after it started; 0 waits forever. */
#define QIO_CHANNEL_WEBSOCK_DEFAULT_HANDSHAKE_TIMEOUT_MS 30000
void qio_channel_websock_set_handshake_timeout(QIOChannelWebsock *wioc, guint ms);

/* The subprotocol agreed in the handshake ("binary"), or NULL for none. */
const char *qio_channel_websock_get_protocol(QIOChannelWebsock *wioc);
/* Server only: the path of the client's request line, or NULL before the
 * handshake. */
const char *qio_channel_websock_get_path(QIOChannelWebsock *wioc);
/* The code of the close frame the peer sent (QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS
 * when it had none), or 0 while none arrived. */
guint qio_channel_websock_get_peer_close_code(QIOChannelWebsock *wioc);

/* Runs the opening handshake, blocking (a non-blocking master is waited
 * on).  A server that rejects the peer's request first sends it an HTTP
 * error response (400, 405, 426 or 431) and then fails; the caller closes. */
gboolean qio_channel_websock_handshake_sync(QIOChannelWebsock *wioc, GCancellable *cancellable,
                                            GError **error);
/* The same driven by watches on @context (NULL: the global default);
 * @callback runs in @context.  Put the master in non-blocking mode first. */
void qio_channel_websock_handshake(QIOChannelWebsock *wioc, GMainContext *context,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean qio_channel_websock_handshake_finish(QIOChannelWebsock *wioc, GAsyncResult *result,
                                              GError **error);

G_END_DECLS
