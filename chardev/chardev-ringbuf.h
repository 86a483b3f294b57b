/*
 * ChardevRingbuf: the "ringbuf" backend (QEMU's memory ring).  The
 * frontend's output is kept in a ring of size bytes (a power of two; the
 * oldest bytes are overwritten).  QMP ringbuf-write adds bytes to the ring
 * as the frontend would, ringbuf-read takes them out (QEMU's semantics:
 * nothing typed reaches the frontend).
 */
#pragma once

#include "chardev/chardev-options.h"
#include "chardev/chardev.h"

#include <memory>
#include <vector>

namespace qio::chardev {

class ChardevRingbuf final : public Chardev {
 public:
  static std::unique_ptr<ChardevRingbuf> create(ChardevOptions &opts, GMainContext *context,
                                                GError **error);
  bool open(GError **error) override;
  std::string filename() const override { return "memory"; }
  void describe(JsonObject *info) const override;

  gsize write(std::string_view data) override;
  /* Removes and returns up to @max bytes, oldest first. */
  std::string read(gsize max);
  gsize count() const { return static_cast<gsize>(prod_ - cons_); }
  gsize size() const { return ring_.size(); }

  static constexpr guint64 kDefaultSize = 65536;

 private:
  ChardevRingbuf(const std::string &id, GMainContext *context, gsize size);

  std::vector<char> ring_;
  guint64 prod_ = 0;
  guint64 cons_ = 0;
};

}  // namespace qio::chardev
