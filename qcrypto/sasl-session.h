/*
 * QCryptoSASLSession: one Cyrus SASL authentication (server or client) and,
 * once it is done, the security layer it negotiated (encode/decode).
 *
 * The session knows nothing about transports or protocols: the caller
 * carries the mechanism list and each step's data over its own protocol
 * (RFB's SASL security type, for instance) and, if the session ends with
 * an SSF above 0, wraps the channel in a QIOChannelSASL.
 *
 * Servers read their configuration from qio.conf in Cyrus SASL's config
 * path (/etc/sasl2 first on Debian), or in the directories of the
 * SASL_CONF_PATH environment variable, read when the first session of the
 * process is created.  Cyrus SASL's own log goes to g_debug().
 *
 * Threads: one thread may encode while another decodes.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define QCRYPTO_TYPE_SASL_SESSION (qcrypto_sasl_session_get_type())
G_DECLARE_FINAL_TYPE(QCryptoSASLSession, qcrypto_sasl_session, QCRYPTO, SASL_SESSION, GObject)

typedef enum {
  QCRYPTO_SASL_STEP_FAILED = 0,   /* FALSE; the GError says why */
  /* This side is done: a server has authenticated the client (its output,
   * if any, is for the client to step through); a client still learns the
   * server's verdict through the protocol. */
  QCRYPTO_SASL_STEP_DONE = 1,
  QCRYPTO_SASL_STEP_CONTINUE = 2, /* send the output, then step with the peer's reply */
} QCryptoSASLStep;

/* A server session for @service (the protocol's registered name, "vnc").
 * @local_addr and @remote_addr are "IP;PORT" (may be NULL); the remote one
 * names the client in error messages.  Users are looked up in the realm
 * of the host's name unless they log in as "user@realm". */
QCryptoSASLSession *qcrypto_sasl_session_new_server(const char *service, const char *local_addr,
                                                    const char *remote_addr, GError **error);
/* A client session (for tests and tools) logging in to @server_fqdn as
 * @username with @password; either may be NULL for mechanisms that do
 * not need them (GSSAPI). */
QCryptoSASLSession *qcrypto_sasl_session_new_client(const char *service, const char *server_fqdn,
                                                    const char *local_addr,
                                                    const char *remote_addr,
                                                    const char *username, const char *password,
                                                    GError **error);

/* A layer of strength @ssf (a TLS session: its key bits) already protects
 * the connection: no mechanism needs to give a security layer, and none
 * is negotiated.  Without this, only mechanisms with a security layer of
 * at least 56 bits are allowed (DIGEST-MD5, GSSAPI), so PLAIN and SCRAM
 * are refused over plain transports.  Call it before listing or starting. */
void qcrypto_sasl_session_set_external_ssf(QCryptoSASLSession *sess, guint ssf);

/* Server: the mechanisms it offers, comma separated ("DIGEST-MD5,GSSAPI");
 * g_free() it. */
char *qcrypto_sasl_session_list_mechanisms(QCryptoSASLSession *sess, GError **error);

/* The exchange.  Each step's *@out (*@outlen bytes; NULL when there is
 * nothing to send, which differs from empty data) is for the peer and is
 * valid until the next call on @sess.  @in may be NULL: no data. */
QCryptoSASLStep qcrypto_sasl_session_server_start(QCryptoSASLSession *sess, const char *mech,
                                                  const char *in, gsize inlen, const char **out,
                                                  gsize *outlen, GError **error);
QCryptoSASLStep qcrypto_sasl_session_server_step(QCryptoSASLSession *sess, const char *in,
                                                 gsize inlen, const char **out, gsize *outlen,
                                                 GError **error);
/* Client: picks a mechanism of @mechlist (comma or space separated) and
 * returns its name in *@mech. */
QCryptoSASLStep qcrypto_sasl_session_client_start(QCryptoSASLSession *sess, const char *mechlist,
                                                  const char **mech, const char **out,
                                                  gsize *outlen, GError **error);
QCryptoSASLStep qcrypto_sasl_session_client_step(QCryptoSASLSession *sess, const char *in,
                                                 gsize inlen, const char **out, gsize *outlen,
                                                 GError **error);

/* After a DONE step.  The user name (server: the authenticated user, to
 * check against a QCryptoAuthz), NULL before. */
const char *qcrypto_sasl_session_get_username(QCryptoSASLSession *sess);
/* The strength of the negotiated security layer; 0: none (the data goes
 * unprotected by SASL, so no QIOChannelSASL). */
guint qcrypto_sasl_session_get_ssf(QCryptoSASLSession *sess);
/* The most plaintext one encode takes (SASL_MAXOUTBUF). */
gsize qcrypto_sasl_session_get_maxoutbuf(QCryptoSASLSession *sess);

/* The security layer.  Encode takes at most get_maxoutbuf() bytes; decode
 * takes any part of the stream and may return 0 bytes (a packet not yet
 * complete).  *@out is valid until the next encode (or decode). */
gboolean qcrypto_sasl_session_encode(QCryptoSASLSession *sess, const char *in, gsize inlen,
                                     const char **out, gsize *outlen, GError **error);
gboolean qcrypto_sasl_session_decode(QCryptoSASLSession *sess, const char *in, gsize inlen,
                                     const char **out, gsize *outlen, GError **error);

G_END_DECLS
