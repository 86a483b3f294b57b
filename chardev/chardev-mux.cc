#include "config.h"

#include "chardev/chardev-mux.h"
#include "qio/error.h"

#include <algorithm>
#include <glib/gi18n-lib.h>

namespace qio::chardev {

ChardevMux::ChardevMux(std::unique_ptr<Chardev> backend, const MuxActions &actions,
                       GMainContext *context)
    : Chardev(backend->id(), "mux", context), backend_(std::move(backend)), actions_(actions) {}

ChardevMux::~ChardevMux() { backend_->detach(this); }

bool ChardevMux::open(GError **error) {
  if (!backend_->attach(this, error)) return false;
  return backend_->open(error);
}

void ChardevMux::open_async(OpenDone done) {
  GError *error = nullptr;
  if (!backend_->attach(this, &error)) return done(error);
  backend_->open_async(std::move(done));
}

std::string ChardevMux::filename() const { return backend_->filename(); }

void ChardevMux::describe(JsonObject *info) const {
  json_object_set_string_member(info, "backend", backend_->backend());
  json_object_set_boolean_member(info, "mux", TRUE);
  json_object_set_int_member(info, "focus", static_cast<gint64>(focus_));
  json_object_set_int_member(info, "frontends", static_cast<gint64>(frontends_.size()));
  json_object_set_boolean_member(info, "timestamps", timestamps_);
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

gsize ChardevMux::write(std::string_view data) {
  if (!timestamps_) {
    gsize n = backend_->write(data);
    if (n > 0) line_start_ = data[n - 1] == '\n';
    return n;
  }
  /* Line by line, so that each line that starts gets its stamp. */
  gsize done = 0;
  while (done < data.size()) {
    if (line_start_) {
      if (!write_timestamp()) return done;
      line_start_ = false;
    }
    gsize nl = data.find('\n', done);
    gsize len = (nl == std::string_view::npos ? data.size() : nl + 1) - done;
    gsize n = backend_->write(data.substr(done, len));
    done += n;
    if (n < len) return done;
    line_start_ = nl != std::string_view::npos;
  }
  return done;
}

bool ChardevMux::write_timestamp() {
  guint64 ms = static_cast<guint64>(g_get_monotonic_time() - timestamps_start_) / 1000;
  char stamp[48];
  int len = g_snprintf(stamp, sizeof stamp, "[%02" G_GUINT64_FORMAT ":%02u:%02u.%03u] ",
                       ms / 3600000, static_cast<unsigned>(ms / 60000 % 60),
                       static_cast<unsigned>(ms / 1000 % 60), static_cast<unsigned>(ms % 1000));
  return backend_->write(std::string_view(stamp, static_cast<gsize>(len))) ==
         static_cast<gsize>(len);
}

void ChardevMux::print_line(const char *text) {
  /* A terminal in raw mode needs CR LF. */
  backend_->write("\r\n");
  backend_->write(text);
  backend_->write("\r\n");
}

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
      for (const char *line : {_("C-a h    print this help"),
                               _("C-a x    quit qiod (as QMP quit does)"),
                               _("C-a s    flush the guest's disks to storage"),
                               _("C-a t    toggle timestamps on output lines"),
                               _("C-a b    send a break to the frontend with the focus"),
                               _("C-a c    switch between the frontends (serial port, monitor)"),
                               _("C-a C-a  send C-a")}) {
        backend_->write("\r\n");
        backend_->write(line);
      }
      backend_->write("\r\n");
      break;
    case 'x':
      if (!actions_.quit) break;
      print_line(_("qiod: terminated"));
      actions_.quit();
      break;
    case 's': {
      if (!actions_.flush_disks) break;
      g_autoptr(GError) error = nullptr;
      if (actions_.flush_disks(&error)) {
        print_line(_("qiod: the guest's disks are flushed"));
      } else {
        g_autofree char *text = g_strdup_printf(
            _("qiod: chardev '%s': C-a s could not flush the guest's disks: %s"), id().c_str(),
            error->message);
        print_line(text);
      }
      break;
    }
    case 't':
      timestamps_ = !timestamps_;
      timestamps_start_ = g_get_monotonic_time();
      break;
    case 'b':
      if (frontend()) frontend()->event(ChardevEvent::Break);
      break;
    default:
      /* Other keys after C-a are dropped, as in QEMU. */
      break;
  }
}

}  // namespace qio::chardev
