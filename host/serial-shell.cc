#include "config.h"

#include "host/serial-shell.h"

#include <cerrno>
#include <cstdlib>

namespace qio::host {

SerialShell::SerialShell(Backend backend, Sink sink)
    : backend_(std::move(backend)), sink_(std::move(sink)) {}

void SerialShell::start() {
  sink_("qio synthetic guest\r\n");
  sink_(kPrompt);
}

void SerialShell::input(std::string_view bytes) {
  for (char c : bytes) {
    if (c == '\r' || c == '\n') {
      sink_("\r\n");
      if (overflow_)
        sink_("error: line too long\r\n");
      else
        run(line_);
      line_.clear();
      overflow_ = false;
      sink_(kPrompt);
    } else if (c == '\b' || c == 0x7f) {
      if (!line_.empty()) {
        line_.pop_back();
        sink_("\b");
      }
    } else if (c >= 0x20 && c < 0x7f) { /* printable ASCII; the rest is dropped */
      if (line_.size() >= kMaxLine) {
        overflow_ = true;
        continue;
      }
      line_.push_back(c);
      sink_(std::string_view(&c, 1));
    }
  }
}

/* Shell replies are guest output, not host messages: they stay English
 * like a real guest's console. */
void SerialShell::run(std::string_view line) {
  auto start = line.find_first_not_of(' ');
  if (start == std::string_view::npos) return;
  line.remove_prefix(start);
  auto space = line.find(' ');
  std::string_view cmd = line.substr(0, space);
  std::string_view arg = space == std::string_view::npos ? "" : line.substr(space + 1);

  if (cmd == "echo") {
    sink_(arg);
    sink_("\r\n");
  } else if (cmd == "status") {
    sink_(backend_.status());
    sink_("\r\n");
  } else if (cmd == "digest") {
    sink_(backend_.digest());
    sink_("\r\n");
  } else if (cmd == "dirty") {
    std::string text(arg);
    char *end = nullptr;
    errno = 0;
    guint64 rate = g_ascii_strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') {
      sink_("error: usage: dirty PAGES_PER_SECOND\r\n");
      return;
    }
    backend_.set_dirty_rate(rate);
    sink_("dirty rate set\r\n");
  } else if (cmd == "help") {
    sink_("commands: echo TEXT, status, digest, dirty RATE, help\r\n");
  } else {
    sink_("error: unknown command '");
    sink_(cmd);
    sink_("'; type help\r\n");
  }
}

}  // namespace qio::host
