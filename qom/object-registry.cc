#include "config.h"

#include "qom/object-registry.h"
#include "qom/keyval.h"

#include "qcrypto/authz-list.h"
#include "qcrypto/authz-listfile.h"
#include "qcrypto/authz-pam.h"
#include "qcrypto/authz-simple.h"
#include "qcrypto/json-parse.h"
#include "qcrypto/secret.h"
#include "qcrypto/tls-cipher-suites.h"
#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/tls-creds-psk.h"
#include "qcrypto/tls-creds-x509.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Registry {
  GMutex lock;
  GHashTable *types;   /* name -> GType */
  GHashTable *objects; /* id -> GObject (one reference) */
  GPtrArray *order;    /* ids, oldest first, so that teardown runs newest first */
  GHashTable *parsers; /* GType -> QomPropertyParseFunc */
};

Registry &registry() {
  static Registry r = [] {
    Registry init{};
    g_mutex_init(&init.lock);
    init.types = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, nullptr);
    init.objects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
    init.order = g_ptr_array_new_with_free_func(g_free);
    init.parsers = g_hash_table_new(g_direct_hash, g_direct_equal);
    return init;
  }();
  return r;
}

struct Locker {
  explicit Locker(GMutex *m) : mutex(m) { g_mutex_lock(mutex); }
  ~Locker() { g_mutex_unlock(mutex); }
  Locker(const Locker &) = delete;
  Locker &operator=(const Locker &) = delete;
  GMutex *mutex;
};

QCryptoSecret *registry_secret_lookup(const char *id, gpointer) noexcept {
  return static_cast<QCryptoSecret *>(
      qom_object_ref_typed(id, QCRYPTO_TYPE_SECRET, "secret", nullptr));
}

gboolean parse_authz_rules(JsonNode *node, GValue *value, GError **error) {
  g_autofree char *text = JSON_NODE_HOLDS_VALUE(node) &&
                                  json_node_get_value_type(node) == G_TYPE_STRING
                              ? g_strdup(json_node_get_string(node))
                              : json_to_string(node, FALSE);
  QCryptoAuthzListRules *rules = qcrypto_authz_list_rules_parse(text, error);
  if (!rules) return FALSE;
  g_value_take_boxed(value, rules);
  return TRUE;
}

/* Ids follow QEMU: a letter, then letters, digits, '-', '.', '_'. */
bool id_valid(const char *id) {
  if (!g_ascii_isalpha(id[0])) return false;
  for (const char *p = id; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') return false;
  return true;
}

/* A value as the user wrote it, for messages. */
std::string describe(JsonNode *node) {
  if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING)
    return std::string("'") + json_node_get_string(node) + "'";
  if (JSON_NODE_HOLDS_OBJECT(node)) return _("a structure");
  if (JSON_NODE_HOLDS_ARRAY(node)) return _("a list");
  g_autofree char *text = json_to_string(node, FALSE);
  return text;
}

const char *node_string(JsonNode *node) {
  return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
             ? json_node_get_string(node)
             : nullptr;
}

gboolean wrong_type(GError **error, const char *id, const char *key, const std::string &expected,
                    JsonNode *node) {
  g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
              _("Object '%s': property '%s' expects %s, not %s"), id, key, expected.c_str(),
              describe(node).c_str());
  return FALSE;
}

/* Integers as text: decimal or 0x hex, optionally with a size suffix
 * (b, k, M, G, T, P, E; powers of 1024, case-insensitive), decimal
 * fractions only with a suffix ("1.5G").  Yields sign and magnitude. */
bool parse_integer_text(const char *text, bool *negative, guint64 *magnitude) {
  const char *p = text;
  *negative = *p == '-';
  if (*negative) p++;
  if (!g_ascii_isdigit(*p)) return false;
  char *end;
  errno = 0;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    if (!g_ascii_isxdigit(p[2])) return false;
    *magnitude = g_ascii_strtoull(p + 2, &end, 16);
    return errno == 0 && *end == '\0';
  }
  guint64 whole = g_ascii_strtoull(p, &end, 10);
  if (errno) return false;
  double fraction = 0;
  bool has_fraction = *end == '.';
  if (has_fraction) {
    if (!g_ascii_isdigit(end[1])) return false;
    fraction = g_ascii_strtod(end, &end);
  }
  int shift = 0;
  if (*end) {
    const char *suffixes = "bkmgtpe";
    const char *s = strchr(suffixes, g_ascii_tolower(*end));
    if (!s) return false;
    shift = 10 * static_cast<int>(s - suffixes);
    end++;
  }
  if (*end || (has_fraction && shift == 0)) return false;
  guint64 multiplier = G_GUINT64_CONSTANT(1) << shift;
  if (whole > G_MAXUINT64 / multiplier) return false;
  guint64 extra = static_cast<guint64>(fraction * static_cast<double>(multiplier));
  if (whole * multiplier > G_MAXUINT64 - extra) return false;
  *magnitude = whole * multiplier + extra;
  return true;
}

/* Stores sign and magnitude into @value if the property's range allows. */
bool set_integer(GParamSpec *pspec, bool negative, guint64 magnitude, GValue *value) {
  GType type = G_PARAM_SPEC_VALUE_TYPE(pspec);
  if (type == G_TYPE_UINT || type == G_TYPE_UINT64 || type == G_TYPE_ULONG) {
    if (negative && magnitude) return false;
    guint64 min, max;
    if (type == G_TYPE_UINT) {
      min = G_PARAM_SPEC_UINT(pspec)->minimum, max = G_PARAM_SPEC_UINT(pspec)->maximum;
    } else if (type == G_TYPE_ULONG) {
      min = G_PARAM_SPEC_ULONG(pspec)->minimum, max = G_PARAM_SPEC_ULONG(pspec)->maximum;
    } else {
      min = G_PARAM_SPEC_UINT64(pspec)->minimum, max = G_PARAM_SPEC_UINT64(pspec)->maximum;
    }
    if (magnitude < min || magnitude > max) return false;
    g_value_init(value, type);
    if (type == G_TYPE_UINT) g_value_set_uint(value, static_cast<guint>(magnitude));
    else if (type == G_TYPE_ULONG) g_value_set_ulong(value, static_cast<gulong>(magnitude));
    else g_value_set_uint64(value, magnitude);
    return true;
  }
  if (magnitude > (negative ? G_GUINT64_CONSTANT(1) << 63 : static_cast<guint64>(G_MAXINT64)))
    return false;
  gint64 v = negative ? static_cast<gint64>(0 - magnitude) : static_cast<gint64>(magnitude);
  gint64 min, max;
  if (type == G_TYPE_INT) {
    min = G_PARAM_SPEC_INT(pspec)->minimum, max = G_PARAM_SPEC_INT(pspec)->maximum;
  } else if (type == G_TYPE_LONG) {
    min = G_PARAM_SPEC_LONG(pspec)->minimum, max = G_PARAM_SPEC_LONG(pspec)->maximum;
  } else {
    min = G_PARAM_SPEC_INT64(pspec)->minimum, max = G_PARAM_SPEC_INT64(pspec)->maximum;
  }
  if (v < min || v > max) return false;
  g_value_init(value, type);
  if (type == G_TYPE_INT) g_value_set_int(value, static_cast<gint>(v));
  else if (type == G_TYPE_LONG) g_value_set_long(value, static_cast<glong>(v));
  else g_value_set_int64(value, v);
  return true;
}

std::string integer_range(GParamSpec *pspec) {
  GType type = G_PARAM_SPEC_VALUE_TYPE(pspec);
  g_autofree char *range = nullptr;
  if (type == G_TYPE_INT)
    range = g_strdup_printf("%d..%d", G_PARAM_SPEC_INT(pspec)->minimum,
                            G_PARAM_SPEC_INT(pspec)->maximum);
  else if (type == G_TYPE_UINT)
    range = g_strdup_printf("%u..%u", G_PARAM_SPEC_UINT(pspec)->minimum,
                            G_PARAM_SPEC_UINT(pspec)->maximum);
  else if (type == G_TYPE_LONG)
    range = g_strdup_printf("%ld..%ld", G_PARAM_SPEC_LONG(pspec)->minimum,
                            G_PARAM_SPEC_LONG(pspec)->maximum);
  else if (type == G_TYPE_ULONG)
    range = g_strdup_printf("%lu..%lu", G_PARAM_SPEC_ULONG(pspec)->minimum,
                            G_PARAM_SPEC_ULONG(pspec)->maximum);
  else if (type == G_TYPE_INT64)
    range = g_strdup_printf("%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
                            G_PARAM_SPEC_INT64(pspec)->minimum, G_PARAM_SPEC_INT64(pspec)->maximum);
  else
    range = g_strdup_printf("%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT,
                            G_PARAM_SPEC_UINT64(pspec)->minimum,
                            G_PARAM_SPEC_UINT64(pspec)->maximum);
  return range;
}

bool is_integer_type(GType type) {
  return type == G_TYPE_INT || type == G_TYPE_UINT || type == G_TYPE_LONG ||
         type == G_TYPE_ULONG || type == G_TYPE_INT64 || type == G_TYPE_UINT64;
}

/* Converts @node to the property's type.  @keyval: scalars arrived as
 * strings from key=value text and are parsed; otherwise JSON types must
 * match.  @value is uninitialized on entry. */
gboolean value_from_node(const char *id, GParamSpec *pspec, JsonNode *node, bool keyval,
                         GValue *value, GError **error) {
  const char *key = pspec->name;
  GType type = G_PARAM_SPEC_VALUE_TYPE(pspec);
  const char *text = node_string(node);
  bool scalar = JSON_NODE_HOLDS_VALUE(node);
  GType json_type = scalar ? json_node_get_value_type(node) : G_TYPE_INVALID;

  if (type == G_TYPE_STRING) {
    if (!text) return wrong_type(error, id, key, _("a string"), node);
    g_value_init(value, G_TYPE_STRING);
    g_value_set_string(value, text);
    return TRUE;
  }
  if (type == G_TYPE_BOOLEAN) {
    gboolean b;
    if (keyval && text) {
      const char *truths[] = {"on", "yes", "true"}, *lies[] = {"off", "no", "false"};
      int verdict = -1;
      for (int i = 0; i < 3; i++) {
        if (strcmp(text, truths[i]) == 0) verdict = 1;
        if (strcmp(text, lies[i]) == 0) verdict = 0;
      }
      if (verdict < 0)
        return wrong_type(error, id, key, _("a boolean (on/off, yes/no, true/false)"), node);
      b = verdict;
    } else if (json_type == G_TYPE_BOOLEAN) {
      b = json_node_get_boolean(node);
    } else {
      return wrong_type(error, id, key, _("a boolean (true or false)"), node);
    }
    g_value_init(value, G_TYPE_BOOLEAN);
    g_value_set_boolean(value, b);
    return TRUE;
  }
  if (is_integer_type(type)) {
    bool negative = false;
    guint64 magnitude = 0;
    bool parsed;
    if (keyval && text) {
      parsed = parse_integer_text(text, &negative, &magnitude);
    } else {
      parsed = json_type == G_TYPE_INT64;
      if (parsed) {
        gint64 v = json_node_get_int(node);
        negative = v < 0;
        magnitude = negative ? 0 - static_cast<guint64>(v) : static_cast<guint64>(v);
      }
    }
    if (!parsed || !set_integer(pspec, negative, magnitude, value)) {
      g_autofree char *expected =
          g_strdup_printf(keyval ? _("an integer in %s (suffixes k, M, G, T allowed)")
                                 : _("an integer in %s"),
                          integer_range(pspec).c_str());
      return wrong_type(error, id, key, expected, node);
    }
    return TRUE;
  }
  if (type == G_TYPE_DOUBLE || type == G_TYPE_FLOAT) {
    double d = 0;
    bool parsed = false;
    if (keyval && text) {
      char *end;
      d = g_ascii_strtod(text, &end);
      parsed = *text && !*end;
    } else if (json_type == G_TYPE_INT64 || json_type == G_TYPE_DOUBLE) {
      d = json_node_get_double(node);
      parsed = true;
    }
    if (!parsed) return wrong_type(error, id, key, _("a number"), node);
    g_value_init(value, G_TYPE_DOUBLE);
    g_value_set_double(value, d);
    GValue converted = G_VALUE_INIT;
    g_value_init(&converted, type);
    g_value_transform(value, &converted);
    g_value_unset(value);
    *value = converted;
    return TRUE;
  }
  if (G_TYPE_IS_ENUM(type)) {
    g_autoptr(GEnumClass) klass = static_cast<GEnumClass *>(g_type_class_ref(type));
    GEnumValue *v = text ? g_enum_get_value_by_nick(klass, text) : nullptr;
    if (!v) {
      std::string valid;
      for (guint i = 0; i < klass->n_values; i++)
        valid += std::string(i ? ", " : "") + klass->values[i].value_nick;
      g_autofree char *expected = g_strdup_printf(_("one of %s"), valid.c_str());
      return wrong_type(error, id, key, expected, node);
    }
    g_value_init(value, type);
    g_value_set_enum(value, v->value);
    return TRUE;
  }
  auto parse = reinterpret_cast<QomPropertyParseFunc>(
      g_hash_table_lookup(registry().parsers, GSIZE_TO_POINTER(type)));
  if (parse) {
    g_value_init(value, type);
    GError *local = nullptr;
    if (parse(node, value, &local)) return TRUE;
    g_value_unset(value);
    g_propagate_prefixed_error(error, local, _("Object '%s': property '%s': "), id, key);
    return FALSE;
  }
  g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
              _("Object '%s': property '%s' has a type (%s) that cannot be set from options"),
              id, key, g_type_name(type));
  return FALSE;
}

/* The properties options may set (writable, "id" aside), for "unknown
 * key" messages. */
std::string property_names(GObjectClass *klass) {
  guint n;
  g_autofree GParamSpec **pspecs = g_object_class_list_properties(klass, &n);
  std::vector<std::string> names;
  for (guint i = 0; i < n; i++)
    if ((pspecs[i]->flags & G_PARAM_WRITABLE) && strcmp(pspecs[i]->name, "id") != 0)
      names.emplace_back(pspecs[i]->name);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto &name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

GObject *object_add(const char *type_name, const char *id, JsonObject *props, bool keyval,
                    GError **error) {
  qom_init();
  Registry &reg = registry();
  if (!type_name) {
    if (id)
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Object '%s' has no type; write -object TYPE,id=ID,... or give "
                    "\"qom-type\""),
                  id);
    else
      g_set_error_literal(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                          _("The object has no type and no id; write -object TYPE,id=ID,..."));
    return nullptr;
  }
  GType type = qom_type_lookup(type_name);
  if (type == G_TYPE_INVALID) {
    g_autofree char *valid = qom_type_list();
    if (id)
      g_set_error(error, QOM_ERROR, QOM_ERROR_UNKNOWN_TYPE,
                  _("Object '%s': unknown type '%s'; valid types are %s"), id, type_name, valid);
    else
      g_set_error(error, QOM_ERROR, QOM_ERROR_UNKNOWN_TYPE,
                  _("Unknown object type '%s'; valid types are %s"), type_name, valid);
    return nullptr;
  }
  if (!id) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                _("Object of type '%s' has no id; add id=NAME"), type_name);
    return nullptr;
  }
  if (!id_valid(id)) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                _("Invalid object id '%s'; an id starts with a letter and has only letters, "
                  "digits, '-', '.' and '_'"),
                id);
    return nullptr;
  }
  GType existing = G_TYPE_INVALID;
  {
    Locker lock(&reg.lock);
    auto *object = static_cast<GObject *>(g_hash_table_lookup(reg.objects, id));
    if (object) existing = G_OBJECT_TYPE(object);
  }
  if (existing) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_EXISTS,
                _("An object with id '%s' exists already (type '%s'); choose another id or "
                  "delete it first"),
                id, qom_type_name(existing));
    return nullptr;
  }

  g_autoptr(GTypeClass) type_class = static_cast<GTypeClass *>(g_type_class_ref(type));
  auto *klass = G_OBJECT_CLASS(type_class);
  std::vector<const char *> names;
  std::vector<GValue> values;
  auto clear_values = [&values] {
    for (auto &v : values) g_value_unset(&v);
  };
  g_autoptr(GList) members = props ? json_object_get_members(props) : nullptr;
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    GParamSpec *pspec = g_object_class_find_property(klass, key);
    if (!pspec || strcmp(pspec->name, key) != 0 || !(pspec->flags & G_PARAM_WRITABLE) ||
        strcmp(key, "id") == 0) {
      clear_values();
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Object '%s' (type '%s') has no property '%s'; valid properties are %s"), id,
                  type_name, key, property_names(klass).c_str());
      return nullptr;
    }
    GValue value = G_VALUE_INIT;
    if (!value_from_node(id, pspec, json_object_get_member(props, key), keyval, &value,
                         error)) {
      clear_values();
      return nullptr;
    }
    names.push_back(pspec->name);
    values.push_back(value);
  }
  GParamSpec *id_pspec = g_object_class_find_property(klass, "id");
  if (id_pspec && G_PARAM_SPEC_VALUE_TYPE(id_pspec) == G_TYPE_STRING) {
    GValue value = G_VALUE_INIT;
    g_value_init(&value, G_TYPE_STRING);
    g_value_set_string(&value, id);
    names.push_back("id");
    values.push_back(value);
  }
  GObject *object = g_object_new_with_properties(type, static_cast<guint>(names.size()),
                                                 names.data(), values.data());
  clear_values();
  if (G_IS_INITABLE(object) && !g_initable_init(G_INITABLE(object), nullptr, error)) {
    g_object_unref(object);
    return nullptr;
  }
  Locker lock(&reg.lock);
  g_hash_table_insert(reg.objects, g_strdup(id), object);
  g_ptr_array_add(reg.order, g_strdup(id));
  return object;
}

/* The -object JSON form and QMP object-add: qom-type, id, properties at
 * the top level or in "props". */
GObject *object_add_json(JsonObject *args, bool keyval, GError **error) {
  const char *type = nullptr;
  const char *id = nullptr;
  g_autoptr(JsonObject) props = json_object_new();
  for (const char *special : {"qom-type", "id"}) {
    JsonNode *node = json_object_get_member(args, special);
    if (node && !node_string(node)) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("'%s' must be a string, not %s"), special, describe(node).c_str());
      return nullptr;
    }
    (strcmp(special, "id") == 0 ? id : type) = node ? node_string(node) : nullptr;
  }
  g_autoptr(GList) members = json_object_get_members(args);
  for (GList *l = members; l; l = l->next) {
    auto *key = static_cast<const char *>(l->data);
    if (strcmp(key, "qom-type") == 0 || strcmp(key, "id") == 0) continue;
    JsonNode *node = json_object_get_member(args, key);
    if (strcmp(key, "props") == 0 && !keyval && JSON_NODE_HOLDS_OBJECT(node)) {
      JsonObject *inner = json_node_get_object(node);
      g_autoptr(GList) inner_members = json_object_get_members(inner);
      for (GList *m = inner_members; m; m = m->next) {
        auto *inner_key = static_cast<const char *>(m->data);
        if (json_object_has_member(props, inner_key)) {
          g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                      _("Object '%s': property '%s' is given twice (at the top level and in "
                        "\"props\"); give it once"),
                      id ? id : "?", inner_key);
          return nullptr;
        }
        json_object_set_member(props, inner_key,
                               json_node_copy(json_object_get_member(inner, inner_key)));
      }
      continue;
    }
    if (json_object_has_member(props, key)) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("Object '%s': property '%s' is given twice (at the top level and in "
                    "\"props\"); give it once"),
                  id ? id : "?", key);
      return nullptr;
    }
    json_object_set_member(props, key, json_node_copy(node));
  }
  return object_add(type, id, props, keyval, error);
}

}  // namespace

void qom_init(void) {
  static gsize done = 0;
  if (!g_once_init_enter(&done)) return;
  qom_type_register("secret", QCRYPTO_TYPE_SECRET);
  qom_type_register("authz-simple", QCRYPTO_TYPE_AUTHZ_SIMPLE);
  qom_type_register("authz-list", QCRYPTO_TYPE_AUTHZ_LIST);
  qom_type_register("authz-listfile", QCRYPTO_TYPE_AUTHZ_LIST_FILE);
  qom_type_register("authz-pam", QCRYPTO_TYPE_AUTHZ_PAM);
  qom_type_register("tls-creds-x509", QCRYPTO_TYPE_TLS_CREDS_X509);
  qom_type_register("tls-creds-psk", QCRYPTO_TYPE_TLS_CREDS_PSK);
  qom_type_register("tls-creds-anon", QCRYPTO_TYPE_TLS_CREDS_ANON);
  qom_type_register("tls-cipher-suites", QCRYPTO_TYPE_TLS_CIPHER_SUITES);
  qom_property_type_register(QCRYPTO_TYPE_AUTHZ_LIST_RULES, parse_authz_rules);
  qcrypto_secret_set_lookup_func(registry_secret_lookup, nullptr);
  g_once_init_leave(&done, 1);
}

void qom_type_register(const char *name, GType type) {
  g_return_if_fail(name != nullptr);
  g_return_if_fail(G_TYPE_IS_OBJECT(type) && !G_TYPE_IS_ABSTRACT(type));
  Registry &reg = registry();
  Locker lock(&reg.lock);
  g_hash_table_insert(reg.types, g_strdup(name), GSIZE_TO_POINTER(type));
}

GType qom_type_lookup(const char *name) {
  Registry &reg = registry();
  Locker lock(&reg.lock);
  return GPOINTER_TO_SIZE(g_hash_table_lookup(reg.types, name));
}

const char *qom_type_name(GType type) {
  Registry &reg = registry();
  Locker lock(&reg.lock);
  for (GType t = type; t; t = g_type_parent(t)) {
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, reg.types);
    while (g_hash_table_iter_next(&iter, &key, &value))
      if (GPOINTER_TO_SIZE(value) == t) return static_cast<const char *>(key);
  }
  return nullptr;
}

char *qom_type_list(void) {
  Registry &reg = registry();
  Locker lock(&reg.lock);
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array(reg.types, nullptr);
  g_qsort_with_data(keys, static_cast<gint>(g_hash_table_size(reg.types)), sizeof(gpointer),
                    [](gconstpointer a, gconstpointer b, gpointer) noexcept {
                      return strcmp(*static_cast<const char *const *>(a),
                                    *static_cast<const char *const *>(b));
                    },
                    nullptr);
  return g_strjoinv(", ", reinterpret_cast<char **>(keys));
}

void qom_property_type_register(GType value_type, QomPropertyParseFunc parse) {
  g_return_if_fail(parse != nullptr);
  Registry &reg = registry();
  Locker lock(&reg.lock);
  g_hash_table_insert(reg.parsers, GSIZE_TO_POINTER(value_type),
                      reinterpret_cast<gpointer>(parse));
}

GObject *qom_object_add(const char *type, const char *id, JsonObject *props, GError **error) {
  return object_add(type, id, props, false, error);
}

GObject *qom_object_add_from_string(const char *optarg, GError **error) {
  g_return_val_if_fail(optarg != nullptr, nullptr);
  const char *p = optarg;
  while (g_ascii_isspace(*p)) p++;
  if (*p == '{') {
    GError *local = nullptr;
    g_autoptr(JsonNode) root = qcrypto_json_parse(p, -1, &local);
    if (!root) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                  _("The JSON form of -object is not valid JSON: %s"), local->message);
      g_error_free(local);
      return nullptr;
    }
    /* Text that starts with '{' and parses is an object. */
    return object_add_json(json_node_get_object(root), false, error);
  }
  GError *local = nullptr;
  g_autoptr(JsonObject) args = qom_keyval_parse(optarg, "qom-type", &local);
  if (!args) {
    g_autofree char *id = qom_keyval_find_id(optarg);
    if (id)
      g_propagate_prefixed_error(error, local, _("Object '%s': "), id);
    else
      g_propagate_prefixed_error(error, local, _("Object without id: "));
    return nullptr;
  }
  return object_add_json(args, true, error);
}

GObject *qom_object_add_qmp(JsonObject *args, GError **error) {
  g_return_val_if_fail(args != nullptr, nullptr);
  return object_add_json(args, false, error);
}

gboolean qom_object_del(const char *id, GError **error) {
  g_return_val_if_fail(id != nullptr, FALSE);
  Registry &reg = registry();
  GObject *object = nullptr;
  {
    Locker lock(&reg.lock);
    object = static_cast<GObject *>(g_hash_table_lookup(reg.objects, id));
    if (!object) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_NOT_FOUND,
                  _("No object with id '%s'; nothing to delete"), id);
      return FALSE;
    }
    guint refs = g_atomic_int_get(&object->ref_count);
    if (refs > 1) {
      g_set_error(error, QOM_ERROR, QOM_ERROR_IN_USE,
                  _("Object '%s' is in use (%u other references); stop what uses it, then delete "
                    "it"),
                  id, refs - 1);
      return FALSE;
    }
    gpointer key;
    g_hash_table_steal_extended(reg.objects, id, &key, nullptr);
    g_free(key);
    for (guint i = 0; i < reg.order->len; i++) {
      if (strcmp(static_cast<char *>(g_ptr_array_index(reg.order, i)), id) == 0) {
        g_ptr_array_remove_index(reg.order, i);
        break;
      }
    }
  }
  /* Outside the lock: finalizing may look objects up. */
  g_object_unref(object);
  return TRUE;
}

gboolean qom_object_del_qmp(JsonObject *args, GError **error) {
  g_return_val_if_fail(args != nullptr, FALSE);
  JsonNode *node = json_object_get_member(args, "id");
  const char *id = node ? node_string(node) : nullptr;
  if (!id) {
    g_set_error_literal(error, QOM_ERROR, QOM_ERROR_INVALID_ARGUMENT,
                        _("object-del needs \"id\", the id of the object to delete"));
    return FALSE;
  }
  return qom_object_del(id, error);
}

GObject *qom_object_lookup(const char *id) {
  g_return_val_if_fail(id != nullptr, nullptr);
  Registry &reg = registry();
  Locker lock(&reg.lock);
  return static_cast<GObject *>(g_hash_table_lookup(reg.objects, id));
}

gpointer qom_object_ref_typed(const char *id, GType type, const char *kind, GError **error) {
  g_return_val_if_fail(id != nullptr, nullptr);
  Registry &reg = registry();
  GObject *object = nullptr;
  {
    Locker lock(&reg.lock);
    object = static_cast<GObject *>(g_hash_table_lookup(reg.objects, id));
    if (object && G_TYPE_CHECK_INSTANCE_TYPE(object, type)) return g_object_ref(object);
  }
  if (!object) {
    g_set_error(error, QOM_ERROR, QOM_ERROR_NOT_FOUND,
                _("No object with id '%s' (%s expected); create it first with -object or "
                  "object-add"),
                id, kind);
  } else {
    const char *name = qom_type_name(G_OBJECT_TYPE(object));
    g_set_error(error, QOM_ERROR, QOM_ERROR_WRONG_TYPE,
                _("Object '%s' is of type '%s', not %s; give the id of an object of the right "
                  "type"),
                id, name ? name : G_OBJECT_TYPE_NAME(object), kind);
  }
  return nullptr;
}

char **qom_object_list_ids(void) {
  Registry &reg = registry();
  Locker lock(&reg.lock);
  auto **ids = reinterpret_cast<char **>(g_hash_table_get_keys_as_array(reg.objects, nullptr));
  char **copy = g_strdupv(ids);
  g_free(ids);
  g_qsort_with_data(copy, static_cast<gint>(g_strv_length(copy)), sizeof(char *),
                    [](gconstpointer a, gconstpointer b, gpointer) noexcept {
                      return strcmp(*static_cast<char *const *>(a),
                                    *static_cast<char *const *>(b));
                    },
                    nullptr);
  return copy;
}

void qom_object_del_all(void) {
  Registry &reg = registry();
  /* Newest first: later objects may use earlier ones (a secret's keyid). */
  for (;;) {
    GObject *object = nullptr;
    {
      Locker lock(&reg.lock);
      if (reg.order->len == 0) break;
      g_autofree char *id =
          static_cast<char *>(g_ptr_array_steal_index(reg.order, reg.order->len - 1));
      gpointer key;
      gpointer value;
      if (g_hash_table_steal_extended(reg.objects, id, &key, &value)) {
        g_free(key);
        object = static_cast<GObject *>(value);
      }
    }
    if (object) g_object_unref(object);
  }
}
