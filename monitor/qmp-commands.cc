#include "config.h"

#include "monitor/qmp-commands.h"
#include "monitor/qmp-error.h"

#include <glib/gi18n-lib.h>

#include <cstdio>
#include <string_view>

namespace qio::monitor {

static JsonNode *query_version() {
  unsigned major = 0, minor = 0, micro = 0;
  sscanf(PACKAGE_VERSION, "%u.%u.%u", &major, &minor, &micro);
  JsonObject *qemu = json_object_new();
  json_object_set_int_member(qemu, "major", major);
  json_object_set_int_member(qemu, "minor", minor);
  json_object_set_int_member(qemu, "micro", micro);
  JsonObject *obj = json_object_new();
  json_object_set_object_member(obj, "qemu", qemu);
  json_object_set_string_member(obj, "package", PACKAGE_STRING);
  return qmp_take_object(obj);
}

/* query-guest: the state is taken when the request runs, the digests on
 * a worker thread (about 1.3 s per GiB) while other clients are served. */
static void query_guest(host::Guest &guest, QmpCompletion done) {
  JsonObject *obj = json_object_new();
  json_object_set_string_member(obj, "status", guest.status());
  json_object_set_int_member(obj, "ram-size", static_cast<gint64>(guest.ram().size()));
  json_object_set_int_member(obj, "page-size", static_cast<gint64>(host::kGuestPageSize));
  json_object_set_int_member(obj, "dirty-pages", static_cast<gint64>(guest.ram().dirty_count()));
  auto &w = guest.workload();
  json_object_set_int_member(obj, "dirty-rate", static_cast<gint64>(w.dirty_rate()));
  json_object_set_int_member(obj, "disk-rate", static_cast<gint64>(w.disk_rate()));
  json_object_set_int_member(obj, "seed", static_cast<gint64>(w.seed()));
  json_object_set_int_member(obj, "pages-written", static_cast<gint64>(w.pages_written()));
  json_object_set_int_member(obj, "blocks-written", static_cast<gint64>(w.blocks_written()));
  JsonArray *disks = json_array_new();
  for (const auto &disk : guest.disks()) {
    JsonObject *d = json_object_new();
    json_object_set_string_member(d, "id", disk->id().c_str());
    json_object_set_string_member(d, "file", disk->path().c_str());
    json_object_set_int_member(d, "size", static_cast<gint64>(disk->size()));
    json_array_add_object_element(disks, d);
  }
  json_object_set_array_member(obj, "disks", disks);
  guest.digests_async([obj, done = std::move(done)](const host::Guest::Digests &digests,
                                                    GError *error) {
    if (error) {
      json_object_unref(obj);
      done(nullptr, error);
      return;
    }
    json_object_set_string_member(obj, "ram-digest", digests.ram.c_str());
    JsonArray *list = json_object_get_array_member(obj, "disks");
    for (guint i = 0; i < json_array_get_length(list) && i < digests.disks.size(); i++)
      json_object_set_string_member(json_array_get_object_element(list, i), "digest",
                                    digests.disks[i].c_str());
    done(qmp_take_object(obj), nullptr);
  });
}

static bool get_rate(JsonObject *args, const char *name, guint64 *out, GError **error) {
  if (!json_object_has_member(args, name)) return true;
  gint64 v = json_object_get_int_member(args, name);
  if (v < 0) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Parameter '%s' must not be negative (got %lld)"), name,
                static_cast<long long>(v));
    return false;
  }
  *out = static_cast<guint64>(v);
  return true;
}

void qmp_register_core_commands(QmpServer &server, host::Guest &guest,
                                std::function<void()> quit) {
  server.add_command({"query-version", {}, false,
                      [](JsonObject *, GError **) { return query_version(); }});
  server.add_command({"query-commands", {}, false, [&server](JsonObject *, GError **) {
                        JsonArray *list = json_array_new();
                        for (const auto &name : server.command_names()) {
                          JsonObject *c = json_object_new();
                          json_object_set_string_member(c, "name", name.c_str());
                          json_array_add_object_element(list, c);
                        }
                        return qmp_take_array(list);
                      }});
  server.add_command({"query-status", {}, false, [&guest](JsonObject *, GError **) {
                        JsonObject *obj = json_object_new();
                        json_object_set_string_member(obj, "status", guest.status());
                        json_object_set_boolean_member(obj, "running", guest.running());
                        json_object_set_boolean_member(obj, "singlestep", FALSE);
                        return qmp_take_object(obj);
                      }});
  server.add_command({"stop", {}, false, [&server, &guest](JsonObject *, GError **) {
                        /* As -S would: the guest stays paused after it came in. */
                        if (std::string_view(guest.status()) == "inmigrate")
                          guest.set_run_after_migration(false);
                        if (guest.stop()) server.emit_event("STOP", nullptr);
                        return qmp_empty_object();
                      }});
  server.add_command({"cont", {}, false,
                      [&server, &guest](JsonObject *, GError **error) -> JsonNode * {
                        std::string_view status = guest.status();
                        /* A destination's RAM is not all there yet. */
                        if (status == "inmigrate") {
                          guest.set_run_after_migration(true);
                          return qmp_empty_object();
                        }
                        /* The source's last round: its final RAM is on its way. */
                        if (status == "finish-migrate") {
                          g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                                      _("The guest is stopped for the last round of an "
                                        "outgoing migration; wait for it to end, or cancel it "
                                        "with migrate_cancel (a guest that was running then "
                                        "runs again)"));
                          return nullptr;
                        }
                        if (guest.cont()) server.emit_event("RESUME", nullptr);
                        return qmp_empty_object();
                      }});
  server.add_command({"quit", {}, false, [quit](JsonObject *, GError **) {
                        quit();
                        return qmp_empty_object();
                      }});
  server.add_command({"query-guest", {}, false, nullptr,
                      [&guest](JsonObject *, QmpCompletion done) {
                        query_guest(guest, std::move(done));
                      }});
  server.add_command({"screendump", {{"filename", QmpArgType::String}}, false,
                      [&guest](JsonObject *args, GError **error) -> JsonNode * {
                        if (!guest.framebuffer().save_ppm(
                                json_object_get_string_member(args, "filename"), error))
                          return nullptr;
                        return qmp_empty_object();
                      }});
  server.add_command({"guest-serial-write", {{"data", QmpArgType::String}}, false, nullptr,
                      [&guest](JsonObject *args, QmpCompletion done) {
                        guest.serial_input(json_object_get_string_member(args, "data"),
                                           [done = std::move(done)](std::string output) {
                                             JsonObject *obj = json_object_new();
                                             json_object_set_string_member(obj, "output",
                                                                           output.c_str());
                                             done(qmp_take_object(obj), nullptr);
                                           });
                      }});
  server.add_command({"guest-set-workload",
                      {{"dirty-rate", QmpArgType::Int, true}, {"disk-rate", QmpArgType::Int, true}},
                      false,
                      [&guest](JsonObject *args, GError **error) -> JsonNode * {
                        guint64 dirty = guest.workload().dirty_rate();
                        guint64 disk = guest.workload().disk_rate();
                        if (!get_rate(args, "dirty-rate", &dirty, error) ||
                            !get_rate(args, "disk-rate", &disk, error))
                          return nullptr;
                        guest.workload().set_dirty_rate(dirty);
                        guest.workload().set_disk_rate(disk);
                        return qmp_empty_object();
                      }});
}

}  // namespace qio::monitor
