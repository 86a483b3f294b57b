/* VncTightEncoder against a Tight decoder written here from the RFB
 * specification: every pixel of the area decodes to what Raw would have
 * carried, exactly once, in every kind of rectangle (fill, 1-bit and
 * 8-bit palettes, full colour, data below zlib's threshold), in 3-byte
 * TPIXELs and in other pixel formats, across updates sharing the zlib
 * streams and level changes, and never wider than 2048 pixels. */
#include "config.h"

#include "host/framebuffer.h"
#include "ui/vnc-pixel-format.h"
#include "ui/vnc-tight-encoder.h"

#include <glib.h>
#include <zlib.h>

#include <array>
#include <set>
#include <vector>

using qio::host::Rect;
using qio::ui::VncPixelFormat;
using qio::ui::VncTightEncoder;

namespace {

struct Rgb {
  guint32 r, g, b;
  bool operator==(const Rgb &) const = default;
};

/* The colour components a client reads from one PIXEL. */
Rgb components(const VncPixelFormat &pf, const guint8 *p) {
  guint32 v = 0;
  const gsize bpp = pf.bytes_per_pixel();
  for (gsize i = 0; i < bpp; i++) {
    gsize byte = pf.big_endian ? i : bpp - 1 - i;
    v = v << 8 | p[byte];
  }
  return {v >> pf.red_shift & pf.red_max, v >> pf.green_shift & pf.green_max,
          v >> pf.blue_shift & pf.blue_max};
}

/* What Raw would show the client for one server pixel. */
Rgb expected(const VncPixelFormat &pf, guint32 pixel) {
  guint8 bytes[4];
  pf.convert(&pixel, 1, bytes);
  return components(pf, bytes);
}

enum Kind { kFill, kMono, kIndexed, kFullColour, kUncompressed };

/* A Tight client: four inflate streams, the image as colour components. */
class Decoder {
 public:
  Decoder(int width, int height, const VncPixelFormat &pf)
      : width_(width), height_(height), pf_(pf), image_(static_cast<gsize>(width) * height),
        covered_(image_.size()) {
    tpixel24_ = pf.bits_per_pixel == 32 && pf.depth == 24 && pf.red_max == 255 &&
                pf.green_max == 255 && pf.blue_max == 255;
  }
  ~Decoder() {
    for (int s = 0; s < 4; s++)
      if (started_[s]) inflateEnd(&zs_[s]);
  }

  /* Decodes @count rectangles from @data; false (with a message) on any
   * malformation. */
  bool decode(const std::vector<guint8> &data, guint count) {
    data_ = &data;
    at_ = 0;
    std::fill(covered_.begin(), covered_.end(), 0);
    for (guint i = 0; i < count; i++)
      if (!rectangle()) return false;
    if (at_ != data.size()) return fail("bytes left after the rectangles");
    return true;
  }
  const Rgb &at(int x, int y) const { return image_[static_cast<gsize>(y) * width_ + x]; }
  int covered(int x, int y) const { return covered_[static_cast<gsize>(y) * width_ + x]; }
  const std::set<Kind> &kinds() const { return kinds_; }
  int widest() const { return widest_; }
  const char *error() const { return error_; }

 private:
  bool fail(const char *why) {
    error_ = why;
    return false;
  }
  bool take(gsize n, const guint8 *&p) {
    if (data_->size() - at_ < n) return fail("truncated");
    p = data_->data() + at_;
    at_ += n;
    return true;
  }
  bool u8(guint &v) {
    const guint8 *p;
    if (!take(1, p)) return false;
    v = p[0];
    return true;
  }
  bool tpixel(const guint8 *p, Rgb &out) {
    out = tpixel24_ ? Rgb{p[0], p[1], p[2]} : components(pf_, p);
    return true;
  }
  gsize tpixel_size() const { return tpixel24_ ? 3 : pf_.bytes_per_pixel(); }

  bool inflate_into(int stream, gsize want, std::vector<guint8> &out) {
    out.resize(want);
    if (want < 12) {
      const guint8 *p;
      if (!take(want, p)) return false;
      std::copy(p, p + want, out.begin());
      kinds_.insert(kUncompressed);
      return true;
    }
    guint b0, b1 = 0, b2 = 0;
    if (!u8(b0)) return false;
    gsize len = b0 & 0x7f;
    if (b0 & 0x80) {
      if (!u8(b1)) return false;
      len |= (b1 & 0x7f) << 7;
      if (b1 & 0x80) {
        if (!u8(b2)) return false;
        len |= static_cast<gsize>(b2) << 14;
      }
    }
    const guint8 *p;
    if (!take(len, p)) return false;
    z_stream &zs = zs_[stream];
    if (!started_[stream]) {
      g_assert_cmpint(inflateInit(&zs), ==, Z_OK);
      started_[stream] = true;
    }
    zs.next_in = const_cast<Bytef *>(p);
    zs.avail_in = static_cast<uInt>(len);
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(want);
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return fail("inflate failed");
    if (zs.avail_out) return fail("zlib data shorter than the rectangle");
    if (zs.avail_in) return fail("zlib data longer than the rectangle");
    return true;
  }

  bool rectangle() {
    const guint8 *h;
    if (!take(12, h)) return false;
    Rect r{h[0] << 8 | h[1], h[2] << 8 | h[3], h[4] << 8 | h[5], h[6] << 8 | h[7]};
    guint32 encoding = static_cast<guint32>(h[8]) << 24 | h[9] << 16 | h[10] << 8 | h[11];
    if (encoding != VncTightEncoder::kEncoding) return fail("not Tight");
    if (r.empty() || r.x + r.width > width_ || r.y + r.height > height_)
      return fail("rectangle outside the screen");
    widest_ = std::max(widest_, r.width);
    guint control;
    if (!u8(control)) return false;
    for (int s = 0; s < 4; s++)
      if (control & (1u << s) && started_[s]) inflateReset(&zs_[s]);
    std::vector<Rgb> pixels(static_cast<gsize>(r.width) * r.height);
    const guint8 *p;
    if ((control >> 4) == 8) {
      if (!take(tpixel_size(), p)) return false;
      Rgb c;
      tpixel(p, c);
      std::fill(pixels.begin(), pixels.end(), c);
      kinds_.insert(kFill);
    } else if (control & 0x80) {
      return fail("JPEG or an invalid compression type");
    } else {
      int stream = (control >> 4) & 3;
      guint filter = 0;
      if (control & 0x40 && !u8(filter)) return false;
      std::vector<guint8> raw;
      if (filter == 0) {
        if (!inflate_into(stream, pixels.size() * tpixel_size(), raw)) return false;
        for (gsize i = 0; i < pixels.size(); i++) tpixel(raw.data() + i * tpixel_size(), pixels[i]);
        kinds_.insert(kFullColour);
      } else if (filter == 1) {
        guint n;
        if (!u8(n)) return false;
        std::vector<Rgb> palette(n + 1);
        for (auto &c : palette) {
          if (!take(tpixel_size(), p)) return false;
          tpixel(p, c);
        }
        if (palette.size() == 2) {
          gsize row = (static_cast<gsize>(r.width) + 7) / 8;
          if (!inflate_into(stream, row * r.height, raw)) return false;
          for (int y = 0; y < r.height; y++)
            for (int x = 0; x < r.width; x++)
              pixels[static_cast<gsize>(y) * r.width + x] =
                  palette[raw[y * row + x / 8] >> (7 - x % 8) & 1];
          kinds_.insert(kMono);
        } else {
          if (!inflate_into(stream, pixels.size(), raw)) return false;
          for (gsize i = 0; i < pixels.size(); i++) {
            if (raw[i] >= palette.size()) return fail("index past the palette");
            pixels[i] = palette[raw[i]];
          }
          kinds_.insert(kIndexed);
        }
      } else {
        return fail("unexpected filter");
      }
    }
    for (int y = 0; y < r.height; y++)
      for (int x = 0; x < r.width; x++) {
        gsize i = static_cast<gsize>(r.y + y) * width_ + r.x + x;
        image_[i] = pixels[static_cast<gsize>(y) * r.width + x];
        covered_[i]++;
      }
    return true;
  }

  int width_, height_;
  VncPixelFormat pf_;
  bool tpixel24_;
  std::vector<Rgb> image_;
  std::vector<int> covered_;
  std::array<z_stream, 4> zs_{};
  std::array<bool, 4> started_{};
  const std::vector<guint8> *data_ = nullptr;
  gsize at_ = 0;
  std::set<Kind> kinds_;
  int widest_ = 0;
  const char *error_ = "";
};

/* Encodes @area, decodes it and checks every pixel of it, once each. */
void round_trip(VncTightEncoder &enc, Decoder &dec, const std::vector<guint32> &pixels, int width,
                const Rect &area, const VncPixelFormat &pf, gsize *bytes = nullptr) {
  std::vector<guint8> out;
  guint n = enc.encode(pixels.data(), width, area, pf, out);
  g_assert_cmpuint(n, >, 0);
  g_assert_cmpuint(n, <=, VncTightEncoder::max_rectangles(area));
  if (!dec.decode(out, n)) g_error("decoding failed: %s", dec.error());
  int height = static_cast<int>(pixels.size() / width);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      bool inside = x >= area.x && x < area.x + area.width && y >= area.y &&
                    y < area.y + area.height;
      g_assert_cmpint(dec.covered(x, y), ==, inside ? 1 : 0);
      if (inside && !(dec.at(x, y) == expected(pf, pixels[static_cast<gsize>(y) * width + x])))
        g_error("pixel %d,%d differs", x, y);
    }
  g_assert_cmpint(dec.widest(), <=, 2048);
  if (bytes) *bytes = out.size();
}

std::vector<guint32> console_pixels(const qio::host::Framebuffer &fb) {
  return {fb.pixels(), fb.pixels() + static_cast<gsize>(fb.width()) * fb.height()};
}

/* Text on the console: fills and 1-bit palettes, a few per cent of Raw. */
void test_console() {
  qio::host::Framebuffer fb;
  for (int i = 0; i < 20; i++) fb.put_text("qio$ status\r\nram 256 MiB, dirty rate 0 pages/s\r\n");
  auto pixels = console_pixels(fb);
  VncPixelFormat pf;
  VncTightEncoder enc;
  Decoder dec(fb.width(), fb.height(), pf);
  gsize bytes;
  round_trip(enc, dec, pixels, fb.width(), {0, 0, fb.width(), fb.height()}, pf, &bytes);
  g_assert_true(dec.kinds().count(kFill) && dec.kinds().count(kMono));
  gsize raw = pixels.size() * 4;
  g_test_message("console %dx%d: Tight %zu bytes, Raw %zu", fb.width(), fb.height(), bytes, raw);
  g_assert_cmpuint(bytes * 20, <, raw);
}

/* An image with every kind of tile: solid runs, three colours, a gradient
 * of more than 256 colours, two colours. */
std::vector<guint32> mixed_image(int width, int height) {
  std::vector<guint32> px(static_cast<gsize>(width) * height, 0x00336699);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      guint32 &p = px[static_cast<gsize>(y) * width + x];
      if (x >= 70 && x < 130 && y < 64) p = (x + y) % 3 == 0 ? 0xff0000 : (x % 2 ? 0x00ff00 : 0x0000ff);
      if (x >= 130 && y >= 64) p = static_cast<guint32>(x * 7 % 256) << 16 | (y * 5 % 256) << 8 | ((x ^ y) & 0xff);
      if (x < 64 && y >= 64 && (x / 3 + y / 5) % 2) p = 0xffffff;
    }
  return px;
}

void test_every_kind(const VncPixelFormat &pf) {
  const int w = 250, h = 150;
  auto px = mixed_image(w, h);
  VncTightEncoder enc;
  Decoder dec(w, h, pf);
  round_trip(enc, dec, px, w, {0, 0, w, h}, pf);
  for (Kind k : {kFill, kMono, kIndexed, kFullColour}) g_assert_true(dec.kinds().count(k));
  /* Part of the screen, off the tile grid. */
  round_trip(enc, dec, px, w, {5, 3, 200, 140}, pf);
}

void test_formats() {
  test_every_kind(VncPixelFormat{});
  /* 4-byte TPIXELs: depth 32 */
  test_every_kind({.depth = 32, .big_endian = true, .red_shift = 0, .blue_shift = 16});
  for (bool big_endian : {false, true})
    test_every_kind({.bits_per_pixel = 16, .depth = 16, .big_endian = big_endian, .red_max = 31,
                     .green_max = 63, .blue_max = 31, .red_shift = 11, .green_shift = 5,
                     .blue_shift = 0});
  test_every_kind({.bits_per_pixel = 8, .depth = 8, .red_max = 7, .green_max = 7, .blue_max = 3,
                   .red_shift = 0, .green_shift = 3, .blue_shift = 6});
}

/* Updates share the client's zlib streams; levels change between them. */
void test_streams_and_levels() {
  const int w = 250, h = 150;
  auto px = mixed_image(w, h);
  VncPixelFormat pf;
  VncTightEncoder enc;
  Decoder dec(w, h, pf);
  gsize sizes[3];
  int levels[] = {0, 9, 1};
  for (int round = 0; round < 3; round++) {
    enc.set_level(levels[round]);
    g_assert_cmpint(enc.level(), ==, levels[round]);
    round_trip(enc, dec, px, w, {0, 0, w, h}, pf, &sizes[round]);
    for (int i = 0; i < w * 20; i++) px[static_cast<gsize>(i) * 7 % px.size()] ^= 0x010101;
  }
  /* Level 0 stores: larger than level 9. */
  g_assert_cmpuint(sizes[0], >, sizes[1]);
  enc.set_level(42);
  g_assert_cmpint(enc.level(), ==, 9);
  enc.set_level(-3);
  g_assert_cmpint(enc.level(), ==, Z_DEFAULT_COMPRESSION);
}

/* A screen wider than Tight allows in one rectangle: every fill run and
 * tile stays within 2048 pixels. */
void test_wide() {
  qio::host::Framebuffer fb(560, 4); /* 4480 x 64 */
  fb.put_text("a line of text on a very wide console\r\n");
  auto px = console_pixels(fb);
  VncPixelFormat pf;
  VncTightEncoder enc;
  Decoder dec(fb.width(), fb.height(), pf);
  round_trip(enc, dec, px, fb.width(), {0, 0, fb.width(), fb.height()}, pf);
  g_assert_cmpint(fb.width(), >, 4096);
}

/* Filtered data under 12 bytes goes without zlib: 2, 10 and 11 bytes
 * of 1-bit rows and 8-bit indices; 12 bytes go through zlib. */
void test_small() {
  struct Case {
    int w, h, colours;
    bool uncompressed;
  } cases[] = {{5, 2, 2, true}, {40, 2, 2, true}, {5, 2, 3, true}, {11, 1, 3, true},
               {12, 1, 3, false}, {48, 2, 2, false}};
  VncPixelFormat pf;
  for (const Case &c : cases) {
    std::vector<guint32> px(static_cast<gsize>(c.w) * c.h);
    for (gsize i = 0; i < px.size(); i++) px[i] = static_cast<guint32>(i % c.colours) * 0x111111;
    VncTightEncoder enc;
    Decoder dec(c.w, c.h, pf);
    round_trip(enc, dec, px, c.w, {0, 0, c.w, c.h}, pf);
    g_assert_cmpint(dec.kinds().count(kUncompressed), ==, c.uncompressed);
  }
  g_assert_cmpuint(VncTightEncoder::max_rectangles({0, 0, 0, 5}), ==, 0);
  g_assert_cmpuint(VncTightEncoder::max_rectangles({0, 0, 65, 64}), ==, 2);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/vnc/tight/console", test_console);
  g_test_add_func("/vnc/tight/formats", test_formats);
  g_test_add_func("/vnc/tight/streams-and-levels", test_streams_and_levels);
  g_test_add_func("/vnc/tight/wide", test_wide);
  g_test_add_func("/vnc/tight/small", test_small);
  return g_test_run();
}
