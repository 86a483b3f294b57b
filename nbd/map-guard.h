/*
 * MapGuard: lets a process touch a shared file mapping from user space
 * without dying of SIGBUS.  A page of a MAP_SHARED file mapping that the
 * file no longer backs (the file shrank, its tmpfs is full, the disk
 * failed to read it) raises SIGBUS when touched.  While a guard covers the
 * range, the process-wide handler puts a private zero page in its place,
 * counts the fault and lets the access finish; the owner then sees
 * faults() > 0 and must stop trusting the map: data written into it since
 * may have gone to such a page, data read from it may be zeroes.  Faults
 * outside every guarded range go to the handler that was installed before
 * (or kill the process as SIGBUS always did).
 */
#pragma once

#include <glib.h>

#include <atomic>

namespace qio::nbd {

class MapGuard {
 public:
  /* Guards [@base, @base + @len); ok() is false when every slot is taken
   * (64 maps at once) or the handler could not be installed. */
  MapGuard(void *base, gsize len);
  ~MapGuard();
  MapGuard(const MapGuard &) = delete;
  MapGuard &operator=(const MapGuard &) = delete;

  bool ok() const { return slot_ >= 0; }
  /* Pages of the range replaced since the guard was made. */
  guint faults() const;

 private:
  int slot_ = -1;
};

}  // namespace qio::nbd
