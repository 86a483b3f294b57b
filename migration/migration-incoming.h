/*
 * MigrationIncoming: the destination.  Listens on a tcp:/unix: URI (or
 * takes the one channel of fd:/exec:); each accepted channel gets its own
 * thread, which runs the TLS handshake and reads the channel's hello.
 * The first channel admitted is the main one: it validates the stream,
 * carries the device state and, without multifd, the pages; multifd
 * channels carry pages straight into guest memory and meet at each round's
 * end.  With TLS on a listener, a channel is admitted once its handshake
 * succeeds: a peer that fails it, stalls in it, or is the oldest of too
 * many is dropped and the migration keeps waiting, so that nobody without
 * credentials can end it.
 */
#pragma once

#include "migration/migration-job.h"
#include "migration/page-compressor.h"
#include "qcrypto/authz.h"
#include "qcrypto/tls-creds.h"
#include "qio/log-limiter.h"
#include "qio/net-listener.h"

#include <glib.h>

#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qio::migration {

class MigrationIncoming {
 public:
  /* @done runs on the main loop once: @error is NULL on success. */
  using DoneFunc = std::function<void(const GError *error)>;

  MigrationIncoming(MigrationContext context, MigrationUri uri, MigrationParameters params,
                    MigrationCapabilities caps, QCryptoTLSCreds *creds, QCryptoAuthz *authz,
                    std::shared_ptr<MigrationStats> stats, DoneFunc done);
  ~MigrationIncoming();
  MigrationIncoming(const MigrationIncoming &) = delete;
  MigrationIncoming &operator=(const MigrationIncoming &) = delete;

  /* Listens (or opens the single channel); false if that fails. */
  bool start(GError **error);

 private:
  static void on_client(QIONetListener *listener, QIOChannelSocket *client,
                        gpointer data) noexcept;
  struct ChannelThread {
    std::thread thread;
    bool finished = false; /* under lock_: only the join is left */
  };
  /* Why a TLS handshake on the listener ended without a channel. */
  enum class Cut { None, Failed, TimedOut, Evicted, Extra, Ended };
  struct PendingHandshake {
    QIOChannel *plain; /* a reference of its own; only its thread closes it */
    std::string host;  /* the peer's address without the port */
    Cut cut = Cut::None;
  };
  PendingHandshake *eviction_candidate_locked();
  void add_channel(QIOChannel *plain);
  void channel_thread(QIOChannel *plain, bool admitted, guint32 seq);
  QIOChannel *shake_hands(QIOChannel *plain, bool time_limit, ChannelReport &report,
                          GError **error);
  void cut_locked(PendingHandshake &h, Cut why);
  void cut_pending(QIOChannel *plain, Cut why);
  Cut leave_pending(QIOChannel *plain, QIOChannel *ioc, guint32 *seq);
  void log_drop(const std::string &peer, const char *why);
  guint32 channel_limit() const;
  void reap_threads();
  bool main_flow(QIOChannel *ioc, const Hello &hello, GError **error);
  bool multifd_flow(QIOChannel *ioc, const Hello &hello, GError **error);
  bool receive_pages(QIOChannel *ioc, guint32 count, GError **error);
  bool receive_compressed(QIOChannel *ioc, PageCompressor &compressor, guint32 count,
                          guint64 len, GError **error);
  bool read_page_numbers(QIOChannel *ioc, guint32 count, guint64 *pages, GError **error);
  bool barrier(guint32 index, guint64 round, GError **error);
  bool read_hello(QIOChannel *plain, QIOChannel *ioc, guint8 *buf, const char *name,
                  GError **error);
  void fail(GError *error);
  bool aborted() const { return aborted_.load(); }
  void abort_channels();
  void set_status(MigrationStatus status);
  std::string refusal(const Hello &hello) const;

  MigrationContext ctx_;
  MigrationUri uri_;
  MigrationParameters params_;
  MigrationCapabilities caps_;
  QCryptoTLSCreds *creds_;
  QCryptoAuthz *authz_;
  std::shared_ptr<MigrationStats> stats_;
  DoneFunc done_;

  QIONetListener *listener_ = nullptr;
  std::mutex lock_; /* everything below */
  std::condition_variable cv_;
  std::list<ChannelThread> threads_;
  std::vector<QIOChannel *> channels_;
  guint32 admitted_ = 0; /* channels given a role; the first is the main one */
  std::vector<PendingHandshake> pending_; /* TLS handshakes on the listener, oldest first */
  std::string source_host_; /* whence the first admitted channel came */
  /* Seals this migration's TLS session tickets (multifd over TLS); given
   * to new sessions until every channel is in. */
  GBytes *ticket_key_ = nullptr;
  guint32 expected_multifd_ = 0;
  std::vector<bool> multifd_seen_;
  guint32 multifd_finished_ = 0;
  guint32 barrier_arrived_ = 0;
  guint64 barrier_generation_ = 0;
  bool main_ready_ = false;
  GError *error_ = nullptr;
  std::atomic<bool> aborted_{false};
  LogLimiter drop_log_; /* the "dropping connection" lines */
};

}  // namespace qio::migration
