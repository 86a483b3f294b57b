/*
 * qiod's QMP commands: the protocol basics (query-version,
 * query-commands), run state (query-status, stop, cont, quit) and the
 * synthetic guest (query-guest, guest-set-workload, guest-serial-write,
 * screendump).
 */
#pragma once

#include "host/guest.h"
#include "monitor/qmp-server.h"

#include <functional>

namespace qio::monitor {

/* @quit is called by the `quit` handler before its reply is queued: it
 * must defer the shutdown (an idle) so that the reply goes out first. */
void qmp_register_core_commands(QmpServer &server, host::Guest &guest,
                                std::function<void()> quit);

}  // namespace qio::monitor
