/*
 * GuestRam: the synthetic guest's memory.  Page-aligned, 4 KiB pages,
 * filled from a seed; the guest tracks its own dirty pages in an atomic
 * bitmap so that migration can iterate (fetch-and-clear).
 */
#pragma once

#include <glib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace qio::host {

inline constexpr guint64 kGuestPageSize = 4096;

class GuestRam {
 public:
  /* @size must be a non-zero multiple of kGuestPageSize. */
  static std::unique_ptr<GuestRam> create(guint64 size, guint64 seed, GError **error);
  ~GuestRam();
  GuestRam(const GuestRam &) = delete;
  GuestRam &operator=(const GuestRam &) = delete;

  guint64 size() const { return size_; }
  guint64 page_count() const { return size_ / kGuestPageSize; }

  /* Fills @page with bytes derived from @seed and @generation (what the
   * workload does) and marks it dirty.  Thread-safe. */
  void write_page(guint64 page, guint64 seed, guint64 generation);
  /* Copies a page out (migration source) or in (destination); loading
   * does not mark the page dirty. */
  void read_page(guint64 page, std::span<guint8> out) const;
  void load_page(guint64 page, std::span<const guint8> data);

  /* The page's memory, for migration to send from and receive into
   * without a copy.  Readers race with the workload by design: a page
   * written meanwhile is dirty again and sent once more. */
  guint8 *page_data(guint64 page) { return mem_ + page * kGuestPageSize; }

  /* A fast 64-bit checksum of one page (word-wise multiply-xor hash). */
  guint64 page_checksum(guint64 page) const;
  /* SHA-256 over all of RAM, lower-case hex (GnuTLS, using the CPU's SHA
   * extensions: about 0.8 GB/s here, where GChecksum gave 0.2 GB/s).
   * Chosen over a faster private hash so that any tool (sha256sum of a
   * dump) agrees. */
  std::string digest() const;

  void mark_dirty(guint64 page);
  void mark_all_dirty();
  bool is_dirty(guint64 page) const;
  guint64 dirty_count() const;
  /* Moves the dirty bitmap into @bitmap (one bit per page, 64 pages per
   * word) and clears it atomically word by word; returns the number of
   * dirty pages taken.  A page written concurrently is either in this
   * round or the next, never lost. */
  guint64 fetch_and_clear_dirty(std::vector<guint64> &bitmap);

 private:
  GuestRam(guint8 *mem, guint64 size);
  void fill(guint64 seed);

  guint8 *mem_;
  guint64 size_;
  std::unique_ptr<std::atomic<guint64>[]> dirty_;
  guint64 dirty_words_;
  /* Serialises page writers against readers so that a digest or a page
   * copy never sees a half-written page. */
  mutable std::mutex lock_;
};

/* splitmix64: a fast, well-mixed PRNG step used for seeding and content. */
inline guint64 splitmix64(guint64 &state) {
  guint64 z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace qio::host
