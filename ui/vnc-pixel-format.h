/*
 * VncPixelFormat: an RFB PIXEL_FORMAT (RFC 6143 section 7.4): how a client
 * wants pixels on the wire.  The server's framebuffer is XRGB8888; every
 * true-colour format a client may ask for (8, 16 or 32 bits per pixel,
 * either byte order, any channel widths and shifts) is converted to.
 */
#pragma once

#include <glib.h>

namespace qio::ui {

struct VncPixelFormat {
  guint8 bits_per_pixel = 32;
  guint8 depth = 24;
  bool big_endian = false;
  bool true_colour = true;
  guint16 red_max = 255, green_max = 255, blue_max = 255;
  guint8 red_shift = 16, green_shift = 8, blue_shift = 0;

  static constexpr gsize kWireSize = 16;

  /* Reads a SetPixelFormat body; refuses (naming @peer) what no client can
   * mean: other sizes than 8/16/32 bits, colour-map mode, maxima that do
   * not fit the pixel, shifts past its end. */
  static bool parse(const guint8 wire[kWireSize], const char *peer, VncPixelFormat &out,
                    GError **error);
  void write(guint8 wire[kWireSize]) const;

  gsize bytes_per_pixel() const { return bits_per_pixel / 8; }
  /* Converts @n XRGB8888 pixels into @dst (n * bytes_per_pixel bytes). */
  void convert(const guint32 *src, gsize n, guint8 *dst) const;
};

}  // namespace qio::ui
