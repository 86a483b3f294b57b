#include "config.h"

#include "ui/vnc-auth-throttle.h"

#include <algorithm>

namespace qio::ui {

namespace {

/* The entry hosts share once kMaxHosts are tracked: a flood of addresses
 * is slowed as one. */
const std::string kOverflowHost = "(many hosts)";

}  // namespace

gint64 VncAuthThrottle::spacing(guint failures) {
  if (failures < kFreeFailures) return 0;
  guint doublings = std::min(failures - kFreeFailures, 5u);
  return std::min<gint64>(static_cast<gint64>(kFirstDelayMs) << doublings, kMaxDelayMs) *
         G_TIME_SPAN_MILLISECOND;
}

VncAuthThrottle::Host *VncAuthThrottle::find(const std::string &host, gint64 now, bool create) {
  auto forgotten = [now](const Host &h) {
    return now - h.last_failure > static_cast<gint64>(kForgetSeconds) * G_USEC_PER_SEC;
  };
  auto it = hosts_.find(host);
  if (it != hosts_.end() && forgotten(it->second)) {
    hosts_.erase(it);
    it = hosts_.end();
  }
  if (it != hosts_.end()) return &it->second;
  if (!create) return nullptr;
  if (hosts_.size() >= kMaxHosts)
    std::erase_if(hosts_, [&](const auto &entry) { return forgotten(entry.second); });
  if (hosts_.size() >= kMaxHosts) return &hosts_[kOverflowHost];
  return &hosts_[host];
}

VncAuthThrottle::Host *VncAuthThrottle::lookup(const std::string &host, gint64 now) {
  Host *h = find(host, now, false);
  if (!h && hosts_.size() >= kMaxHosts) h = find(kOverflowHost, now, false);
  return h;
}

gint64 VncAuthThrottle::reserve(const std::string &host, gint64 now) {
  Host *h = lookup(host, now);
  gint64 gap = h ? spacing(h->failures) : 0;
  if (!gap) return 0;
  gint64 turn = std::max({now, h->next_turn, h->last_failure + gap});
  h->next_turn = turn + gap;
  return turn - now;
}

bool VncAuthThrottle::throttled(const std::string &host, gint64 now) {
  Host *h = lookup(host, now);
  return h && spacing(h->failures) > 0;
}

void VncAuthThrottle::failed(const std::string &host, gint64 now) {
  Host *h = find(host, now, true);
  h->failures++;
  h->last_failure = now;
}

void VncAuthThrottle::succeeded(const std::string &host) { hosts_.erase(host); }

}  // namespace qio::ui
