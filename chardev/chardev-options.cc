#include "config.h"

#include "chardev/chardev-options.h"
#include "qio/error.h"
#include "qom/keyval.h"

#include <glib/gi18n-lib.h>

#include <map>
#include <set>

namespace qio::chardev {

namespace {

/* A JSON scalar as the string -chardev would have given. */
bool scalar_text(const char *id, const char *key, JsonNode *node, std::string *out,
                 GError **error) {
  if (JSON_NODE_HOLDS_VALUE(node)) {
    GType t = json_node_get_value_type(node);
    if (t == G_TYPE_STRING) {
      *out = json_node_get_string(node);
      return true;
    }
    if (t == G_TYPE_BOOLEAN) {
      *out = json_node_get_boolean(node) ? "on" : "off";
      return true;
    }
    if (t == G_TYPE_INT64) {
      *out = std::to_string(json_node_get_int(node));
      return true;
    }
  }
  g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
              _("chardev '%s': parameter '%s' must be a string, a boolean or an integer"), id,
              key);
  return false;
}

}  // namespace

std::optional<ChardevOptions> ChardevOptions::parse(const char *text, GError **error) {
  g_autoptr(JsonObject) obj = qom_keyval_parse(text, "backend", error);
  if (!obj) return std::nullopt;
  ChardevOptions opts;
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    JsonNode *node = json_object_get_member(obj, key);
    if (!JSON_NODE_HOLDS_VALUE(node)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("-chardev %s: parameter '%s' is not a structure; write key=value"), text,
                  key);
      return std::nullopt;
    }
    opts.values_[key] = json_node_get_string(node);
  }
  opts.backend_ = opts.take_string("backend");
  opts.id_ = opts.take_string("id");
  if (opts.backend_.empty() || opts.id_.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("-chardev %s: needs a backend and an id, as in "
                  "-chardev socket,id=ID,path=PATH,server=on"),
                text);
    return std::nullopt;
  }
  return opts;
}

std::optional<ChardevOptions> ChardevOptions::from_qmp(JsonObject *args, GError **error) {
  ChardevOptions opts;
  opts.from_monitor_ = true;
  opts.id_ = json_object_get_string_member_with_default(args, "id", "");
  JsonNode *backend_node = json_object_get_member(args, "backend");
  JsonObject *backend =
      backend_node && JSON_NODE_HOLDS_OBJECT(backend_node) ? json_node_get_object(backend_node)
                                                           : nullptr;
  JsonNode *type = backend ? json_object_get_member(backend, "type") : nullptr;
  if (opts.id_.empty() || !type || !JSON_NODE_HOLDS_VALUE(type) ||
      json_node_get_value_type(type) != G_TYPE_STRING) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev-add needs 'id' and 'backend': {\"type\": TYPE, \"data\": {...}}"));
    return std::nullopt;
  }
  opts.backend_ = json_node_get_string(type);
  const char *id = opts.id_.c_str();
  JsonNode *data_node = json_object_get_member(backend, "data");
  if (!data_node) return opts;
  if (!JSON_NODE_HOLDS_OBJECT(data_node)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': 'backend.data' must be an object"), id);
    return std::nullopt;
  }
  JsonObject *data = json_node_get_object(data_node);
  g_autoptr(GList) members = json_object_get_members(data);
  for (GList *l = members; l; l = l->next) {
    const char *key = static_cast<const char *>(l->data);
    JsonNode *node = json_object_get_member(data, key);
    if (g_str_equal(key, "addr")) {
      /* {"type": "inet"|"unix"|"fd", "data": {host, port | path | str}} */
      JsonObject *addr = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : nullptr;
      const char *atype = addr ? json_object_get_string_member_with_default(addr, "type", "") : "";
      JsonObject *adata = addr && json_object_has_member(addr, "data") &&
                                  JSON_NODE_HOLDS_OBJECT(json_object_get_member(addr, "data"))
                              ? json_object_get_object_member(addr, "data")
                              : nullptr;
      /* Each type's fields, and the -chardev option each one is. */
      static const std::map<std::string, std::map<std::string, const char *>> kFields = {
          {"inet", {{"host", "host"}, {"port", "port"}}},
          {"unix", {{"path", "path"}}},
          {"fd", {{"str", "fd"}}}};
      /* QAPI defaults that clients generated from QEMU's schema may send:
       * they ask for nothing qio does not do. */
      static const std::map<std::string, std::set<std::string>> kNeutral = {
          {"inet", {"numeric"}}, {"unix", {"abstract=false", "tight"}}};
      auto type = kFields.find(atype);
      if (type == kFields.end() || !adata) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                    _("chardev '%s': 'addr' must be {\"type\": \"inet\"|\"unix\"|\"fd\", "
                      "\"data\": {...}}"),
                    id);
        return std::nullopt;
      }
      g_autoptr(GList) names = json_object_get_members(adata);
      for (GList *n = names; n; n = n->next) {
        const char *from = static_cast<const char *>(n->data);
        auto field = type->second.find(from);
        JsonNode *value = json_object_get_member(adata, from);
        bool is_false = JSON_NODE_HOLDS_VALUE(value) &&
                        json_node_get_value_type(value) == G_TYPE_BOOLEAN &&
                        !json_node_get_boolean(value);
        auto neutral = kNeutral.find(atype);
        if (field == type->second.end() && neutral != kNeutral.end() &&
            (neutral->second.count(from) ||
             (is_false && neutral->second.count(std::string(from) + "=false"))))
          continue;
        /* QEMU's other fields (to, ipv4, ipv6, abstract, ...) are not
         * implemented: silently dropping them would change the address. */
        if (field == type->second.end()) {
          g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                      _("chardev '%s': an address of type '%s' has no field '%s' here"), id,
                      atype, from);
          return std::nullopt;
        }
        if (opts.values_.count(field->second)) {
          g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                      _("chardev '%s': '%s' gives the %s a second time; give it once"), id, from,
                      field->second);
          return std::nullopt;
        }
        if (!scalar_text(id, from, value, &opts.values_[field->second], error))
          return std::nullopt;
      }
      continue;
    }
    /* QEMU's QMP names for what -chardev calls path. */
    const char *flat = g_str_equal(key, "out") || g_str_equal(key, "device") ? "path" : key;
    if (opts.values_.count(flat)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("chardev '%s': '%s' gives the %s a second time; give it once"), id, key,
                  flat);
      return std::nullopt;
    }
    if (!scalar_text(id, key, node, &opts.values_[flat], error)) return std::nullopt;
  }
  return opts;
}

std::string ChardevOptions::take_string(const char *key, const char *def) {
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  std::string v = std::move(it->second);
  values_.erase(it);
  return v;
}

bool ChardevOptions::take_bool(const char *key, bool def, bool *out, GError **error) {
  if (!has(key)) {
    *out = def;
    return true;
  }
  std::string v = take_string(key);
  if (v == "on" || v == "yes" || v == "true") {
    *out = true;
  } else if (v == "off" || v == "no" || v == "false") {
    *out = false;
  } else {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': %s='%s' is not a boolean; use on or off"), id_.c_str(), key,
                v.c_str());
    return false;
  }
  return true;
}

bool ChardevOptions::take_uint(const char *key, guint64 def, guint64 max, guint64 *out,
                               GError **error) {
  if (!has(key)) {
    *out = def;
    return true;
  }
  std::string v = take_string(key);
  guint64 n = 0;
  if (!g_ascii_string_to_unsigned(v.c_str(), 10, 0, max, &n, nullptr)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s': %s='%s' is not a number from 0 to %llu"), id_.c_str(), key,
                v.c_str(), static_cast<unsigned long long>(max));
    return false;
  }
  *out = n;
  return true;
}

bool ChardevOptions::check_all_taken(GError **error) const {
  if (values_.empty()) return true;
  g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
              _("chardev '%s': backend '%s' has no parameter '%s'; see docs/chardev.md"),
              id_.c_str(), backend_.c_str(), values_.begin()->first.c_str());
  return false;
}

}  // namespace qio::chardev
