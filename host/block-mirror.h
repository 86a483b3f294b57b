/*
 * BlockMirror: drive-mirror of a guest disk to an NBD export.  A worker
 * thread copies the whole disk through NBDClient while the disk tracks the
 * guest's writes, then re-copies dirty blocks until a pass finds almost
 * nothing left (ready).  It keeps following the guest's writes until
 * complete() (or cancel() once ready): a final pass copies what is still
 * dirty (freezing the disk's writes if the guest outruns it), flushes the
 * target and ends.  Cancelling before ready stops at once.  With a
 * reconnect delay the target is flushed every so often, and what a lost
 * connection carried since its last flush is written again.
 *
 * Callbacks run in the GMainContext given to start(), never on the worker.
 */
#pragma once

#include "host/guest-disk.h"
#include "nbd/client.h"
#include "qcrypto/tls-creds.h"

#include <glib.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qio::host {

struct MirrorConfig {
  std::string job_id;
  std::string target; /* an NBD URI */
  QCryptoTLSCreds *tls_creds = nullptr; /* client credentials; the mirror refs them */
  std::string tls_hostname;
  guint reconnect_delay = 0; /* seconds; see nbd_client_set_reconnect_delay */
};

class BlockMirror {
 public:
  enum class Status { Running, Ready, Concluded };
  struct Progress {
    guint64 len;    /* bytes to copy so far: the disk plus re-copied blocks */
    guint64 offset; /* bytes copied */
    Status status;
  };
  /* @error is null on success; @cancelled: cancel() before ready. */
  using DoneFunc = std::function<void(BlockMirror &, const GError *error, bool cancelled)>;

  /* The progress at the moment the job became ready (offset == len). */
  using ReadyFunc = std::function<void(BlockMirror &, const Progress &at)>;

  /* Starts the worker; @disk must outlive the mirror and not be mirrored
   * twice at once.  @ready is called once, when the job becomes ready;
   * @done once at the end (the mirror may be destroyed from it). */
  BlockMirror(GuestDisk &disk, const MirrorConfig &config, GMainContext *context,
              ReadyFunc ready, DoneFunc done);
  /* Cancels and waits for the worker. */
  ~BlockMirror();
  BlockMirror(const BlockMirror &) = delete;
  BlockMirror &operator=(const BlockMirror &) = delete;

  const std::string &job_id() const { return config_.job_id; }
  GuestDisk &disk() const { return disk_; }
  Progress progress() const;
  /* False (nothing done) when the job is not ready yet. */
  bool complete();
  /* Before ready, or with @force: stops at once (the target is left
   * inconsistent).  A ready job without @force finishes like complete(),
   * as QEMU's mirror does. */
  void cancel(bool force = false);

 private:
  void run();
  bool copy_range(NBDClient *client, guint64 offset, guint64 len,
                  std::vector<guint8> &buf, GError **error, bool progress = true);
  bool checkpoint(NBDClient *client, std::vector<guint8> &buf, GError **error);
  bool copy_dirty(NBDClient *client, std::vector<guint8> &buf, guint64 *copied,
                  GError **error);
  void finish(GError *error, bool cancelled);
  static gboolean dispatch(GSource *source, GSourceFunc, gpointer) noexcept;
  void notify();

  GuestDisk &disk_;
  MirrorConfig config_;
  ReadyFunc ready_cb_;
  Progress ready_at_ = {};
  DoneFunc done_cb_;
  GSource *source_;
  mutable std::mutex lock_;
  std::condition_variable wake_;
  guint64 len_ = 0;
  guint64 offset_ = 0;
  Status status_ = Status::Running;
  bool complete_ = false;
  bool cancel_ = false;
  bool ready_reported_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
  /* Set once by the worker; aborted by cancel() so that a target which
   * stopped answering cannot hold the worker (and qiod's exit). */
  NBDClient *client_ = nullptr;
  /* Worker only.  Writes not yet covered by a flush on the connection that
   * carried them (offset, length, connection number): after a reconnect
   * those of older connections may be lost and are written again. */
  struct Written {
    guint64 offset, len, connection;
  };
  std::vector<Written> unflushed_;
  guint64 unflushed_bytes_ = 0;
  guint64 flush_every_; /* bytes between flushes; shrinks while connections break */
  GError *error_ = nullptr;
  std::thread thread_;
};

}  // namespace qio::host
