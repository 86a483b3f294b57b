#include "config.h"

#include "qio/log-limiter.h"

#include <utility>

namespace qio {

bool LogLimiter::allow(guint *held_back) {
  gint64 now = g_get_monotonic_time();
  std::lock_guard guard(lock_);
  if (said_ && now - last_ < G_USEC_PER_SEC) {
    held_++;
    return false;
  }
  said_ = true;
  last_ = now;
  guint held = std::exchange(held_, 0);
  if (held_back) *held_back = held;
  return true;
}

}  // namespace qio
