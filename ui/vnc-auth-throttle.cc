#include "config.h"

#include "ui/vnc-auth-throttle.h"

#include <gio/gio.h>

#include <algorithm>
#include <cstring>

namespace qio::ui {

std::string VncAuthThrottle::source_of(const std::string &host) {
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(host.c_str());
  if (!address || g_inet_address_get_family(address) != G_SOCKET_FAMILY_IPV6) return host;
  const guint8 *bytes = g_inet_address_to_bytes(address);
  /* An IPv4 peer of a dual-stack listener, ::ffff:a.b.c.d, is that address;
   * any other IPv6 peer counts with its /64, which one host can fill. */
  static const guint8 kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(bytes, kMapped, sizeof kMapped) == 0) {
    g_autoptr(GInetAddress) v4 = g_inet_address_new_from_bytes(bytes + 12, G_SOCKET_FAMILY_IPV4);
    g_autofree char *text = g_inet_address_to_string(v4);
    return text;
  }
  guint8 prefix[16] = {};
  memcpy(prefix, bytes, 8);
  g_autoptr(GInetAddress) net = g_inet_address_new_from_bytes(prefix, G_SOCKET_FAMILY_IPV6);
  g_autofree char *text = g_inet_address_to_string(net);
  return std::string(text) + "/64";
}

gint64 VncAuthThrottle::spacing(guint failures) {
  if (failures < kFreeFailures) return 0;
  guint doublings = std::min(failures - kFreeFailures, 5u);
  return std::min<gint64>(static_cast<gint64>(kFirstDelayMs) << doublings, kMaxDelayMs) *
         G_TIME_SPAN_MILLISECOND;
}

VncAuthThrottle::Source *VncAuthThrottle::find(const std::string &source, gint64 now) {
  auto it = sources_.find(source);
  if (it == sources_.end()) return nullptr;
  if (now - it->second.last_failure > static_cast<gint64>(kForgetSeconds) * G_USEC_PER_SEC) {
    sources_.erase(it);
    return nullptr;
  }
  return &it->second;
}

gint64 VncAuthThrottle::reserve(const std::string &source, gint64 now) {
  Source *s = find(source, now);
  gint64 gap = s ? spacing(s->failures) : 0;
  if (!gap) return 0;
  gint64 turn = std::max({now, s->next_turn, s->last_failure + gap});
  if (turn - now >= kMaxWaitingTurns * gap) return -1;
  s->next_turn = turn + gap;
  return turn - now;
}

bool VncAuthThrottle::throttled(const std::string &source, gint64 now) {
  Source *s = find(source, now);
  return s && spacing(s->failures) > 0;
}

void VncAuthThrottle::failed(const std::string &source, gint64 now) {
  Source *s = find(source, now);
  if (!s) {
    if (sources_.size() >= kMaxSources) {
      auto oldest = std::min_element(
          sources_.begin(), sources_.end(),
          [](const auto &a, const auto &b) { return a.second.last_failure < b.second.last_failure; });
      sources_.erase(oldest);
    }
    s = &sources_[source];
  }
  s->failures++;
  s->last_failure = now;
}

void VncAuthThrottle::forget(const std::string &source) { sources_.erase(source); }

}  // namespace qio::ui
