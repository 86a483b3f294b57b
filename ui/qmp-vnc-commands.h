/*
 * qiod's VNC commands: query-vnc, set_password, change-vnc-password and
 * display-reload (QEMU's names and replies).
 */
#pragma once

#include "monitor/qmp-server.h"
#include "ui/vnc-server.h"

namespace qio::ui {

/* @vnc may be NULL (no -vnc): query-vnc then says so and the others fail. */
void qmp_register_vnc_commands(monitor::QmpServer &server, VncServer *vnc);

}  // namespace qio::ui
