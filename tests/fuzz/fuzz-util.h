/* What several harnesses share: GLib logging for a fuzzer, and playing
 * the peer of a server that runs on the default GMainContext (the fuzz
 * input is what the peer sends over one end of a socket pair, the server
 * has the other end). */
#pragma once

#include "host/guest.h"
#include "qio/channel-socket.h"

#include <glib-unix.h>
#include <glib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>

namespace fuzz {

/* Drops the messages every rejected input logs (they would slow the
 * fuzzer down and bury its report), and aborts on a critical: a
 * g_return_if_fail() that input from a peer can trigger is a bug. */
inline void quiet_logs() {
  g_log_set_writer_func(
      [](GLogLevelFlags level, const GLogField *fields, gsize n_fields,
         gpointer) -> GLogWriterOutput {
        if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))) return G_LOG_WRITER_HANDLED;
        g_log_writer_standard_streams(level, fields, n_fields, nullptr);
        abort();
      },
      nullptr, nullptr);
}

/* A connected pair: the server's end (a blocking channel) and the peer's
 * descriptor (non-blocking); each end's send buffer holds 1 MiB, so a
 * whole input and the answers to it fit without the other side reading. */
struct PeerPair {
  QIOChannelSocket *server = nullptr;
  QIOChannelSocket *peer = nullptr;
  int fd = -1;

  PeerPair() {
    if (!qio_channel_socket_new_pair(&server, &peer, nullptr)) abort();
    fd = qio_channel_socket_get_fd(peer);
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(qio_channel_socket_get_fd(server), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (!g_unix_set_fd_nonblocking(fd, TRUE, nullptr)) abort();
  }
  ~PeerPair() {
    g_clear_object(&server);
    g_clear_object(&peer);
  }
  PeerPair(const PeerPair &) = delete;
  PeerPair &operator=(const PeerPair &) = delete;
};

/* Sends @data from the peer, then EOF, discarding what the server answers,
 * and runs the default GMainContext until the server closes its end (or
 * @finished, when given, says the server is done).  Aborts (a hang, for
 * the fuzzer) when that takes more than @seconds. */
inline void play_peer(int fd, const uint8_t *data, size_t size, int seconds,
                      const std::function<bool()> &finished = nullptr) {
  size_t sent = 0;
  bool shut = false;
  gint64 deadline = g_get_monotonic_time() + seconds * G_USEC_PER_SEC;
  char sink[65536];
  for (;;) {
    if (sent < size) {
      ssize_t n = write(fd, data + sent, size - sent);
      if (n > 0) sent += n;
      else if (n < 0 && errno != EAGAIN) sent = size; /* the server is gone */
    }
    if (sent == size && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    ssize_t n;
    while ((n = read(fd, sink, sizeof sink)) > 0) {
    }
    if (n == 0 || (n < 0 && errno != EAGAIN) || (finished && finished())) return;
    if (g_main_context_iteration(nullptr, FALSE)) continue;
    if (g_get_monotonic_time() > deadline) {
      fprintf(stderr, "the server is not done %d s after the peer's EOF\n", seconds);
      abort();
    }
    /* Nothing to dispatch: wait a little for the server's answer or its
     * worker threads (whose completions wake the context). */
    struct pollfd pfd = {fd, POLLIN, 0};
    poll(&pfd, 1, 1);
  }
}

/* A synthetic guest with 1 MiB of RAM for the harnesses that need one;
 * aborts if it cannot be made. */
inline std::unique_ptr<qio::host::Guest> make_guest() {
  qio::host::GuestConfig config;
  config.ram_size = 1 << 20;
  GError *error = nullptr;
  auto guest = qio::host::Guest::create(config, &error);
  if (!guest) {
    fprintf(stderr, "guest: %s\n", error->message);
    abort();
  }
  return guest;
}

}  // namespace fuzz
