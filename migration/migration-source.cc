#include "config.h"

#include "migration/migration-source.h"
#include "qcrypto/tls-creds-x509.h"
#include "qio/channel-socket.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <bit>
#include <chrono>
#include <cstring>

namespace qio::migration {

namespace {

/* Batches queued per multifd channel: enough to keep it busy while the
 * main thread scans the bitmap, few enough to bound what a cancel drops. */
constexpr gsize kQueueDepth = 8;

}  // namespace

MigrationSource::MigrationSource(MigrationContext context, MigrationUri uri,
                                 MigrationParameters params, MigrationCapabilities caps,
                                 QCryptoTLSCreds *creds, std::shared_ptr<MigrationStats> stats)
    : ctx_(std::move(context)), uri_(std::move(uri)), params_(std::move(params)), caps_(caps),
      creds_(creds ? QCRYPTO_TLS_CREDS(g_object_ref(creds)) : nullptr),
      stats_(std::move(stats)) {
  zero_copy_ = caps_.zero_copy_send && !creds_;
  hostname_ = params_.tls_hostname.empty() ? uri_.host() : params_.tls_hostname;
}

MigrationSource::~MigrationSource() {
  if (thread_.joinable()) {
    cancel();
    thread_.join();
  }
  g_clear_error(&error_);
  g_clear_object(&creds_);
  g_object_unref(connecting_);
}

void MigrationSource::start() {
  stats_->start_us = g_get_monotonic_time();
  stats_->ram_total = ctx_.guest.ram().size();
  thread_ = std::thread([this] { run(); });
}

void MigrationSource::join() {
  if (thread_.joinable()) thread_.join();
}

void MigrationSource::cancel() {
  if (finished_) return;
  cancelled_ = true;
  set_status(MigrationStatus::Cancelling);
  abort_channels();
}

void MigrationSource::set_status(MigrationStatus status) {
  /* Every status is stored on the main thread, where cancel() stores
   * Cancelling: a step the thread reports after a cancel does not replace
   * it, only the final status does.  And until the final status is stored
   * the migration counts as busy, so a new `migrate` (which joins this
   * thread) cannot wait for it while it waits for the main thread. */
  bool final = status == MigrationStatus::Completed || status == MigrationStatus::Failed ||
               status == MigrationStatus::Cancelled;
  auto stats = stats_;
  auto notify = ctx_.status_changed;
  ctx_.run_on_main([stats, notify, status, final] {
    if (!final && stats->status == MigrationStatus::Cancelling) return;
    stats->status = status;
    notify(status);
  });
}

/* Wakes every thread blocked on a channel or a queue. */
void MigrationSource::abort_channels() {
  aborted_ = true;
  /* A connect still under way is not among the transports yet. */
  g_cancellable_cancel(connecting_);
  std::vector<Sender *> senders;
  {
    std::lock_guard guard(channels_lock_);
    for (QIOChannel *ioc : transports_)
      qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
    for (auto &s : senders_) senders.push_back(s.get());
  }
  for (Sender *s : senders) {
    std::lock_guard sguard(s->lock);
    s->cv.notify_all();
  }
}

/* Keeps the first error: later ones are usually its consequences. */
void MigrationSource::fail(GError *error) {
  {
    std::lock_guard guard(error_lock_);
    if (!error_ && !cancelled_)
      error_ = error;
    else
      g_error_free(error);
  }
  abort_channels();
}

bool MigrationSource::open_channel(const char *name, QIOChannel **out, GError **error) {
  QIOChannel *ioc = migration_connect(uri_, name, connecting_, error);
  if (!ioc) return false;
  {
    std::lock_guard guard(channels_lock_);
    transports_.push_back(QIO_CHANNEL(g_object_ref(ioc)));
  }
  if (aborted()) {
    g_object_unref(ioc);
    return false;
  }
  ChannelReport report;
  report.name = name;
  if (creds_) {
    ioc = migration_tls_client(ioc, creds_, hostname_.empty() ? nullptr : hostname_.c_str(),
                               resume_, report, error);
    if (!ioc) return false;
  }
  migration_stats_add_channel(*stats_, report);
  *out = ioc;
  return true;
}

bool MigrationSource::send_hello(QIOChannel *ioc, ChannelKind kind, guint32 index,
                                 GError **error) {
  Hello hello;
  hello.kind = kind;
  hello.index = index;
  hello.channels = caps_.multifd ? params_.multifd_channels : 0;
  hello.page_size = host::kGuestPageSize;
  hello.compression = caps_.multifd ? params_.multifd_compression : Compression::None;
  hello.ram_size = ctx_.guest.ram().size();
  guint8 buf[kHelloSize];
  encode_hello(hello, buf);
  return qio_channel_write_all(ioc, buf, sizeof(buf), error);
}

bool MigrationSource::setup_main(GError **error) {
  if (!open_channel("migration-main", &main_, error)) return false;
  if (!send_hello(main_, ChannelKind::Main, 0, error)) return false;
  if (!read_answer(main_, error)) return false;
  /* A TLS 1.3 ticket comes after the handshake, but before the answer: if
   * there is none now (PSK, anon, a destination that sends none), the
   * multifd channels run full handshakes rather than wait for one. */
  if (caps_.multifd) resume_ = migration_tls_resumption_data(main_);
  return true;
}

bool MigrationSource::setup_multifd(GError **error) {
  if (!caps_.multifd) return true;
  for (guint32 i = 0; i < params_.multifd_channels; i++) {
    auto sender = std::make_unique<Sender>();
    sender->index = i;
    if (params_.multifd_compression != Compression::None)
      sender->compressor = std::make_unique<PageCompressor>(params_.multifd_compression);
    std::lock_guard guard(channels_lock_);
    senders_.push_back(std::move(sender));
  }
  for (auto &s : senders_) {
    Sender *sp = s.get();
    s->thread = std::thread([this, sp] { sender_main(*sp); });
  }
  /* Wait until every channel has connected and shaken hands. */
  for (auto &s : senders_) {
    std::unique_lock guard(s->lock);
    s->cv.wait(guard, [&] { return s->ready || s->done || aborted(); });
  }
  if (aborted()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, _("A multifd channel could not be set up"));
    return false;
  }
  return true;
}

bool MigrationSource::send_pages(QIOChannel *ioc, const guint64 *pages, guint32 count,
                                 GError **error) {
  guint8 hdr[kRecordHeaderSize];
  guint64 index[kPagesPerRecord];
  struct iovec iov[2 + kPagesPerRecord];
  encode_record(RecordType::Ram, count, 0, hdr);
  auto &ram = ctx_.guest.ram();
  for (guint32 i = 0; i < count; i++) {
    index[i] = GUINT64_TO_BE(pages[i]);
    iov[2 + i] = {ram.page_data(pages[i]), host::kGuestPageSize};
  }
  iov[0] = {hdr, sizeof(hdr)};
  iov[1] = {index, count * sizeof(guint64)};
  gsize bytes = sizeof(hdr) + count * (sizeof(guint64) + host::kGuestPageSize);
  bool ok;
  if (zero_copy_) {
    /* Only guest pages go zero-copy: the header buffers are reused at
     * once, the pages stay until the flush at the end of the round (a
     * page the guest changes meanwhile is dirty again and resent). */
    ok = qio_channel_writev_all(ioc, iov, 2, error) &&
         qio_channel_writev_full_all(ioc, iov + 2, count, nullptr, 0,
                                     QIO_CHANNEL_WRITE_FLAG_ZERO_COPY, error);
  } else {
    ok = qio_channel_writev_all(ioc, iov, 2 + count, error);
  }
  if (!ok) return false;
  stats_->transferred += bytes;
  stats_->pages += count;
  return true;
}

/* multifd-compression: the pages are copied out, compressed in one call
 * and sent as one RAM_COMPRESSED record. */
bool MigrationSource::send_compressed(QIOChannel *ioc, PageCompressor &compressor,
                                      const guint64 *pages, guint32 count, GError **error) {
  guint8 hdr[kRecordHeaderSize];
  guint64 index[kPagesPerRecord];
  auto &ram = ctx_.guest.ram();
  guint8 *raw = compressor.input();
  for (guint32 i = 0; i < count; i++) {
    index[i] = GUINT64_TO_BE(pages[i]);
    memcpy(raw + i * host::kGuestPageSize, ram.page_data(pages[i]), host::kGuestPageSize);
  }
  const guint8 *packed;
  gsize packed_len;
  if (!compressor.compress(count * host::kGuestPageSize, &packed, &packed_len, error))
    return false;
  encode_record(RecordType::RamCompressed, count, packed_len, hdr);
  struct iovec iov[3] = {{hdr, sizeof(hdr)},
                         {index, count * sizeof(guint64)},
                         {const_cast<guint8 *>(packed), packed_len}};
  if (!qio_channel_writev_all(ioc, iov, 3, error)) return false;
  stats_->transferred += sizeof(hdr) + count * sizeof(guint64) + packed_len;
  stats_->pages += count;
  return true;
}

void MigrationSource::sender_main(Sender &s) {
  g_autoptr(GError) error = nullptr;
  g_autofree char *name = g_strdup_printf("migration-multifd-%u", s.index);
  bool ok = open_channel(name, &s.ioc, &error);
  QIOChannel *ioc = s.ioc;
  ok = ok && send_hello(ioc, ChannelKind::Multifd, s.index, &error);
  if (ok && zero_copy_ && QIO_IS_CHANNEL_SOCKET(ioc))
    ok = qio_channel_socket_enable_zero_copy(QIO_CHANNEL_SOCKET(ioc), &error);
  {
    std::lock_guard guard(s.lock);
    s.ready = ok;
  }
  s.cv.notify_all();
  while (ok) {
    Batch batch;
    {
      std::unique_lock guard(s.lock);
      s.cv.wait(guard, [&] { return !s.queue.empty() || aborted(); });
      if (aborted()) break;
      batch = s.queue.front();
      s.queue.pop_front();
    }
    s.cv.notify_all();
    if (batch.type == RecordType::Ram) {
      ok = s.compressor ? send_compressed(ioc, *s.compressor, batch.pages.data(), batch.count,
                                          &error)
                        : send_pages(ioc, batch.pages.data(), batch.count, &error);
      continue;
    }
    if (zero_copy_ && qio_channel_flush(ioc, &error) < 0) {
      ok = false;
      break;
    }
    ok = write_record(ioc, batch.type, 0, batch.arg, nullptr, 0, &error);
    stats_->transferred += kRecordHeaderSize;
    if (!ok || batch.type == RecordType::End) break;
    {
      std::lock_guard guard(s.lock);
      s.synced_round = batch.arg;
    }
    s.cv.notify_all();
  }
  if (error) {
    g_prefix_error(&error, _("Multifd channel %u: "), s.index);
    fail(g_steal_pointer(&error));
  } else if (!ok && !aborted()) {
    fail(g_error_new(QIO_ERROR, QIO_ERROR_FAILED, _("Multifd channel %u stopped"), s.index));
  }
  {
    std::lock_guard guard(s.lock);
    s.done = true;
  }
  s.cv.notify_all();
}

bool MigrationSource::push(Sender &s, const Batch &batch) {
  {
    std::unique_lock guard(s.lock);
    s.cv.wait(guard, [&] { return s.queue.size() < kQueueDepth || aborted() || s.done; });
    if (aborted() || s.done) return false;
    s.queue.push_back(batch);
  }
  s.cv.notify_all();
  return true;
}

/* Sleeps so that what was sent since the start of the iteration phase
 * stays under max-bandwidth (0: unlimited). */
void MigrationSource::throttle(guint64 bytes) {
  if (params_.max_bandwidth == 0) return;
  throttle_bytes_ += bytes;
  gint64 due_us = static_cast<gint64>(static_cast<double>(throttle_bytes_) * 1e6 /
                                      static_cast<double>(params_.max_bandwidth));
  gint64 wait = throttle_start_us_ + due_us - g_get_monotonic_time();
  while (wait > 0 && !aborted()) {
    g_usleep(static_cast<gulong>(MIN(wait, 50000)));
    wait = throttle_start_us_ + due_us - g_get_monotonic_time();
  }
}

bool MigrationSource::send_round(const std::vector<guint64> &bitmap, bool limit_rate,
                                 GError **error) {
  Batch batch;
  auto flush_batch = [&]() -> bool {
    if (batch.count == 0) return true;
    bool ok;
    if (senders_.empty()) {
      ok = send_pages(main_, batch.pages.data(), batch.count, error);
    } else {
      ok = push(*senders_[next_sender_], batch);
      next_sender_ = (next_sender_ + 1) % senders_.size();
    }
    if (ok && limit_rate) throttle(batch.count * host::kGuestPageSize);
    batch.count = 0;
    return ok && !aborted();
  };
  for (gsize w = 0; w < bitmap.size(); w++) {
    guint64 word = bitmap[w];
    while (word) {
      int bit = std::countr_zero(word);
      word &= word - 1;
      batch.pages[batch.count++] = w * 64 + static_cast<guint64>(bit);
      if (batch.count == kPagesPerRecord && !flush_batch()) return false;
    }
  }
  return flush_batch();
}

/* Every channel marks the end of round @round; with multifd, waits until
 * each channel has sent it, so that the round's time is the real one. */
bool MigrationSource::end_round(guint64 round, GError **error) {
  if (senders_.empty()) {
    if (zero_copy_ && qio_channel_flush(main_, error) < 0) return false;
    stats_->transferred += kRecordHeaderSize;
    return write_record(main_, RecordType::Sync, 0, round, nullptr, 0, error);
  }
  Batch sync;
  sync.type = RecordType::Sync;
  sync.arg = round;
  for (auto &s : senders_)
    if (!push(*s, sync)) return false;
  for (auto &s : senders_) {
    std::unique_lock guard(s->lock);
    s->cv.wait(guard, [&] { return s->synced_round >= round || aborted() || s->done; });
    if (aborted() || s->done) return false;
  }
  return true;
}

bool MigrationSource::complete_mirrors(GError **error) {
  if (!ctx_.complete_mirrors) return true;
  struct Wait {
    std::mutex lock;
    std::condition_variable cv;
    bool done = false;
    bool ok = false;
  };
  auto wait = std::make_shared<Wait>();
  auto complete = ctx_.complete_mirrors;
  ctx_.run_on_main([complete, wait] {
    complete([wait](bool ok) {
      std::lock_guard guard(wait->lock);
      wait->done = true;
      wait->ok = ok;
      wait->cv.notify_all();
    });
  });
  std::unique_lock guard(wait->lock);
  /* A cancel does not signal @wait, so poll for it. */
  while (!wait->done && !aborted()) wait->cv.wait_for(guard, std::chrono::milliseconds(50));
  if (!wait->done) return false;
  if (!wait->ok) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("A drive mirror failed at migration switch-over, so the source guest "
                  "keeps running; see the BLOCK_JOB_COMPLETED events, fix the mirror "
                  "target and migrate again"));
    return false;
  }
  return true;
}

void MigrationSource::set_nagle(bool on) {
  qio_channel_set_delay(main_, on);
  std::lock_guard guard(channels_lock_);
  for (auto &s : senders_)
    if (s->ioc) qio_channel_set_delay(s->ioc, on);
}

bool MigrationSource::finish(GError **error) {
  /* The multifd channels end first: the destination loads the device
   * state only once every page has arrived. */
  if (!senders_.empty()) {
    Batch end;
    end.type = RecordType::End;
    for (auto &s : senders_)
      if (!push(*s, end)) return false;
    for (auto &s : senders_) {
      std::unique_lock guard(s->lock);
      s->cv.wait(guard, [&] { return s->done; });
    }
    if (aborted()) return false;
  }
  std::string devices;
  bool running = was_running_;
  ctx_.run_on_main([&] { devices = migration_save_devices(ctx_.guest, running); });
  if (!write_record(main_, RecordType::Device, static_cast<guint32>(devices.size()), 0,
                    devices.data(), devices.size(), error) ||
      !write_record(main_, RecordType::End, 0, 0, nullptr, 0, error))
    return false;
  stats_->transferred += 2 * kRecordHeaderSize + devices.size();
  if (!caps_.return_path) return true;
  /* The return path: the source completes only once the destination has
   * loaded everything, so a destination that fails late still leaves a
   * running source. */
  RecordHeader answer;
  if (!read_record(main_, answer, error)) {
    g_prefix_error(error, _("The destination did not confirm the migration: "));
    return false;
  }
  if (answer.type == RecordType::Done) return true;
  if (answer.type == RecordType::Error && answer.count <= 4096) {
    std::string text(answer.count, '\0');
    if (!qio_channel_read_all(main_, text.data(), text.size(), error)) return false;
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, _("The destination failed: %s"),
                text.c_str());
    return false;
  }
  g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("The destination answered with an unexpected record (type %u)"),
              static_cast<guint32>(answer.type));
  return false;
}

void MigrationSource::run() {
  GError *error = nullptr;
  auto &ram = ctx_.guest.ram();
  std::vector<guint64> bitmap;
  bool ok = setup_main(&error) && setup_multifd(&error);
  if (ok && zero_copy_ && QIO_IS_CHANNEL_SOCKET(main_))
    ok = qio_channel_socket_enable_zero_copy(QIO_CHANNEL_SOCKET(main_), &error);
  if (ok) {
    set_nagle(true);
    stats_->setup_us = g_get_monotonic_time() - stats_->start_us;
    set_status(MigrationStatus::Active);
    throttle_start_us_ = g_get_monotonic_time();
    ram.mark_all_dirty();
  }
  guint64 round = 0;
  while (ok) {
    guint64 dirty = ram.fetch_and_clear_dirty(bitmap);
    guint64 bytes = dirty * host::kGuestPageSize;
    /* Converged: what is left goes out within downtime-limit at the
     * bandwidth of the last round. */
    double budget = static_cast<double>(stats_->bandwidth.load()) *
                    static_cast<double>(params_.downtime_limit) / 1000.0;
    if (round > 0 && static_cast<double>(bytes) <= budget) break;
    stats_->remaining = bytes;
    gint64 t0 = g_get_monotonic_time();
    guint64 sent0 = stats_->transferred;
    ok = send_round(bitmap, true, &error) && end_round(++round, &error);
    if (!ok) break;
    gint64 dt = MAX(g_get_monotonic_time() - t0, 1);
    stats_->bandwidth = static_cast<guint64>(
        static_cast<double>(stats_->transferred - sent0) * 1e6 / static_cast<double>(dt));
    stats_->iterations = round;
    stats_->remaining = ram.dirty_count() * host::kGuestPageSize;
  }
  if (ok) {
    /* Stop the guest, then send what it dirtied since the last fetch. */
    ctx_.run_on_main([this] {
      was_running_ = ctx_.guest.running();
      if (ctx_.guest.stop()) ctx_.guest_event("STOP");
      ctx_.guest.set_status("finish-migrate");
    });
    stopped_guest_ = true;
    gint64 down_start = g_get_monotonic_time();
    set_status(MigrationStatus::Device);
    std::vector<guint64> rest;
    ram.fetch_and_clear_dirty(rest);
    for (gsize i = 0; i < rest.size() && i < bitmap.size(); i++) bitmap[i] |= rest[i];
    stats_->remaining = 0;
    /* The stopped guest writes no more, so the mirrors converge and the
     * destination's disks match the RAM sent after them. */
    ok = complete_mirrors(&error) && send_round(bitmap, false, &error);
    if (ok) set_nagle(false);
    ok = ok && end_round(++round, &error) && finish(&error);
    stats_->downtime_us = g_get_monotonic_time() - down_start;
    stats_->iterations = round;
  }
  if (ok && zero_copy_ && qio_channel_flush(main_, &error) < 0) ok = false;
  if (!ok && !error && !cancelled_)
    error = g_error_new(QIO_ERROR, QIO_ERROR_FAILED, _("The migration stopped"));
  if (!ok) {
    if (error) fail(error);
    abort_channels();
  }
  for (auto &s : senders_)
    if (s->thread.joinable()) s->thread.join();
  g_clear_pointer(&resume_, g_bytes_unref);
  /* A clean close sends the TLS bye on each channel. */
  for (auto &s : senders_)
    if (s->ioc) {
      qio_channel_close(s->ioc, nullptr);
      g_clear_object(&s->ioc);
    }
  if (main_) {
    qio_channel_close(main_, nullptr);
    g_clear_object(&main_);
  }
  {
    std::lock_guard guard(channels_lock_);
    for (QIOChannel *ioc : transports_) g_object_unref(ioc);
    transports_.clear();
  }
  stats_->end_us = g_get_monotonic_time();
  MigrationStatus final_status = ok           ? MigrationStatus::Completed
                                 : cancelled_ ? MigrationStatus::Cancelled
                                              : MigrationStatus::Failed;
  {
    std::lock_guard guard(stats_->lock);
    std::lock_guard eguard(error_lock_);
    if (error_) stats_->error = error_->message;
  }
  bool restart = !ok && stopped_guest_ && was_running_;
  ctx_.run_on_main([this, ok, restart] {
    if (ok) {
      ctx_.guest.set_status("postmigrate");
    } else {
      ctx_.guest.set_status(nullptr);
      if (restart && ctx_.guest.cont()) ctx_.guest_event("RESUME");
    }
  });
  finished_ = true;
  set_status(final_status);
}

}  // namespace qio::migration
