#include "config.h"

#include "migration/qmp-migration-commands.h"

namespace qio::migration {

using monitor::QmpArgType;

void qmp_register_migration_commands(monitor::QmpServer &server, Migration &m) {
  /* blk, inc, detach and resume are QEMU's; qiod always detaches, and
   * block migration is NBD's job. */
  server.add_command({"migrate",
                      {{"uri", QmpArgType::String},
                       {"detach", QmpArgType::Bool, true},
                       {"blk", QmpArgType::Bool, true},
                       {"inc", QmpArgType::Bool, true},
                       {"resume", QmpArgType::Bool, true}},
                      false,
                      [&m](JsonObject *args, GError **error) -> JsonNode * {
                        if (!m.migrate(json_object_get_string_member(args, "uri"), error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"migrate_cancel", {}, false, [&m](JsonObject *, GError **error) -> JsonNode * {
                        if (!m.cancel(error)) return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"migrate-incoming",
                      {{"uri", QmpArgType::String}},
                      false,
                      [&m](JsonObject *args, GError **error) -> JsonNode * {
                        if (!m.incoming(json_object_get_string_member(args, "uri"), error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"query-migrate", {}, false,
                      [&m](JsonObject *, GError **) { return m.query(); }});
  server.add_command({"migrate-set-parameters",
                      {{"tls-creds", QmpArgType::Any, true},
                       {"tls-hostname", QmpArgType::Any, true},
                       {"tls-authz", QmpArgType::Any, true},
                       {"max-bandwidth", QmpArgType::Int, true},
                       {"downtime-limit", QmpArgType::Int, true},
                       {"multifd-channels", QmpArgType::Int, true},
                       {"multifd-compression", QmpArgType::String, true}},
                      false,
                      [&m](JsonObject *args, GError **error) -> JsonNode * {
                        if (!m.set_parameters(args, error)) return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"query-migrate-parameters", {}, false,
                      [&m](JsonObject *, GError **) { return m.query_parameters(); }});
  server.add_command({"migrate-set-capabilities",
                      {{"capabilities", QmpArgType::Array}},
                      false,
                      [&m](JsonObject *args, GError **error) -> JsonNode * {
                        if (!m.set_capabilities(json_object_get_array_member(args, "capabilities"),
                                                error))
                          return nullptr;
                        return monitor::qmp_empty_object();
                      }});
  server.add_command({"query-migrate-capabilities", {}, false,
                      [&m](JsonObject *, GError **) { return m.query_capabilities(); }});
}

}  // namespace qio::migration
