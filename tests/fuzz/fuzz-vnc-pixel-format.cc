/* An RFB SetPixelFormat body (ui/vnc-pixel-format): the first 16 bytes of
 * the input are the PIXEL_FORMAT a viewer asks for; up to 64 XRGB8888
 * pixels follow, converted into a buffer of exactly the size the format
 * says, so that ASan sees a conversion writing past it.  A format parse()
 * accepts must also survive write() and parse() again unchanged. */
#include "config.h"

#include "ui/vnc-pixel-format.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using qio::ui::VncPixelFormat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < VncPixelFormat::kWireSize) return 0;
  VncPixelFormat format;
  GError *error = nullptr;
  if (!VncPixelFormat::parse(data, "fuzz", format, &error)) {
    g_clear_error(&error);
    return 0;
  }
  guint8 wire[VncPixelFormat::kWireSize];
  format.write(wire);
  VncPixelFormat again;
  guint8 rewritten[VncPixelFormat::kWireSize];
  if (!VncPixelFormat::parse(wire, "fuzz", again, nullptr) ||
      (again.write(rewritten), memcmp(wire, rewritten, sizeof wire) != 0))
    abort();

  size_t n = std::min<size_t>((size - VncPixelFormat::kWireSize) / 4, 64);
  if (n == 0) return 0;
  std::vector<guint32> src(n);
  memcpy(src.data(), data + VncPixelFormat::kWireSize, n * 4);
  auto *dst = new guint8[n * format.bytes_per_pixel()];
  format.convert(src.data(), n, dst);
  delete[] dst;
  return 0;
}
