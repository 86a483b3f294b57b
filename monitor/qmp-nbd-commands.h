/*
 * qiod's NBD server: nbd-server-start, nbd-server-add, block-export-add,
 * nbd-server-remove, block-export-del and nbd-server-stop.  The server
 * runs in the QMP server's main context and exports the guest's drives
 * (their image files, opened again by each export).
 */
#pragma once

#include "host/guest.h"
#include "monitor/qmp-server.h"
#include "qcrypto/tls-creds.h"

namespace qio::monitor {

/* The server lives as long as @server's command table. */
void qmp_register_nbd_commands(QmpServer &server, host::Guest &guest);

/* Shared with the block job commands. */
/* The guest drive @id, or DeviceNotFound. */
host::GuestDisk *qmp_find_drive(host::Guest &guest, const char *id, GError **error);
/* An optional unsigned argument @name: left as is when absent; refused
 * (naming it) outside 0..G_MAXUINT. */
bool qmp_get_count(JsonObject *args, const char *name, guint *out, GError **error);
/* A new reference to the TLS credentials @id, which must have @endpoint
 * (server: the NBD server, client: drive-mirror). */
QCryptoTLSCreds *qmp_lookup_tls_creds(const char *id, QCryptoTLSCredsEndpoint endpoint,
                                      GError **error);

}  // namespace qio::monitor
