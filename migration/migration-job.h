/*
 * What the source and the destination of a migration share with the
 * monitor: the parameters and capabilities (QEMU's names), the status,
 * and the statistics query-migrate reports.  Threads update the
 * statistics; the main loop reads them.
 */
#pragma once

#include "host/guest.h"
#include "migration/migration-stream.h"
#include "migration/migration-transport.h"

#include <glib.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace qio::migration {

struct MigrationParameters {
  std::string tls_creds;    /* empty: plaintext */
  std::string tls_hostname; /* empty: the tcp: host */
  std::string tls_authz;    /* destination: who may migrate in */
  guint64 max_bandwidth = G_GUINT64_CONSTANT(128) << 20; /* bytes/s, as QEMU */
  guint64 downtime_limit = 300;                          /* ms */
  guint32 multifd_channels = 2;
  Compression multifd_compression = Compression::None;
};

struct MigrationCapabilities {
  bool multifd = false;
  bool return_path = false;
  bool zero_copy_send = false;
  bool events = false;
};

enum class MigrationStatus { None, Setup, Active, Device, Completed, Failed, Cancelling, Cancelled };
const char *migration_status_name(MigrationStatus status);

struct MigrationStats {
  std::atomic<MigrationStatus> status{MigrationStatus::None};
  std::atomic<guint64> transferred{0};  /* bytes on all channels */
  std::atomic<guint64> remaining{0};    /* dirty bytes after the last round */
  std::atomic<guint64> ram_total{0};
  std::atomic<guint64> pages{0};        /* pages sent or received */
  std::atomic<guint64> iterations{0};
  std::atomic<guint64> bandwidth{0};    /* bytes/s of the last round */
  std::atomic<gint64> start_us{0};
  std::atomic<gint64> setup_us{0};
  std::atomic<gint64> end_us{0};
  std::atomic<gint64> downtime_us{0};
  bool outgoing = false; /* set before the job starts */

  std::mutex lock; /* for the members below */
  std::vector<ChannelReport> channels;
  std::string error;
};

/* What a job needs from its surroundings; the callbacks run on the main
 * loop's thread. */
struct MigrationContext {
  host::Guest &guest;
  GMainContext *main_context;
  /* A status change (for MIGRATION events and the run state). */
  std::function<void(MigrationStatus)> status_changed;
  /* Runs @fn on the main loop and waits for it (at once when called from
   * the main loop). */
  std::function<void(std::function<void()>)> run_on_main;
  /* Emits a guest run-state event (STOP, RESUME). */
  std::function<void(const char *)> guest_event;
  /* Completes the ready drive mirrors at switch-over (main loop; calls
   * its argument there with false when one failed).  Empty: none. */
  std::function<void(std::function<void(bool)>)> complete_mirrors;
};

/* Adds @report to @stats under its lock. */
void migration_stats_add_channel(MigrationStats &stats, const ChannelReport &report);

/* The device state (serial, framebuffer, workload, disk metadata) as JSON,
 * and loading it into the destination's guest.  Main loop only. */
/* @running: whether the source guest ran before the migration stopped it
 * (the destination then resumes it). */
std::string migration_save_devices(host::Guest &guest, bool running);
bool migration_load_devices(host::Guest &guest, const std::string &json, bool &running,
                            GError **error);

}  // namespace qio::migration
