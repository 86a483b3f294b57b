/* QIOChannelWebsock: handshake, framing, control frames and watches,
 * between qio's server and client sides and against hand-made frames. */
#include "config.h"

#include "qcrypto/tls-creds.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"
#include "qio/channel-watch.h"
#include "qio/channel-websock.h"
#include "qio/error.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <glib-unix.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

/* ---- a duplex channel over two pipes, so the tests need no sockets ---- */

G_DECLARE_FINAL_TYPE(TestPipe, test_pipe, TEST, PIPE, QIOChannel)

struct _TestPipe {
  QIOChannel parent_instance;
  int rfd, wfd;
};

G_DEFINE_FINAL_TYPE(TestPipe, test_pipe, QIO_TYPE_CHANNEL)

static gssize pipe_result(gssize n, GError **error) {
  if (n >= 0) return n;
  if (errno == EAGAIN) return QIO_CHANNEL_ERR_BLOCK;
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pipe: %s", g_strerror(errno));
  return -1;
}

static gssize test_pipe_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **,
                              gsize *, GError **error) {
  gssize n;
  do n = readv(TEST_PIPE(ioc)->rfd, iov, static_cast<int>(niov));
  while (n < 0 && errno == EINTR);
  return pipe_result(n, error);
}

static gssize test_pipe_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                               const int *, gsize, int, GError **error) {
  gssize n;
  do n = writev(TEST_PIPE(ioc)->wfd, iov, static_cast<int>(niov));
  while (n < 0 && errno == EINTR);
  return pipe_result(n, error);
}

static gboolean test_pipe_close(QIOChannel *ioc, GError **) {
  auto *tp = TEST_PIPE(ioc);
  if (tp->rfd >= 0) close(tp->rfd);
  if (tp->wfd >= 0) close(tp->wfd);
  tp->rfd = tp->wfd = -1;
  return TRUE;
}

static GSource *test_pipe_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_fd_pair_watch(ioc, TEST_PIPE(ioc)->rfd, TEST_PIPE(ioc)->wfd,
                                          condition);
}

static gboolean test_pipe_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  return g_unix_set_fd_nonblocking(TEST_PIPE(ioc)->rfd, !enabled, error) &&
         g_unix_set_fd_nonblocking(TEST_PIPE(ioc)->wfd, !enabled, error);
}

static void test_pipe_finalize(GObject *object) {
  test_pipe_close(QIO_CHANNEL(object), nullptr);
  G_OBJECT_CLASS(test_pipe_parent_class)->finalize(object);
}

static void test_pipe_class_init(TestPipeClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = test_pipe_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = test_pipe_readv;
  ioc_class->io_writev = test_pipe_writev;
  ioc_class->io_close = test_pipe_close;
  ioc_class->io_create_watch = test_pipe_create_watch;
  ioc_class->io_set_blocking = test_pipe_set_blocking;
}

static void test_pipe_init(TestPipe *tp) { tp->rfd = tp->wfd = -1; }

static TestPipe *test_pipe_new(int rfd, int wfd) {
  auto *tp = TEST_PIPE(g_object_new(test_pipe_get_type(), nullptr));
  tp->rfd = rfd;
  tp->wfd = wfd;
  return tp;
}

/* Two connected channels. */
static void duplex(TestPipe **a, TestPipe **b) {
  int ab[2], ba[2];
  g_assert_cmpint(pipe(ab), ==, 0);
  g_assert_cmpint(pipe(ba), ==, 0);
  *a = test_pipe_new(ba[0], ab[1]);
  *b = test_pipe_new(ab[0], ba[1]);
}

/* ---- the raw peer: the test speaks HTTP and frames by hand ------------ */

struct Raw {
  int rfd = -1, wfd = -1;
  ~Raw() {
    if (rfd >= 0) close(rfd);
    if (wfd >= 0) close(wfd);
  }
  void send(const void *data, gsize len) const {
    auto *p = static_cast<const char *>(data);
    while (len > 0) {
      gssize n = write(wfd, p, len);
      g_assert_cmpint(n, >, 0);
      p += n;
      len -= static_cast<gsize>(n);
    }
  }
  void send(const std::string &s) const { send(s.data(), s.size()); }
  std::string recv_exact(gsize len) const {
    std::string out(len, '\0');
    gsize got = 0;
    while (got < len) {
      gssize n = read(rfd, out.data() + got, len - got);
      g_assert_cmpint(n, >, 0);
      got += static_cast<gsize>(n);
    }
    return out;
  }
  /* Reads up to the end of an HTTP head, then @body_len more bytes. */
  std::string recv_head() const {
    std::string out;
    while (out.find("\r\n\r\n") == std::string::npos) out += recv_exact(1);
    return out;
  }
  std::string recv_all() const {
    std::string out;
    char buf[4096];
    gssize n;
    while ((n = read(rfd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<gsize>(n));
    return out;
  }
};

/* A channel to @raw, for a websock channel to own. */
static TestPipe *pipes_to_raw(Raw *raw) {
  int to_us[2], from_us[2];
  g_assert_cmpint(pipe(to_us), ==, 0);
  g_assert_cmpint(pipe(from_us), ==, 0);
  raw->rfd = from_us[0];
  raw->wfd = to_us[1];
  return test_pipe_new(to_us[0], from_us[1]);
}

/* A server channel whose peer is @raw. */
static QIOChannelWebsock *server_with_raw_peer(Raw *raw) {
  g_autoptr(TestPipe) master = pipes_to_raw(raw);
  return qio_channel_websock_new_server(QIO_CHANNEL(master));
}

static QIOChannelWebsock *client_with_raw_peer(Raw *raw) {
  g_autoptr(TestPipe) master = pipes_to_raw(raw);
  return qio_channel_websock_new_client(QIO_CHANNEL(master), "localhost", "/");
}

static const char kGoodRequest[] =
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";
/* RFC 6455 section 1.3's example answer to that key. */
static const char kGoodAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static QIOChannelWebsock *server_after_handshake(Raw *raw) {
  QIOChannelWebsock *wioc = server_with_raw_peer(raw);
  raw->send(kGoodRequest);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_websock_handshake_sync(wioc, nullptr, &error));
  g_assert_no_error(error);
  std::string reply = raw->recv_head();
  g_assert_true(g_str_has_prefix(reply.c_str(), "HTTP/1.1 101 "));
  g_assert_nonnull(strstr(reply.c_str(), kGoodAccept));
  return wioc;
}

static std::string frame(guint8 opcode, bool fin, const std::string &payload, bool masked,
                         guint64 claimed_len = G_MAXUINT64) {
  std::string out;
  out += static_cast<char>((fin ? 0x80 : 0) | opcode);
  guint64 len = claimed_len == G_MAXUINT64 ? payload.size() : claimed_len;
  char m = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    out += static_cast<char>(m | static_cast<char>(len));
  } else if (len <= 0xffff) {
    out += static_cast<char>(m | 126);
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len);
  } else {
    out += static_cast<char>(m | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(len >> shift);
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) out.append(key, 4);
  for (gsize i = 0; i < payload.size(); i++)
    out += masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  return out;
}

struct Frame {
  guint8 opcode;
  bool fin;
  bool masked;
  std::string payload;
};

static Frame read_frame(const Raw &raw) {
  std::string h = raw.recv_exact(2);
  Frame f;
  f.fin = h[0] & 0x80;
  f.opcode = h[0] & 0x0f;
  f.masked = h[1] & 0x80;
  guint64 len = h[1] & 0x7f;
  if (len == 126) {
    std::string e = raw.recv_exact(2);
    len = (static_cast<guint8>(e[0]) << 8) | static_cast<guint8>(e[1]);
  } else if (len == 127) {
    std::string e = raw.recv_exact(8);
    len = 0;
    for (char c : e) len = (len << 8) | static_cast<guint8>(c);
  }
  std::string key = f.masked ? raw.recv_exact(4) : std::string();
  f.payload = raw.recv_exact(len);
  if (f.masked)
    for (gsize i = 0; i < len; i++) f.payload[i] ^= key[i & 3];
  return f;
}

static guint close_code(const Frame &f) {
  g_assert_cmpuint(f.opcode, ==, 0x8);
  if (f.payload.size() < 2) return QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS;
  return (static_cast<guint8>(f.payload[0]) << 8) | static_cast<guint8>(f.payload[1]);
}

static std::string pattern(gsize len) {
  std::string data(len, '\0');
  for (gsize i = 0; i < len; i++) data[i] = static_cast<char>((i * 131 + 7) % 251);
  return data;
}

static std::string read_string(QIOChannel *ioc, gsize len) {
  std::string out(len, '\0');
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_read_all(ioc, out.data(), len, &error));
  g_assert_no_error(error);
  return out;
}

static gboolean count_cb(QIOChannel *, GIOCondition cond, gpointer data) {
  if (cond & G_IO_IN) ++*static_cast<int *>(data);
  return G_SOURCE_CONTINUE;
}

/* ---- handshake between qio's two sides -------------------------------- */

struct Pair {
  QIOChannelWebsock *server = nullptr, *client = nullptr;
  ~Pair() {
    g_clear_object(&server);
    g_clear_object(&client);
  }
};

static void handshake_done(GObject *source, GAsyncResult *result, gpointer data) {
  auto *pending = static_cast<int *>(data);
  g_autoptr(GError) error = nullptr;
  g_assert_true(
      qio_channel_websock_handshake_finish(QIO_CHANNEL_WEBSOCK(source), result, &error));
  g_assert_no_error(error);
  --*pending;
}

/* Both handshakes asynchronously on one private context. */
static void connect_pair(Pair *pair, bool offer_binary, bool sockets = false) {
  QIOChannel *a, *b;
  if (sockets) {
    QIOChannelSocket *sa, *sb;
    g_assert_true(qio_channel_socket_new_pair(&sa, &sb, nullptr));
    a = QIO_CHANNEL(sa);
    b = QIO_CHANNEL(sb);
  } else {
    TestPipe *pa, *pb;
    duplex(&pa, &pb);
    a = QIO_CHANNEL(pa);
    b = QIO_CHANNEL(pb);
  }
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(a), FALSE, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(b), FALSE, nullptr));
  pair->server = qio_channel_websock_new_server(QIO_CHANNEL(a));
  pair->client = qio_channel_websock_new_client(QIO_CHANNEL(b), "localhost", "/path?x=1");
  g_object_unref(a);
  g_object_unref(b);
  qio_channel_websock_set_offer_binary(pair->client, offer_binary);
  g_autoptr(GMainContext) context = g_main_context_new();
  int pending = 2;
  qio_channel_websock_handshake(pair->server, context, nullptr, handshake_done, &pending);
  qio_channel_websock_handshake(pair->client, context, nullptr, handshake_done, &pending);
  while (pending > 0) g_main_context_iteration(context, TRUE);
}

static void test_handshake_async() {
  for (bool binary : {false, true}) {
    Pair pair;
    connect_pair(&pair, binary);
    g_assert_cmpstr(qio_channel_websock_get_path(pair.server), ==, "/path?x=1");
    g_assert_cmpstr(qio_channel_websock_get_protocol(pair.server), ==,
                    binary ? "binary" : nullptr);
    g_assert_cmpstr(qio_channel_websock_get_protocol(pair.client), ==,
                    binary ? "binary" : nullptr);
  }
}

/* An asynchronous handshake expected to fail. */
struct Failing {
  GError *error = nullptr;
  bool done = false;
  ~Failing() { g_clear_error(&error); }
};

static void handshake_failed(GObject *source, GAsyncResult *result, gpointer data) {
  auto *f = static_cast<Failing *>(data);
  g_assert_false(f->done);
  g_assert_false(
      qio_channel_websock_handshake_finish(QIO_CHANNEL_WEBSOCK(source), result, &f->error));
  f->done = true;
}

static void test_handshake_cancel() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
  qio_channel_set_blocking(qio_channel_websock_get_master(wioc), FALSE, nullptr);
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  Failing failing;
  qio_channel_websock_handshake(wioc, context, cancellable, handshake_failed, &failing);
  /* The peer sends half a request and stalls. */
  raw.send("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 5; i++) g_main_context_iteration(context, FALSE);
  g_assert_false(failing.done);
  g_cancellable_cancel(cancellable);
  while (!failing.done) g_main_context_iteration(context, TRUE);
  g_assert_error(failing.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* Cancelled before the loop ran: the same error, once. */
  Failing again;
  Raw raw2;
  g_autoptr(QIOChannelWebsock) wioc2 = server_with_raw_peer(&raw2);
  qio_channel_websock_handshake(wioc2, context, cancellable, handshake_failed, &again);
  while (!again.done) g_main_context_iteration(context, TRUE);
  g_assert_error(again.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  while (g_main_context_iteration(context, FALSE)) {}
}

/* A peer that stalls in the middle of its request is dropped. */
static void test_handshake_timeout() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
  qio_channel_set_blocking(qio_channel_websock_get_master(wioc), FALSE, nullptr);
  qio_channel_websock_set_handshake_timeout(wioc, 100);
  raw.send("GET / HTTP/1.1\r\nHost: x\r\n");
  g_autoptr(GMainContext) context = g_main_context_new();
  Failing failing;
  gint64 start = g_get_monotonic_time();
  qio_channel_websock_handshake(wioc, context, nullptr, handshake_failed, &failing);
  while (!failing.done) g_main_context_iteration(context, TRUE);
  g_assert_cmpint(g_get_monotonic_time() - start, >=, 100 * 1000);
  g_assert_error(failing.error, QIO_ERROR, QIO_ERROR_TIMEOUT);
  g_assert_nonnull(strstr(failing.error->message, "100 ms"));
  while (g_main_context_iteration(context, FALSE)) {}
}

/* Cancelling after success changes nothing. */
static void test_handshake_cancel_after() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
  raw.send(kGoodRequest);
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  int pending = 1;
  qio_channel_websock_handshake(wioc, context, cancellable, handshake_done, &pending);
  while (pending > 0) g_main_context_iteration(context, TRUE);
  g_cancellable_cancel(cancellable);
  while (g_main_context_iteration(context, FALSE)) {}
  g_assert_cmpint(pending, ==, 0);
  g_assert_true(g_str_has_prefix(raw.recv_head().c_str(), "HTTP/1.1 101 "));
}

/* ---- data both ways --------------------------------------------------- */

struct Writer {
  QIOChannel *ioc;
  const std::string *data;
  gsize chunks;
};

static gpointer writer_thread(gpointer p) {
  auto *w = static_cast<Writer *>(p);
  std::vector<struct iovec> iov;
  gsize total = w->data->size(), off = 0;
  for (gsize i = 0; off < total; i++) {
    gsize len = std::min<gsize>(total - off, 1 + (i * 97) % 7000);
    if (i + 1 == w->chunks) len = total - off;
    iov.push_back({const_cast<char *>(w->data->data()) + off, len});
    off += len;
  }
  g_assert_cmpuint(iov.size(), ==, w->chunks);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_writev_all(w->ioc, iov.data(), iov.size(), &error));
  g_assert_no_error(error);
  return nullptr;
}

static void read_and_compare(QIOChannel *ioc, const std::string &expect) {
  std::string got(expect.size(), '\0');
  std::vector<struct iovec> iov;
  for (gsize off = 0; off < got.size(); off += 4099)
    iov.push_back({got.data() + off, std::min<gsize>(4099, got.size() - off)});
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_readv_all_eof(ioc, iov.data(), iov.size(), &error), ==, 1);
  g_assert_no_error(error);
  g_assert_true(got == expect);
}

/* 1 MiB through 300 iovecs each way, with blocking channels and a writer
 * thread (pipes hold only 64 KiB); over pipes and over a socket pair. */
static void test_data_both_ways(gconstpointer sockets) {
  Pair pair;
  connect_pair(&pair, true, sockets != nullptr);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.server), TRUE, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.client), TRUE, nullptr));
  std::string data = pattern(1024 * 1024);
  for (int dir = 0; dir < 2; dir++) {
    QIOChannel *from = QIO_CHANNEL(dir ? pair.server : pair.client);
    QIOChannel *to = QIO_CHANNEL(dir ? pair.client : pair.server);
    Writer w = {from, &data, 300};
    GThread *thread = g_thread_new("writer", writer_thread, &w);
    read_and_compare(to, data);
    g_thread_join(thread);
  }
  /* Normal close: the server sees EOF and code 1000. */
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_close(QIO_CHANNEL(pair.client), &error));
  char c;
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(pair.server), &c, 1, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpuint(qio_channel_websock_get_peer_close_code(pair.server), ==, 1000);
  /* Writing after the close handshake is an error, not a hang. */
  g_assert_cmpint(qio_channel_write(QIO_CHANNEL(pair.server), "x", 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
}

/* Both directions at once, each writer in its own thread while the
 * main thread reads: reads and writes of one channel overlap. */
static void test_full_duplex() {
  Pair pair;
  connect_pair(&pair, false);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.server), TRUE, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.client), TRUE, nullptr));
  std::string up = pattern(1024 * 1024), down = pattern(777777);
  Writer wu = {QIO_CHANNEL(pair.client), &up, 200};
  Writer wd = {QIO_CHANNEL(pair.server), &down, 100};
  GThread *tu = g_thread_new("up", writer_thread, &wu);
  GThread *td = g_thread_new("down", writer_thread, &wd);
  read_and_compare(QIO_CHANNEL(pair.server), up);
  read_and_compare(QIO_CHANNEL(pair.client), down);
  g_thread_join(tu);
  g_thread_join(td);
}

/* wss: websock over QIOChannelTLS over a socket pair.  Both handshakes of
 * both ends run in one main context; then data both ways, and a reader's
 * watch wakes through both layers. */
static void tls_done(GObject *source, GAsyncResult *result, gpointer data) {
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_tls_handshake_finish(QIO_CHANNEL_TLS(source), result, &error));
  g_assert_no_error(error);
  --*static_cast<int *>(data);
}

static void test_wss() {
  TestTLSDir server_dir, client_dir;
  TestCert ca = test_tls_make_cert(test_tls_ca_req("websock CA"), nullptr);
  TestCert cert = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
  test_tls_write(server_dir.path, "ca-cert.pem", ca.pem);
  test_tls_write(server_dir.path, "server-cert.pem", cert.pem);
  test_tls_write(server_dir.path, "server-key.pem", test_tls_key_pem(1));
  test_tls_write(client_dir.path, "ca-cert.pem", ca.pem);
  /* Browsers have no client certificate. */
  g_autoptr(QCryptoTLSCreds) server_creds = test_tls_x509_creds(server_dir.path, true, false);
  g_autoptr(QCryptoTLSCreds) client_creds = test_tls_x509_creds(client_dir.path, false);

  QIOChannelSocket *sa, *sb;
  g_assert_true(qio_channel_socket_new_pair(&sa, &sb, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(sa), FALSE, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(sb), FALSE, nullptr));
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelTLS) tls_server =
      qio_channel_tls_new_server(QIO_CHANNEL(sa), server_creds, nullptr, &error);
  g_assert_no_error(error);
  g_autoptr(QIOChannelTLS) tls_client =
      qio_channel_tls_new_client(QIO_CHANNEL(sb), client_creds, "qio.test", &error);
  g_assert_no_error(error);
  g_object_unref(sa);
  g_object_unref(sb);
  g_autoptr(GMainContext) context = g_main_context_new();
  int pending = 2;
  qio_channel_tls_handshake(tls_server, nullptr, tls_done, &pending, context);
  qio_channel_tls_handshake(tls_client, nullptr, tls_done, &pending, context);
  while (pending > 0) g_main_context_iteration(context, TRUE);

  Pair pair;
  pair.server = qio_channel_websock_new_server(QIO_CHANNEL(tls_server));
  pair.client = qio_channel_websock_new_client(QIO_CHANNEL(tls_client), "qio.test", "/");
  pending = 2;
  qio_channel_websock_handshake(pair.server, context, nullptr, handshake_done, &pending);
  qio_channel_websock_handshake(pair.client, context, nullptr, handshake_done, &pending);
  while (pending > 0) g_main_context_iteration(context, TRUE);

  int fired = 0;
  GSource *source = qio_channel_create_watch(QIO_CHANNEL(pair.server), G_IO_IN);
  g_source_set_callback(source, G_SOURCE_FUNC(count_cb), &fired, nullptr);
  g_source_attach(source, context);
  while (g_main_context_iteration(context, FALSE)) {}
  g_assert_cmpint(fired, ==, 0);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(pair.client), "ping?", 5, &error));
  while (fired == 0) g_main_context_iteration(context, TRUE);
  g_source_destroy(source);
  g_source_unref(source);

  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.server), TRUE, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(pair.client), TRUE, nullptr));
  g_assert_true(read_string(QIO_CHANNEL(pair.server), 5) == "ping?");
  std::string data = pattern(1024 * 1024);
  for (int dir = 0; dir < 2; dir++) {
    Writer w = {QIO_CHANNEL(dir ? pair.server : pair.client), &data, 300};
    GThread *thread = g_thread_new("writer", writer_thread, &w);
    read_and_compare(QIO_CHANNEL(dir ? pair.client : pair.server), data);
    g_thread_join(thread);
  }
  g_assert_true(qio_channel_close(QIO_CHANNEL(pair.client), &error));
  char c;
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(pair.server), &c, 1, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpuint(qio_channel_websock_get_peer_close_code(pair.server), ==, 1000);
}

/* Non-blocking writes into a full pipe: BLOCK comes back, and after
 * draining the frames carry exactly the bytes writev reported. */
static void test_would_block() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, nullptr));
  char c;
  g_assert_cmpint(qio_channel_read(ioc, &c, 1, nullptr), ==, QIO_CHANNEL_ERR_BLOCK);

  std::string data = pattern(200000);
  gsize sent = 0;
  int blocks = 0;
  while (sent < data.size() && blocks == 0) {
    /* Odd sizes so the pipe fills in the middle of a frame header too. */
    gsize len = std::min<gsize>(data.size() - sent, 7001);
    gssize n = qio_channel_write(ioc, data.data() + sent, len, nullptr);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      blocks++;
      break;
    }
    g_assert_cmpint(n, >, 0);
    sent += static_cast<gsize>(n);
  }
  g_assert_cmpint(blocks, ==, 1);
  g_assert_cmpuint(sent, <, data.size());
  /* A ping now must be answered after the half-sent frame, not inside it. */
  raw.send(frame(0x9, true, "mid-frame", true));
  g_assert_cmpint(qio_channel_read(ioc, &c, 1, nullptr), ==, QIO_CHANNEL_ERR_BLOCK);
  /* Finish in blocking mode so that the open frame completes. */
  g_assert_true(qio_channel_set_blocking(ioc, TRUE, nullptr));
  GThread *thread = g_thread_new(
      "drain",
      +[](gpointer p) -> gpointer {
        auto *r = static_cast<Raw *>(p);
        auto *out = new std::string;
        int pongs = 0;
        while (true) {
          Frame f = read_frame(*r);
          if (f.opcode == 0x8) break;
          if (f.opcode == 0xA) {
            g_assert_true(f.payload == "mid-frame");
            pongs++;
            continue;
          }
          g_assert_cmpuint(f.opcode, ==, 0x2);
          g_assert_false(f.masked);
          *out += f.payload;
        }
        g_assert_cmpint(pongs, ==, 1);
        return out;
      },
      &raw);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_write_all(ioc, data.data() + sent, data.size() - sent, &error));
  g_assert_no_error(error);
  g_assert_true(qio_channel_close(ioc, &error));
  auto *got = static_cast<std::string *>(g_thread_join(thread));
  g_assert_true(*got == data);
  delete got;
}

/* A peer that pings without reading: only the latest ping is answered
 * (RFC 6455 5.5.3), so the pongs waiting for it stay one, not one per ping
 * (a flood of them grew qiod by gigabytes). */
static std::string ping_payload(int i) {
  std::string p = std::to_string(i);
  return p + std::string(125 - p.size(), '.');
}

static void test_ping_flood() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, nullptr));
  constexpr int kPings = 5000;
  struct Sender {
    Raw *raw;
    std::atomic<bool> done{false};
  } sender{&raw};
  /* 125-byte payloads: a 64 KiB pipe holds about 500 of their pongs. */
  GThread *thread = g_thread_new(
      "pinger",
      +[](gpointer data) -> gpointer {
        auto *sd = static_cast<Sender *>(data);
        for (int i = 0; i < kPings; i++) sd->raw->send(frame(0x9, true, ping_payload(i), true));
        sd->done = true;
        return nullptr;
      },
      &sender);
  char c;
  for (;;) {
    bool finished = sender.done;
    if (qio_channel_read(ioc, &c, 1, nullptr) == QIO_CHANNEL_ERR_BLOCK && finished) break;
  }
  g_thread_join(thread);
  /* Now read everything the server has for the peer, up to its close. */
  g_assert_true(qio_channel_set_blocking(ioc, TRUE, nullptr));
  struct Drain {
    Raw *raw;
    int pongs = 0;
    std::string last;
  } drain{&raw};
  GThread *reader = g_thread_new(
      "drain",
      +[](gpointer data) -> gpointer {
        auto *d = static_cast<Drain *>(data);
        for (Frame f = read_frame(*d->raw); f.opcode != 0x8; f = read_frame(*d->raw)) {
          g_assert_cmpuint(f.opcode, ==, 0xA);
          d->pongs++;
          d->last = f.payload;
        }
        return nullptr;
      },
      &drain);
  g_assert_true(qio_channel_close(ioc, nullptr));
  g_thread_join(reader);
  g_assert_true(drain.last == ping_payload(kPings - 1));
  g_assert_cmpint(drain.pongs, <, kPings / 2);
}

/* A peer streaming frames without payload: one non-blocking read stops
 * after a bounded amount (the main loop goes on), and later reads go on
 * where it stopped. */
static void test_empty_frame_flood() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, nullptr));
  g_assert_cmpint(fcntl(raw.wfd, F_SETPIPE_SZ, 1 << 20), >=, 1 << 20);
  std::string block;
  for (int i = 0; i < 4096; i++) block += frame(0x2, true, "", true);
  g_assert_cmpint(fcntl(raw.wfd, F_SETFL, fcntl(raw.wfd, F_GETFL) | O_NONBLOCK), ==, 0);
  gsize queued = 0;
  for (;;) {
    gssize n = write(raw.wfd, block.data(), block.size());
    if (n < 0) break;
    queued += static_cast<gsize>(n);
  }
  g_assert_cmpuint(queued, >=, 1 << 20);
  char c;
  g_assert_cmpint(qio_channel_read(ioc, &c, 1, nullptr), ==, QIO_CHANNEL_ERR_BLOCK);
  int left = 0;
  g_assert_cmpint(ioctl(raw.wfd, FIONREAD, &left), ==, 0);
  g_assert_cmpint(left, >, 512 * 1024);
  int calls = 1;
  while (left > 0) {
    g_assert_cmpint(qio_channel_read(ioc, &c, 1, nullptr), ==, QIO_CHANNEL_ERR_BLOCK);
    g_assert_cmpint(ioctl(raw.wfd, FIONREAD, &left), ==, 0);
    calls++;
  }
  g_assert_cmpint(calls, <=, 8);
  /* The writes may have cut the last frame short: finish it, then data. */
  gsize partial = queued % 6;
  if (partial) raw.send(frame(0x2, true, "", true).substr(partial));
  g_assert_cmpint(fcntl(raw.wfd, F_SETFL, fcntl(raw.wfd, F_GETFL) & ~O_NONBLOCK), ==, 0);
  raw.send(frame(0x2, true, "x", true));
  gssize n;
  while ((n = qio_channel_read(ioc, &c, 1, nullptr)) == QIO_CHANNEL_ERR_BLOCK) {
  }
  g_assert_cmpint(n, ==, 1);
  g_assert_cmpint(c, ==, 'x');
}

/* ---- framing against hand-made frames --------------------------------- */


static void test_fragmentation_and_ping() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  /* A text message in three fragments with a ping and a pong between
   * them, then a 16-bit and a 64-bit length binary frame. */
  std::string big16 = pattern(300), big64 = pattern(70000);
  raw.send(frame(0x1, false, "Hel", true) + frame(0x9, true, "are you there", true) +
           frame(0x0, false, "lo", true) + frame(0xA, true, "unsolicited", true) +
           frame(0x0, true, "!", true) + frame(0x2, true, "", true) +
           frame(0x2, true, big16, true));
  GThread *thread = g_thread_new(
      "big64",
      +[](gpointer p) -> gpointer {
        auto *r = static_cast<Raw *>(p);
        r->send(frame(0x2, true, pattern(70000), true));
        return nullptr;
      },
      &raw);
  g_assert_true(read_string(QIO_CHANNEL(wioc), 6) == "Hello!");
  Frame pong = read_frame(raw);
  g_assert_cmpuint(pong.opcode, ==, 0xA);
  g_assert_false(pong.masked);
  g_assert_true(pong.payload == "are you there");
  g_assert_true(read_string(QIO_CHANNEL(wioc), 300) == big16);
  g_assert_true(read_string(QIO_CHANNEL(wioc), 70000) == big64);
  g_thread_join(thread);
}

/* A frame that breaks the protocol: the read fails naming the fault and
 * the peer gets a close frame with @code. */
static void expect_violation(const std::string &bytes, guint code, const char *what,
                             gsize max_payload = 0) {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  if (max_payload) qio_channel_websock_set_max_payload(wioc, max_payload);
  raw.send(bytes);
  char buf[16];
  g_autoptr(GError) error = nullptr;
  gssize n;
  /* Data before the bad frame is still delivered. */
  while ((n = qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error)) > 0) {}
  g_assert_cmpint(n, ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
  g_test_message("%s", error->message);
  g_assert_nonnull(strstr(error->message, what));
  g_assert_nonnull(strstr(error->message, qio_channel_get_name(QIO_CHANNEL(wioc))));
  g_assert_cmpuint(close_code(read_frame(raw)), ==, code);
  /* The failure sticks. */
  g_clear_error(&error);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
}

static void test_masking_enforced() {
  expect_violation(frame(0x2, true, "abc", false), 1002, "not masked");
}

static void test_client_rejects_masked() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = client_with_raw_peer(&raw);
  GThread *thread = g_thread_new(
      "server",
      +[](gpointer p) -> gpointer {
        auto *r = static_cast<Raw *>(p);
        std::string req = r->recv_head();
        const char *k = strstr(req.c_str(), "Sec-WebSocket-Key: ");
        g_assert_nonnull(k);
        std::string key(k + 19, 24);
        key += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        g_autoptr(GChecksum) sha = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(sha, reinterpret_cast<const guchar *>(key.data()),
                          static_cast<gssize>(key.size()));
        guint8 digest[20];
        gsize len = 20;
        g_checksum_get_digest(sha, digest, &len);
        g_autofree char *accept = g_base64_encode(digest, len);
        /* Mixed-case names and values are fine; a frame follows at once. */
        r->send(std::string("HTTP/1.1 101 Switching Protocols\r\nUPGRADE: WebSocket\r\n"
                            "connection: upgrade\r\nsec-websocket-accept: ") +
                accept + "\r\n\r\n" + frame(0x2, true, "unmasked ok", false) +
                frame(0x2, true, "masked", true));
        return nullptr;
      },
      &raw);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_websock_handshake_sync(wioc, nullptr, &error));
  g_assert_no_error(error);
  g_thread_join(thread);
  g_assert_true(read_string(QIO_CHANNEL(wioc), 11) == "unmasked ok");
  char buf[8];
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
  g_assert_nonnull(strstr(error->message, "server frame is masked"));
  Frame f = read_frame(raw);
  g_assert_true(f.masked); /* client frames always are */
  g_assert_cmpuint(close_code(f), ==, 1002);
}

static void test_client_refused() {
  struct Case {
    const char *reply;
    const char *message;
  } cases[] = {
      {"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
       "does not match"},
      {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "Upgrade"},
      {"SSH-2.0-OpenSSH\r\n\r\n", "refused"},
  };
  for (const Case &c : cases) {
    Raw raw;
    g_autoptr(QIOChannelWebsock) wioc = client_with_raw_peer(&raw);
    raw.send(c.reply);
    g_autoptr(GError) error = nullptr;
    g_assert_false(qio_channel_websock_handshake_sync(wioc, nullptr, &error));
    g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, c.message));
  }
}

static void test_violations() {
  expect_violation(frame(0x2, true, "abc", true).replace(0, 1, 1, '\xc2'), 1002,
                   "reserved bits");
  expect_violation(frame(0x0, true, "abc", true), 1002, "continuation");
  expect_violation(frame(0x1, false, "a", true) + frame(0x2, true, "b", true), 1002,
                   "unfinished fragmented");
  expect_violation(frame(0x9, false, "a", true), 1002, "control frame");
  expect_violation(frame(0x9, true, std::string(126, 'x'), true), 1002, "control frame");
  expect_violation(frame(0x3, true, "abc", true), 1002, "unknown opcode");
  expect_violation(frame(0xB, true, "abc", true), 1002, "unknown opcode");
  expect_violation(frame(0x2, true, "", true, 1ULL << 63), 1002, "top bit");
  /* 100 in the 16-bit form, then 1000 in the 64-bit form. */
  expect_violation(std::string("\x82\xfe\x00\x64" "mask", 8), 1002, "minimally");
  expect_violation(std::string("\x82\xff\0\0\0\0\0\0\x03\xe8" "mask", 14), 1002,
                   "minimally");
  expect_violation(frame(0x8, true, "x", true), 1002, "1-byte");
  expect_violation(frame(0x8, true, std::string("\x03\xe7", 2), true), 1002,
                   "invalid close code");
}

static void test_oversize() {
  expect_violation(frame(0x2, true, std::string(1001, 'x'), true), 1009, "payload limit",
                   1000);
  /* Exactly the limit passes. */
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  qio_channel_websock_set_max_payload(wioc, 1000);
  std::string ok = pattern(1000);
  raw.send(frame(0x2, true, ok, true));
  g_assert_true(read_string(QIO_CHANNEL(wioc), 1000) == ok);
  /* Outgoing frames obey the limit too: 2500 bytes become 3 frames. */
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(wioc), TRUE, nullptr));
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(wioc), pattern(2500).data(), 2500, nullptr));
  g_assert_cmpuint(read_frame(raw).payload.size(), ==, 1000);
  g_assert_cmpuint(read_frame(raw).payload.size(), ==, 1000);
  g_assert_cmpuint(read_frame(raw).payload.size(), ==, 500);
}

/* ---- close codes ------------------------------------------------------ */

static void test_close_codes() {
  struct Case {
    std::string payload;
    guint reported;
    gsize echo_len;
  } cases[] = {
      {std::string("\x03\xe8", 2), 1000, 2},
      {std::string("\x0b\xb8" "bye", 5), 3000, 2},
      {"", QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS, 0},
  };
  for (const Case &c : cases) {
    Raw raw;
    g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
    raw.send(frame(0x2, true, "last", true) + frame(0x8, true, c.payload, true) +
             frame(0x2, true, "ignored after close", true));
    g_assert_true(read_string(QIO_CHANNEL(wioc), 4) == "last");
    char buf[8];
    g_autoptr(GError) error = nullptr;
    g_assert_cmpint(qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error), ==, 0);
    g_assert_no_error(error);
    g_assert_cmpuint(qio_channel_websock_get_peer_close_code(wioc), ==, c.reported);
    Frame echo = read_frame(raw);
    g_assert_cmpuint(echo.opcode, ==, 0x8);
    g_assert_cmpuint(echo.payload.size(), ==, c.echo_len);
    if (c.echo_len) g_assert_cmpuint(close_code(echo), ==, c.reported);
    /* Closing now sends nothing more: the close was already answered. */
    g_assert_true(qio_channel_close(QIO_CHANNEL(wioc), &error));
    g_assert_true(raw.recv_all().empty());
  }
  /* Our own close sends 1000 and closes the master. */
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  g_assert_true(qio_channel_close(QIO_CHANNEL(wioc), nullptr));
  g_assert_cmpuint(close_code(read_frame(raw)), ==, 1000);
  g_assert_true(raw.recv_all().empty());
}

static void test_eof_mid_frame() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  raw.send(frame(0x2, true, "abcdef", true).substr(0, 8));
  close(raw.wfd);
  raw.wfd = -1;
  char buf[8];
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error), ==, 2);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
}

/* ---- watches ---------------------------------------------------------- */


/* Data already decoded wakes a reader although the pipe is empty. */
static void test_watch_buffered() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
  QIOChannel *ioc = QIO_CHANNEL(wioc);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, nullptr));
  g_autoptr(GMainContext) context = g_main_context_new();
  int fired = 0;
  GSource *source = qio_channel_create_watch(ioc, G_IO_IN);
  g_source_set_callback(source, G_SOURCE_FUNC(count_cb), &fired, nullptr);
  g_source_attach(source, context);

  while (g_main_context_iteration(context, FALSE)) {}
  g_assert_cmpint(fired, ==, 0);

  raw.send(frame(0x2, true, "first", true) + frame(0x2, true, "second", true));
  while (fired == 0) g_main_context_iteration(context, TRUE);
  char buf[5];
  g_assert_cmpint(qio_channel_read(ioc, buf, 5, nullptr), ==, 5); /* all of the pipe */
  fired = 0;
  g_main_context_iteration(context, FALSE);
  g_assert_cmpint(fired, ==, 1);
  char rest[6];
  g_assert_cmpint(qio_channel_read(ioc, rest, 6, nullptr), ==, 6);
  g_assert_cmpmem(rest, 6, "second", 6);
  /* Now nothing is buffered: no wake-up. */
  fired = 0;
  while (g_main_context_iteration(context, FALSE)) {}
  g_assert_cmpint(fired, ==, 0);
  /* A partial frame header is not data. */
  raw.send(frame(0x2, true, "x", true).substr(0, 1));
  fired = 0;
  while (fired == 0) g_main_context_iteration(context, TRUE); /* the pipe woke it */
  g_assert_cmpint(qio_channel_read(ioc, buf, 5, nullptr), ==, QIO_CHANNEL_ERR_BLOCK);
  fired = 0;
  while (g_main_context_iteration(context, FALSE)) {}
  g_assert_cmpint(fired, ==, 0);
  g_source_destroy(source);
  g_source_unref(source);
}

static void test_not_ready() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_write(QIO_CHANNEL(wioc), "x", 1, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_FAILED);
}

/* ---- malformed handshakes --------------------------------------------- */

struct HandshakeCase {
  const char *name;
  std::string request;
  int status;                 /* 101 when accepted */
  const char *reply_contains; /* or NULL */
};

static std::string request(const char *extra_or_replacement, bool replace = false) {
  if (replace) return extra_or_replacement;
  std::string r = kGoodRequest;
  r.insert(r.size() - 2, extra_or_replacement);
  return r;
}

static std::string without(const char *header) {
  std::string r = kGoodRequest;
  gsize at = r.find(header);
  g_assert(at != std::string::npos);
  r.erase(at, r.find("\r\n", at) + 2 - at);
  return r;
}

static std::string with_replaced(const char *from, const char *to) {
  std::string r = kGoodRequest;
  gsize at = r.find(from);
  g_assert(at != std::string::npos);
  r.replace(at, strlen(from), to);
  return r;
}

static void test_handshake_corpus() {
  const char *key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  std::vector<HandshakeCase> cases = {
      {"good", kGoodRequest, 101, kGoodAccept},
      {"lowercase names", request("GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                                  "connection: upgrade\r\nsec-websocket-key: "
                                  "dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
                                  true),
       101, kGoodAccept},
      {"uppercase names and values",
       request("GET / HTTP/1.1\r\nHOST: x\r\nUPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE\r\n"
               "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n",
               true),
       101, kGoodAccept},
      {"connection token list", with_replaced("Connection: Upgrade", "Connection: keep-alive, Upgrade"),
       101, nullptr},
      {"binary offered", request("Sec-WebSocket-Protocol: chat, binary\r\n"), 101,
       "Sec-WebSocket-Protocol: binary\r\n"},
      {"other protocol only", request("Sec-WebSocket-Protocol: chat\r\n"), 101, nullptr},
      {"missing key", without("Sec-WebSocket-Key"), 400, "Sec-WebSocket-Key"},
      {"short key", with_replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="), 400,
       "16 bytes"},
      {"junk key", with_replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSB!b25jZQ=="), 400,
       "16 bytes"},
      {"repeated key", request(key), 400, "repeated"},
      {"bad version", with_replaced("Version: 13", "Version: 8"), 426,
       "Sec-WebSocket-Version: 13\r\n"},
      {"missing version", without("Sec-WebSocket-Version"), 426,
       "Sec-WebSocket-Version: 13\r\n"},
      {"no upgrade", without("Upgrade: websocket"), 400, "Upgrade"},
      {"upgrade to h2c", with_replaced("Upgrade: websocket", "Upgrade: h2c"), 400, "Upgrade"},
      {"no connection upgrade", with_replaced("Connection: Upgrade", "Connection: keep-alive"),
       400, "Connection"},
      {"missing host", without("Host"), 400, "Host"},
      {"POST", with_replaced("GET", "POST"), 405, "Allow: GET"},
      {"HTTP/1.0", with_replaced("HTTP/1.1", "HTTP/1.0"), 400, "HTTP/1.1"},
      {"bad request line", with_replaced("GET /chat HTTP/1.1", "GET  /chat HTTP/1.1"), 400,
       "request line"},
      {"absolute target", with_replaced("/chat", "http://x/chat"), 400, "path"},
      {"header without colon", request("Bogus header\r\n"), 400, "header line"},
      {"space before colon", request("Bogus : x\r\n"), 400, "header line"},
      {"folded header", request("X-A: 1\r\n continued\r\n"), 400, "header line"},
      {"header too long", request(("X-Padding: " + std::string(9000, 'a') + "\r\n").c_str()),
       431, "8 KiB"},
      {"non-HTTP garbage", request("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", true), 400,
       "not an HTTP request"},
      {"lowercase method", request("get / HTTP/1.1\r\n\r\n", true), 405, "Allow: GET"},
      {"garbage with CRLFs", request("\x01\x02\r\n\r\n", true), 400, "not an HTTP request"},
  };
  for (const HandshakeCase &c : cases) {
    g_test_message("case: %s", c.name);
    Raw raw;
    g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
    raw.send(c.request);
    g_autoptr(GError) error = nullptr;
    gboolean ok = qio_channel_websock_handshake_sync(wioc, nullptr, &error);
    std::string reply = raw.recv_head();
    g_autofree char *status = g_strdup_printf("HTTP/1.1 %d ", c.status);
    if (!g_str_has_prefix(reply.c_str(), status))
      g_error("case '%s': expected %s, got: %s", c.name, status, reply.c_str());
    if (c.reply_contains && reply.find(c.reply_contains) == std::string::npos) {
      /* The reason may be in the body that follows the head. */
      g_assert_true(qio_channel_close(qio_channel_websock_get_master(wioc), nullptr));
      reply += raw.recv_all();
      if (reply.find(c.reply_contains) == std::string::npos)
        g_error("case '%s': '%s' not in: %s", c.name, c.reply_contains, reply.c_str());
    }
    if (c.status == 101) {
      /* The subprotocol is echoed only when "binary" was offered. */
      g_assert_cmpint(reply.find("Sec-WebSocket-Protocol") != std::string::npos, ==,
                      c.request.find("binary") != std::string::npos);
      g_assert_true(ok);
      g_assert_no_error(error);
    } else {
      g_assert_false(ok);
      g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
      g_autofree char *code = g_strdup_printf("HTTP %d", c.status);
      g_assert_nonnull(strstr(error->message, code));
      g_assert_nonnull(strstr(error->message, qio_channel_get_name(QIO_CHANNEL(wioc))));
      gsize body = reply.find("\r\n\r\n") + 4;
      if (body < reply.size()) g_assert_cmpuint(reply.size() - body, <, 100);
    }
  }
}

/* Mutated requests: each is accepted with 101 or refused with a 4xx
 * response; none crashes or hangs (the peer closes after sending). */
static void test_handshake_mutations() {
  for (int i = 0; i < 300; i++) {
    std::string req = kGoodRequest;
    int flips = g_test_rand_int_range(1, 4);
    for (int k = 0; k < flips; k++)
      req[g_test_rand_int_range(0, static_cast<int>(req.size()))] =
          static_cast<char>(g_test_rand_int_range(0, 256));
    Raw raw;
    g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
    raw.send(req);
    close(raw.wfd);
    raw.wfd = -1;
    g_autoptr(GError) error = nullptr;
    gboolean ok = qio_channel_websock_handshake_sync(wioc, nullptr, &error);
    qio_channel_close(qio_channel_websock_get_master(wioc), nullptr);
    std::string reply = raw.recv_all();
    if (ok) {
      g_assert_true(g_str_has_prefix(reply.c_str(), "HTTP/1.1 101 "));
    } else if (g_error_matches(error, QIO_ERROR, QIO_ERROR_PROTOCOL)) {
      g_assert_true(g_str_has_prefix(reply.c_str(), "HTTP/1.1 4"));
    } else {
      /* The blank line was hit: the peer's EOF came first. */
      g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
      g_assert_true(reply.empty());
    }
  }
}

/* Random bytes after a good handshake: data, a protocol error or end of
 * file, never a crash or a hang. */
static void test_random_frames() {
  for (int i = 0; i < 300; i++) {
    Raw raw;
    g_autoptr(QIOChannelWebsock) wioc = server_after_handshake(&raw);
    std::string junk(static_cast<gsize>(g_test_rand_int_range(1, 2000)), '\0');
    for (char &c : junk) c = static_cast<char>(g_test_rand_int_range(0, 256));
    /* Often a plausible masked frame header first. */
    if (i % 2) junk = frame(static_cast<guint8>(g_test_rand_int_range(0, 16)), i % 4 == 1,
                            junk.substr(0, junk.size() / 2), true) + junk;
    raw.send(junk);
    close(raw.wfd);
    raw.wfd = -1;
    char buf[512];
    gssize n;
    g_autoptr(GError) error = nullptr;
    while ((n = qio_channel_read(QIO_CHANNEL(wioc), buf, sizeof(buf), &error)) > 0) {}
    g_assert_cmpint(n, !=, QIO_CHANNEL_ERR_BLOCK);
    if (n < 0) g_assert_true(error->domain == QIO_ERROR);
  }
}

static void test_handshake_eof() {
  Raw raw;
  g_autoptr(QIOChannelWebsock) wioc = server_with_raw_peer(&raw);
  raw.send("GET / HTTP/1.1\r\nHost: x\r\n");
  close(raw.wfd);
  raw.wfd = -1;
  g_autoptr(GError) error = nullptr;
  g_assert_false(qio_channel_websock_handshake_sync(wioc, nullptr, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
  g_assert_nonnull(strstr(error->message, "during the websocket handshake"));
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/websock/handshake/async", test_handshake_async);
  g_test_add_func("/qio/websock/handshake/cancel", test_handshake_cancel);
  g_test_add_func("/qio/websock/handshake/cancel-after", test_handshake_cancel_after);
  g_test_add_func("/qio/websock/handshake/timeout", test_handshake_timeout);
  g_test_add_func("/qio/websock/handshake/corpus", test_handshake_corpus);
  g_test_add_func("/qio/websock/handshake/eof", test_handshake_eof);
  g_test_add_func("/qio/websock/handshake/mutations", test_handshake_mutations);
  g_test_add_func("/qio/websock/frame/random", test_random_frames);
  g_test_add_func("/qio/websock/handshake/client-refused", test_client_refused);
  g_test_add_data_func("/qio/websock/data/both-ways-1MiB/pipes", nullptr, test_data_both_ways);
  g_test_add_data_func("/qio/websock/data/both-ways-1MiB/socketpair", GINT_TO_POINTER(1),
                       test_data_both_ways);
  g_test_add_func("/qio/websock/data/full-duplex", test_full_duplex);
  g_test_add_func("/qio/websock/data/wss", test_wss);
  g_test_add_func("/qio/websock/data/would-block", test_would_block);
  g_test_add_func("/qio/websock/data/not-ready", test_not_ready);
  g_test_add_func("/qio/websock/frame/fragmentation-ping", test_fragmentation_and_ping);
  g_test_add_func("/qio/websock/frame/ping-flood", test_ping_flood);
  g_test_add_func("/qio/websock/frame/empty-frame-flood", test_empty_frame_flood);
  g_test_add_func("/qio/websock/frame/masking-enforced", test_masking_enforced);
  g_test_add_func("/qio/websock/frame/client-rejects-masked", test_client_rejects_masked);
  g_test_add_func("/qio/websock/frame/violations", test_violations);
  g_test_add_func("/qio/websock/frame/oversize", test_oversize);
  g_test_add_func("/qio/websock/frame/eof-mid-frame", test_eof_mid_frame);
  g_test_add_func("/qio/websock/close/codes", test_close_codes);
  g_test_add_func("/qio/websock/watch/buffered", test_watch_buffered);
  return g_test_run();
}
