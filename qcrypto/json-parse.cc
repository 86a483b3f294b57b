#include "config.h"

#include "qcrypto/json-parse.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>

namespace {

/* nesting_fault()'s answer for text nested too deep. */
const char kTooDeep[] = "";

int hex_value(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value(p[i]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Checks that the brackets of @text nest at most @max deep, skipping
 * strings as json-glib 1.6 reads them: "double quoted" with escapes,
 * 'single quoted' without.  Where json-glib's lexer departs from JSON in
 * ways that would let a quote it reads differently hide brackets from this
 * count (comments, which it starts at any '/'; \u escapes that are short
 * or unpaired surrogates, after which it skips characters whatever they
 * are), the text is refused instead: no valid JSON has them.  Returns
 * nullptr, or why @text is refused. */
const char *nesting_fault(const char *text, gsize len, guint max) {
  guint depth = 0;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    if (c == '\'') {
      for (i++; i < len && text[i] != '\''; i++) {
      }
    } else if (c == '"') {
      for (i++; i < len && text[i] != '"'; i++) {
        if (text[i] != '\\') continue;
        if (i + 1 < len && text[i + 1] == 'u') {
          int v = i + 6 <= len ? hex_value(text + i + 2) : -1;
          if (v < 0) return _("a \\u escape without four hex digits");
          i += 5;
          if (v >= 0xdc00 && v <= 0xdfff) return _("an unpaired \\u surrogate");
          if (v >= 0xd800 && v <= 0xdbff) {
            int low = i + 7 <= len && text[i + 1] == '\\' && text[i + 2] == 'u'
                          ? hex_value(text + i + 3)
                          : -1;
            if (low < 0xdc00 || low > 0xdfff) return _("an unpaired \\u surrogate");
            i += 6;
          }
        } else {
          i++;
        }
      }
    } else if (c == '/') {
      return _("comments are not JSON");
    } else if (c == '[' || c == '{') {
      if (++depth > max) return kTooDeep;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return nullptr;
}

}  // namespace

JsonNode *qcrypto_json_parse(const char *text, gssize len, GError **error) {
  gsize size = len < 0 ? strlen(text) : static_cast<gsize>(len);
  if (const char *fault = nesting_fault(text, size, QCRYPTO_JSON_MAX_DEPTH)) {
    if (fault == kTooDeep)
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                  _("invalid JSON: nested too deep (at most %u levels are read)"),
                  QCRYPTO_JSON_MAX_DEPTH);
    else
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT, _("invalid JSON: %s"),
                  fault);
    return nullptr;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  GError *local = nullptr;
  if (!json_parser_load_from_data(parser, text, static_cast<gssize>(size), &local)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT, _("invalid JSON: %s"),
                local->message);
    g_error_free(local);
    return nullptr;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root) {
    g_set_error_literal(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                        _("invalid JSON: the text is empty"));
    return nullptr;
  }
  return json_node_ref(root);
}
