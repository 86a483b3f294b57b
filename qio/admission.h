/*
 * qio::make_room: admission for servers that hold at most @max clients
 * (NBD, VNC, the QMP TLS listener).  When full, the oldest client still in
 * its handshake gives way: a real client's handshake takes milliseconds,
 * so only one that stalls loses its place, and peers that connect and say
 * nothing cannot keep real clients out.  Clients being cut still count, up
 * to twice the limit, so a flood cannot outrun the cutting.
 */
#pragma once

#include <gio/gio.h>

#include <algorithm>
#include <iterator>

namespace qio {

enum class Room {
  Free,    /* under the limit */
  Evicted, /* the oldest client in its handshake was cut to make room */
  Full,    /* no room: refuse the newcomer */
};

/* @clients: pointers, oldest first, to records with `bool evicted` and
 * `GCancellable *cancel` (cancelled to cut one); @in_handshake(client)
 * says whether one may still be cut. */
template <typename Clients, typename InHandshake>
Room make_room(const Clients &clients, gsize max, InHandshake in_handshake) {
  const auto live = static_cast<gsize>(std::count_if(
      clients.begin(), clients.end(), [](const auto *c) { return !c->evicted; }));
  if (live < max) return Room::Free;
  if (static_cast<gsize>(std::size(clients)) >= 2 * max) return Room::Full;
  auto oldest = std::find_if(clients.begin(), clients.end(), [&](const auto *c) {
    return !c->evicted && in_handshake(c);
  });
  if (oldest == clients.end()) return Room::Full;
  (*oldest)->evicted = true;
  g_cancellable_cancel((*oldest)->cancel);
  return Room::Evicted;
}

}  // namespace qio
