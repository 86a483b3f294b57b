/*
 * QMP commands on chardevs: chardev-add, chardev-remove, query-chardev,
 * ringbuf-write, ringbuf-read (QEMU's names, arguments and replies).
 */
#pragma once

#include "chardev/chardev-set.h"
#include "monitor/qmp-server.h"

namespace qio::chardev {

void qmp_register_chardev_commands(monitor::QmpServer &server, ChardevSet &set);

}  // namespace qio::chardev
