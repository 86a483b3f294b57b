#include "config.h"

#include "ui/vnc-pixel-format.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::ui {

namespace {

int bit_width(guint32 max) {
  int bits = 0;
  while (max) {
    bits++;
    max >>= 1;
  }
  return bits;
}

/* Scales an 8-bit channel to 0..max, rounding. */
guint32 scale(guint32 value, guint32 max) { return (value * max + 127) / 255; }

}  // namespace

bool VncPixelFormat::parse(const guint8 w[kWireSize], const char *peer, VncPixelFormat &out,
                           GError **error) {
  VncPixelFormat pf;
  pf.bits_per_pixel = w[0];
  pf.depth = w[1];
  pf.big_endian = w[2] != 0;
  pf.true_colour = w[3] != 0;
  pf.red_max = static_cast<guint16>(w[4] << 8 | w[5]);
  pf.green_max = static_cast<guint16>(w[6] << 8 | w[7]);
  pf.blue_max = static_cast<guint16>(w[8] << 8 | w[9]);
  pf.red_shift = w[10];
  pf.green_shift = w[11];
  pf.blue_shift = w[12];
  if (pf.bits_per_pixel != 8 && pf.bits_per_pixel != 16 && pf.bits_per_pixel != 32) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s asked for %u bits per pixel; only 8, 16 and 32 exist"), peer,
                pf.bits_per_pixel);
    return false;
  }
  if (!pf.true_colour) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("VNC client %s asked for a colour-map pixel format, which qiod does not "
                  "offer; configure the viewer for true colour"),
                peer);
    return false;
  }
  struct {
    guint16 max;
    guint8 shift;
  } channels[] = {{pf.red_max, pf.red_shift}, {pf.green_max, pf.green_shift},
                  {pf.blue_max, pf.blue_shift}};
  for (const auto &c : channels) {
    if (c.max == 0 || (c.max & (c.max + 1u)) != 0 ||
        c.shift + bit_width(c.max) > pf.bits_per_pixel) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("VNC client %s sent a pixel format whose colour maximum %u with shift %u "
                    "does not fit %u bits per pixel"),
                  peer, c.max, c.shift, pf.bits_per_pixel);
      return false;
    }
  }
  out = pf;
  return true;
}

void VncPixelFormat::write(guint8 w[kWireSize]) const {
  w[0] = bits_per_pixel;
  w[1] = depth;
  w[2] = big_endian;
  w[3] = true_colour;
  w[4] = static_cast<guint8>(red_max >> 8);
  w[5] = static_cast<guint8>(red_max);
  w[6] = static_cast<guint8>(green_max >> 8);
  w[7] = static_cast<guint8>(green_max);
  w[8] = static_cast<guint8>(blue_max >> 8);
  w[9] = static_cast<guint8>(blue_max);
  w[10] = red_shift;
  w[11] = green_shift;
  w[12] = blue_shift;
  w[13] = w[14] = w[15] = 0;
}

void VncPixelFormat::convert(const guint32 *src, gsize n, guint8 *dst) const {
  const bool native = bits_per_pixel == 32 && red_max == 255 && green_max == 255 &&
                      blue_max == 255 && red_shift == 16 && green_shift == 8 && blue_shift == 0;
  const gsize bpp = bytes_per_pixel();
  /* Bits no channel uses are set: some viewers (noVNC 1.3's Raw decoder)
   * take the spare byte of a 32-bit pixel as alpha. */
  guint32 spare = 0;
  if (bits_per_pixel == 32)
    spare = ~(static_cast<guint32>(red_max) << red_shift |
              static_cast<guint32>(green_max) << green_shift |
              static_cast<guint32>(blue_max) << blue_shift);
  for (gsize i = 0; i < n; i++) {
    guint32 p = src[i];
    guint32 v;
    if (native) {
      v = p & 0xffffff;
    } else {
      v = scale((p >> 16) & 0xff, red_max) << red_shift |
          scale((p >> 8) & 0xff, green_max) << green_shift |
          scale(p & 0xff, blue_max) << blue_shift;
    }
    v |= spare;
    guint8 *d = dst + i * bpp;
    for (gsize b = 0; b < bpp; b++) {
      gsize byte = big_endian ? bpp - 1 - b : b;
      d[byte] = static_cast<guint8>(v >> (8 * b));
    }
  }
}

}  // namespace qio::ui
