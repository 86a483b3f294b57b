#include "config.h"

#include "chardev/chardev-set.h"
#include "chardev/chardev-file.h"
#include "chardev/chardev-mux.h"
#include "chardev/chardev-null.h"
#include "chardev/chardev-pipe.h"
#include "chardev/chardev-pty.h"
#include "chardev/chardev-ringbuf.h"
#include "chardev/chardev-socket.h"
#include "chardev/chardev-stdio.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-server.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

namespace qio::chardev {

namespace {

std::unique_ptr<Chardev> make(ChardevOptions &opts, GMainContext *context, GError **error) {
  const std::string &b = opts.backend();
  if (b == "socket") return ChardevSocket::create(opts, context, error);
  if (b == "file") return ChardevFile::create(opts, context, error);
  if (b == "pipe") return ChardevPipe::create(opts, context, error);
  if (b == "ringbuf" || b == "memory") return ChardevRingbuf::create(opts, context, error);
  if (b == "null") return std::make_unique<ChardevNull>(opts.id(), context);
  if (b == "pty") return std::make_unique<ChardevPty>(opts.id(), context);
  if (b == "stdio") return std::make_unique<ChardevStdio>(opts.id(), context);
  g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
              _("chardev '%s': unknown backend '%s'; use socket, file, pipe, pty, stdio, "
                "ringbuf or null"),
              opts.id().c_str(), b.c_str());
  return nullptr;
}

}  // namespace

std::unique_ptr<Chardev> ChardevSet::prepare(ChardevOptions &opts, GError **error) {
  if (devs_.count(opts.id()) || opening_.count(opts.id())) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("chardev '%s' already exists; choose another id or chardev-remove it first"),
                opts.id().c_str());
    return nullptr;
  }
  bool mux = false;
  if (!opts.take_bool("mux", false, &mux, error)) return nullptr;
  std::unique_ptr<Chardev> dev = make(opts, context_, error);
  if (!dev || !opts.check_all_taken(error)) return nullptr;
  if (mux) dev = std::make_unique<ChardevMux>(std::move(dev), mux_actions_, context_);
  return dev;
}

Chardev *ChardevSet::add(ChardevOptions &opts, GError **error) {
  std::unique_ptr<Chardev> dev = prepare(opts, error);
  if (!dev || !dev->open(error)) return nullptr;
  Chardev *raw = dev.get();
  devs_.emplace(opts.id(), std::move(dev));
  return raw;
}

void ChardevSet::add_async(ChardevOptions &opts, AddDone done) {
  GError *error = nullptr;
  std::unique_ptr<Chardev> dev = prepare(opts, &error);
  if (!dev) return done(nullptr, error);
  Chardev *raw = dev.get();
  std::string id = opts.id();
  opening_.emplace(id, Opening{std::move(dev), std::move(done)});
  raw->open_async([this, id](GError *open_error) {
    /* The chardev (whose callback this is) ends here if it failed. */
    Opening opening = std::move(opening_.extract(id).mapped());
    if (open_error) return opening.done(nullptr, open_error);
    Chardev *opened = opening.dev.get();
    devs_.emplace(id, std::move(opening.dev));
    opening.done(opened, nullptr);
  });
}

Chardev *ChardevSet::add_from_string(const char *text, GError **error) {
  auto opts = ChardevOptions::parse(text, error);
  return opts ? add(*opts, error) : nullptr;
}

Chardev *ChardevSet::find(const std::string &id) const {
  auto it = devs_.find(id);
  return it == devs_.end() ? nullptr : it->second.get();
}

Chardev *ChardevSet::lookup(const std::string &id, GError **error) const {
  Chardev *dev = find(id);
  if (!dev)
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                _("Chardev '%s' not found; query-chardev lists the chardevs"), id.c_str());
  return dev;
}

bool ChardevSet::remove(const std::string &id, GError **error) {
  if (auto it = opening_.find(id); it != opening_.end()) {
    /* Still connecting: its chardev-add fails, and the connection with it. */
    Opening opening = std::move(it->second);
    opening_.erase(it);
    opening.done(nullptr, g_error_new(QIO_ERROR, QIO_ERROR_FAILED,
                                      _("chardev '%s' was removed before it connected"),
                                      id.c_str()));
    return true;
  }
  Chardev *dev = lookup(id, error);
  if (!dev) return false;
  if (dev->frontend()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Chardev '%s' is busy: a frontend (serial port or monitor) uses it"),
                id.c_str());
    return false;
  }
  devs_.erase(id);
  return true;
}

JsonNode *ChardevSet::query() const {
  JsonArray *list = json_array_new();
  for (const auto &[id, dev] : devs_) {
    JsonObject *info = json_object_new();
    json_object_set_string_member(info, "label", id.c_str());
    json_object_set_string_member(info, "filename", dev->filename().c_str());
    json_object_set_boolean_member(info, "frontend-open", dev->frontend() && dev->is_open());
    json_object_set_string_member(info, "backend", dev->backend());
    dev->describe(info);
    json_array_add_object_element(list, info);
  }
  return monitor::qmp_take_array(list);
}

}  // namespace qio::chardev
