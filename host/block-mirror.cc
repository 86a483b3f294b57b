#include "config.h"

#include "host/block-mirror.h"
#include "nbd/protocol.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace qio::host {

/* Bytes per NBD write of the bulk copy. */
static constexpr guint64 kChunk = 1 << 20;
/* A dirty pass that found at most this many blocks means the mirror keeps
 * up with the guest: the job is ready. */
static constexpr gsize kConvergedBlocks = 64;
/* Passes of the final copy before the guest's writes are held off. */
static constexpr int kFinalPasses = 8;
/* How often a ready job looks for new dirty blocks. */
static constexpr auto kPollInterval = std::chrono::milliseconds(20);
/* With reconnects, bytes written between flushes: what a lost connection
 * may take with it.  Halved (down to one chunk) whenever a connection is
 * found lost, so a target whose connections keep breaking still gets
 * flushed writes; a flush that keeps finding lost writes this many times
 * in a row fails the job. */
static constexpr guint64 kFlushEvery = 64 << 20;
static constexpr int kMaxRewrites = 32;

namespace {

struct MirrorSource {
  GSource source;
  BlockMirror *mirror;
};

}  // namespace

BlockMirror::BlockMirror(GuestDisk &disk, const MirrorConfig &config, GMainContext *context,
                         ReadyFunc ready, DoneFunc done)
    : disk_(disk), config_(config), ready_cb_(std::move(ready)), done_cb_(std::move(done)) {
  if (config_.tls_creds) g_object_ref(config_.tls_creds);
  /* The worker wakes the main context through this source's ready time,
   * which is safe from any thread and dies with the mirror. */
  static GSourceFuncs funcs = {nullptr, nullptr, dispatch, nullptr, nullptr, nullptr};
  source_ = g_source_new(&funcs, sizeof(MirrorSource));
  reinterpret_cast<MirrorSource *>(source_)->mirror = this;
  g_source_set_name(source_, "block-mirror");
  g_source_attach(source_, context);
  len_ = disk_.size();
  thread_ = std::thread([this] { run(); });
}

BlockMirror::~BlockMirror() {
  cancel(true);
  if (thread_.joinable()) thread_.join();
  g_source_destroy(source_);
  g_source_unref(source_);
  g_clear_error(&error_);
  g_clear_object(&client_);
  if (config_.tls_creds) g_object_unref(config_.tls_creds);
}

BlockMirror::Progress BlockMirror::progress() const {
  std::lock_guard guard(lock_);
  return {len_, offset_, status_};
}

bool BlockMirror::complete() {
  {
    std::lock_guard guard(lock_);
    if (status_ != Status::Ready) return false;
    complete_ = true;
  }
  wake_.notify_all();
  return true;
}

void BlockMirror::cancel(bool force) {
  {
    std::lock_guard guard(lock_);
    if (status_ == Status::Ready && !force) {
      complete_ = true;
    } else {
      cancel_ = true;
      if (client_) nbd_client_abort(client_);
    }
  }
  wake_.notify_all();
}

void BlockMirror::notify() { g_source_set_ready_time(source_, 0); }

gboolean BlockMirror::dispatch(GSource *source, GSourceFunc, gpointer) noexcept {
  g_source_set_ready_time(source, -1);
  BlockMirror *self = reinterpret_cast<MirrorSource *>(source)->mirror;
  bool ready = false, finished = false;
  Progress at = {};
  {
    std::lock_guard guard(self->lock_);
    if (self->status_ == Status::Ready && !self->ready_reported_) {
      self->ready_reported_ = true;
      ready = true;
      at = self->ready_at_;
    }
    finished = self->finished_;
  }
  if (ready && self->ready_cb_) self->ready_cb_(*self, at);
  if (finished) {
    self->thread_.join();
    /* The callback may destroy the mirror: what it is given must not live
     * in the mirror. */
    DoneFunc done = self->done_cb_;
    g_autoptr(GError) error = std::exchange(self->error_, nullptr);
    done(*self, error, self->cancelled_);
  }
  return G_SOURCE_CONTINUE;
}

bool BlockMirror::copy_range(NBDClient *client, guint64 offset, guint64 len,
                             std::vector<guint8> &buf, GError **error, bool progress) {
  while (len > 0) {
    gsize n = static_cast<gsize>(MIN(len, buf.size()));
    if (!disk_.read(offset, buf.data(), n, error) ||
        !nbd_client_write(client, offset, buf.data(), n, FALSE, error))
      return false;
    if (config_.reconnect_delay) {
      guint64 connection = nbd_client_get_connections(client);
      Written *last = unflushed_.empty() ? nullptr : &unflushed_.back();
      if (last && last->connection == connection && last->offset + last->len == offset)
        last->len += n;
      else
        unflushed_.push_back({offset, n, connection});
      unflushed_bytes_ += n;
    }
    offset += n;
    len -= n;
    if (progress) {
      std::lock_guard guard(lock_);
      offset_ += n;
    }
    /* Not while a checkpoint writes lost bytes again: it flushes those. */
    if (progress && unflushed_bytes_ >= flush_every_ && !checkpoint(client, buf, error))
      return false;
  }
  return true;
}

/* Flushes the target.  Writes made on the connection the flush went over
 * are then safe; those made on connections lost before it may be gone
 * (the server may have dropped them unwritten), so they are written again
 * and flushed, until a flush covers everything. */
bool BlockMirror::checkpoint(NBDClient *client, std::vector<guint8> &buf, GError **error) {
  for (int rewrites = 0;; rewrites++) {
    if (!nbd_client_flush(client, error)) return false;
    guint64 now = nbd_client_get_connections(client);
    std::vector<Written> lost;
    for (const Written &w : unflushed_)
      if (w.connection != now) lost.push_back(w);
    unflushed_.clear();
    unflushed_bytes_ = 0;
    if (lost.empty()) {
      /* A connection that holds again earns back the longer interval. */
      if (rewrites == 0 && flush_every_ < kFlushEvery)
        flush_every_ = std::min(flush_every_ * 2, kFlushEvery);
      return true;
    }
    if (rewrites == kMaxRewrites) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                  _("the connection broke %d times before the writes it carried could be "
                    "flushed; check the network to the target"),
                  kMaxRewrites);
      return false;
    }
    guint64 bytes = 0;
    for (const Written &w : lost) bytes += w.len;
    flush_every_ = std::max<guint64>(flush_every_ / 2, buf.size());
    g_message(_("Mirror job '%s': a connection to '%s' was lost before a flush; writing its "
                "%llu bytes again"),
              config_.job_id.c_str(), config_.target.c_str(),
              static_cast<unsigned long long>(bytes));
    /* Written again from the drive as it is now: blocks the guest
     * changed since are dirty and copied again anyway. */
    for (const Written &w : lost)
      if (!copy_range(client, w.offset, w.len, buf, error, false)) return false;
  }
}

bool BlockMirror::copy_dirty(NBDClient *client, std::vector<guint8> &buf, guint64 *copied,
                             GError **error) {
  std::vector<guint64> blocks = disk_.take_dirty();
  *copied = blocks.size();
  {
    std::lock_guard guard(lock_);
    len_ += blocks.size() * kGuestBlockSize;
  }
  /* Runs of adjacent blocks go out as one write. */
  for (gsize i = 0; i < blocks.size();) {
    gsize j = i + 1;
    while (j < blocks.size() && blocks[j] == blocks[j - 1] + 1 &&
           (j - i) * kGuestBlockSize < buf.size())
      j++;
    if (!copy_range(client, blocks[i] * kGuestBlockSize, (j - i) * kGuestBlockSize, buf, error))
      return false;
    i = j;
  }
  return true;
}

void BlockMirror::finish(GError *error, bool cancelled) {
  disk_.set_dirty_tracking(false);
  {
    std::lock_guard guard(lock_);
    status_ = Status::Concluded;
    finished_ = true;
    /* After a cancel, the failure of I/O the cancel cut short is no error. */
    cancelled_ = cancelled || cancel_;
    if (cancelled_) g_clear_error(&error);
    error_ = error;
  }
  notify();
}

void BlockMirror::run() {
  GError *error = nullptr;
  g_autoptr(NBDClient) client = nbd_client_new();
  {
    std::lock_guard guard(lock_);
    client_ = NBD_CLIENT(g_object_ref(client));
    if (cancel_) nbd_client_abort(client);
  }
  if (config_.tls_creds) nbd_client_set_tls_creds(client, config_.tls_creds);
  if (!config_.tls_hostname.empty())
    nbd_client_set_tls_hostname(client, config_.tls_hostname.c_str());
  nbd_client_set_reconnect_delay(client, config_.reconnect_delay);
  if (!nbd_client_connect_uri(client, config_.target.c_str(), &error)) {
    g_prefix_error(&error, _("Mirror job '%s': cannot connect to target '%s': "),
                   config_.job_id.c_str(), config_.target.c_str());
    return finish(error, false);
  }
  const NBDExportInfo *info = nbd_client_get_info(client);
  if (info->flags & NBD_FLAG_READ_ONLY) {
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_READ_ONLY,
                _("Mirror job '%s': target '%s' is read-only; export it writable"),
                config_.job_id.c_str(), config_.target.c_str());
    nbd_client_disconnect(client);
    return finish(error, false);
  }
  if (info->size < disk_.size()) {
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                _("Mirror job '%s': target '%s' has %llu bytes, drive '%s' needs %llu; use a "
                  "target at least as large as the drive"),
                config_.job_id.c_str(), config_.target.c_str(),
                static_cast<unsigned long long>(info->size), disk_.id().c_str(),
                static_cast<unsigned long long>(disk_.size()));
    nbd_client_disconnect(client);
    return finish(error, false);
  }
  /* Dirty blocks go out one guest block at a time where need be: a target
   * that wants bigger aligned writes would refuse them mid-job. */
  if (info->min_block > kGuestBlockSize) {
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                _("Mirror job '%s': target '%s' requires writes aligned to %u bytes, but the "
                  "mirror writes %u-byte blocks; use a target whose minimum block size is at "
                  "most %u bytes"),
                config_.job_id.c_str(), config_.target.c_str(), info->min_block,
                static_cast<guint>(kGuestBlockSize), static_cast<guint>(kGuestBlockSize));
    nbd_client_disconnect(client);
    return finish(error, false);
  }
  if (info->min_block > 1 && disk_.size() % info->min_block) {
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                _("Mirror job '%s': drive '%s' has %llu bytes, not a multiple of the %u-byte "
                  "minimum block size of target '%s', so its last write would be refused; "
                  "use a target with a smaller minimum block size"),
                config_.job_id.c_str(), disk_.id().c_str(),
                static_cast<unsigned long long>(disk_.size()), info->min_block,
                config_.target.c_str());
    nbd_client_disconnect(client);
    return finish(error, false);
  }
  std::vector<guint8> buf(info->max_block ? MIN(kChunk, info->max_block) : kChunk);
  flush_every_ = config_.reconnect_delay ? kFlushEvery : G_MAXUINT64;

  /* Tracking starts before the bulk copy, so a block the guest rewrites
   * behind the copy is copied again. */
  disk_.set_dirty_tracking(true);
  bool cancelled = false;
  for (guint64 off = 0; off < disk_.size() && !error; off += buf.size()) {
    {
      std::lock_guard guard(lock_);
      if (cancel_) {
        cancelled = true;
        break;
      }
    }
    copy_range(client, off, MIN(buf.size(), disk_.size() - off), buf, &error);
  }

  while (!error && !cancelled) {
    guint64 copied = 0;
    if (!copy_dirty(client, buf, &copied, &error)) break;
    std::unique_lock guard(lock_);
    if (cancel_) {
      cancelled = true;
      break;
    }
    if (complete_) break;
    if (status_ == Status::Running && copied <= kConvergedBlocks) {
      status_ = Status::Ready;
      ready_at_ = {len_, offset_, status_};
      guard.unlock();
      notify();
      continue;
    }
    if (status_ == Status::Ready) wake_.wait_for(guard, kPollInterval);
  }

  if (!error && !cancelled) {
    /* Final pass: copy until nothing is dirty; then the guest's writes are
     * held off for one last pass and the flush, so that what a lost
     * connection took is written again from the drive's final state. */
    guint64 copied = 1;
    for (int pass = 0; pass < kFinalPasses && copied && !error; pass++)
      copy_dirty(client, buf, &copied, &error);
    if (!error) {
      disk_.freeze();
      copy_dirty(client, buf, &copied, &error);
      if (!error) checkpoint(client, buf, &error);
      disk_.set_dirty_tracking(false);
      disk_.thaw();
    }
  }
  if (error)
    g_prefix_error(&error, _("Mirror job '%s' to '%s': "), config_.job_id.c_str(),
                   config_.target.c_str());
  nbd_client_disconnect(client);
  finish(error, cancelled);
}

}  // namespace qio::host
