/*
 * What a VNC viewer costs qiod per full screen of console text: bytes on
 * the wire and encoding time of Tight (at the compression levels viewers
 * ask for) against Raw, measured in the same run on the same screens.
 * Usage: bench-vnc-tight [SCREENS]
 */
#include "config.h"

#include "host/framebuffer.h"
#include "tests/bench/bench-util.h"
#include "ui/vnc-pixel-format.h"
#include "ui/vnc-tight-encoder.h"

#include <glib.h>

#include <string>
#include <vector>

namespace {

/* Distinct screens of shell output, as a scrolling console shows them. */
std::vector<std::vector<guint32>> console_screens(int count) {
  qio::host::Framebuffer fb;
  std::vector<std::vector<guint32>> screens;
  for (int i = 0; i < count; i++) {
    fb.put_text("qio$ status\r\nrunning, ram " + std::to_string(256 + i) +
                " MiB, dirty rate " + std::to_string(i * 37 % 9000) + " pages/s, digest " +
                std::to_string(0x9e3779b9u * (i + 1)) + "\r\n");
    screens.emplace_back(fb.pixels(), fb.pixels() + static_cast<gsize>(fb.width()) * fb.height());
  }
  return screens;
}

}  // namespace

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 500;
  if (count < 1) count = 500;
  auto screens = console_screens(count);
  qio::host::Framebuffer fb;
  const qio::host::Rect all{0, 0, fb.width(), fb.height()};
  qio::ui::VncPixelFormat pf;

  std::vector<guint8> out;
  gint64 start = g_get_monotonic_time();
  gsize raw_bytes = 0;
  for (const auto &s : screens) {
    out.resize(16 + s.size() * pf.bytes_per_pixel());
    pf.convert(s.data(), s.size(), out.data() + 16);
    raw_bytes += out.size();
  }
  double raw_us = static_cast<double>(g_get_monotonic_time() - start) / count;
  printf("# %d screens of %dx%d console text; Raw %.0f bytes, %.1f us per screen\n", count,
         fb.width(), fb.height(), static_cast<double>(raw_bytes) / count, raw_us);

  for (int level : {1, 2, 6, 9}) {
    qio::ui::VncTightEncoder enc;
    enc.set_level(level);
    gsize bytes = 0;
    start = g_get_monotonic_time();
    for (const auto &s : screens) {
      out.assign(4, 0);
      enc.encode(s.data(), fb.width(), all, pf, out);
      bytes += out.size();
    }
    double us = static_cast<double>(g_get_monotonic_time() - start) / count;
    std::string name = "vnc-tight-level" + std::to_string(level);
    bench_print((name + "-bytes-per-screen-vs-raw").c_str(), static_cast<double>(bytes) / count,
                "bytes", static_cast<double>(raw_bytes) / count);
    bench_print((name + "-encode-time-vs-raw").c_str(), us, "us", raw_us);
  }
  return 0;
}
