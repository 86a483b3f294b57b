/*
 * VncAuthThrottle: slows down password guessing against the VNC server (a
 * VNC password is at most 8 characters, and neither RFB nor QEMU limits
 * tries).  After kFreeFailures failed authentications in a row from one
 * source (an IPv4 address, an IPv6 /64, or "unix" for local clients),
 * that source's attempts are answered one at a time, kFirstDelayMs apart,
 * the spacing doubling with each further failure up to kMaxDelayMs;
 * parallel connections queue behind each other instead of multiplying the
 * rate.  kForgetSeconds without failures clear a source, and so does a
 * VNC password success (the caller decides: one person's SASL login must
 * not clear guesses at another's password).  Sources that never failed
 * are never slowed; beyond kMaxSources the one that failed longest ago is
 * forgotten.  Times are monotonic microseconds.  Main loop thread only.
 */
#pragma once

#include <glib.h>

#include <string>
#include <unordered_map>

namespace qio::ui {

class VncAuthThrottle {
 public:
  static constexpr guint kFreeFailures = 3;
  static constexpr guint kFirstDelayMs = 250;
  static constexpr guint kMaxDelayMs = 5000;
  static constexpr guint kForgetSeconds = 300;
  static constexpr gsize kMaxSources = 1024;
  /* Turns one source may have waiting: more are refused at once, so
   * clients that gave up (or were cut) while waiting cannot push the
   * source's turns arbitrarily far ahead. */
  static constexpr gint64 kMaxWaitingTurns = 8;

  /* The source a peer address (numeric host, or "unix") counts under. */
  static std::string source_of(const std::string &host);

  /* Reserves the turn of an attempt from @source starting at @now: how
   * many microseconds it must wait before it is answered (0: at once), or
   * -1 when kMaxWaitingTurns are already waiting. */
  gint64 reserve(const std::string &source, gint64 now);
  /* Whether @source is being slowed down now (for the log). */
  bool throttled(const std::string &source, gint64 now);
  void failed(const std::string &source, gint64 now);
  void forget(const std::string &source);

 private:
  struct Source {
    guint failures = 0;
    gint64 last_failure = 0;
    gint64 next_turn = 0;
  };
  Source *find(const std::string &source, gint64 now);
  static gint64 spacing(guint failures);

  std::unordered_map<std::string, Source> sources_;
};

}  // namespace qio::ui
