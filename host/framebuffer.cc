#include "config.h"

#include "host/framebuffer.h"
#include "host/font.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstring>

namespace qio::host {

Framebuffer::Framebuffer(int cols, int rows)
    : cols_(cols), rows_(rows), width_(cols * kFontWidth), height_(rows * kFontHeight),
      pixels_(static_cast<gsize>(width_) * height_, kBackground),
      text_(static_cast<gsize>(cols) * rows, ' ') {
  damage(0, 0, width_, height_);
}

void Framebuffer::damage(int x, int y, int w, int h) {
  if (damage_.empty()) {
    damage_ = {x, y, w, h};
    return;
  }
  int x2 = std::max(damage_.x + damage_.width, x + w);
  int y2 = std::max(damage_.y + damage_.height, y + h);
  damage_.x = std::min(damage_.x, x);
  damage_.y = std::min(damage_.y, y);
  damage_.width = x2 - damage_.x;
  damage_.height = y2 - damage_.y;
}

bool Framebuffer::restore(std::string_view text, int col, int row) {
  if (text.size() != text_.size() || col < 0 || col >= cols_ || row < 0 || row >= rows_)
    return false;
  for (int r = 0; r < rows_; r++)
    for (int c = 0; c < cols_; c++)
      draw_cell(c, r, static_cast<unsigned char>(text[static_cast<gsize>(r) * cols_ + c]));
  col_ = col;
  row_ = row;
  return true;
}

Rect Framebuffer::take_damage() {
  Rect r = damage_;
  damage_ = {};
  return r;
}

void Framebuffer::draw_cell(int col, int row, unsigned char c) {
  text_[static_cast<gsize>(row) * cols_ + col] = static_cast<char>(c);
  const guint8 *glyph = font_glyph(c);
  for (int y = 0; y < kFontHeight; y++) {
    guint32 *line = &pixels_[static_cast<gsize>(row * kFontHeight + y) * width_ + col * kFontWidth];
    for (int x = 0; x < kFontWidth; x++)
      line[x] = (glyph[y] & (0x80 >> x)) ? kForeground : kBackground;
  }
  damage(col * kFontWidth, row * kFontHeight, kFontWidth, kFontHeight);
}

void Framebuffer::newline() {
  col_ = 0;
  if (row_ + 1 < rows_) {
    row_++;
    return;
  }
  /* Scroll by one text row. */
  gsize row_pixels = static_cast<gsize>(width_) * kFontHeight;
  std::memmove(pixels_.data(), pixels_.data() + row_pixels,
               (pixels_.size() - row_pixels) * sizeof(guint32));
  std::fill(pixels_.end() - static_cast<gssize>(row_pixels), pixels_.end(), kBackground);
  std::memmove(text_.data(), text_.data() + cols_, text_.size() - cols_);
  std::fill(text_.end() - cols_, text_.end(), ' ');
  damage(0, 0, width_, height_);
}

void Framebuffer::put_char(unsigned char c) {
  switch (c) {
    case '\n':
      newline();
      return;
    case '\r':
      col_ = 0;
      return;
    case '\b':
      if (col_ > 0) draw_cell(--col_, row_, ' ');
      return;
    case '\t':
      do put_char(' ');
      while (col_ % 8 != 0);
      return;
    default:
      break;
  }
  if (col_ >= cols_) newline();
  draw_cell(col_++, row_, c);
}

bool Framebuffer::save_ppm(const char *path, GError **error) const {
  g_autofree char *header = g_strdup_printf("P6\n%d %d\n255\n", width_, height_);
  std::string data(header);
  data.reserve(data.size() + pixels_.size() * 3);
  for (guint32 p : pixels_) {
    data.push_back(static_cast<char>((p >> 16) & 0xff));
    data.push_back(static_cast<char>((p >> 8) & 0xff));
    data.push_back(static_cast<char>(p & 0xff));
  }
  g_autoptr(GError) local = nullptr;
  if (!g_file_set_contents(path, data.data(), static_cast<gssize>(data.size()), &local)) {
    g_set_error(error, local->domain, local->code, _("Cannot write the screen dump: %s"),
                local->message);
    return false;
  }
  return true;
}

void Framebuffer::put_text(std::string_view text) {
  for (char c : text) put_char(static_cast<unsigned char>(c));
}

}  // namespace qio::host
