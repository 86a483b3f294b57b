/*
 * QMP commands on user-creatable objects, through the object registry
 * (qom/): object-add, object-del, qom-list-types.
 */
#pragma once

#include "monitor/qmp-server.h"

#include <functional>

namespace qio::monitor {

/* @added (may be empty) runs after each successful object-add. */
void qmp_register_object_commands(QmpServer &server, std::function<void()> added);

}  // namespace qio::monitor
