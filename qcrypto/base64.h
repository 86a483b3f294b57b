/*
 * Strict base64 decoding.  GLib's g_base64_decode() skips characters
 * outside the alphabet silently, so malformed input decodes to different
 * bytes instead of failing; secrets, websocket keys and QMP data must be
 * refused instead.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Decodes @text_len bytes of @text (trailing whitespace ignored) if they
 * are canonical base64: only the alphabet, a length that is a multiple of
 * 4, at most two '=' and only at the end.  Returns a g_malloc()ed buffer
 * and its length in @out_len, or NULL for malformed or empty input. */
guint8 *qcrypto_base64_decode_strict(const char *text, gsize text_len, gsize *out_len);

G_END_DECLS
