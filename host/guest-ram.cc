#include "config.h"

#include "host/guest-ram.h"
#include "qcrypto/hash.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <gio/gio.h>
#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstring>

namespace qio::host {

GuestRam::GuestRam(guint8 *mem, guint64 size)
    : mem_(mem), size_(size), dirty_words_((size / kGuestPageSize + 63) / 64) {
  dirty_ = std::make_unique<std::atomic<guint64>[]>(dirty_words_);
  for (guint64 i = 0; i < dirty_words_; i++) dirty_[i].store(0, std::memory_order_relaxed);
}

GuestRam::~GuestRam() { munmap(mem_, size_); }

namespace {

constexpr gsize kHugePage = 2 * 1024 * 1024;

/* Anonymous memory on a huge-page boundary, with transparent huge pages
 * asked for: migration streams all of guest RAM through the CPU, and 4 KiB
 * pages would cost a TLB miss (and a fault when first touched) every 4 KiB. */
guint8 *map_guest_memory(guint64 size) {
  gsize len = size + kHugePage;
  void *raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto start = reinterpret_cast<guintptr>(raw);
  guintptr aligned = (start + kHugePage - 1) & ~static_cast<guintptr>(kHugePage - 1);
  if (aligned > start) munmap(raw, aligned - start);
  gsize tail = len - (aligned - start) - size;
  if (tail) munmap(reinterpret_cast<void *>(aligned + size), tail);
  auto *mem = reinterpret_cast<guint8 *>(aligned);
  /* Only a hint: without THP the memory works the same. */
  madvise(mem, size, MADV_HUGEPAGE);
  return mem;
}

}  // namespace

std::unique_ptr<GuestRam> GuestRam::create(guint64 size, guint64 seed, GError **error) {
  if (size == 0 || size % kGuestPageSize != 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Guest RAM size %llu is not a positive multiple of 4 KiB; pass -m with a size "
                  "such as 64M"),
                static_cast<unsigned long long>(size));
    return nullptr;
  }
  guint8 *mem = map_guest_memory(size);
  if (!mem) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot allocate %llu bytes of guest RAM: %s; pass a smaller -m"),
                static_cast<unsigned long long>(size), g_strerror(err));
    return nullptr;
  }
  std::unique_ptr<GuestRam> ram(new GuestRam(mem, size));
  ram->fill(seed);
  return ram;
}

void GuestRam::fill(guint64 seed) {
  guint64 state = seed;
  auto *words = reinterpret_cast<guint64 *>(mem_);
  for (guint64 i = 0; i < size_ / 8; i++) words[i] = splitmix64(state);
}

void GuestRam::write_page(guint64 page, guint64 seed, guint64 generation) {
  g_return_if_fail(page < page_count());
  guint64 state = seed ^ (page * 0xD6E8FEB86659FD93ULL) ^ (generation << 1);
  std::lock_guard guard(lock_);
  auto *words = reinterpret_cast<guint64 *>(mem_ + page * kGuestPageSize);
  for (guint64 i = 0; i < kGuestPageSize / 8; i++) words[i] = splitmix64(state);
  mark_dirty(page);
}

void GuestRam::read_page(guint64 page, std::span<guint8> out) const {
  g_return_if_fail(page < page_count() && out.size() >= kGuestPageSize);
  std::lock_guard guard(lock_);
  memcpy(out.data(), mem_ + page * kGuestPageSize, kGuestPageSize);
}

void GuestRam::load_page(guint64 page, std::span<const guint8> data) {
  g_return_if_fail(page < page_count() && data.size() >= kGuestPageSize);
  std::lock_guard guard(lock_);
  memcpy(mem_ + page * kGuestPageSize, data.data(), kGuestPageSize);
}

guint64 GuestRam::page_checksum(guint64 page) const {
  g_return_val_if_fail(page < page_count(), 0);
  std::lock_guard guard(lock_);
  const auto *words = reinterpret_cast<const guint64 *>(mem_ + page * kGuestPageSize);
  guint64 h = 0xCBF29CE484222325ULL;
  for (guint64 i = 0; i < kGuestPageSize / 8; i++) {
    h = (h ^ words[i]) * 0x100000001B3ULL;
    h ^= h >> 32;
  }
  return h;
}

std::string GuestRam::digest() const {
  g_autoptr(QCryptoHash) sum = qcrypto_hash_new_sha256();
  std::lock_guard guard(lock_);
  qcrypto_hash_update(sum, mem_, size_);
  g_autofree char *hex = qcrypto_hash_finish_hex(sum);
  return hex;
}

void GuestRam::mark_dirty(guint64 page) {
  dirty_[page / 64].fetch_or(G_GUINT64_CONSTANT(1) << (page % 64), std::memory_order_relaxed);
}

void GuestRam::mark_all_dirty() {
  for (guint64 p = 0; p < page_count(); p++) mark_dirty(p);
}

bool GuestRam::is_dirty(guint64 page) const {
  return (dirty_[page / 64].load(std::memory_order_relaxed) >> (page % 64)) & 1;
}

guint64 GuestRam::dirty_count() const {
  guint64 n = 0;
  for (guint64 i = 0; i < dirty_words_; i++)
    n += std::popcount(dirty_[i].load(std::memory_order_relaxed));
  return n;
}

guint64 GuestRam::fetch_and_clear_dirty(std::vector<guint64> &bitmap) {
  bitmap.resize(dirty_words_);
  guint64 n = 0;
  for (guint64 i = 0; i < dirty_words_; i++) {
    bitmap[i] = dirty_[i].exchange(0, std::memory_order_acquire);
    n += std::popcount(bitmap[i]);
  }
  return n;
}

}  // namespace qio::host
