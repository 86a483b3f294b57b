/*
 * The migration QMP commands: migrate, migrate_cancel, migrate-incoming,
 * query-migrate, migrate-set-parameters, query-migrate-parameters,
 * migrate-set-capabilities, query-migrate-capabilities.
 */
#pragma once

#include "migration/migration.h"
#include "monitor/qmp-server.h"

namespace qio::migration {

void qmp_register_migration_commands(monitor::QmpServer &server, Migration &migration);

}  // namespace qio::migration
