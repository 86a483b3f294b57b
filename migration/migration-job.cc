#include "config.h"

#include "migration/migration-job.h"
#include "qcrypto/json-parse.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

namespace qio::migration {

const char *migration_status_name(MigrationStatus status) {
  switch (status) {
    case MigrationStatus::None:
      return "none";
    case MigrationStatus::Setup:
      return "setup";
    case MigrationStatus::Active:
      return "active";
    case MigrationStatus::Device:
      return "device";
    case MigrationStatus::Completed:
      return "completed";
    case MigrationStatus::Failed:
      return "failed";
    case MigrationStatus::Cancelling:
      return "cancelling";
    case MigrationStatus::Cancelled:
      return "cancelled";
  }
  return "none";
}

void migration_stats_add_channel(MigrationStats &stats, const ChannelReport &report) {
  std::lock_guard guard(stats.lock);
  stats.channels.push_back(report);
}

std::string migration_save_devices(host::Guest &guest, bool running) {
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "serial-line");
  json_builder_add_string_value(b, guest.shell().pending_line().c_str());
  json_builder_set_member_name(b, "serial-overflow");
  json_builder_add_boolean_value(b, guest.shell().overflowed());
  json_builder_set_member_name(b, "serial-running");
  json_builder_add_string_value(b, guest.shell().running_command().c_str());
  json_builder_set_member_name(b, "serial-queued");
  json_builder_add_string_value(b, guest.shell().queued_input().c_str());
  auto &fb = guest.framebuffer();
  json_builder_set_member_name(b, "console-text");
  json_builder_add_string_value(b, fb.text().c_str());
  json_builder_set_member_name(b, "cursor-col");
  json_builder_add_int_value(b, fb.cursor_col());
  json_builder_set_member_name(b, "cursor-row");
  json_builder_add_int_value(b, fb.cursor_row());
  auto &w = guest.workload();
  auto counters = w.counters();
  json_builder_set_member_name(b, "running");
  json_builder_add_boolean_value(b, running);
  json_builder_set_member_name(b, "dirty-rate");
  json_builder_add_int_value(b, static_cast<gint64>(w.dirty_rate()));
  json_builder_set_member_name(b, "disk-rate");
  json_builder_add_int_value(b, static_cast<gint64>(w.disk_rate()));
  json_builder_set_member_name(b, "generation");
  json_builder_add_int_value(b, static_cast<gint64>(counters.generation));
  json_builder_set_member_name(b, "pages-written");
  json_builder_add_int_value(b, static_cast<gint64>(counters.pages_total));
  json_builder_set_member_name(b, "blocks-written");
  json_builder_add_int_value(b, static_cast<gint64>(counters.blocks_total));
  json_builder_set_member_name(b, "disks");
  json_builder_begin_array(b);
  for (const auto &disk : guest.disks()) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, disk->id().c_str());
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, static_cast<gint64>(disk->size()));
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *text = json_to_string(root, FALSE);
  return text;
}

static bool malformed(GError **error, const char *what) {
  g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("The migration stream's device state is malformed (%s); the source and this "
                "qiod disagree on the format"),
              what);
  return false;
}

bool migration_load_devices(host::Guest &guest, const std::string &json, bool &running,
                            GError **error) {
  g_autoptr(JsonNode) root =
      qcrypto_json_parse(json.data(), static_cast<gssize>(json.size()), nullptr);
  if (!root) return malformed(error, "not JSON, or nested too deep");
  if (!JSON_NODE_HOLDS_OBJECT(root)) return malformed(error, "not an object");
  JsonObject *o = json_node_get_object(root);
  static const char *const ints[] = {"cursor-col", "cursor-row", "dirty-rate", "disk-rate",
                                     "generation", "pages-written", "blocks-written"};
  for (const char *name : ints) {
    JsonNode *n = json_object_get_member(o, name);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
      return malformed(error, name);
  }
  for (const char *name : {"serial-line", "console-text"}) {
    JsonNode *n = json_object_get_member(o, name);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
      return malformed(error, name);
  }
  /* Absent from older sources: a shell that was not busy. */
  for (const char *name : {"serial-running", "serial-queued"}) {
    JsonNode *n = json_object_get_member(o, name);
    if (n && (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING))
      return malformed(error, name);
  }
  if (!host::SerialShell::valid_running_command(
          json_object_get_string_member_with_default(o, "serial-running", "")))
    return malformed(error, "serial-running");
  JsonNode *disks_node = json_object_get_member(o, "disks");
  if (!disks_node || !JSON_NODE_HOLDS_ARRAY(disks_node)) return malformed(error, "disks");
  JsonArray *disks = json_node_get_array(disks_node);
  if (json_array_get_length(disks) != guest.disks().size()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("The source guest has %u disk(s) but this one has %u; start the destination "
                  "with the same -drive options"),
                json_array_get_length(disks), static_cast<unsigned>(guest.disks().size()));
    return false;
  }
  for (guint i = 0; i < json_array_get_length(disks); i++) {
    JsonNode *dn = json_array_get_element(disks, i);
    if (!JSON_NODE_HOLDS_OBJECT(dn)) return malformed(error, "disk");
    JsonObject *d = json_node_get_object(dn);
    const char *id = json_object_get_string_member_with_default(d, "id", "");
    gint64 size = json_object_get_int_member_with_default(d, "size", -1);
    host::GuestDisk *disk = guest.find_disk(id);
    if (!disk || static_cast<gint64>(disk->size()) != size) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("The source's disk '%s' (%lld bytes) has no disk of the same id and size "
                    "here; start the destination with the same -drive options"),
                  id, static_cast<long long>(size));
      return false;
    }
  }
  auto &fb = guest.framebuffer();
  if (!fb.restore(json_object_get_string_member(o, "console-text"),
                  static_cast<int>(json_object_get_int_member(o, "cursor-col")),
                  static_cast<int>(json_object_get_int_member(o, "cursor-row"))))
    return malformed(error, "console");
  guest.shell().restore(json_object_get_string_member(o, "serial-line"),
                        json_object_get_boolean_member_with_default(o, "serial-overflow", FALSE),
                        json_object_get_string_member_with_default(o, "serial-running", ""),
                        json_object_get_string_member_with_default(o, "serial-queued", ""));
  running = json_object_get_boolean_member_with_default(o, "running", FALSE);
  auto &w = guest.workload();
  w.set_dirty_rate(static_cast<guint64>(json_object_get_int_member(o, "dirty-rate")));
  w.set_disk_rate(static_cast<guint64>(json_object_get_int_member(o, "disk-rate")));
  w.restore_counters({static_cast<guint64>(json_object_get_int_member(o, "generation")),
                      static_cast<guint64>(json_object_get_int_member(o, "pages-written")),
                      static_cast<guint64>(json_object_get_int_member(o, "blocks-written"))});
  return true;
}

}  // namespace qio::migration
