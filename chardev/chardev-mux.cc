#include "config.h"

#include "chardev/chardev-mux.h"
#include "qio/error.h"

#include <algorithm>
#include <glib/gi18n-lib.h>

namespace qio::chardev {

ChardevMux::ChardevMux(std::unique_ptr<Chardev> backend, GMainContext *context)
    : Chardev(backend->id(), "mux", context), backend_(std::move(backend)) {}

ChardevMux::~ChardevMux() { backend_->detach(this); }

bool ChardevMux::open(GError **error) {
  if (!backend_->attach(this, error)) return false;
  return backend_->open(error);
}

std::string ChardevMux::filename() const { return backend_->filename(); }

void ChardevMux::describe(JsonObject *info) const {
  json_object_set_string_member(info, "backend", backend_->backend());
  json_object_set_boolean_member(info, "mux", TRUE);
  json_object_set_int_member(info, "focus", static_cast<gint64>(focus_));
  json_object_set_int_member(info, "frontends", static_cast<gint64>(frontends_.size()));
  backend_->describe(info);
}

bool ChardevMux::attach(ChardevFrontend *frontend, GError **error) {
  if (frontends_.size() >= kMaxFrontends) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Chardev '%s' (mux=on) already has %u frontends, the most it takes"),
                id().c_str(), static_cast<unsigned>(kMaxFrontends));
    return false;
  }
  frontends_.push_back(frontend);
  if (backend_->is_open()) frontend->event(ChardevEvent::Opened);
  return true;
}

void ChardevMux::detach(ChardevFrontend *frontend) {
  auto it = std::find(frontends_.begin(), frontends_.end(), frontend);
  if (it == frontends_.end()) return;
  frontends_.erase(it);
  if (focus_ >= frontends_.size()) focus_ = 0;
}

ChardevFrontend *ChardevMux::frontend() const {
  return frontends_.empty() ? nullptr : frontends_[focus_];
}

gsize ChardevMux::write(std::string_view data) { return backend_->write(data); }

void ChardevMux::accept_input() { backend_->accept_input(); }

gsize ChardevMux::can_read() {
  ChardevFrontend *fe = frontend();
  /* Without a frontend, input (escapes included) is still consumed. */
  return fe ? fe->can_read() : 4096;
}

void ChardevMux::event(ChardevEvent event) {
  set_open(event == ChardevEvent::Opened);
  for (ChardevFrontend *fe : frontends_) fe->event(event);
}

void ChardevMux::read(std::string_view bytes) {
  /* Runs of plain bytes go to the focused frontend in one call. */
  gsize start = 0;
  for (gsize i = 0; i < bytes.size(); i++) {
    if (!escaped_ && bytes[i] != kEscape) continue;
    if (i > start && frontend()) frontend()->read(bytes.substr(start, i - start));
    start = i + 1;
    if (!escaped_) {
      escaped_ = true;
      continue;
    }
    escaped_ = false;
    escape(bytes[i]);
  }
  if (start < bytes.size() && frontend()) frontend()->read(bytes.substr(start));
}

void ChardevMux::escape(char c) {
  switch (c) {
    case kEscape:
      if (frontend()) frontend()->read(std::string_view(&c, 1));
      break;
    case 'c':
      if (!frontends_.empty()) focus_ = (focus_ + 1) % frontends_.size();
      accept_input();
      break;
    case 'h':
      /* A terminal in raw mode needs CR LF. */
      for (const char *line : {_("C-a h    print this help"),
                               _("C-a c    switch between the frontends (serial port, monitor)"),
                               _("C-a C-a  send C-a")}) {
        backend_->write("\r\n");
        backend_->write(line);
      }
      backend_->write("\r\n");
      break;
    default:
      /* Unknown escapes (QEMU's x, s, b, t) do nothing here. */
      break;
  }
}

}  // namespace qio::chardev
