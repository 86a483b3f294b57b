/*
 * qiod's NBD server: nbd-server-start, nbd-server-add, block-export-add,
 * nbd-server-remove, block-export-del and nbd-server-stop.  The server
 * runs in the QMP server's main context and exports the guest's drives
 * (their image files, opened again by each export).
 */
#pragma once

#include "host/guest.h"
#include "monitor/qmp-server.h"

namespace qio::monitor {

/* The server lives as long as @server's command table. */
void qmp_register_nbd_commands(QmpServer &server, host::Guest &guest);

}  // namespace qio::monitor
