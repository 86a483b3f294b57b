/*
 * QCryptoTLSSession: one TLS session (client or server) over any transport.
 *
 * The session knows nothing about sockets: GnuTLS reads and writes through
 * the push/pull callbacks given here, which return a byte count,
 * QCRYPTO_TLS_SESSION_ERR_BLOCK, or -1 with a GError.  After the handshake
 * the peer has been verified (certificate, validity, host name, CA chain),
 * authorized, and a report describes the session.
 *
 * Threads: one thread may read while another writes (TLS 1.3 key updates
 * included); key updates and bye belong to the writing thread.
 */
#pragma once

#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"

#include <sys/uio.h>

G_BEGIN_DECLS

#define QCRYPTO_TYPE_TLS_SESSION (qcrypto_tls_session_get_type())
G_DECLARE_FINAL_TYPE(QCryptoTLSSession, qcrypto_tls_session, QCRYPTO, TLS_SESSION, GObject)

/* Returned by transports and session I/O that would block; no GError. */
#define QCRYPTO_TLS_SESSION_ERR_BLOCK (-2)

typedef gssize (*QCryptoTLSSessionPushFunc)(const struct iovec *iov, gsize niov,
                                            gpointer opaque, GError **error);
typedef gssize (*QCryptoTLSSessionPullFunc)(void *buf, gsize len, gpointer opaque,
                                            GError **error);

typedef enum {
  QCRYPTO_TLS_HANDSHAKE_FAILED = -1,
  QCRYPTO_TLS_HANDSHAKE_COMPLETE = 0,
  QCRYPTO_TLS_HANDSHAKE_NEEDS_READ = 1,  /* wait for the transport to be readable */
  QCRYPTO_TLS_HANDSHAKE_NEEDS_WRITE = 2, /* wait for it to be writable */
} QCryptoTLSHandshakeStatus;

typedef struct {
  char *protocol;      /* "TLS1.3" */
  char *cipher;        /* "AES-128-GCM" */
  char *kx;            /* key exchange, "ECDHE-RSA", "(EC)DHE-PSK" ... */
  char *peer_identity; /* x509 DN or PSK user name; NULL if anonymous */
  gint64 handshake_us; /* from the first handshake call to completion */
  guint cipher_key_bits; /* 128 for AES-128-GCM: the strength SASL is told of */
  gboolean resumed;      /* an abbreviated handshake resumed an earlier session */
} QCryptoTLSSessionReport;

void qcrypto_tls_session_report_free(QCryptoTLSSessionReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoTLSSessionReport, qcrypto_tls_session_report_free)

/* A session whose role is @creds' endpoint.  @hostname is what a client
 * checks the server's certificate against (a DNS name or an IP address);
 * servers pass NULL.  @authz (servers; may be NULL) is asked about the
 * client's identity (x509 DN or PSK user name) after verification. */
QCryptoTLSSession *qcrypto_tls_session_new(QCryptoTLSCreds *creds, const char *hostname,
                                           QCryptoAuthz *authz, GError **error);

void qcrypto_tls_session_set_callbacks(QCryptoTLSSession *sess, QCryptoTLSSessionPushFunc push,
                                       QCryptoTLSSessionPullFunc pull, gpointer opaque);

/* Optional, for transports that can be told not to wait for one write (a
 * socket): @try_push returns QCRYPTO_TLS_SESSION_ERR_BLOCK rather than
 * wait.  Records then go straight from GnuTLS to the transport whenever
 * nothing is queued, without a copy; push stays the fallback. */
void qcrypto_tls_session_set_try_push(QCryptoTLSSession *sess, QCryptoTLSSessionPushFunc try_push);

/* One step of the handshake; call again once the transport is ready as
 * the status says.  FAILED sets @error with a named cause; the peer has
 * been sent an alert saying why. */
QCryptoTLSHandshakeStatus qcrypto_tls_session_handshake(QCryptoTLSSession *sess,
                                                        GError **error);
gboolean qcrypto_tls_session_is_handshaken(QCryptoTLSSession *sess);

/* Record I/O: a byte count (0 from read: the peer said bye),
 * QCRYPTO_TLS_SESSION_ERR_BLOCK, or -1 with @error (a close without bye is
 * QCRYPTO_ERROR_PREMATURE_CLOSE).  After a write would block, retry with the
 * same data: its records are already encrypted and queued. */
gssize qcrypto_tls_session_read(QCryptoTLSSession *sess, void *buf, gsize len,
                                GError **error);
gssize qcrypto_tls_session_write(QCryptoTLSSession *sess, const void *buf, gsize len,
                                 GError **error);
/* Packs @iov into full-size records (not one record per entry),
 * encrypting straight from the caller's memory wherever a record's worth
 * lies contiguous (across entries too).  Records go straight to the
 * transport with a try-push; otherwise (or when it would block) up to
 * 64 KiB of them are queued and written in one transport write. */
gssize qcrypto_tls_session_writev(QCryptoTLSSession *sess, const struct iovec *iov,
                                  gsize niov, GError **error);
/* As qcrypto_tls_session_read(), from what the session holds only
 * (decrypted bytes, records read ahead): QCRYPTO_TLS_SESSION_ERR_BLOCK
 * where that would have to read from the transport.  For a reader that has
 * data for its caller already and must not wait for more (records that
 * carry none, a key update say, are taken on the way). */
gssize qcrypto_tls_session_read_buffered(QCryptoTLSSession *sess, void *buf, gsize len,
                                         GError **error);
/* Decrypted bytes already held, readable without touching the transport
 * (or 1 for a whole record read ahead).  Call it from the reading thread
 * (or the thread whose main loop runs the channel's watches). */
gsize qcrypto_tls_session_check_pending(QCryptoTLSSession *sess);
/* At most how many received bytes the session holds unread: decrypted
 * bytes, the ciphertext read ahead, and the part of one record GnuTLS may
 * have pulled (GnuTLS does not say how much).  A reader waiting for N more
 * bytes of plaintext gets at least N minus this many more from the
 * transport, since no record carries more plaintext than its own size.
 * From the reading thread. */
gsize qcrypto_tls_session_get_buffered_max(QCryptoTLSSession *sess);

/* Sends close_notify: 1 done, 0 would block (call again), -1 error.  While
 * another thread is inside a write to the transport (blocked on a peer that
 * stopped reading, say), the bye stays queued behind it and 1 is returned:
 * a shutdown meant to wake that writer must not wait for it. */
int qcrypto_tls_session_bye(QCryptoTLSSession *sess, GError **error);
/* TLS 1.3 key update; @request_peer asks the peer to update its keys too.
 * Returns as bye does. */
int qcrypto_tls_session_update_keys(QCryptoTLSSession *sess, gboolean request_peer,
                                    GError **error);

/* Session resumption, TLS 1.3 with x509 credentials only (PSK and anon
 * sessions neither issue nor use tickets: these calls do nothing for
 * them).  A resumed session skips the certificate exchange and its
 * signatures but not the (EC)DHE key exchange, and the peer check (chain,
 * validity, host name, authz) runs again on the certificates the first
 * handshake verified, which the ticket carries.
 *
 * A fresh random session ticket key (server side), wiped when its last
 * reference goes. */
GBytes *qcrypto_tls_session_ticket_key_new(GError **error);
/* Server, before the handshake: issue tickets sealed with @key and resume
 * only sessions whose ticket @key opens. */
gboolean qcrypto_tls_session_set_ticket_key(QCryptoTLSSession *sess, GBytes *key,
                                            GError **error);
/* Server, after the handshake: sends the client one ticket, once (servers
 * send none unasked, since a client that never reads it would reset the
 * connection when closing it).  Nothing without a ticket key or below
 * TLS 1.3.  As
 * qcrypto_tls_session_bye(): 1 sent, 0 would block (call again), -1
 * error. */
int qcrypto_tls_session_send_ticket(QCryptoTLSSession *sess, GError **error);
/* Client, after the handshake: what resumes this session with the same
 * server, or NULL (not TLS 1.3, or no ticket yet).  Servers send tickets
 * after the handshake, so read the server's first data first; this never
 * waits for one.  The data hold a secret: keep them in memory only. */
GBytes *qcrypto_tls_session_get_resumption_data(QCryptoTLSSession *sess);
/* Client, before the handshake: offer to resume with @data.  A server that
 * cannot open the ticket runs a full handshake instead. */
gboolean qcrypto_tls_session_set_resumption_data(QCryptoTLSSession *sess, GBytes *data,
                                                 GError **error);
/* Whether the handshake resumed an earlier session (also when the peer
 * check failed afterwards). */
gboolean qcrypto_tls_session_is_resumed(QCryptoTLSSession *sess);

/* NULL before the handshake completes. */
QCryptoTLSSessionReport *qcrypto_tls_session_get_report(QCryptoTLSSession *sess);
const char *qcrypto_tls_session_get_peer_identity(QCryptoTLSSession *sess);

G_END_DECLS
