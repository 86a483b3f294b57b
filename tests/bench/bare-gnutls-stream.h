/*
 * The bare GnuTLS stream baseline shared by the TLS and migration
 * benchmarks: a loopback TCP connection made with QIOChannelSocket, then
 * plain gnutls_record_send/recv loops with 16 KiB records on its
 * descriptors (no qio on the data path), x509 mutual authentication.
 */
#pragma once

#include "qio/channel-socket.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <glib.h>
#include <glib/gstdio.h>

#include <string>

/* A CA, server and client directories in a temporary directory. */
struct Pki {
  char *top = test_tls_mkdir();
  char *server = g_build_filename(top, "server", nullptr);
  char *client = g_build_filename(top, "client", nullptr);
  Pki() {
    g_mkdir(server, 0700);
    g_mkdir(client, 0700);
    TestCert ca = test_tls_make_cert(test_tls_ca_req("bench CA"), nullptr);
    auto sreq = test_tls_server_req("localhost");
    sreq.ip1 = "127.0.0.1";
    TestCert srv = test_tls_make_cert(sreq, &ca);
    TestCert cli = test_tls_make_cert(test_tls_client_req("bench client"), &ca);
    test_tls_write(server, "ca-cert.pem", ca.pem);
    test_tls_write(server, "server-cert.pem", srv.pem);
    test_tls_write(server, "server-key.pem", test_tls_key_pem(1));
    test_tls_write(client, "ca-cert.pem", ca.pem);
    test_tls_write(client, "client-cert.pem", cli.pem);
    test_tls_write(client, "client-key.pem", test_tls_key_pem(1));
  }
  ~Pki() {
    test_tls_rmdir(server);
    test_tls_rmdir(client);
    test_tls_rmdir(top);
    g_free(server);
    g_free(client);
    g_free(top);
  }
  std::string file(bool srv, const char *name) const {
    g_autofree char *p = g_build_filename(srv ? server : client, name, nullptr);
    return p;
  }
};

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

/* Sends @total_bytes from a client to a server thread; GiB/s. */
double bench_bare_gnutls_stream(const Pki &pki, const std::string &prio, guint64 total_bytes);
