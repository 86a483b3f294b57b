#include "config.h"

#include "qcrypto/base64.h"

guint8 *qcrypto_base64_decode_strict(const char *text, gsize text_len, gsize *out_len) {
  while (text_len > 0 && g_ascii_isspace(text[text_len - 1])) text_len--;
  if (text_len == 0 || text_len % 4 != 0) return nullptr;
  gsize pad = 0;
  for (gsize i = 0; i < text_len; i++) {
    char c = text[i];
    if (c == '=') {
      pad++;
    } else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
      return nullptr;
    }
  }
  if (pad > 2) return nullptr;
  g_autofree char *copy = g_strndup(text, text_len);
  return g_base64_decode(copy, out_len);
}
