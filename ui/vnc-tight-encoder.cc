#include "config.h"

#include "ui/vnc-tight-encoder.h"

#include <algorithm>
#include <cstring>

namespace qio::ui {

namespace {

/* Compression-control bytes: fill, and basic compression on a stream
 * with an explicit filter. */
constexpr guint8 kFill = 0x80, kReadFilter = 0x40;
constexpr guint8 kFilterPalette = 1;
/* Filtered data shorter than this is sent without zlib. */
constexpr gsize kMinToCompress = 12;
constexpr int kMaxPalette = 256;
/* The widest rectangle Tight allows. */
constexpr int kMaxWidth = 2048;

void put_header(const host::Rect &r, std::vector<guint8> &out) {
  const guint32 words[] = {static_cast<guint32>(r.x) << 16 | static_cast<guint32>(r.y),
                           static_cast<guint32>(r.width) << 16 | static_cast<guint32>(r.height),
                           VncTightEncoder::kEncoding};
  for (guint32 w : words)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<guint8>(w >> shift));
}

/* The distinct colours of one tile, in order of first appearance, found
 * through a small open-addressing table so a many-coloured tile costs a
 * constant per pixel. */
}  // namespace

class VncTightEncoder::TilePalette {
 public:
  void clear() {
    slot_index_.fill(0);
    count_ = 0;
  }
  /* The colour's index, added if new; -1 once the tile has too many. */
  int index_of(guint32 colour) {
    guint32 slot = (colour * 2654435761u) >> (32 - kSlotBits);
    for (;; slot = (slot + 1) & (kSlots - 1)) {
      guint16 stored = slot_index_[slot];
      if (!stored) break;
      if (colours_[stored - 1] == colour) return stored - 1;
    }
    if (count_ == kMaxPalette) return -1;
    colours_[count_] = colour;
    slot_index_[slot] = static_cast<guint16>(++count_);
    return count_ - 1;
  }
  int count() const { return count_; }
  guint32 colour(int i) const { return colours_[i]; }

 private:
  static constexpr int kSlotBits = 10, kSlots = 1 << kSlotBits; /* 4x the palette */
  std::array<guint16, kSlots> slot_index_{}; /* index + 1; 0: empty */
  std::array<guint32, kMaxPalette> colours_{};
  int count_ = 0;
};

namespace {

/* The colour of a one-colour rectangle, or false. */
bool solid_colour(const guint32 *pixels, int stride, const host::Rect &r, guint32 &colour) {
  colour = pixels[static_cast<gsize>(r.y) * stride + r.x];
  for (int y = r.y; y < r.y + r.height; y++) {
    const guint32 *row = pixels + static_cast<gsize>(y) * stride + r.x;
    for (int x = 0; x < r.width; x++)
      if (row[x] != colour) return false;
  }
  return true;
}

}  // namespace

VncTightEncoder::VncTightEncoder() : palette_(std::make_unique<TilePalette>()) {}

VncTightEncoder::~VncTightEncoder() {
  for (int s = 0; s < kStreams; s++)
    if (started_[s]) deflateEnd(&zs_[s]);
}

void VncTightEncoder::set_level(int level) {
  level_ = level < 0 ? Z_DEFAULT_COMPRESSION : std::min(level, 9);
}

guint VncTightEncoder::max_rectangles(const host::Rect &area) {
  if (area.empty()) return 0;
  return static_cast<guint>((area.width + kTile - 1) / kTile) *
         static_cast<guint>((area.height + kTile - 1) / kTile);
}

void VncTightEncoder::put_tpixel(guint32 colour, std::vector<guint8> &out) const {
  if (tpixel24_) {
    out.push_back(static_cast<guint8>(colour >> 16));
    out.push_back(static_cast<guint8>(colour >> 8));
    out.push_back(static_cast<guint8>(colour));
    return;
  }
  gsize at = out.size();
  out.resize(at + pf_->bytes_per_pixel());
  pf_->convert(&colour, 1, out.data() + at);
}

void VncTightEncoder::put_fill(const host::Rect &r, guint32 colour, std::vector<guint8> &out) {
  put_header(r, out);
  out.push_back(kFill);
  put_tpixel(colour, out);
}

void VncTightEncoder::put_data(Stream stream, const guint8 *data, gsize len,
                               std::vector<guint8> &out) {
  if (len < kMinToCompress) {
    out.insert(out.end(), data, data + len);
    return;
  }
  z_stream &zs = zs_[stream];
  if (!started_[stream]) {
    /* Allocation failure is the only way deflateInit fails here. */
    if (deflateInit(&zs, level_) != Z_OK) g_error("zlib could not start a deflate stream");
    started_[stream] = true;
    stream_level_[stream] = level_;
  }
  deflated_.resize(deflateBound(&zs, len) + 64);
  zs.next_out = deflated_.data();
  zs.avail_out = static_cast<uInt>(deflated_.size());
  /* Everything the stream emits from here on, a level change's block
   * included, belongs to this rectangle's data. */
  if (stream_level_[stream] != level_) {
    deflateParams(&zs, level_, Z_DEFAULT_STRATEGY);
    stream_level_[stream] = level_;
  }
  zs.next_in = const_cast<Bytef *>(data);
  zs.avail_in = static_cast<uInt>(len);
  for (;;) {
    deflate(&zs, Z_SYNC_FLUSH);
    if (zs.avail_out) break;
    gsize used = deflated_.size();
    deflated_.resize(used * 2);
    zs.next_out = deflated_.data() + used;
    zs.avail_out = static_cast<uInt>(deflated_.size() - used);
  }
  gsize n = deflated_.size() - zs.avail_out;
  /* The compact length: 7 bits per byte, low first, at most 22 bits (a
   * tile's deflated bytes are far fewer). */
  out.push_back(static_cast<guint8>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
  if (n > 0x7f) out.push_back(static_cast<guint8>(((n >> 7) & 0x7f) | (n > 0x3fff ? 0x80 : 0)));
  if (n > 0x3fff) out.push_back(static_cast<guint8>(n >> 14));
  out.insert(out.end(), deflated_.data(), deflated_.data() + n);
}

void VncTightEncoder::put_tile(const guint32 *pixels, int stride, const host::Rect &r,
                               std::vector<guint8> &out) {
  TilePalette &palette = *palette_;
  palette.clear();
  const gsize count = static_cast<gsize>(r.width) * r.height;
  indices_.resize(count);
  bool indexed = true;
  for (int y = 0; y < r.height && indexed; y++) {
    const guint32 *row = pixels + static_cast<gsize>(r.y + y) * stride + r.x;
    guint8 *idx = indices_.data() + static_cast<gsize>(y) * r.width;
    for (int x = 0; x < r.width; x++) {
      int i = palette.index_of(row[x]);
      if (i < 0) {
        indexed = false;
        break;
      }
      idx[x] = static_cast<guint8>(i);
    }
  }
  put_header(r, out);
  if (!indexed) {
    out.push_back(static_cast<guint8>(kFullColour << 4)); /* copy filter, implied */
    const gsize tpixel = tpixel24_ ? 3 : pf_->bytes_per_pixel();
    filtered_.resize(count * tpixel);
    for (int y = 0; y < r.height; y++) {
      const guint32 *row = pixels + static_cast<gsize>(r.y + y) * stride + r.x;
      guint8 *dst = filtered_.data() + static_cast<gsize>(y) * r.width * tpixel;
      if (!tpixel24_) {
        pf_->convert(row, static_cast<gsize>(r.width), dst);
        continue;
      }
      for (int x = 0; x < r.width; x++, dst += 3) {
        dst[0] = static_cast<guint8>(row[x] >> 16);
        dst[1] = static_cast<guint8>(row[x] >> 8);
        dst[2] = static_cast<guint8>(row[x]);
      }
    }
    put_data(kFullColour, filtered_.data(), filtered_.size(), out);
    return;
  }
  const int colours = palette.count();
  const Stream stream = colours == 2 ? kMono : kIndexed;
  out.push_back(static_cast<guint8>(kReadFilter | stream << 4));
  out.push_back(kFilterPalette);
  out.push_back(static_cast<guint8>(colours - 1));
  for (int i = 0; i < colours; i++) put_tpixel(palette.colour(i), out);
  if (colours > 2) {
    put_data(kIndexed, indices_.data(), count, out);
    return;
  }
  /* One bit per pixel, the leftmost in the most significant bit, each
   * row starting on a byte. */
  const gsize row_bytes = (static_cast<gsize>(r.width) + 7) / 8;
  filtered_.assign(row_bytes * r.height, 0);
  for (int y = 0; y < r.height; y++) {
    const guint8 *idx = indices_.data() + static_cast<gsize>(y) * r.width;
    guint8 *bits = filtered_.data() + static_cast<gsize>(y) * row_bytes;
    for (int x = 0; x < r.width; x++)
      if (idx[x]) bits[x / 8] |= static_cast<guint8>(0x80 >> (x % 8));
  }
  put_data(kMono, filtered_.data(), filtered_.size(), out);
}

guint VncTightEncoder::encode(const guint32 *pixels, int stride, const host::Rect &area,
                              const VncPixelFormat &pf, std::vector<guint8> &out) {
  pf_ = &pf;
  tpixel24_ = pf.true_colour && pf.bits_per_pixel == 32 && pf.depth == 24 &&
              pf.red_max == 255 && pf.green_max == 255 && pf.blue_max == 255;
  guint rects = 0;
  for (int y = area.y; y < area.y + area.height; y += kTile) {
    const int h = std::min(kTile, area.y + area.height - y);
    /* A run of same-coloured solid tiles waiting to be sent as one. */
    host::Rect run;
    guint32 run_colour = 0;
    for (int x = area.x; x < area.x + area.width; x += kTile) {
      const host::Rect tile{x, y, std::min(kTile, area.x + area.width - x), h};
      guint32 colour;
      if (solid_colour(pixels, stride, tile, colour)) {
        if (!run.empty() && colour == run_colour && run.width + tile.width <= kMaxWidth) {
          run.width += tile.width;
          continue;
        }
        if (!run.empty()) {
          put_fill(run, run_colour, out);
          rects++;
        }
        run = tile;
        run_colour = colour;
        continue;
      }
      if (!run.empty()) {
        put_fill(run, run_colour, out);
        rects++;
        run = {};
      }
      put_tile(pixels, stride, tile, out);
      rects++;
    }
    if (!run.empty()) {
      put_fill(run, run_colour, out);
      rects++;
    }
  }
  pf_ = nullptr;
  return rects;
}

}  // namespace qio::ui
