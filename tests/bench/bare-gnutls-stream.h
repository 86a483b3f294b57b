/*
 * The bare GnuTLS stream baseline shared by the TLS and migration
 * benchmarks: a loopback TCP connection made with QIOChannelSocket, then
 * plain gnutls_record_send/recv loops with 16 KiB records on its
 * descriptors (no qio on the data path), x509 mutual authentication.
 */
#pragma once

#include "qio/channel-socket.h"
#include "tests/bench/bench-util.h"

#include <glib.h>

#include <string>

/* A loopback TCP connection: writer (client) and reader (server) ends. */
struct Conn {
  QIOChannelSocket *client = nullptr, *server = nullptr;
  Conn() {
    g_autoptr(GError) error = nullptr;
    g_autoptr(QIOChannelSocket) l = qio_channel_socket_new();
    g_autoptr(QIOSocketAddress) any = qio_socket_address_new_inet("127.0.0.1", 0);
    if (!qio_channel_socket_listen_sync(l, any, 1, &error)) g_error("%s", error->message);
    g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(l, &error);
    client = qio_channel_socket_new();
    if (!qio_channel_socket_connect_sync(client, addr, &error)) g_error("%s", error->message);
    server = qio_channel_socket_accept(l, &error);
    if (!server) g_error("%s", error->message);
  }
  ~Conn() {
    g_object_unref(client);
    g_object_unref(server);
  }
};

/* A handshaken bare GnuTLS session pair over loopback TCP. */
class BareGnutlsStream {
 public:
  BareGnutlsStream(const BenchPki &pki, const std::string &prio);
  ~BareGnutlsStream();
  BareGnutlsStream(const BareGnutlsStream &) = delete;
  BareGnutlsStream &operator=(const BareGnutlsStream &) = delete;
  /* Sends @bytes from the client to a server thread; the seconds taken. */
  double send(guint64 bytes);

 private:
  Conn conn_;
  struct Sessions;
  Sessions *s_;
};

/* Sends @total_bytes from a client to a server thread; GiB/s. */
double bench_bare_gnutls_stream(const BenchPki &pki, const std::string &prio, guint64 total_bytes);
