/*
 * Framebuffer: the guest's display, XRGB8888, on which the guest draws its
 * serial console as text in an 8x16 bitmap font.  Tracks a damaged
 * rectangle so a display server (VNC) sends only what changed.  Used from
 * the main loop thread only.
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace qio::host {

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
  bool empty() const { return width <= 0 || height <= 0; }
};

class Framebuffer {
 public:
  Framebuffer(int cols = 80, int rows = 25);

  int width() const { return width_; }
  int height() const { return height_; }
  int cols() const { return cols_; }
  int rows() const { return rows_; }
  const guint32 *pixels() const { return pixels_.data(); }
  guint32 pixel(int x, int y) const { return pixels_[static_cast<gsize>(y) * width_ + x]; }

  /* Console output: printable characters, \n, \r, \b (erase) and \t. */
  void put_char(unsigned char c);
  void put_text(std::string_view text);
  /* The character shown at a cell, for tests and screen dumps. */
  char cell(int col, int row) const { return text_[static_cast<gsize>(row) * cols_ + col]; }
  int cursor_col() const { return col_; }
  int cursor_row() const { return row_; }

  /* The text cells row by row (cols() * rows() bytes), and the reverse:
   * redraws every cell and puts the cursor back (migration). */
  std::string text() const { return std::string(text_.begin(), text_.end()); }
  bool restore(std::string_view text, int col, int row);

  /* Writes the screen as a binary PPM (P6), as QEMU's screendump does. */
  bool save_ppm(const char *path, GError **error) const;

  /* Returns the area changed since the last call and forgets it. */
  Rect take_damage();

  static constexpr guint32 kBackground = 0x00102030;
  static constexpr guint32 kForeground = 0x00E0E0C0;

 private:
  void draw_cell(int col, int row, unsigned char c);
  void newline();
  void damage(int x, int y, int w, int h);

  int cols_, rows_, width_, height_;
  int col_ = 0, row_ = 0;
  std::vector<guint32> pixels_;
  std::vector<char> text_;
  Rect damage_;
};

}  // namespace qio::host
