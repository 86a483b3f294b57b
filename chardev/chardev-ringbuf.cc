#include "config.h"

#include "chardev/chardev-ringbuf.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::chardev {

ChardevRingbuf::ChardevRingbuf(const std::string &id, GMainContext *context, gsize size)
    : Chardev(id, "ringbuf", context), ring_(size) {}

std::unique_ptr<ChardevRingbuf> ChardevRingbuf::create(ChardevOptions &opts,
                                                       GMainContext *context, GError **error) {
  guint64 size = 0;
  if (!opts.take_uint("size", kDefaultSize, G_GUINT64_CONSTANT(1) << 30, &size, error))
    return nullptr;
  /* A power of two, as QEMU requires, so positions wrap with a mask. */
  if (size == 0 || (size & (size - 1)) != 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': ringbuf size %llu must be a power of two (for instance 65536)"),
                opts.id().c_str(), static_cast<unsigned long long>(size));
    return nullptr;
  }
  return std::unique_ptr<ChardevRingbuf>(
      new ChardevRingbuf(opts.id(), context, static_cast<gsize>(size)));
}

bool ChardevRingbuf::open(GError **) {
  set_open(true);
  return true;
}

void ChardevRingbuf::describe(JsonObject *info) const {
  json_object_set_int_member(info, "size", static_cast<gint64>(size()));
  json_object_set_int_member(info, "count", static_cast<gint64>(count()));
}

gsize ChardevRingbuf::write(std::string_view data) {
  const guint64 mask = ring_.size() - 1;
  for (char c : data) {
    ring_[prod_++ & mask] = c;
    if (prod_ - cons_ > ring_.size()) cons_ = prod_ - ring_.size();
  }
  return data.size();
}

std::string ChardevRingbuf::read(gsize max) {
  const guint64 mask = ring_.size() - 1;
  std::string out;
  out.reserve(MIN(max, count()));
  while (out.size() < max && cons_ < prod_) out += ring_[cons_++ & mask];
  return out;
}

}  // namespace qio::chardev
