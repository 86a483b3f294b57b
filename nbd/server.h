/*
 * NBDServer: serves NBDExports over the NBD protocol (fixed newstyle
 * handshake, structured replies, base:allocation block status) to many
 * clients at once.  Each client is a coroutine on the server's
 * GMainContext; a client that has not finished its handshake within
 * handshake-max-seconds is disconnected, and connections beyond
 * max-connections are refused at once.  With TLS credentials, TLS is
 * mandatory (see nbd_server_set_tls).
 *
 * Signals:
 *   "client-closed" (const GError *error, guint remaining): a client went
 *   away; @error is NULL after a clean disconnect.  @remaining counts the
 *   clients still connected.
 */
#pragma once

#include "nbd/export.h"
#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/net-listener.h"

G_BEGIN_DECLS

#define NBD_TYPE_SERVER (nbd_server_get_type())
G_DECLARE_FINAL_TYPE(NBDServer, nbd_server, NBD, SERVER, GObject)

/* A server whose clients run in @context (NULL: the global default). */
NBDServer *nbd_server_new(GMainContext *context);

/* Adds @exp under its name; fails when the name is taken. */
gboolean nbd_server_add_export(NBDServer *server, NBDExport *exp, GError **error);
/* Withdraws the export @name from new clients.  Clients using it keep it
 * unless @hard, which disconnects them; without @hard, an export in use
 * is not removed (NBD_ERROR_EXPORT). */
gboolean nbd_server_remove_export(NBDServer *server, const char *name, gboolean hard,
                                  GError **error);
/* Borrowed; NULL when there is none of that name. */
NBDExport *nbd_server_lookup_export(NBDServer *server, const char *name);

/* 0: no limit (the default). */
void nbd_server_set_max_connections(NBDServer *server, guint max_connections);
guint nbd_server_get_max_connections(NBDServer *server);
/* 0: no limit; default 10 seconds. */
void nbd_server_set_handshake_max_seconds(NBDServer *server, guint seconds);

/* Requires TLS (server credentials) from every new client: before
 * NBD_OPT_STARTTLS only NBD_OPT_STARTTLS and NBD_OPT_ABORT are answered,
 * and nothing negotiated before it carries over.  @authz (may be NULL)
 * checks the client's identity (x509 DN or PSK user name).  NULL @creds:
 * plaintext. */
void nbd_server_set_tls(NBDServer *server, QCryptoTLSCreds *creds, QCryptoAuthz *authz);

/* Listens on every address @addr resolves to; may be called again for
 * more addresses.  The listener is the server's (see get_listener). */
gboolean nbd_server_listen(NBDServer *server, QIOSocketAddress *addr, GError **error);
QIONetListener *nbd_server_get_listener(NBDServer *server);

/* Serves an already connected channel (the server takes a reference). */
void nbd_server_add_client(NBDServer *server, QIOChannel *ioc);
guint nbd_server_get_n_clients(NBDServer *server);

/* Stops listening and disconnects every client. */
void nbd_server_shutdown(NBDServer *server);

G_END_DECLS
