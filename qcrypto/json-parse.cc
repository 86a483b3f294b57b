#include "config.h"

#include "qcrypto/json-parse.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>

/* Whether the brackets of @text nest at most @max deep, skipping what
 * json-glib 1.6 skips: "strings" (with backslash escapes), 'strings'
 * (without), and comments.  Skipping anything json-glib does not would
 * hide brackets from the count, so this follows its lexer exactly; the
 * rest of the syntax is json-glib's to check. */
static bool nesting_within(const char *text, gsize len, guint max) {
  guint depth = 0;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      for (i++; i < len && text[i] != c; i++)
        if (c == '"' && text[i] == '\\') i++;
    } else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
      for (i += 2; i + 1 < len && !(text[i] == '*' && text[i + 1] == '/'); i++) {
      }
      i++;
    } else if (c == '[' || c == '{') {
      if (++depth > max) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return true;
}

JsonNode *qcrypto_json_parse(const char *text, gssize len, GError **error) {
  gsize size = len < 0 ? strlen(text) : static_cast<gsize>(len);
  if (!nesting_within(text, size, QCRYPTO_JSON_MAX_DEPTH)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("invalid JSON: nested more than %u levels deep"), QCRYPTO_JSON_MAX_DEPTH);
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
