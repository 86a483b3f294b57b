/* QIOChannelSASL over a socketpair after a real DIGEST-MD5 authentication
 * (SSF 128): small and bulk transfers both ways, blocking and
 * non-blocking with watches, short writes reported honestly, decoded
 * data held back waking watches, end of stream, a damaged stream. */
#include "config.h"

#include "qcrypto/error.h"
#include "qio/channel-sasl.h"
#include "qio/channel-socket.h"
#include "qio/error.h"
#include "tests/unit/assert-mentions.h"
#include "tests/unit/sasl-test-helpers.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr char kUser[] = "carol@qio.test";
constexpr char kPassword[] = "carol's secret";

std::vector<guint8> pattern(gsize len, unsigned seed) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + seed) % 251);
  return data;
}

/* Authenticated sessions and a SASL channel on each end of a socketpair. */
struct Fixture {
  QIOChannelSocket *server_master = nullptr, *client_master = nullptr;
  QCryptoSASLSession *server_session = nullptr, *client_session = nullptr;
  QIOChannelSASL *server = nullptr, *client = nullptr;

  /* @nonblocking_masters: the masters are non-blocking when layered. */
  explicit Fixture(bool nonblocking_masters = false) {
    g_autoptr(GError) error = nullptr;
    g_assert_true(qio_channel_socket_new_pair(&server_master, &client_master, &error));
    if (nonblocking_masters) {
      g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(server_master), FALSE, &error));
      g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(client_master), FALSE, &error));
    }
    server_session = qcrypto_sasl_session_new_server("vnc", nullptr, "192.0.2.1;4000", &error);
    g_assert_no_error(error);
    client_session = qcrypto_sasl_session_new_client("vnc", "qio.test", nullptr, nullptr, kUser,
                                                     kPassword, &error);
    g_assert_no_error(error);
    g_autoptr(GError) client_error = nullptr;
    g_assert_true(
        sasl_test_exchange(server_session, client_session, nullptr, &error, &client_error));
    g_assert_no_error(error);
    g_assert_no_error(client_error);
    g_assert_cmpuint(qcrypto_sasl_session_get_ssf(server_session), ==, 128);
    server = qio_channel_sasl_new(QIO_CHANNEL(server_master), server_session, &error);
    g_assert_no_error(error);
    client = qio_channel_sasl_new(QIO_CHANNEL(client_master), client_session, &error);
    g_assert_no_error(error);
  }
  Fixture(const Fixture &) = delete;
  Fixture &operator=(const Fixture &) = delete;
  ~Fixture() {
    g_object_unref(server);
    g_object_unref(client);
    g_object_unref(server_session);
    g_object_unref(client_session);
    g_object_unref(server_master);
    g_object_unref(client_master);
  }

  void set_blocking(bool blocking) {
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(server), blocking, nullptr));
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(client), blocking, nullptr));
  }
};

/* No layer without a finished session, nor with SSF 0 (over TLS). */
void test_needs_security_layer() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) a = nullptr;
  g_autoptr(QIOChannelSocket) b = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  qio_channel_set_name(QIO_CHANNEL(a), "vnc-client-7");
  g_autoptr(QCryptoSASLSession) fresh =
      qcrypto_sasl_session_new_server("vnc", nullptr, nullptr, &error);
  g_assert_no_error(error);
  g_assert_null(qio_channel_sasl_new(QIO_CHANNEL(a), fresh, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_FAILED);
  assert_mentions(error, "vnc-client-7", "no security layer");
  g_clear_error(&error);

  g_autoptr(QCryptoSASLSession) server =
      qcrypto_sasl_session_new_server("vnc", nullptr, nullptr, &error);
  g_autoptr(QCryptoSASLSession) client = qcrypto_sasl_session_new_client(
      "vnc", "qio.test", nullptr, nullptr, kUser, kPassword, &error);
  qcrypto_sasl_session_set_external_ssf(server, 256);
  qcrypto_sasl_session_set_external_ssf(client, 256);
  g_autoptr(GError) client_error = nullptr;
  g_assert_true(sasl_test_exchange(server, client, "DIGEST-MD5", &error, &client_error));
  g_assert_cmpuint(qcrypto_sasl_session_get_ssf(server), ==, 0);
  g_assert_null(qio_channel_sasl_new(QIO_CHANNEL(a), server, &error));
  assert_mentions(error, "SSF 0");
}

void test_small_both_ways() {
  Fixture f;
  g_autoptr(GError) error = nullptr;
  g_assert_cmpstr(qio_channel_get_name(QIO_CHANNEL(f.client)), ==, "sasl-socketpair-1");
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "ping", 4, &error));
  char buf[5] = {};
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, 4, &error));
  g_assert_cmpstr(buf, ==, "ping");
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.server), "pong", 4, &error));
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.client), buf, 4, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(buf, ==, "pong");
}

/* A new layer is blocking, as every new channel is, also over a master
 * that was not: its read waits for the data instead of saying it would
 * block (and, below that, of looping over a peer's empty packets). */
void test_blocking_over_nonblocking_master() {
  Fixture f(true);
  std::thread late_writer([&f] {
    g_usleep(G_USEC_PER_SEC / 10);
    g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "late", 4, nullptr));
  });
  char buf[5] = {};
  g_autoptr(GError) error = nullptr;
  /* One read: qio_channel_read_all() would wait either way. */
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, 4, &error), ==, 4);
  g_assert_no_error(error);
  g_assert_cmpstr(buf, ==, "late");
  late_writer.join();
}

/* What crosses the master is the layer's packets, never the plaintext. */
void test_wire_is_encoded() {
  Fixture f;
  g_autoptr(GError) error = nullptr;
  std::string text;
  while (text.size() < 100 * 1024) text += "qio plaintext marker ";
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), text.data(), text.size(), &error));
  g_assert_true(qio_channel_shutdown(QIO_CHANNEL(f.client), QIO_CHANNEL_SHUTDOWN_WRITE, &error));
  std::vector<char> wire;
  char buf[16384];
  QIOChannel *raw = QIO_CHANNEL(f.server_master);
  for (gssize n; (n = qio_channel_read(raw, buf, sizeof(buf), &error)) > 0;)
    wire.insert(wire.end(), buf, buf + n);
  g_assert_no_error(error);
  g_assert_cmpuint(wire.size(), >, text.size());
  g_assert_null(memmem(wire.data(), wire.size(), "marker", 6));
  /* ... and decodes to exactly the text. */
  const char *out;
  gsize outlen;
  g_assert_true(qcrypto_sasl_session_decode(f.server_session, wire.data(), wire.size(), &out,
                                            &outlen, &error));
  g_assert_true(std::string(out, outlen) == text);
}

/* Each end writes and reads at the same time, in threads: scattered
 * iovecs (large, small, adjacent entries) against reads of odd sizes. */
struct Side {
  QIOChannel *ioc;
  std::vector<guint8> out, in;
  GError *write_error = nullptr, *read_error = nullptr;
};

gpointer bulk_writer(gpointer data) noexcept {
  auto *side = static_cast<Side *>(data);
  std::vector<struct iovec> iov;
  guint8 *p = side->out.data(), *end = p + side->out.size();
  for (unsigned i = 0; p < end; i++) {
    /* A big entry, then 64 small ones, then entries back to back. */
    gsize len = i % 3 == 0 ? 300 * 1024 : i % 3 == 1 ? 100 : 4096;
    for (unsigned k = 0; k < (i % 3 == 1 ? 64u : 1u) && p < end; k++) {
      gsize take = std::min<gsize>(len, static_cast<gsize>(end - p));
      iov.push_back({p, take});
      p += take;
    }
  }
  for (gsize i = 0; i < iov.size(); i += 100) {
    gsize n = std::min<gsize>(100, iov.size() - i);
    if (!qio_channel_writev_all(side->ioc, &iov[i], n, &side->write_error)) break;
  }
  return nullptr;
}

gpointer bulk_reader(gpointer data) noexcept {
  auto *side = static_cast<Side *>(data);
  gsize got = 0, chunk = 1;
  while (got < side->in.size()) {
    chunk = chunk * 7 % 70001 + 1;
    gsize len = std::min(chunk, side->in.size() - got);
    if (!qio_channel_read_all(side->ioc, side->in.data() + got, len, &side->read_error)) break;
    got += len;
  }
  return nullptr;
}

void test_bulk_blocking() {
  Fixture f;
  constexpr gsize kSize = 8 * 1024 * 1024 + 13;
  Side server{QIO_CHANNEL(f.server), pattern(kSize, 1), std::vector<guint8>(kSize)};
  Side client{QIO_CHANNEL(f.client), pattern(kSize, 2), std::vector<guint8>(kSize)};
  GThread *threads[] = {
      g_thread_new("server-writer", bulk_writer, &server),
      g_thread_new("server-reader", bulk_reader, &server),
      g_thread_new("client-writer", bulk_writer, &client),
      g_thread_new("client-reader", bulk_reader, &client),
  };
  for (GThread *t : threads) g_thread_join(t);
  for (Side *side : {&server, &client}) {
    g_assert_no_error(side->write_error);
    g_assert_no_error(side->read_error);
  }
  g_assert_true(server.in == client.out);
  g_assert_true(client.in == server.out);
}

/* Non-blocking, one main context: the writer's watch writes until it
 * would block; the reader's takes one small read per wake-up, so the rest
 * of each decoded packet must wake it again with the socket idle. */
struct Transfer {
  QIOChannel *writer, *reader;
  std::vector<guint8> out, in;
  gsize sent = 0;
  unsigned blocked = 0;
  GMainLoop *loop;
  GError *error = nullptr;
};

gboolean transfer_writable(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *t = static_cast<Transfer *>(data);
  while (t->sent < t->out.size()) {
    gsize len = std::min<gsize>(t->out.size() - t->sent, 256 * 1024);
    gssize n = qio_channel_write(t->writer, t->out.data() + t->sent, len, &t->error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      t->blocked++;
      return G_SOURCE_CONTINUE;
    }
    if (n < 0) {
      g_main_loop_quit(t->loop);
      return G_SOURCE_REMOVE;
    }
    t->sent += static_cast<gsize>(n);
  }
  return G_SOURCE_REMOVE;
}

gboolean transfer_readable(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  auto *t = static_cast<Transfer *>(data);
  guint8 buf[3000];
  gssize n = qio_channel_read(t->reader, buf, sizeof(buf), &t->error);
  if (n == QIO_CHANNEL_ERR_BLOCK) return G_SOURCE_CONTINUE;
  if (n <= 0) {
    if (n == 0) g_set_error_literal(&t->error, QIO_ERROR, QIO_ERROR_EOF, "early end of stream");
    g_main_loop_quit(t->loop);
    return G_SOURCE_REMOVE;
  }
  t->in.insert(t->in.end(), buf, buf + n);
  if (t->in.size() < t->out.size()) return G_SOURCE_CONTINUE;
  g_main_loop_quit(t->loop);
  return G_SOURCE_REMOVE;
}

gboolean transfer_stalled(gpointer data) noexcept {
  auto *t = static_cast<Transfer *>(data);
  g_set_error(&t->error, QIO_ERROR, QIO_ERROR_TIMEOUT,
              "stalled after %" G_GSIZE_FORMAT " bytes read of %" G_GSIZE_FORMAT " sent",
              t->in.size(), t->sent);
  g_main_loop_quit(t->loop);
  return G_SOURCE_REMOVE;
}

void transfer_nonblocking(bool client_to_server) {
  Fixture f;
  f.set_blocking(false);
  g_autoptr(GMainContext) ctx = g_main_context_new();
  g_autoptr(GMainLoop) loop = g_main_loop_new(ctx, FALSE);
  Transfer t{QIO_CHANNEL(client_to_server ? f.client : f.server),
             QIO_CHANNEL(client_to_server ? f.server : f.client), pattern(3 * 1024 * 1024 + 7, 3)};
  t.loop = loop;
  guint w = qio_channel_add_watch_full(t.writer, G_IO_OUT, transfer_writable, &t, nullptr, ctx);
  guint r = qio_channel_add_watch_full(t.reader, G_IO_IN, transfer_readable, &t, nullptr, ctx);
  g_autoptr(GSource) timeout = g_timeout_source_new_seconds(60);
  g_source_set_callback(timeout, transfer_stalled, &t, nullptr);
  g_source_attach(timeout, ctx);
  g_main_loop_run(loop);
  g_source_destroy(timeout);
  for (guint id : {w, r})
    if (GSource *s = g_main_context_find_source_by_id(ctx, id)) g_source_destroy(s);
  g_assert_no_error(t.error);
  g_assert_cmpuint(t.sent, ==, t.out.size());
  g_assert_true(t.in == t.out);
  /* The socket filled up: the would-block path was taken. */
  g_assert_cmpuint(t.blocked, >, 0);
}

void test_nonblocking_client_to_server() { transfer_nonblocking(true); }
void test_nonblocking_server_to_client() { transfer_nonblocking(false); }

/* A write reports exactly the plaintext whose packets the master took:
 * whenever the writer would block and the reader has drained the socket,
 * the reader has decoded all the writer reported and nothing more (the
 * packet cut short is still held by the writer, to be sent first). */
void test_short_writes_reported_honestly() {
  Fixture f;
  f.set_blocking(false);
  std::vector<guint8> out = pattern(4 * 1024 * 1024 + 5, 4), in;
  std::vector<guint8> buf(1024 * 1024);
  gsize written = 0;
  unsigned rounds = 0;
  g_autoptr(GError) error = nullptr;
  while (written < out.size()) {
    for (;;) {
      gssize n = qio_channel_write(QIO_CHANNEL(f.client), out.data() + written,
                                   out.size() - written, &error);
      g_assert_no_error(error);
      if (n == QIO_CHANNEL_ERR_BLOCK) break;
      written += static_cast<gsize>(n);
      if (written == out.size()) break;
    }
    for (;;) {
      gssize n = qio_channel_read(QIO_CHANNEL(f.server), buf.data(), buf.size(), &error);
      g_assert_no_error(error);
      if (n == QIO_CHANNEL_ERR_BLOCK) break;
      g_assert_cmpint(n, >, 0);
      in.insert(in.end(), buf.data(), buf.data() + n);
    }
    g_assert_cmpuint(in.size(), ==, written);
    rounds++;
  }
  g_assert_cmpuint(rounds, >, 1);
  g_assert_true(in == out);
}

gboolean note_condition(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  *static_cast<GIOCondition *>(data) = cond;
  return G_SOURCE_REMOVE;
}

/* Decoded bytes not yet read wake a watch although the socket is idle;
 * with nothing held and nothing arriving, it stays quiet. */
void test_pending_watch() {
  Fixture f;
  f.set_blocking(false);
  g_autoptr(GMainContext) ctx = g_main_context_new();
  GIOCondition fired = static_cast<GIOCondition>(0);
  guint id = qio_channel_add_watch_full(QIO_CHANNEL(f.server), G_IO_IN, note_condition, &fired,
                                        nullptr, ctx);
  for (int i = 0; i < 5; i++) g_main_context_iteration(ctx, FALSE);
  g_assert_cmpint(fired, ==, 0);
  g_source_destroy(g_main_context_find_source_by_id(ctx, id));

  g_autoptr(GError) error = nullptr;
  std::vector<guint8> msg = pattern(200, 5);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), msg.data(), msg.size(), &error));
  guint8 buf[100];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, sizeof(buf), &error));
  g_assert_no_error(error);
  /* The whole packet has left the socket. */
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server_master), buf, 1, &error), ==,
                  QIO_CHANNEL_ERR_BLOCK);
  qio_channel_add_watch_full(QIO_CHANNEL(f.server), G_IO_IN, note_condition, &fired, nullptr, ctx);
  for (int i = 0; i < 5 && !fired; i++) g_main_context_iteration(ctx, FALSE);
  g_assert_true(fired & G_IO_IN);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, sizeof(buf), &error), ==, 100);
  g_assert_true(std::equal(buf, buf + 100, msg.begin() + 100));
}

/* shutdown and close reach the master: the peer reads what was sent,
 * then the end of the stream. */
void test_shutdown_and_close() {
  Fixture f;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(f.client), QIO_CHANNEL_FEATURE_SHUTDOWN));
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "last", 4, &error));
  g_assert_true(qio_channel_shutdown(QIO_CHANNEL(f.client), QIO_CHANNEL_SHUTDOWN_WRITE, &error));
  char buf[8];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, 4, &error));
  g_assert_true(memcmp(buf, "last", 4) == 0);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, sizeof(buf), &error), ==, 0);
  /* The other direction still works, until close. */
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.server), "back", 4, &error));
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.client), buf, 4, &error));
  g_assert_true(qio_channel_close(QIO_CHANNEL(f.server), &error));
  g_assert_no_error(error);
  g_assert_cmpint(qio_channel_socket_get_fd(f.server_master), ==, -1);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.client), buf, sizeof(buf), &error), ==, 0);
}

/* Bytes that are no packet of this session fail the read, naming the
 * peer, instead of passing as data. */
void test_damaged_stream() {
  Fixture f;
  g_autoptr(GError) error = nullptr;
  std::vector<guint8> junk = pattern(64, 6);
  junk[0] = junk[1] = 0;
  junk[2] = 0;
  junk[3] = 60; /* a plausible length, then junk */
  g_assert_true(
      qio_channel_write_all(QIO_CHANNEL(f.client_master), junk.data(), junk.size(), &error));
  char buf[64];
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED);
  assert_mentions(error, "client 192.0.2.1;4000", "decoding failed");
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  SaslTestConfig config("DIGEST-MD5");
  config.add_user("carol", "qio.test", kPassword);
  g_test_add_func("/qio/channel-sasl/needs-security-layer", test_needs_security_layer);
  g_test_add_func("/qio/channel-sasl/small-both-ways", test_small_both_ways);
  g_test_add_func("/qio/channel-sasl/blocking-over-nonblocking-master",
                  test_blocking_over_nonblocking_master);
  g_test_add_func("/qio/channel-sasl/wire-is-encoded", test_wire_is_encoded);
  g_test_add_func("/qio/channel-sasl/bulk-blocking", test_bulk_blocking);
  g_test_add_func("/qio/channel-sasl/nonblocking/client-to-server",
                  test_nonblocking_client_to_server);
  g_test_add_func("/qio/channel-sasl/nonblocking/server-to-client",
                  test_nonblocking_server_to_client);
  g_test_add_func("/qio/channel-sasl/short-writes-reported-honestly",
                  test_short_writes_reported_honestly);
  g_test_add_func("/qio/channel-sasl/pending-watch", test_pending_watch);
  g_test_add_func("/qio/channel-sasl/shutdown-and-close", test_shutdown_and_close);
  g_test_add_func("/qio/channel-sasl/damaged-stream", test_damaged_stream);
  return g_test_run();
}
