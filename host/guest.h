/*
 * Guest: the synthetic guest qiod hosts instead of a CPU — RAM, disks, a
 * workload thread, a serial port with a line shell, and a framebuffer
 * showing the serial console.  Starts running; stop()/cont() pause and
 * resume the workload (RAM and disks then stay fixed).
 */
#pragma once

#include "host/framebuffer.h"
#include "host/guest-disk.h"
#include "host/guest-ram.h"
#include "host/serial-shell.h"
#include "host/workload.h"

#include <glib.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace qio::host {

struct DriveConfig {
  std::string id;
  std::string file;
};

struct GuestConfig {
  guint64 ram_size = G_GUINT64_CONSTANT(128) << 20;
  guint64 seed = 1;
  guint64 dirty_rate = 0;
  guint64 disk_rate = 0;
  std::vector<DriveConfig> drives;
};

class Guest {
 public:
  static std::unique_ptr<Guest> create(const GuestConfig &config, GError **error);
  ~Guest();

  bool running() const { return running_; }
  /* The run state QMP reports: "running", "paused", or one migration set
   * ("inmigrate", "postmigrate", "finish-migrate"); stop/cont clear it. */
  const char *status() const;
  void set_status(const char *status) { status_ = status ? status : ""; }
  /* Whether the guest runs once an incoming migration completes, if the
   * source's guest was running (QEMU's autostart): not under -S; `cont`
   * and `stop` during the migration change it. */
  void set_run_after_migration(bool run) { run_after_migration_ = run; }
  bool run_after_migration() const { return run_after_migration_; }
  /* Both return false when already in that state. */
  bool stop();
  bool cont();

  GuestRam &ram() { return *ram_; }
  Workload &workload() { return *workload_; }
  Framebuffer &framebuffer() { return framebuffer_; }
  SerialShell &shell() { return *shell_; }
  const std::vector<std::unique_ptr<GuestDisk>> &disks() const { return disks_; }
  GuestDisk *find_disk(std::string_view id) const;

  /* Serial port: bytes typed into the guest, and where its output goes
   * besides the framebuffer (a chardev); nullptr detaches.  @done, if
   * set, receives what the guest printed in response (echo included) once
   * the bytes have run; a `digest` runs on a worker, so that may be later,
   * from the main loop. */
  void serial_input(std::string_view bytes, SerialShell::Done done = {});
  void set_serial_output(std::function<void(std::string_view)> sink);

  /* SHA-256 of RAM and of each disk (in disks() order), computed on a
   * worker thread so the caller's main loop keeps running; @done runs in
   * the caller's thread-default context with the digests or an error
   * (owned by @done).  The guest waits for workers when destroyed. */
  struct Digests {
    std::string ram;
    std::vector<std::string> disks;
  };
  void digests_async(std::function<void(const Digests &digests, GError *error)> done);
  /* SHA-256 of RAM alone, likewise. */
  void ram_digest_async(std::function<void(std::string digest)> done);

  /* One line for `status` on the serial shell and for logs. */
  std::string status_line() const;

 private:
  Guest() = default;
  /* Runs @work on a worker thread, then @done in the caller's
   * thread-default context unless the guest is gone by then. */
  void run_in_worker(std::function<void()> work, std::function<void()> done);

  std::unique_ptr<GuestRam> ram_;
  std::vector<std::unique_ptr<GuestDisk>> disks_;
  std::unique_ptr<Workload> workload_;
  Framebuffer framebuffer_;
  std::unique_ptr<SerialShell> shell_;
  std::function<void(std::string_view)> serial_output_;
  bool running_ = false;
  std::string status_;
  bool run_after_migration_ = true;
  std::mutex workers_lock_;
  std::condition_variable workers_done_;
  int workers_ = 0;
  std::shared_ptr<Guest *> self_ = std::make_shared<Guest *>(this);
};

}  // namespace qio::host
