/*
 * SerialShell: the line shell the guest runs on its serial port.  Bytes
 * in (from a chardev, VNC key events or QMP), bytes out through a sink, so
 * any transport can attach later.  Commands: help, echo TEXT, status,
 * digest, dirty RATE.
 *
 * `digest` hashes all of RAM, which takes seconds for large guests, so it
 * runs on a worker and the shell is busy until its reply: input that
 * arrives meanwhile waits, as in a terminal's input buffer, up to
 * kMaxQueued bytes (more is dropped, like a full tty buffer; a chardev
 * asks room() first and so loses nothing; QMP writes are kept whole).
 */
#pragma once

#include <glib.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace qio::host {

class SerialShell {
 public:
  using Reply = std::function<void(std::string text)>;
  struct Backend {
    std::function<std::string()> status;
    /* Starts hashing RAM; @reply runs later (or at once) with the digest. */
    std::function<void(Reply reply)> digest;
    std::function<void(guint64 pages_per_s)> set_dirty_rate;
  };
  using Sink = std::function<void(std::string_view)>;
  /* Receives what the shell printed while it ran one input()'s bytes. */
  using Done = std::function<void(std::string output)>;

  SerialShell(Backend backend, Sink sink);
  SerialShell(const SerialShell &) = delete;
  SerialShell &operator=(const SerialShell &) = delete;

  /* Feeds input bytes; complete lines run as commands.  Typed characters
   * are echoed, as a terminal expects.  @done, if set, runs once every
   * byte has been run and answered (at once unless a command is busy). */
  void input(std::string_view bytes, Done done = {});
  /* Prints the banner and the first prompt. */
  void start();
  /* How many bytes input() takes without a Done before dropping any: a
   * chardev reads no more than this, and @listener runs when it may have
   * grown (the shell is idle again). */
  gsize room() const;
  void set_room_listener(std::function<void()> listener) { room_listener_ = std::move(listener); }

  /* What migration saves and restores: the line typed so far, the command
   * whose reply is awaited (rerun by restore()) and the input waiting
   * behind it. */
  const std::string &pending_line() const { return line_; }
  bool overflowed() const { return overflow_; }
  const std::string &running_command() const { return running_; }
  std::string queued_input() const;
  void restore(std::string_view line, bool overflowed, std::string_view running_command = {},
               std::string_view queued_input = {});
  /* Whether a migration stream's running command is one restore() reruns
   * (empty, or a `digest` line of printable ASCII). */
  static bool valid_running_command(std::string_view command);

  static constexpr gsize kMaxLine = 256;
  static constexpr gsize kMaxQueued = 4096;
  static constexpr const char *kPrompt = "guest> ";

 private:
  struct Segment {
    std::string bytes;
    Done done;
    std::string output;
    bool started; /* being run: output from now on is its own */
  };

  void drain();
  void trim_queue();
  gsize droppable_bytes() const;
  /* Runs @bytes until they end or a command goes busy; returns how many
   * were consumed. */
  gsize feed(std::string_view bytes);
  /* Returns true when the command went to a worker (finish() prints its
   * reply and the prompt). */
  bool run(std::string_view line);
  void finish(std::string_view text);
  void emit(std::string_view text);

  Backend backend_;
  Sink sink_;
  std::string line_;
  bool overflow_ = false;
  std::string running_;
  std::deque<Segment> queue_;
  bool draining_ = false;
  std::function<void()> room_listener_;
  /* Replies arriving after the shell is gone (or restored) are dropped. */
  std::shared_ptr<SerialShell *> self_ = std::make_shared<SerialShell *>(this);
};

}  // namespace qio::host
