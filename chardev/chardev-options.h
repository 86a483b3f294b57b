/*
 * ChardevOptions: a chardev's options as flat key=value strings, from
 * -chardev's QEMU syntax ("socket,id=c0,host=127.0.0.1,port=4000,server=on")
 * or from QMP chardev-add's nested form.  Backends take the keys they
 * know; whatever is left is reported as unknown.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <map>
#include <optional>
#include <string>

namespace qio::chardev {

class ChardevOptions {
 public:
  /* "BACKEND,id=ID,key=value,..." (",," is a literal comma). */
  static std::optional<ChardevOptions> parse(const char *text, GError **error);
  /* chardev-add's arguments: {"id": ID, "backend": {"type": T, "data": {...}}}. */
  static std::optional<ChardevOptions> from_qmp(JsonObject *args, GError **error);

  const std::string &backend() const { return backend_; }
  const std::string &id() const { return id_; }
  /* Made by chardev-add, whose defaults differ at places (as in QEMU). */
  bool from_monitor() const { return from_monitor_; }

  bool has(const char *key) const { return values_.count(key) != 0; }
  /* Each removes the key it reads; a missing key yields @def. */
  std::string take_string(const char *key, const char *def = "");
  bool take_bool(const char *key, bool def, bool *out, GError **error);
  bool take_uint(const char *key, guint64 def, guint64 max, guint64 *out, GError **error);
  /* Fails naming the first key no backend took. */
  bool check_all_taken(GError **error) const;

 private:
  std::string backend_;
  std::string id_;
  bool from_monitor_ = false;
  std::map<std::string, std::string> values_;
};

}  // namespace qio::chardev
