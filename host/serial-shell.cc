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
  emit("qio synthetic guest\r\n");
  emit(kPrompt);
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
gsize SerialShell::feed(std::string_view bytes) {
  for (gsize i = 0; i < bytes.size();) {
    ByteClass cls = class_of(bytes[i]);
    if (cls == kEnter) {
      emit("\r\n");
      bool busy = false;
      if (overflow_)
        emit("error: line too long\r\n");
      else
        busy = run(line_);
      line_.clear();
      overflow_ = false;
      i++;
      if (!busy)
        emit(kPrompt);
      else if (!running_.empty())
        return i;
    } else if (cls == kErase) {
      if (!line_.empty()) {
        line_.pop_back();
        emit("\b");
      }
      i++;
    } else if (cls == kPrintable) {
      gsize end = run_end(bytes, i, kPrintable);
      gsize take = std::min(end - i, kMaxLine - std::min(line_.size(), kMaxLine));
      if (take < end - i) overflow_ = true;
      if (take > 0) {
        std::string_view typed = bytes.substr(i, take);
        line_.append(typed);
        emit(typed);
      }
      i = end;
    } else {
      i = run_end(bytes, i, kDrop);
    }
  }
  return bytes.size();
}

void SerialShell::input(std::string_view bytes, Done done) {
  /* Keystrokes arriving one by one behind a busy command join one
   * segment, so that a flood costs kMaxQueued bytes and no more. */
  if (!draining_ && !done && !queue_.empty() && !queue_.back().done)
    queue_.back().bytes.append(bytes);
  else
    queue_.push_back({std::string(bytes), std::move(done), {}, false});
  drain();
}

void SerialShell::drain() {
  if (draining_) return; /* a Done or a reply fed input: the loop below takes it */
  draining_ = true;
  while (running_.empty() && !queue_.empty()) {
    Segment &front = queue_.front();
    front.started = true;
    gsize used = feed(front.bytes);
    if (!running_.empty()) {
      front.bytes.erase(0, used);
      break;
    }
    Segment finished = std::move(front);
    queue_.pop_front();
    if (finished.done) finished.done(std::move(finished.output));
  }
  draining_ = false;
  trim_queue();
}

gsize SerialShell::droppable_bytes() const {
  gsize n = 0;
  for (const auto &segment : queue_)
    if (!segment.done) n += segment.bytes.size();
  return n;
}

/* Input beyond kMaxQueued waiting behind a busy command is dropped from
 * the newest end, as a full tty buffer drops what is typed into it.  A
 * QMP write (it has a Done) is kept whole: its size is bounded by the
 * monitor, and its caller is owed an answer for every byte. */
void SerialShell::trim_queue() {
  gsize queued = droppable_bytes();
  for (auto it = queue_.rbegin(); queued > kMaxQueued && it != queue_.rend(); ++it) {
    if (it->done) continue;
    gsize cut = std::min(it->bytes.size(), queued - kMaxQueued);
    it->bytes.resize(it->bytes.size() - cut);
    queued -= cut;
  }
}

gsize SerialShell::room() const { return kMaxQueued - std::min(droppable_bytes(), kMaxQueued); }

/* Without the bytes the shell drops anyway, so that what migration saves
 * is ASCII (JSON strings must be UTF-8). */
std::string SerialShell::queued_input() const {
  std::string all;
  for (const auto &segment : queue_)
    for (char c : segment.bytes)
      if (class_of(c) != kDrop) all += c;
  return all;
}

bool SerialShell::valid_running_command(std::string_view command) {
  if (command.empty()) return true;
  if (command.size() > kMaxLine) return false;
  for (char c : command)
    if (class_of(c) != kPrintable) return false;
  return command == "digest" || command.substr(0, 7) == "digest ";
}

void SerialShell::restore(std::string_view line, bool overflowed, std::string_view running_command,
                          std::string_view queued_input) {
  /* Replies to commands this shell started are not for the restored one. */
  self_ = std::make_shared<SerialShell *>(this);
  running_.clear();
  std::deque<Segment> dropped;
  dropped.swap(queue_);

  line_.clear();
  for (char c : line.substr(0, kMaxLine))
    if (class_of(c) == kPrintable) line_ += c;
  overflow_ = overflowed;
  if (valid_running_command(running_command) && !running_command.empty()) run(running_command);
  if (!queued_input.empty()) input(queued_input.substr(0, kMaxQueued));
  /* Answered last, so that input they might type meets the restored state. */
  for (auto &segment : dropped)
    if (segment.done) segment.done(std::move(segment.output));
  /* A chardev stopped by the dropped busy state reads again. */
  if (running_.empty() && room_listener_) room_listener_();
}

void SerialShell::finish(std::string_view text) {
  emit(text);
  emit("\r\n");
  running_.clear();
  emit(kPrompt);
  drain();
  if (running_.empty() && room_listener_) room_listener_();
}

/* Output belongs to the input being run: the front segment once fed (a
 * command restored by migration has none). */
void SerialShell::emit(std::string_view text) {
  sink_(text);
  if (!queue_.empty() && queue_.front().started && queue_.front().done)
    queue_.front().output.append(text);
}

/* Shell replies are guest output, not host messages: they stay English
 * like a real guest's console. */
bool SerialShell::run(std::string_view line) {
  auto start = line.find_first_not_of(' ');
  if (start == std::string_view::npos) return false;
  line.remove_prefix(start);
  auto space = line.find(' ');
  std::string_view cmd = line.substr(0, space);
  std::string_view arg = space == std::string_view::npos ? "" : line.substr(space + 1);

  if (cmd == "echo") {
    emit(arg);
    emit("\r\n");
  } else if (cmd == "status") {
    emit(backend_.status());
    emit("\r\n");
  } else if (cmd == "digest") {
    running_ = line;
    std::weak_ptr<SerialShell *> weak = self_;
    backend_.digest([weak](std::string text) {
      if (auto self = weak.lock()) (*self)->finish(text);
    });
    return true;
  } else if (cmd == "dirty") {
    std::string text(arg);
    char *end = nullptr;
    errno = 0;
    guint64 rate = g_ascii_strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') {
      emit("error: usage: dirty PAGES_PER_SECOND\r\n");
      return false;
    }
    backend_.set_dirty_rate(rate);
    emit("dirty rate set\r\n");
  } else if (cmd == "help") {
    emit("commands: echo TEXT, status, digest, dirty RATE, help\r\n");
  } else {
    emit("error: unknown command '");
    emit(cmd);
    emit("'; type help\r\n");
  }
  return false;
}

}  // namespace qio::host
