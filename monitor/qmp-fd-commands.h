/*
 * Descriptors passed to the monitor: `getfd` names the descriptor that
 * arrived (SCM_RIGHTS) with the command, `closefd` drops it.  Consumers
 * take them by name through fd: socket addresses (migrate fd:NAME); a name
 * that is a number and not in the table is an inherited descriptor.
 */
#pragma once

#include "monitor/qmp-server.h"

namespace qio::monitor {

/* Registers getfd and closefd and installs the process-wide fd: lookup. */
void qmp_register_fd_commands(QmpServer &server);

}  // namespace qio::monitor
