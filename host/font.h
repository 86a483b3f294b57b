/*
 * The guest console's bitmap font: 8x16 cells for printable ASCII, derived
 * at compile time from 5x7 glyphs authored for qio (see font.cc).
 */
#pragma once

#include <glib.h>

namespace qio::host {

inline constexpr int kFontWidth = 8;
inline constexpr int kFontHeight = 16;

/* The 16 rows of @c's glyph, most significant bit leftmost.  Characters
 * outside printable ASCII get a hollow box, so bad bytes stay visible. */
const guint8 *font_glyph(unsigned char c);

}  // namespace qio::host
