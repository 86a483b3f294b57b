/*
 * SerialShell: the line shell the guest runs on its serial port.  Bytes
 * in (from a chardev, or VNC key events), bytes out through a sink, so
 * any transport can attach later.  Commands: help, echo TEXT, status,
 * digest, dirty RATE.
 */
#pragma once

#include <glib.h>

#include <functional>
#include <string>
#include <string_view>

namespace qio::host {

class SerialShell {
 public:
  struct Backend {
    std::function<std::string()> status;
    std::function<std::string()> digest;
    std::function<void(guint64 pages_per_s)> set_dirty_rate;
  };
  using Sink = std::function<void(std::string_view)>;

  SerialShell(Backend backend, Sink sink);

  /* Feeds input bytes; complete lines run as commands.  Typed characters
   * are echoed, as a terminal expects. */
  void input(std::string_view bytes);
  /* Prints the banner and the first prompt. */
  void start();

  /* The line typed so far (migration saves and restores it). */
  const std::string &pending_line() const { return line_; }
  bool overflowed() const { return overflow_; }
  void restore(std::string_view line, bool overflowed) {
    line_ = line.substr(0, kMaxLine);
    overflow_ = overflowed;
  }

  static constexpr gsize kMaxLine = 256;
  static constexpr const char *kPrompt = "guest> ";

 private:
  void run(std::string_view line);

  Backend backend_;
  Sink sink_;
  std::string line_;
  bool overflow_ = false;
};

}  // namespace qio::host
