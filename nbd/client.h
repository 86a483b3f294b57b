/*
 * NBDClient: a blocking NBD client over a qio channel.  It connects to a
 * TCP or UNIX address (or an nbd:// URI), negotiates the fixed newstyle
 * handshake with structured replies and base:allocation when the server
 * offers them, and reads, writes, flushes and queries block status with
 * one request in flight.  Use it from a worker thread or a tool's main.
 *
 * URIs: nbd://HOST[:PORT]/EXPORT, nbds://... (TLS),
 * nbd+unix:///EXPORT?socket=PATH, nbds+unix:///EXPORT?socket=PATH.
 */
#pragma once

#include "qcrypto/tls-creds.h"
#include "qio/socket-address.h"

G_BEGIN_DECLS

#define NBD_TYPE_CLIENT (nbd_client_get_type())
G_DECLARE_FINAL_TYPE(NBDClient, nbd_client, NBD, CLIENT, GObject)

/* What the server told about one export. */
typedef struct {
  char *name;
  char *description;
  guint64 size;
  guint16 flags;        /* NBD_FLAG_* transmission flags */
  guint32 min_block;    /* 0 when the server sent no NBD_INFO_BLOCK_SIZE */
  guint32 preferred_block;
  guint32 max_block;
} NBDExportInfo;

void nbd_export_info_free(NBDExportInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NBDExportInfo, nbd_export_info_free)

/* One block status extent. */
typedef struct {
  guint32 length;
  guint32 flags; /* NBD_STATE_HOLE | NBD_STATE_ZERO */
} NBDExtent;

/* Splits an NBD URI; *@tls tells nbds from nbd.  Malformed URIs (unknown
 * scheme, missing socket for +unix, a host for +unix, bad port, unknown
 * query parameters) fail with NBD_ERROR_INVALID_URI naming the URI. */
gboolean nbd_client_parse_uri(const char *uri, QIOSocketAddress **addr, char **export_name,
                              gboolean *tls, GError **error);

NBDClient *nbd_client_new(void);

/* TLS: @creds are client credentials (x509, PSK or anon); the client then
 * insists on NBD_OPT_STARTTLS.  @hostname is checked against the server
 * certificate (default: the host connected to; needed for x509 over UNIX
 * sockets). */
void nbd_client_set_tls_creds(NBDClient *client, QCryptoTLSCreds *creds);
void nbd_client_set_tls_hostname(NBDClient *client, const char *hostname);
/* QEMU's reconnect-delay: when the connection breaks under a command (or
 * the server answers that it is shutting down), the client connects again
 * to the same TCP or UNIX address and export, trying for up to @seconds
 * (connects and handshakes cut off at that time; nbd_client_abort() ends
 * the wait), and sends the command again.  An export that comes back
 * different (size, read-only, without the flush it offered) or a
 * server that fails TLS verification or the protocol is not tried again.  A command may reach the server more than once; writes
 * acknowledged but not flushed on a lost connection may be lost with it:
 * see nbd_client_get_connections().  0 (the default): no retry. */
void nbd_client_set_reconnect_delay(NBDClient *client, guint seconds);
/* How many times the client has connected (nbd_client_connect and each
 * reconnect): a caller that sees it change since its last flush must
 * write again what it wrote since then. */
guint64 nbd_client_get_connections(NBDClient *client);

/* Connects and enters the transmission phase on @export_name. */
gboolean nbd_client_connect(NBDClient *client, QIOSocketAddress *addr,
                            const char *export_name, GError **error);
/* As above from a URI; nbds:// requires TLS credentials. */
gboolean nbd_client_connect_uri(NBDClient *client, const char *uri, GError **error);

/* Connects, lists every export with its details (NBD_OPT_LIST then
 * NBD_OPT_INFO for each) and disconnects.  Returns a GPtrArray of
 * NBDExportInfo, or NULL with @error set. */
GPtrArray *nbd_client_list(NBDClient *client, QIOSocketAddress *addr, GError **error);

/* The export nbd_client_connect entered (borrowed). */
const NBDExportInfo *nbd_client_get_info(NBDClient *client);
gboolean nbd_client_has_structured_replies(NBDClient *client);
gboolean nbd_client_has_base_allocation(NBDClient *client);

/* Commands; a server-side failure is NBD_ERROR_COMMAND naming the errno.
 * Only what the server offered goes out: a @fua write to a server without
 * FUA is followed by a flush instead, a flush is a no-op where the server
 * offers none, and trim or write-zeroes it does not offer fail with
 * NBD_ERROR_UNSUPPORTED. */
gboolean nbd_client_read(NBDClient *client, guint64 offset, void *buf, gsize len,
                         GError **error);
gboolean nbd_client_write(NBDClient *client, guint64 offset, const void *buf, gsize len,
                          gboolean fua, GError **error);
gboolean nbd_client_flush(NBDClient *client, GError **error);
gboolean nbd_client_trim(NBDClient *client, guint64 offset, guint32 len, GError **error);
gboolean nbd_client_write_zeroes(NBDClient *client, guint64 offset, guint32 len,
                                 GError **error);
/* base:allocation extents from @offset (at most @len bytes): a GArray of
 * NBDExtent. */
GArray *nbd_client_block_status(NBDClient *client, guint64 offset, guint32 len,
                                GError **error);

/* Sends NBD_CMD_DISC and closes the channel. */
void nbd_client_disconnect(NBDClient *client);

/* From any thread, while another thread uses @client: its I/O blocked on a
 * peer that stopped answering fails at once, and so does every later call
 * (connecting included).  For cancelling a job whose target hangs. */
void nbd_client_abort(NBDClient *client);

G_END_DECLS
