#include "config.h"

#include "qom/keyval.h"
#include "qom/error.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool key_char_ok(char c) {
  return g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* Reads a value up to the next single ',' (",," is a comma). */
std::string read_value(const char *&p) {
  std::string value;
  while (*p) {
    if (*p == ',') {
      if (p[1] != ',') break;
      p++;
    }
    value += *p++;
  }
  return value;
}

/* More levels than any object's properties have; it bounds the structure
 * a key builds (and the work of turning it into lists). */
constexpr gsize kMaxKeyParts = 32;

/* Stores @value under the dotted @key in @root. */
gboolean store(JsonObject *root, const std::string &key, const std::string &value,
               GError **error) {
  if (static_cast<gsize>(std::count(key.begin(), key.end(), '.')) >= kMaxKeyParts) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                _("Parameter '%.64s...' has more than %zu dotted components; no property "
                  "nests that deep"),
                key.c_str(), kMaxKeyParts);
    return FALSE;
  }
  JsonObject *object = root;
  gsize start = 0;
  for (;;) {
    gsize dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos
                                                                  : dot - start);
    if (part.empty()) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Parameter '%s' has an empty component; write keys like rules.0.match"),
                  key.c_str());
      return FALSE;
    }
    JsonNode *existing = json_object_get_member(object, part.c_str());
    std::string prefix = key.substr(0, dot);
    if (dot == std::string::npos) {
      if (existing) {
        g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                    JSON_NODE_HOLDS_OBJECT(existing)
                        ? _("Parameter '%s' is used both as a value and as a structure (%s.*)")
                        : _("Parameter '%s' is given more than once; give it once"),
                    key.c_str(), key.c_str());
        return FALSE;
      }
      json_object_set_string_member(object, part.c_str(), value.c_str());
      return TRUE;
    }
    if (existing && !JSON_NODE_HOLDS_OBJECT(existing)) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Parameter '%s' is used both as a value and as a structure (%s.*)"),
                  prefix.c_str(), prefix.c_str());
      return FALSE;
    }
    if (!existing) {
      JsonObject *child = json_object_new();
      json_object_set_object_member(object, part.c_str(), child);
      object = child;
    } else {
      object = json_node_get_object(existing);
    }
    start = dot + 1;
  }
}

/* Index keys are canonical decimals ("0", "12"; not "01" or "+1"). */
bool index_of(const char *key, guint *index) {
  if (!g_ascii_isdigit(key[0]) || (key[0] == '0' && key[1])) return false;
  char *end;
  guint64 v = g_ascii_strtoull(key, &end, 10);
  if (*end || v > G_MAXUINT) return false;
  *index = static_cast<guint>(v);
  return true;
}

/* Turns objects keyed 0..n-1 into arrays, depth first.  @path names the
 * node in messages. */
JsonNode *listify(JsonNode *node, const std::string &path, GError **error) {
  if (!JSON_NODE_HOLDS_OBJECT(node)) return json_node_ref(node);
  JsonObject *object = json_node_get_object(node);
  g_autoptr(GList) members = json_object_get_members(object);
  guint n = g_list_length(members);
  guint numeric = 0;
  for (GList *l = members; l; l = l->next) {
    guint index;
    if (index_of(static_cast<const char *>(l->data), &index)) numeric++;
  }
  if (numeric > 0 && numeric < n) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                _("Parameter '%s' mixes list indices and names below it; use one or the other"),
                path.c_str());
    return nullptr;
  }
  if (numeric == 0) {
    g_autoptr(JsonObject) out = json_object_new();
    for (GList *l = members; l; l = l->next) {
      auto *key = static_cast<const char *>(l->data);
      JsonNode *child = listify(json_object_get_member(object, key), path + "." + key, error);
      if (!child) return nullptr;
      json_object_set_member(out, key, child);
    }
    JsonNode *result = json_node_new(JSON_NODE_OBJECT);
    json_node_set_object(result, out);
    return result;
  }
  g_autoptr(JsonArray) array = json_array_sized_new(n);
  for (guint i = 0; i < n; i++) {
    std::string key = std::to_string(i);
    JsonNode *element = json_object_get_member(object, key.c_str());
    if (!element) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Parameter '%s.%u' is missing; list indices must count up from 0"),
                  path.c_str(), i);
      return nullptr;
    }
    JsonNode *child = listify(element, path + "." + key, error);
    if (!child) return nullptr;
    json_array_add_element(array, child);
  }
  JsonNode *result = json_node_new(JSON_NODE_ARRAY);
  json_node_set_array(result, array);
  return result;
}

}  // namespace

JsonObject *qom_keyval_parse(const char *text, const char *implied_key, GError **error) {
  g_return_val_if_fail(text != nullptr, nullptr);
  g_autoptr(JsonObject) root = json_object_new();
  const char *p = text;
  bool first = true;
  while (*p) {
    const char *key_start = p;
    while (*p && *p != '=' && *p != ',') p++;
    std::string key(key_start, p);
    if (*p != '=') {
      if (first && implied_key) {
        p = key_start;
        std::string value = read_value(p);
        if (!store(root, implied_key, value, error)) return nullptr;
      } else if (key.empty()) {
        g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                    _("Empty parameter at offset %u; remove the extra ','"),
                    static_cast<unsigned>(key_start - text));
        return nullptr;
      } else {
        g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                    _("Expected '=' after parameter '%s'; write %s=VALUE"), key.c_str(),
                    key.c_str());
        return nullptr;
      }
    } else {
      bool valid = !key.empty();
      for (char c : key) valid = valid && key_char_ok(c);
      if (!valid) {
        g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                    _("Invalid parameter name '%s'; names use letters, digits, '-', '_' and "
                      "'.'"),
                    key.c_str());
        return nullptr;
      }
      p++;
      std::string value = read_value(p);
      if (!store(root, key, value, error)) return nullptr;
    }
    first = false;
    if (*p == ',') {
      p++;
      if (!*p) {
        g_set_error_literal(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                            _("Trailing ',' without a parameter; remove it"));
        return nullptr;
      }
    }
  }
  /* The top level stays an object even if its keys look like indices. */
  JsonObject *result = json_object_new();
  g_autoptr(GList) members = json_object_get_members(root);
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    JsonNode *child = listify(json_object_get_member(root, key), key, error);
    if (!child) {
      json_object_unref(result);
      return nullptr;
    }
    json_object_set_member(result, key, child);
  }
  return result;
}

char *qom_keyval_find_id(const char *text) {
  const char *p = text;
  while (*p) {
    std::string element = read_value(p);
    if (element.rfind("id=", 0) == 0) return g_strdup(element.c_str() + 3);
    if (*p == ',') p++;
  }
  return nullptr;
}
