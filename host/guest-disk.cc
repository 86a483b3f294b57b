#include "config.h"

#include "host/guest-disk.h"
#include "host/guest-ram.h"
#include "qcrypto/hash.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace qio::host {

static void set_errno_error(GError **error, int err, const char *fmt, const char *id,
                            const char *path) {
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), fmt, id, path, g_strerror(err));
}

GuestDisk::GuestDisk(std::string id, std::string path, int fd, guint64 size)
    : id_(std::move(id)), path_(std::move(path)), fd_(fd), size_(size) {}

GuestDisk::~GuestDisk() { g_close(fd_, nullptr); }

std::unique_ptr<GuestDisk> GuestDisk::open(const char *id, const char *path, GError **error) {
  int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    set_errno_error(error, errno,
                    _("Drive '%s': cannot open image '%s': %s; create it first "
                      "(qemu-img create -f raw FILE SIZE)"),
                    id, path);
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int err = errno;
    g_close(fd, nullptr);
    set_errno_error(error, err, _("Drive '%s': cannot read the size of '%s': %s"), id, path);
    return nullptr;
  }
  return std::unique_ptr<GuestDisk>(
      new GuestDisk(id, path, fd, static_cast<guint64>(st.st_size)));
}

guint64 GuestDisk::blocks_written() const {
  std::lock_guard guard(lock_);
  return written_;
}

bool GuestDisk::flush(GError **error) {
  if (fdatasync(fd_) == 0) return true;
  set_errno_error(error, errno, _("Drive '%s': flushing '%s' failed: %s; check the file system"),
                  id_.c_str(), path_.c_str());
  return false;
}

bool GuestDisk::write_block(guint64 block, guint64 seed, guint64 generation, GError **error,
                            bool skip_if_frozen) {
  guint64 buf[kGuestBlockSize / 8];
  guint64 state = seed ^ (block * 0xA0761D6478BD642FULL) ^ (generation << 1);
  for (auto &w : buf) w = splitmix64(state);
  std::unique_lock guard(lock_);
  if (skip_if_frozen && frozen_) return false;
  thawed_.wait(guard, [this] { return !frozen_; });
  ssize_t n;
  do {
    n = pwrite(fd_, buf, sizeof buf, static_cast<off_t>(block * kGuestBlockSize));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof buf)) {
    set_errno_error(error, n < 0 ? errno : ENOSPC, _("Drive '%s': writing '%s' failed: %s"),
                    id_.c_str(), path_.c_str());
    return false;
  }
  written_++;
  if (tracking_ && block < dirty_.size()) dirty_[block] = true;
  return true;
}

void GuestDisk::set_dirty_tracking(bool on) {
  std::lock_guard guard(lock_);
  tracking_ = on;
  dirty_.assign(on ? block_count() : 0, false);
}

std::vector<guint64> GuestDisk::take_dirty() {
  std::vector<guint64> blocks;
  std::lock_guard guard(lock_);
  for (guint64 b = 0; b < dirty_.size(); b++)
    if (dirty_[b]) {
      blocks.push_back(b);
      dirty_[b] = false;
    }
  return blocks;
}

bool GuestDisk::read(guint64 offset, void *buf, gsize len, GError **error) const {
  std::lock_guard guard(lock_);
  auto *p = static_cast<guint8 *>(buf);
  while (len > 0) {
    ssize_t n = pread(fd_, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      set_errno_error(error, n < 0 ? errno : EIO, _("Drive '%s': reading '%s' failed: %s"),
                      id_.c_str(), path_.c_str());
      return false;
    }
    p += n;
    offset += static_cast<guint64>(n);
    len -= static_cast<gsize>(n);
  }
  return true;
}

void GuestDisk::freeze() {
  std::lock_guard guard(lock_);
  frozen_ = true;
}

void GuestDisk::thaw() {
  {
    std::lock_guard guard(lock_);
    frozen_ = false;
  }
  thawed_.notify_all();
}

std::string GuestDisk::digest(GError **error) const {
  g_autoptr(QCryptoHash) sum = qcrypto_hash_new_sha256();
  std::vector<guint8> buf(1 << 20);
  std::lock_guard guard(lock_);
  for (guint64 off = 0; off < size_;) {
    ssize_t n = pread(fd_, buf.data(), MIN(buf.size(), size_ - off), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      set_errno_error(error, n < 0 ? errno : EIO, _("Drive '%s': reading '%s' failed: %s"),
                      id_.c_str(), path_.c_str());
      return {};
    }
    qcrypto_hash_update(sum, buf.data(), static_cast<gsize>(n));
    off += static_cast<guint64>(n);
  }
  g_autofree char *hex = qcrypto_hash_finish_hex(sum);
  return hex;
}

}  // namespace qio::host
