#include "config.h"

#include "host/serial-shell.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>

namespace qio::host {

SerialShell::SerialShell(Backend backend, Sink sink)
    : backend_(std::move(backend)), sink_(std::move(sink)) {}

void SerialShell::start() {
  sink_("qio synthetic guest\r\n");
  sink_(kPrompt);
}

namespace {

/* What the shell does with each byte value. */
enum ByteClass : guint8 { kDrop, kPrintable, kEnter, kErase };

constexpr std::array<ByteClass, 256> kClasses = [] {
  std::array<ByteClass, 256> t{};
  for (int c = 0x20; c < 0x7f; c++) t[c] = kPrintable; /* printable ASCII; the rest is dropped */
  t['\r'] = t['\n'] = kEnter;
  t['\b'] = t[0x7f] = kErase;
  return t;
}();

ByteClass class_of(char c) { return kClasses[static_cast<guint8>(c)]; }

/* The end of the run of bytes of @cls starting at @from. */
gsize run_end(std::string_view bytes, gsize from, ByteClass cls) {
  while (from < bytes.size() && class_of(bytes[from]) == cls) from++;
  return from;
}

}  // namespace

/* Works on runs rather than bytes: a pasted line is echoed in one piece
 * (one chardev write, one TLS record) and dropped bytes cost a table
 * lookup each. */
void SerialShell::input(std::string_view bytes) {
  for (gsize i = 0; i < bytes.size();) {
    ByteClass cls = class_of(bytes[i]);
    if (cls == kEnter) {
      sink_("\r\n");
      if (overflow_)
        sink_("error: line too long\r\n");
      else
        run(line_);
      line_.clear();
      overflow_ = false;
      sink_(kPrompt);
      i++;
    } else if (cls == kErase) {
      if (!line_.empty()) {
        line_.pop_back();
        sink_("\b");
      }
      i++;
    } else if (cls == kPrintable) {
      gsize end = run_end(bytes, i, kPrintable);
      gsize take = std::min(end - i, kMaxLine - std::min(line_.size(), kMaxLine));
      if (take < end - i) overflow_ = true;
      if (take > 0) {
        std::string_view typed = bytes.substr(i, take);
        line_.append(typed);
        sink_(typed);
      }
      i = end;
    } else {
      i = run_end(bytes, i, kDrop);
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
