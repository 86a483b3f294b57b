/*
 * GuestDisk: a raw disk image the synthetic guest writes in 4 KiB blocks.
 * Plain positioned file I/O: the image is local, and the workload thread
 * writes whole blocks at random offsets.
 */
#pragma once

#include <glib.h>

#include <memory>
#include <mutex>
#include <string>

namespace qio::host {

inline constexpr guint64 kGuestBlockSize = 4096;

class GuestDisk {
 public:
  /* Opens an existing raw image read-write; @id names it in messages. */
  static std::unique_ptr<GuestDisk> open(const char *id, const char *path, GError **error);
  ~GuestDisk();
  GuestDisk(const GuestDisk &) = delete;
  GuestDisk &operator=(const GuestDisk &) = delete;

  const std::string &id() const { return id_; }
  const std::string &path() const { return path_; }
  guint64 size() const { return size_; }
  guint64 block_count() const { return size_ / kGuestBlockSize; }
  guint64 blocks_written() const;

  /* Writes block @block with bytes derived from @seed and @generation. */
  bool write_block(guint64 block, guint64 seed, guint64 generation, GError **error);
  /* Writes the image's data through to the storage (fdatasync). */
  bool flush(GError **error);
  /* SHA-256 of the whole image, lower-case hex. */
  std::string digest(GError **error) const;

 private:
  GuestDisk(std::string id, std::string path, int fd, guint64 size);

  std::string id_;
  std::string path_;
  int fd_;
  guint64 size_;
  guint64 written_ = 0;
  /* Keeps a digest from reading a block half-written. */
  mutable std::mutex lock_;
};

}  // namespace qio::host
