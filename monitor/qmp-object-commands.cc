#include "config.h"

#include "monitor/qmp-object-commands.h"
#include "qom/object-registry.h"

namespace qio::monitor {

static JsonNode *list_types(JsonObject *args) {
  const char *implements = json_object_get_string_member_with_default(args, "implements", nullptr);
  GType base = implements ? qom_type_lookup(implements) : G_TYPE_INVALID;
  JsonArray *list = json_array_new();
  if (implements && base == G_TYPE_INVALID) return qmp_take_array(list);
  g_autofree char *names = qom_type_list();
  g_auto(GStrv) parts = g_strsplit(names, ",", -1);
  for (char **p = parts; *p; p++) {
    const char *name = g_strstrip(*p);
    if (!*name) continue;
    GType type = qom_type_lookup(name);
    if (base != G_TYPE_INVALID && !g_type_is_a(type, base)) continue;
    JsonObject *t = json_object_new();
    json_object_set_string_member(t, "name", name);
    json_object_set_boolean_member(t, "abstract", G_TYPE_IS_ABSTRACT(type));
    json_array_add_object_element(list, t);
  }
  return qmp_take_array(list);
}

void qmp_register_object_commands(QmpServer &server, std::function<void()> added) {
  server.add_command({"object-add",
                      {{"qom-type", QmpArgType::String}, {"id", QmpArgType::String}},
                      true,
                      [added](JsonObject *args, GError **error) -> JsonNode * {
                        if (!qom_object_add_qmp(args, error)) return nullptr;
                        if (added) added();
                        return qmp_empty_object();
                      }});
  server.add_command({"object-del", {{"id", QmpArgType::String}}, false,
                      [](JsonObject *args, GError **error) -> JsonNode * {
                        if (!qom_object_del_qmp(args, error)) return nullptr;
                        return qmp_empty_object();
                      }});
  server.add_command({"qom-list-types",
                      {{"implements", QmpArgType::String, true},
                       {"abstract", QmpArgType::Bool, true}},
                      false, [](JsonObject *args, GError **) { return list_types(args); }});
}

}  // namespace qio::monitor
