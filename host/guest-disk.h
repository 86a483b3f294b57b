/*
 * GuestDisk: a raw disk image the synthetic guest writes in 4 KiB blocks.
 * Plain positioned file I/O: the image is local, and the workload thread
 * writes whole blocks at random offsets.
 */
#pragma once

#include <glib.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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
  /* While the disk is frozen: waits for the thaw, or with @skip_if_frozen
   * writes nothing and returns false (error unset). */
  bool write_block(guint64 block, guint64 seed, guint64 generation, GError **error,
                   bool skip_if_frozen = false);
  /* Writes the image's data through to the storage (fdatasync). */
  bool flush(GError **error);
  /* SHA-256 of the whole image, lower-case hex. */
  std::string digest(GError **error) const;

  /* Block jobs (drive-mirror).  While tracking is on, every written block
   * is marked dirty; take_dirty() returns the marked blocks in ascending
   * order and clears them. */
  void set_dirty_tracking(bool on);
  std::vector<guint64> take_dirty();
  /* Reads @len bytes at @offset, never a half-written block. */
  bool read(guint64 offset, void *buf, gsize len, GError **error) const;
  /* While frozen, write_block waits (or skips): a job's final pass sees a
   * fixed image. */
  void freeze();
  void thaw();

  /* A writable NBD export writes the image directly, past dirty tracking,
   * so a drive is either mirrored or exported writable, never both (its
   * mirror would silently miss those writes).  Main thread only. */
  const std::string &mirror_job() const { return mirror_job_; }
  void set_mirror_job(std::string job_id) { mirror_job_ = std::move(job_id); }
  int writable_exports() const { return writable_exports_; }
  void add_writable_export() { writable_exports_++; }
  void remove_writable_export() { writable_exports_--; }

 private:
  GuestDisk(std::string id, std::string path, int fd, guint64 size);

  std::string id_;
  std::string path_;
  int fd_;
  guint64 size_;
  guint64 written_ = 0;
  bool tracking_ = false;
  std::vector<bool> dirty_;
  bool frozen_ = false;
  std::string mirror_job_;
  int writable_exports_ = 0;
  std::condition_variable thawed_;
  /* Keeps a digest from reading a block half-written. */
  mutable std::mutex lock_;
};

}  // namespace qio::host
