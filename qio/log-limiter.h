/*
 * qio::LogLimiter: at most one log line per interval for events a peer can
 * repeat at will (connections refused, dropped or cut), so that a peer
 * connecting in a loop cannot fill the log: one a second.  Thread-safe.
 */
#pragma once

#include <glib.h>

#include <mutex>

namespace qio {

class LogLimiter {
 public:
  LogLimiter() = default;
  LogLimiter(const LogLimiter &) = delete;
  LogLimiter &operator=(const LogLimiter &) = delete;

  /* Whether to write the line now; if so, *@held_back (when not NULL) is
   * how many were held back since the last one written. */
  bool allow(guint *held_back = nullptr);

 private:
  std::mutex lock_;
  bool said_ = false;
  gint64 last_ = 0;
  guint held_ = 0;
};

}  // namespace qio
