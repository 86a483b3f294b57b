/*
 * MigrationSource: the outgoing side.  One thread runs the migration and
 * sends on the main channel; with multifd, each further channel has its
 * own thread that connects, runs its TLS handshake and sends the pages
 * queued for it.  Pages go out as iovecs straight from guest memory.
 */
#pragma once

#include "migration/migration-job.h"
#include "migration/page-compressor.h"
#include "qcrypto/tls-creds.h"

#include <gio/gio.h>
#include <glib.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qio::migration {

class MigrationSource {
 public:
  /* @creds: a reference is taken (NULL: plaintext). */
  MigrationSource(MigrationContext context, MigrationUri uri, MigrationParameters params,
                  MigrationCapabilities caps, QCryptoTLSCreds *creds,
                  std::shared_ptr<MigrationStats> stats);
  ~MigrationSource();
  MigrationSource(const MigrationSource &) = delete;
  MigrationSource &operator=(const MigrationSource &) = delete;

  void start();
  /* Stops the migration from the main loop; the thread ends soon after
   * and reports `cancelled`. */
  void cancel();
  bool finished() const { return finished_.load(); }
  /* Joins the thread once finished() (main loop only). */
  void join();

 private:
  struct Batch {
    RecordType type = RecordType::Ram;
    guint32 count = 0;
    guint64 arg = 0;
    std::array<guint64, kPagesPerRecord> pages;
  };
  struct Sender {
    guint32 index = 0;
    QIOChannel *ioc = nullptr;
    std::unique_ptr<PageCompressor> compressor;
    std::thread thread;
    std::mutex lock;
    std::condition_variable cv;
    std::deque<Batch> queue;
    guint64 synced_round = 0;
    bool ready = false;
    bool done = false;
  };

  void run();
  bool setup_main(GError **error);
  bool setup_multifd(GError **error);
  void sender_main(Sender &sender);
  bool open_channel(const char *name, QIOChannel **out, GError **error);
  bool send_hello(QIOChannel *ioc, ChannelKind kind, guint32 index, GError **error);
  bool send_pages(QIOChannel *ioc, const guint64 *pages, guint32 count, GError **error);
  bool send_compressed(QIOChannel *ioc, PageCompressor &compressor, const guint64 *pages,
                       guint32 count, GError **error);
  /* Sends (or queues) the dirty pages in @bitmap; false on failure. */
  bool send_round(const std::vector<guint64> &bitmap, bool limit_rate, GError **error);
  bool end_round(guint64 round, GError **error);
  bool push(Sender &sender, const Batch &batch);
  bool finish(GError **error);
  /* Nagle's algorithm on every channel: on for the bulk rounds, where it
   * packs 16 KiB records into full segments (loopback's are 64 KiB); off
   * for the handshakes before them and the small records of the
   * switch-over, which must not wait for the destination's delayed ACK.
   * Turning it off sends what it holds at once. */
  void set_nagle(bool on);
  /* Completes the ready drive mirrors and waits for them; false when one
   * failed or the migration was cancelled meanwhile. */
  bool complete_mirrors(GError **error);
  void fail(GError *error);
  bool aborted() const { return aborted_.load(); }
  void abort_channels();
  void set_status(MigrationStatus status);
  void throttle(guint64 bytes);

  MigrationContext ctx_;
  MigrationUri uri_;
  MigrationParameters params_;
  MigrationCapabilities caps_;
  QCryptoTLSCreds *creds_;
  std::shared_ptr<MigrationStats> stats_;
  std::string hostname_;

  QIOChannel *main_ = nullptr;
  /* The main channel's TLS session, resumed by the multifd channels. */
  GBytes *resume_ = nullptr;
  /* Grown by the migration thread only, under channels_lock_: cancel()
   * walks it from the main thread. */
  std::vector<std::unique_ptr<Sender>> senders_;
  std::thread thread_;
  std::atomic<bool> aborted_{false};
  GCancellable *connecting_ = g_cancellable_new(); /* cancelled with the channels */
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::mutex error_lock_;
  GError *error_ = nullptr;
  std::mutex channels_lock_; /* guards transports_ and the growth of senders_ */
  /* Every transport opened (a reference each), so that a cancel also
   * interrupts a connection still in its TLS handshake. */
  std::vector<QIOChannel *> transports_;
  bool zero_copy_ = false;
  bool stopped_guest_ = false;
  bool was_running_ = false;
  gint64 throttle_start_us_ = 0;
  guint64 throttle_bytes_ = 0;
  guint32 next_sender_ = 0;
};

}  // namespace qio::migration
