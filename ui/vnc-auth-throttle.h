/*
 * VncAuthThrottle: slows down password guessing against the VNC server (a
 * VNC password is at most 8 characters, and neither RFB nor QEMU limits
 * tries).  After kFreeFailures failed authentications in a row from one
 * host, that host's attempts are answered one at a time, kFirstDelayMs
 * apart, the spacing doubling with each further failure up to kMaxDelayMs;
 * parallel connections queue behind each other instead of multiplying the
 * rate.  A success, or kForgetSeconds without failures, clears the host.
 * Other hosts are not slowed.  Times are monotonic microseconds.  Used
 * from the main loop thread only.
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
  /* Hosts tracked one by one; beyond that they share one entry. */
  static constexpr gsize kMaxHosts = 1024;

  /* Reserves the turn of an attempt from @host starting at @now: how many
   * microseconds it must wait before it is answered (0: at once). */
  gint64 reserve(const std::string &host, gint64 now);
  /* Whether that host is being slowed down now (for the log). */
  bool throttled(const std::string &host, gint64 now);
  void failed(const std::string &host, gint64 now);
  void succeeded(const std::string &host);

 private:
  struct Host {
    guint failures = 0;
    gint64 last_failure = 0;
    gint64 next_turn = 0;
  };
  Host *find(const std::string &host, gint64 now, bool create);
  /* The entry that governs @host: its own, or the shared one once full. */
  Host *lookup(const std::string &host, gint64 now);
  static gint64 spacing(guint failures);

  std::unordered_map<std::string, Host> hosts_;
};

}  // namespace qio::ui
