#include "config.h"

#include "migration/migration-incoming.h"
#include "qcrypto/tls-session.h"
#include "qio/channel-socket.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace qio::migration {

namespace {

/* Device state larger than this is not something a source sends: a real
 * one is a few KiB (an 80x25 console, 4 KiB of queued serial input, a line
 * per disk).  json-glib builds a tree some 40 times the text's size. */
constexpr guint32 kMaxDeviceState = 1u << 20;

/* On a listener with TLS, a peer gets this long for its handshake, and
 * beside the source's own channels at most kStrangerHandshakes run at
 * once: silent connections cannot hold the port for good, nor cost a
 * thread each without bound. */
constexpr guint kHandshakeSeconds = 10;
constexpr guint32 kStrangerHandshakes = 16;

/* The peer's address, for the log: accepted sockets are named after the
 * listener. */
std::string peer_name(QIOChannel *ioc) {
  if (!QIO_IS_CHANNEL_SOCKET(ioc)) return qio_channel_get_name(ioc);
  g_autoptr(QIOSocketAddress) addr =
      qio_channel_socket_get_remote_address(QIO_CHANNEL_SOCKET(ioc), nullptr);
  g_autofree char *text = addr ? qio_socket_address_to_string(addr) : nullptr;
  return text && *text ? text : qio_channel_get_name(ioc);
}

/* The peer's host, whose handshakes count together when some must give
 * way ("" for a UNIX socket). */
std::string peer_host(QIOChannel *ioc) {
  if (!QIO_IS_CHANNEL_SOCKET(ioc)) return std::string();
  g_autoptr(QIOSocketAddress) addr =
      qio_channel_socket_get_remote_address(QIO_CHANNEL_SOCKET(ioc), nullptr);
  const char *host = addr ? qio_socket_address_get_host(addr) : nullptr;
  return host ? host : "";
}

}  // namespace

MigrationIncoming::MigrationIncoming(MigrationContext context, MigrationUri uri,
                                     MigrationParameters params, MigrationCapabilities caps,
                                     QCryptoTLSCreds *creds, QCryptoAuthz *authz,
                                     std::shared_ptr<MigrationStats> stats, DoneFunc done)
    : ctx_(std::move(context)), uri_(std::move(uri)), params_(std::move(params)), caps_(caps),
      creds_(creds ? QCRYPTO_TLS_CREDS(g_object_ref(creds)) : nullptr),
      authz_(authz ? QCRYPTO_AUTHZ(g_object_ref(authz)) : nullptr),
      stats_(std::move(stats)), done_(std::move(done)) {}

MigrationIncoming::~MigrationIncoming() {
  if (listener_) {
    qio_net_listener_disconnect(listener_);
    g_clear_object(&listener_);
  }
  abort_channels();
  std::list<ChannelThread> threads;
  {
    std::lock_guard guard(lock_);
    threads.swap(threads_);
  }
  for (auto &t : threads) t.thread.join();
  for (QIOChannel *ioc : channels_) g_object_unref(ioc);
  g_clear_error(&error_);
  g_clear_object(&creds_);
  g_clear_object(&authz_);
}

void MigrationIncoming::set_status(MigrationStatus status) {
  stats_->status = status;
  auto notify = ctx_.status_changed;
  ctx_.run_on_main([notify, status] { notify(status); });
}

bool MigrationIncoming::start(GError **error) {
  stats_->start_us = g_get_monotonic_time();
  stats_->ram_total = ctx_.guest.ram().size();
  if (!uri_.is_socket()) {
    QIOChannel *ioc = migration_open_single_incoming(uri_, error);
    if (!ioc) return false;
    set_status(MigrationStatus::Setup);
    add_channel(ioc);
    return true;
  }
  /* A key per incoming migration rather than per credentials object: the
   * tickets it seals resume only this migration's channels, not sessions
   * of NBD, VNC or chardev servers sharing the credentials, nor a later
   * migration.  Once every channel is in, no new session gets it. */
  if (creds_ && caps_.multifd) {
    ticket_key_ = qcrypto_tls_session_ticket_key_new(error);
    if (!ticket_key_) return false;
  }
  listener_ = qio_net_listener_new();
  qio_net_listener_set_name(listener_, "migration-incoming");
  /* Room in the backlog for the source's channels beside strangers' handshakes. */
  guint backlog = 1 + params_.multifd_channels + (creds_ ? kStrangerHandshakes : 0);
  if (!qio_net_listener_open_sync(listener_, uri_.address, backlog, error)) {
    g_prefix_error(error, _("Incoming migration on '%s': "), uri_.text.c_str());
    g_clear_object(&listener_);
    return false;
  }
  qio_net_listener_set_client_func(listener_, on_client, this, nullptr, ctx_.main_context);
  set_status(MigrationStatus::Setup);
  return true;
}

void MigrationIncoming::on_client(QIONetListener *, QIOChannelSocket *client,
                                  gpointer data) noexcept {
  auto *self = static_cast<MigrationIncoming *>(data);
  /* Its TLS handshake flights and answers must not wait for the source's
   * delayed ACK; the destination sends no bulk data. */
  qio_channel_set_delay(QIO_CHANNEL(client), FALSE);
  self->add_channel(QIO_CHANNEL(g_object_ref(client)));
}

guint32 MigrationIncoming::channel_limit() const {
  /* The main channel plus one per multifd channel; once the main hello
   * has told how many, further connections are not ours. */
  return main_ready_ ? 1 + expected_multifd_ : 1 + MAX(params_.multifd_channels, 1);
}

void MigrationIncoming::reap_threads() {
  std::list<ChannelThread> done;
  {
    std::lock_guard guard(lock_);
    for (auto it = threads_.begin(); it != threads_.end();) {
      auto next = std::next(it);
      if (it->finished) done.splice(done.end(), threads_, it);
      it = next;
    }
  }
  for (auto &t : done) t.thread.join();
}

void MigrationIncoming::add_channel(QIOChannel *plain) {
  /* Dropped peers' threads end on their own; joined here, they cannot pile up. */
  reap_threads();
  /* Over TLS on a listener, only a completed handshake earns a role. */
  bool admitted = !(creds_ && listener_);
  std::string host = admitted ? std::string() : peer_host(plain);
  bool extra, flooded = false;
  {
    std::lock_guard guard(lock_);
    extra = aborted() || admitted_ >= channel_limit();
    if (!extra && !admitted) {
      /* Room for the source's channels beside the strangers; when full, a
       * handshake gives way (eviction_candidate_locked): a real one takes
       * milliseconds, so only peers that stall or flood lose their place.
       * Handshakes cut but not yet gone count too, or a flood would outrun
       * them: past twice the room, hosts already shaking hands are turned
       * away (but the source's), past four times the room every host. */
      guint32 room = 1 + params_.multifd_channels + kStrangerHandshakes;
      bool known = std::any_of(pending_.begin(), pending_.end(),
                               [&](const PendingHandshake &h) { return h.host == host; });
      bool source = admitted_ > 0 && host == source_host_;
      /* Four times the room bounds threads and memory whatever the hosts
       * (every peer on a host of its own, or all on the source's). */
      flooded = pending_.size() >= 4 * room || (pending_.size() >= 2 * room && known && !source);
      auto live = std::count_if(pending_.begin(), pending_.end(),
                                [](const PendingHandshake &h) { return h.cut == Cut::None; });
      if (!flooded && static_cast<guint32>(live) >= room)
        cut_locked(*eviction_candidate_locked(), Cut::Evicted);
    }
    if (!extra && !flooded) {
      guint32 seq = 0;
      if (admitted) {
        seq = admitted_++;
        channels_.push_back(QIO_CHANNEL(g_object_ref(plain)));
      } else {
        pending_.push_back({QIO_CHANNEL(g_object_ref(plain)), host});
      }
      ChannelThread *me = &threads_.emplace_back();
      me->thread = std::thread([this, plain, admitted, seq, me] {
        channel_thread(plain, admitted, seq);
        std::lock_guard done_guard(lock_);
        me->finished = true;
      });
      return;
    }
  }
  /* Logged outside the lock: a slow log must not hold the channels. */
  if (extra)
    g_info("migration: refusing an extra connection on '%s'", uri_.text.c_str());
  else
    log_drop(peer_name(plain), _("too many TLS handshakes are under way"));
  qio_channel_close(plain, nullptr);
  g_object_unref(plain);
}

/* The handshake that gives way when too many are under way: the oldest of
 * the host with the most, so that a flood from one host pushes out its own
 * and not the source's; never the source's own host's (once its first
 * channel is in) while another's is there. */
MigrationIncoming::PendingHandshake *MigrationIncoming::eviction_candidate_locked() {
  std::map<std::string, guint32> live;
  for (const auto &h : pending_)
    if (h.cut == Cut::None) live[h.host]++;
  bool spare_source = admitted_ > 0 && live.count(source_host_) && live.size() > 1;
  guint32 most = 0;
  for (const auto &[host, count] : live)
    if (!(spare_source && host == source_host_)) most = MAX(most, count);
  /* pending_ is oldest first. */
  for (auto &h : pending_)
    if (h.cut == Cut::None && live[h.host] == most && !(spare_source && h.host == source_host_))
      return &h;
  return nullptr; /* not reached: the caller saw live handshakes */
}

void MigrationIncoming::cut_locked(PendingHandshake &h, Cut why) {
  h.cut = why;
  qio_channel_shutdown(h.plain, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
}

void MigrationIncoming::cut_pending(QIOChannel *plain, Cut why) {
  std::lock_guard guard(lock_);
  for (auto &h : pending_)
    if (h.plain == plain && h.cut == Cut::None) cut_locked(h, why);
}

QIOChannel *MigrationIncoming::shake_hands(QIOChannel *plain, bool time_limit,
                                           ChannelReport &report, GError **error) {
  GSource *timer = nullptr;
  if (time_limit) {
    /* Cuts a handshake that takes too long.  Runs in the main loop, like
     * the destructor, and cuts only a handshake still pending: one that
     * has just finished keeps its channel. */
    struct Timeout {
      MigrationIncoming *self;
      QIOChannel *plain;
    };
    timer = g_timeout_source_new_seconds(kHandshakeSeconds);
    g_source_set_callback(
        timer,
        +[](gpointer data) noexcept -> gboolean {
          auto *t = static_cast<Timeout *>(data);
          t->self->cut_pending(t->plain, Cut::TimedOut);
          return G_SOURCE_REMOVE;
        },
        new Timeout{this, plain},
        +[](gpointer data) noexcept { delete static_cast<Timeout *>(data); });
    g_source_attach(timer, ctx_.main_context);
  }
  g_autoptr(GBytes) ticket_key = nullptr;
  {
    std::lock_guard guard(lock_);
    if (ticket_key_) ticket_key = g_bytes_ref(ticket_key_);
  }
  /* The plain reference stays ours until the thread ends. */
  QIOChannel *ioc =
      migration_tls_server(QIO_CHANNEL(g_object_ref(plain)), creds_, authz_, ticket_key, report,
                           error);
  if (timer) {
    g_source_destroy(timer);
    g_source_unref(timer);
  }
  return ioc;
}

MigrationIncoming::Cut MigrationIncoming::leave_pending(QIOChannel *plain, QIOChannel *ioc,
                                                        guint32 *seq) {
  std::lock_guard guard(lock_);
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const PendingHandshake &h) { return h.plain == plain; });
  Cut cut = it->cut;
  std::string host = std::move(it->host);
  g_object_unref(it->plain);
  pending_.erase(it);
  /* A handshake cut as it finished has a dead socket: not admitted. */
  if (!ioc || cut != Cut::None) return cut == Cut::None ? Cut::Failed : cut;
  if (aborted() || admitted_ >= channel_limit()) return Cut::Extra;
  if (admitted_ == 0) source_host_ = std::move(host);
  *seq = admitted_++;
  channels_.push_back(QIO_CHANNEL(g_object_ref(ioc)));
  if (admitted_ >= channel_limit()) g_clear_pointer(&ticket_key_, g_bytes_unref);
  return Cut::None;
}

void MigrationIncoming::log_drop(const std::string &peer, const char *why) {
  guint unlogged = 0;
  if (!drop_log_.allow(&unlogged)) return;
  if (unlogged)
    g_message(_("Incoming migration on '%s': dropping connection from %s: %s; still waiting "
                "for the source (%u more connections dropped since the last such line)"),
              uri_.text.c_str(), peer.c_str(), why, unlogged);
  else
    g_message(_("Incoming migration on '%s': dropping connection from %s: %s; still waiting "
                "for the source"),
              uri_.text.c_str(), peer.c_str(), why);
}

void MigrationIncoming::abort_channels() {
  aborted_ = true;
  std::lock_guard guard(lock_);
  g_clear_pointer(&ticket_key_, g_bytes_unref);
  for (QIOChannel *ioc : channels_) qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  for (auto &h : pending_)
    if (h.cut == Cut::None) cut_locked(h, Cut::Ended);
  cv_.notify_all();
}

void MigrationIncoming::fail(GError *error) {
  bool first;
  {
    std::lock_guard guard(lock_);
    first = !error_;
    if (first)
      error_ = error;
    else
      g_error_free(error);
  }
  abort_channels();
  if (!first) return;
  {
    std::lock_guard guard(stats_->lock);
    stats_->error = error_->message;
  }
  stats_->end_us = g_get_monotonic_time();
  set_status(MigrationStatus::Failed);
  GError *copy = g_error_copy(error_);
  ctx_.run_on_main([this, copy] {
    done_(copy);
    g_error_free(copy);
  });
}

/* A source sends its hello at once; a connection to the listener that
 * sends none (a port probe on a plaintext listener, say) would hold its
 * role, the main one even, for good.  Past kHandshakeSeconds the channel
 * is shut down. */
bool MigrationIncoming::read_hello(QIOChannel *plain, QIOChannel *ioc, guint8 *buf,
                                   const char *name, GError **error) {
  struct Deadline {
    std::mutex lock;
    bool read = false, fired = false;
  };
  struct Timer {
    QIOChannel *plain;
    std::shared_ptr<Deadline> deadline;
  };
  auto deadline = std::make_shared<Deadline>();
  GSource *timer = g_timeout_source_new_seconds(kHandshakeSeconds);
  g_source_set_callback(
      timer,
      +[](gpointer data) noexcept -> gboolean {
        auto *t = static_cast<Timer *>(data);
        std::lock_guard guard(t->deadline->lock);
        if (!t->deadline->read) {
          t->deadline->fired = true;
          qio_channel_shutdown(t->plain, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
        }
        return G_SOURCE_REMOVE;
      },
      new Timer{QIO_CHANNEL(g_object_ref(plain)), deadline},
      +[](gpointer data) noexcept {
        auto *t = static_cast<Timer *>(data);
        g_object_unref(t->plain);
        delete t;
      });
  g_source_attach(timer, ctx_.main_context);
  bool ok = qio_channel_read_all(ioc, buf, kHelloSize, error);
  bool late;
  {
    std::lock_guard guard(deadline->lock);
    deadline->read = true;
    late = deadline->fired;
  }
  g_source_destroy(timer);
  g_source_unref(timer);
  if (!late) return ok;
  g_clear_error(error);
  g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("Channel '%s' sent no migration hello within %u seconds of connecting; is "
                "something other than the source connecting to this port?"),
              name, kHandshakeSeconds);
  return false;
}

void MigrationIncoming::channel_thread(QIOChannel *plain, bool admitted, guint32 seq) {
  GError *error = nullptr;
  ChannelReport report;
  auto role = [](guint32 n) { return n == 0 ? "migration-main" : "migration-multifd"; };
  std::string peer = peer_name(plain);
  report.name = admitted ? role(seq) : "migration-incoming";
  qio_channel_set_name(plain, report.name.c_str());
  QIOChannel *ioc = plain;
  if (creds_) {
    ioc = shake_hands(plain, !admitted, report, &error);
    if (!ioc && admitted) {
      g_prefix_error(&error, _("Incoming migration: "));
      fail(error);
      g_object_unref(plain);
      return;
    }
    if (admitted) {
      std::lock_guard guard(lock_);
      channels_.push_back(QIO_CHANNEL(g_object_ref(ioc)));
    } else if (Cut cut = leave_pending(plain, ioc, &seq); cut != Cut::None) {
      g_autofree char *timeout = nullptr;
      const char *why = error ? error->message : nullptr;
      if (cut == Cut::TimedOut)
        why = timeout = g_strdup_printf(_("no TLS handshake within %u seconds"),
                                        kHandshakeSeconds);
      else if (cut == Cut::Evicted)
        why = _("its TLS handshake was the oldest when more peers came");
      /* Once the migration has ended, the handshakes it cut short are no news. */
      if (cut == Cut::Extra)
        g_info("migration: refusing an extra connection on '%s'", uri_.text.c_str());
      else if (cut != Cut::Ended && !aborted())
        log_drop(peer, why);
      g_clear_error(&error);
      if (ioc) {
        qio_channel_close(ioc, nullptr);
        g_object_unref(ioc);
      }
      qio_channel_close(plain, nullptr);
      g_object_unref(plain);
      return;
    }
    report.name = role(seq);
    qio_channel_set_name(plain, report.name.c_str());
    qio_channel_set_name(ioc, report.name.c_str());
  }
  guint8 buf[kHelloSize];
  Hello hello;
  /* fd: and exec: have one channel, given before any source may exist. */
  bool ok = (listener_ ? read_hello(plain, ioc, buf, report.name.c_str(), &error)
                       : qio_channel_read_all(ioc, buf, sizeof(buf), &error)) &&
            decode_hello(buf, hello, report.name.c_str(), &error);
  if (!ok && seq == 0 && error && error->domain == QIO_ERROR &&
      error->code == QIO_ERROR_PROTOCOL)
    write_answer(ioc, error->message, nullptr);
  if (ok) {
    if (hello.kind == ChannelKind::Multifd)
      report.name = "migration-multifd-" + std::to_string(hello.index);
    migration_stats_add_channel(*stats_, report);
    ok = seq == 0 ? main_flow(ioc, hello, &error) : multifd_flow(ioc, hello, &error);
  }
  if (!ok && !error)
    error = g_error_new(QIO_ERROR, QIO_ERROR_FAILED, _("Migration channel '%s' stopped"),
                        report.name.c_str());
  if (!ok) {
    g_prefix_error(&error, _("Incoming migration: "));
    fail(error);
  }
  /* The TLS layer holds its own reference on the plain channel. */
  if (ioc != plain) g_object_unref(ioc);
  g_object_unref(plain);
}

std::string MigrationIncoming::refusal(const Hello &h) const {
  g_autofree char *text = nullptr;
  guint32 want = caps_.multifd ? params_.multifd_channels : 0;
  if (h.kind != ChannelKind::Main)
    text = g_strdup(_("the first channel is not a main channel"));
  else if (h.page_size != host::kGuestPageSize || h.ram_size != ctx_.guest.ram().size())
    text = g_strdup_printf(_("the source guest has %llu bytes of RAM in %u-byte pages, the "
                             "destination %llu bytes in %u-byte pages; start the destination "
                             "with the same -m"),
                           static_cast<unsigned long long>(h.ram_size), h.page_size,
                           static_cast<unsigned long long>(ctx_.guest.ram().size()),
                           static_cast<guint32>(host::kGuestPageSize));
  else if (h.channels != want)
    text = g_strdup_printf(_("the source uses %u multifd channel(s) but the destination expects "
                             "%u; set the multifd capability and multifd-channels alike on both "
                             "ends"),
                           h.channels, want);
  else if (want && h.compression != params_.multifd_compression)
    text = g_strdup_printf(_("the source compresses with '%s' but the destination expects '%s'; "
                             "set multifd-compression alike on both ends"),
                           compression_name(h.compression),
                           compression_name(params_.multifd_compression));
  return text ? text : "";
}

/* Reads and checks a record's page numbers into @pages (host order). */
bool MigrationIncoming::read_page_numbers(QIOChannel *ioc, guint32 count, guint64 *pages,
                                          GError **error) {
  auto &ram = ctx_.guest.ram();
  if (count == 0 || count > kPagesPerRecord) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Channel '%s' sent a RAM record of %u pages (at most %u are allowed)"),
                qio_channel_get_name(ioc), count, kPagesPerRecord);
    return false;
  }
  if (!qio_channel_read_all(ioc, pages, count * sizeof(guint64), error)) return false;
  for (guint32 i = 0; i < count; i++) {
    pages[i] = GUINT64_FROM_BE(pages[i]);
    if (pages[i] >= ram.page_count()) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("Channel '%s' sent page %llu, beyond the guest's %llu pages"),
                  qio_channel_get_name(ioc), static_cast<unsigned long long>(pages[i]),
                  static_cast<unsigned long long>(ram.page_count()));
      return false;
    }
  }
  return true;
}

bool MigrationIncoming::receive_compressed(QIOChannel *ioc, PageCompressor &compressor,
                                           guint32 count, guint64 len, GError **error) {
  guint64 pages[kPagesPerRecord];
  if (!read_page_numbers(ioc, count, pages, error)) return false;
  gsize raw_len = count * host::kGuestPageSize;
  if (len == 0 || len > compressor.bound(raw_len)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Channel '%s' sent %llu bytes of compressed data for %u pages"),
                qio_channel_get_name(ioc), static_cast<unsigned long long>(len), count);
    return false;
  }
  guint8 *packed = compressor.receive_buffer();
  if (!qio_channel_read_all(ioc, packed, len, error) ||
      !compressor.decompress(packed, len, compressor.input(), raw_len,
                             qio_channel_get_name(ioc), error))
    return false;
  auto &ram = ctx_.guest.ram();
  for (guint32 i = 0; i < count; i++)
    memcpy(ram.page_data(pages[i]), compressor.input() + i * host::kGuestPageSize,
           host::kGuestPageSize);
  stats_->pages += count;
  stats_->transferred += kRecordHeaderSize + count * sizeof(guint64) + len;
  return true;
}

bool MigrationIncoming::receive_pages(QIOChannel *ioc, guint32 count, GError **error) {
  auto &ram = ctx_.guest.ram();
  guint64 pages[kPagesPerRecord];
  if (!read_page_numbers(ioc, count, pages, error)) return false;
  struct iovec iov[kPagesPerRecord];
  for (guint32 i = 0; i < count; i++) iov[i] = {ram.page_data(pages[i]), host::kGuestPageSize};
  if (!qio_channel_readv_all(ioc, iov, count, error)) return false;
  stats_->pages += count;
  stats_->transferred += kRecordHeaderSize + count * (sizeof(guint64) + host::kGuestPageSize);
  return true;
}

bool MigrationIncoming::main_flow(QIOChannel *ioc, const Hello &hello, GError **error) {
  std::string why = refusal(hello);
  if (!why.empty()) {
    write_answer(ioc, why.c_str(), nullptr);
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, _("refused the source: %s"), why.c_str());
    return false;
  }
  {
    std::lock_guard guard(lock_);
    expected_multifd_ = hello.channels;
    multifd_seen_.assign(hello.channels, false);
    main_ready_ = true;
  }
  cv_.notify_all();
  /* Before the answer, which the source reads before taking the ticket;
   * the multifd channels get none (their source never reads). */
  if (hello.channels > 0 && !migration_tls_send_ticket(ioc, error)) return false;
  if (!write_answer(ioc, nullptr, error)) return false;
  stats_->setup_us = g_get_monotonic_time() - stats_->start_us;
  set_status(MigrationStatus::Active);
  std::string devices;
  bool have_devices = false;
  for (;;) {
    RecordHeader rec;
    if (!read_record(ioc, rec, error)) return false;
    if (rec.type == RecordType::Ram && hello.channels == 0) {
      if (!receive_pages(ioc, rec.count, error)) return false;
    } else if (rec.type == RecordType::Sync) {
      stats_->iterations = rec.arg;
    } else if (rec.type == RecordType::Device && rec.count > kMaxDeviceState) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("The source sent %u bytes of device state, more than the %u a guest's "
                    "state takes; the source does not follow the migration protocol"),
                  rec.count, kMaxDeviceState);
      return false;
    } else if (rec.type == RecordType::Device && !have_devices) {
      devices.assign(rec.count, '\0');
      if (!qio_channel_read_all(ioc, devices.data(), rec.count, error)) return false;
      have_devices = true;
    } else if (rec.type == RecordType::End && have_devices) {
      break;
    } else {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("The main channel sent an unexpected record (type %u, count %u)"),
                  static_cast<guint32>(rec.type), rec.count);
      return false;
    }
  }
  {
    std::unique_lock guard(lock_);
    cv_.wait(guard, [&] { return multifd_finished_ == expected_multifd_ || aborted(); });
  }
  if (aborted()) return false;
  GError *load_error = nullptr;
  bool resume = false;
  ctx_.run_on_main([&] {
    bool running = false;
    if (!migration_load_devices(ctx_.guest, devices, running, &load_error)) return;
    ctx_.guest.set_status(nullptr);
    resume = running && ctx_.guest.run_after_migration();
    if (resume && ctx_.guest.cont()) ctx_.guest_event("RESUME");
  });
  if (load_error) {
    write_record(ioc, RecordType::Error, static_cast<guint32>(strlen(load_error->message)), 0,
                 load_error->message, strlen(load_error->message), nullptr);
    g_propagate_error(error, load_error);
    return false;
  }
  /* Without a return path the source may have closed already. */
  write_record(ioc, RecordType::Done, 0, 0, nullptr, 0, nullptr);
  {
    /* Handshakes still under way are shut down, not closed: their threads
     * are reading those sockets and close them themselves. */
    std::lock_guard guard(lock_);
    for (QIOChannel *c : channels_) qio_channel_close(c, nullptr);
    for (auto &h : pending_)
      if (h.cut == Cut::None) cut_locked(h, Cut::Ended);
  }
  stats_->end_us = g_get_monotonic_time();
  stats_->remaining = 0;
  set_status(MigrationStatus::Completed);
  ctx_.run_on_main([this] {
    /* Later connections are not ours. */
    if (listener_) qio_net_listener_disconnect(listener_);
    done_(nullptr);
  });
  return true;
}

/* All multifd channels finish round N before any starts round N+1: a page
 * resent in a later round on another channel must land last.  Rounds come
 * in order on every channel, and none after a channel ended: a channel
 * waiting here for one that will never arrive would wait for good. */
bool MigrationIncoming::barrier(guint32 index, guint64 round, GError **error) {
  std::unique_lock guard(lock_);
  if (multifd_finished_ > 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Multifd channel %u ended round %llu after another channel had ended; the "
                  "source does not follow the migration protocol"),
                index, static_cast<unsigned long long>(round));
    return false;
  }
  if (round != barrier_generation_ + 1) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Multifd channel %u ended round %llu where round %llu was due; the source "
                  "does not follow the migration protocol"),
                index, static_cast<unsigned long long>(round),
                static_cast<unsigned long long>(barrier_generation_ + 1));
    return false;
  }
  guint64 gen = barrier_generation_;
  if (++barrier_arrived_ == expected_multifd_) {
    barrier_arrived_ = 0;
    barrier_generation_++;
    cv_.notify_all();
    return true;
  }
  cv_.wait(guard, [&] { return barrier_generation_ != gen || aborted(); });
  return !aborted();
}

bool MigrationIncoming::multifd_flow(QIOChannel *ioc, const Hello &hello, GError **error) {
  {
    std::unique_lock guard(lock_);
    cv_.wait(guard, [&] { return main_ready_ || aborted(); });
    if (aborted()) return false;
    if (hello.kind != ChannelKind::Multifd || hello.index >= expected_multifd_ ||
        multifd_seen_[hello.index] || hello.compression != params_.multifd_compression) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("Channel '%s' is not an expected multifd channel (kind %u, index %u of %u)"),
                  qio_channel_get_name(ioc), static_cast<guint32>(hello.kind), hello.index,
                  expected_multifd_);
      return false;
    }
    multifd_seen_[hello.index] = true;
  }
  std::unique_ptr<PageCompressor> compressor;
  if (hello.compression != Compression::None)
    compressor = std::make_unique<PageCompressor>(hello.compression);
  for (;;) {
    RecordHeader rec;
    if (!read_record(ioc, rec, error)) return false;
    if (rec.type == RecordType::Ram && !compressor) {
      if (!receive_pages(ioc, rec.count, error)) return false;
    } else if (rec.type == RecordType::RamCompressed && compressor) {
      if (!receive_compressed(ioc, *compressor, rec.count, rec.arg, error)) return false;
    } else if (rec.type == RecordType::Sync) {
      if (!barrier(hello.index, rec.arg, error)) return false;
    } else if (rec.type == RecordType::End) {
      std::lock_guard guard(lock_);
      if (barrier_arrived_ > 0) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                    _("Multifd channel %u ended while other channels wait for the end of round "
                      "%llu; the source does not follow the migration protocol"),
                    hello.index, static_cast<unsigned long long>(barrier_generation_ + 1));
        return false;
      }
      multifd_finished_++;
      break;
    } else {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("Multifd channel %u sent an unexpected record (type %u)"), hello.index,
                  static_cast<guint32>(rec.type));
      return false;
    }
  }
  cv_.notify_all();
  return true;
}

}  // namespace qio::migration
