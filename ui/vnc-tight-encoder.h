/*
 * VncTightEncoder: the Tight encoding (RFB encoding 7, as the community
 * RFB specification describes it) of framebuffer areas for one client.
 * The area is cut into 64x64 tiles; a run of one-colour tiles of the same
 * colour along a row becomes one fill rectangle, a two-colour tile a 1-bit
 * palette, up to 256 colours an 8-bit palette, anything else plain pixels,
 * each compressed on the client's persistent zlib streams.  A console's
 * text costs a few per cent of Raw.  No JPEG: the guest's screen is text,
 * and lossy pixels would make it unreadable.
 *
 * The zlib streams live as long as the client's connection, as the
 * client's inflaters do; one encoder serves one connection.
 */
#pragma once

#include "host/framebuffer.h"
#include "ui/vnc-pixel-format.h"

#include <glib.h>
#include <zlib.h>

#include <array>
#include <memory>
#include <vector>

namespace qio::ui {

class VncTightEncoder {
 public:
  static constexpr guint32 kEncoding = 7;
  /* Tile side; also keeps every rectangle under Tight's 2048-pixel width. */
  static constexpr int kTile = 64;

  VncTightEncoder();
  ~VncTightEncoder();
  VncTightEncoder(const VncTightEncoder &) = delete;
  VncTightEncoder &operator=(const VncTightEncoder &) = delete;

  /* zlib level 0-9 (the client's CompressionLevel pseudo-encoding), or
   * below 0 for zlib's default; applies from the next rectangle on. */
  void set_level(int level);
  int level() const { return level_; }

  /* Appends the rectangles (headers included) that cover @area of the
   * XRGB8888 image @pixels (@stride pixels per row) in the client's
   * format @pf to @out, and returns how many it appended: at most
   * max_rectangles(@area). */
  guint encode(const guint32 *pixels, int stride, const host::Rect &area,
               const VncPixelFormat &pf, std::vector<guint8> &out);
  static guint max_rectangles(const host::Rect &area);

 private:
  enum Stream { kFullColour, kMono, kIndexed, kStreams };
  class TilePalette;

  void put_fill(const host::Rect &r, guint32 colour, std::vector<guint8> &out);
  void put_tile(const guint32 *pixels, int stride, const host::Rect &r,
                std::vector<guint8> &out);
  void put_tpixel(guint32 colour, std::vector<guint8> &out) const;
  /* Appends @data as Tight sends filtered pixels: as is below 12 bytes,
   * otherwise its compact length and the deflated bytes on @stream. */
  void put_data(Stream stream, const guint8 *data, gsize len, std::vector<guint8> &out);

  const VncPixelFormat *pf_ = nullptr; /* during encode() */
  bool tpixel24_ = false;              /* TPIXELs are 3 bytes, R G B */
  int level_ = Z_DEFAULT_COMPRESSION;
  std::array<z_stream, kStreams> zs_{};
  std::array<bool, kStreams> started_{};
  std::array<int, kStreams> stream_level_{};
  std::unique_ptr<TilePalette> palette_;
  /* Per tile: palette index of each pixel, filtered bytes, deflated bytes. */
  std::vector<guint8> indices_, filtered_, deflated_;
};

}  // namespace qio::ui
