/* QIOChannelTLS over a socketpair: handshakes in a main context, bulk data
 * through many iovecs with reader and writer threads, blocking and
 * non-blocking, bye, premature close, key updates, pending-data watches. */
#include "config.h"

#include "qcrypto/error.h"
#include "qcrypto/tls-creds-x509.h"
#include "qio/channel-tls.h"
#include "qio/channel-watch.h"
#include "qio/error.h"
#include "tests/unit/crypto-tls-x509-helpers.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cerrno>
#include <utility>
#include <vector>

/* A minimal descriptor channel for the tests, counting its writes; it
 * honours QIO_CHANNEL_WRITE_FLAG_DONTWAIT when given the feature and keeps
 * the last read low water mark it was given. */
G_DECLARE_FINAL_TYPE(TestFdChannel, test_fd_channel, TEST, FD_CHANNEL, QIOChannel)

struct _TestFdChannel {
  QIOChannel parent_instance;
  int fd;
  std::atomic<unsigned> *writes;
  std::atomic<unsigned> *dontwait_writes;
  gssize read_low_water; /* -1: never set */
};

G_DEFINE_FINAL_TYPE(TestFdChannel, test_fd_channel, QIO_TYPE_CHANNEL)

static gssize fd_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **, gsize *,
                       GError **error) {
  ssize_t n = readv(TEST_FD_CHANNEL(ioc)->fd, iov, static_cast<int>(niov));
  if (n >= 0) return n;
  if (errno == EAGAIN) return QIO_CHANNEL_ERR_BLOCK;
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "readv: %s", g_strerror(errno));
  return -1;
}

static gssize fd_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *,
                        gsize, int flags, GError **error) {
  auto *fioc = TEST_FD_CHANNEL(ioc);
  struct msghdr msg = {};
  msg.msg_iov = const_cast<struct iovec *>(iov);
  msg.msg_iovlen = niov;
  ssize_t n = sendmsg(fioc->fd, &msg,
                      MSG_NOSIGNAL | ((flags & QIO_CHANNEL_WRITE_FLAG_DONTWAIT) ? MSG_DONTWAIT : 0));
  if (n >= 0) {
    if (fioc->writes) (*fioc->writes)++;
    if (fioc->dontwait_writes && (flags & QIO_CHANNEL_WRITE_FLAG_DONTWAIT))
      (*fioc->dontwait_writes)++;
    return n;
  }
  if (errno == EAGAIN) return QIO_CHANNEL_ERR_BLOCK;
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "writev: %s", g_strerror(errno));
  return -1;
}

static gboolean fd_close(QIOChannel *ioc, GError **) {
  auto *fioc = TEST_FD_CHANNEL(ioc);
  if (fioc->fd >= 0) close(fioc->fd);
  fioc->fd = -1;
  return TRUE;
}

static gboolean fd_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **) {
  shutdown(TEST_FD_CHANNEL(ioc)->fd, how == QIO_CHANNEL_SHUTDOWN_BOTH   ? SHUT_RDWR
                                     : how == QIO_CHANNEL_SHUTDOWN_READ ? SHUT_RD
                                                                        : SHUT_WR);
  return TRUE;
}

static GSource *fd_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_fd_watch(ioc, TEST_FD_CHANNEL(ioc)->fd, condition);
}

static gboolean fd_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  return g_unix_set_fd_nonblocking(TEST_FD_CHANNEL(ioc)->fd, !enabled, error);
}

static void fd_set_read_low_water(QIOChannel *ioc, gsize bytes) {
  TEST_FD_CHANNEL(ioc)->read_low_water = static_cast<gssize>(bytes);
}

static void test_fd_channel_finalize(GObject *object) {
  fd_close(QIO_CHANNEL(object), nullptr);
  G_OBJECT_CLASS(test_fd_channel_parent_class)->finalize(object);
}

static void test_fd_channel_class_init(TestFdChannelClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = test_fd_channel_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = fd_readv;
  ioc_class->io_writev = fd_writev;
  ioc_class->io_close = fd_close;
  ioc_class->io_create_watch = fd_create_watch;
  ioc_class->io_set_blocking = fd_set_blocking;
  ioc_class->io_shutdown = fd_shutdown;
  ioc_class->io_set_read_low_water = fd_set_read_low_water;
}

static void test_fd_channel_init(TestFdChannel *fioc) {
  fioc->fd = -1;
  fioc->read_low_water = -1;
}

namespace {

/* Credentials for both ends and a connected pair of TLS channels. */
struct Fixture {
  TestTLSDir server_dir, client_dir;
  QCryptoTLSCreds *server_creds = nullptr, *client_creds = nullptr;
  TestFdChannel *server_master = nullptr, *client_master = nullptr;
  QIOChannelTLS *server = nullptr, *client = nullptr;
  std::atomic<unsigned> client_writes{0};
  std::atomic<unsigned> client_dontwait_writes{0};

  /* @direct: the masters take writes told not to wait, so records go
   * straight from GnuTLS to the socket. */
  explicit Fixture(bool other_ca = false, bool direct = false) {
    auto ca_req = test_tls_ca_req("qio CA");
    TestCert ca = test_tls_make_cert(ca_req, nullptr);
    ca_req.cn = "other CA";
    ca_req.key = 2;
    TestCert other = test_tls_make_cert(ca_req, nullptr);
    TestCert server_cert = test_tls_make_cert(test_tls_server_req("qio.test"), &ca);
    TestCert client_cert =
        test_tls_make_cert(test_tls_client_req("qio client"), other_ca ? &other : &ca);
    test_tls_write(server_dir.path, "ca-cert.pem", ca.pem);
    test_tls_write(server_dir.path, "server-cert.pem", server_cert.pem);
    test_tls_write(server_dir.path, "server-key.pem", test_tls_key_pem(1));
    test_tls_write(client_dir.path, "ca-cert.pem", other_ca ? other.pem : ca.pem);
    test_tls_write(client_dir.path, "client-cert.pem", client_cert.pem);
    test_tls_write(client_dir.path, "client-key.pem", test_tls_key_pem(1));
    server_creds = test_tls_x509_creds(server_dir.path, true);
    client_creds = test_tls_x509_creds(client_dir.path, false);

    int fds[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
    server_master = TEST_FD_CHANNEL(g_object_new(test_fd_channel_get_type(), nullptr));
    client_master = TEST_FD_CHANNEL(g_object_new(test_fd_channel_get_type(), nullptr));
    server_master->fd = fds[0];
    client_master->fd = fds[1];
    client_master->writes = &client_writes;
    client_master->dontwait_writes = &client_dontwait_writes;
    if (direct) {
      qio_channel_set_feature(QIO_CHANNEL(server_master), QIO_CHANNEL_FEATURE_WRITE_DONTWAIT);
      qio_channel_set_feature(QIO_CHANNEL(client_master), QIO_CHANNEL_FEATURE_WRITE_DONTWAIT);
    }
    g_autoptr(GError) error = nullptr;
    server = qio_channel_tls_new_server(QIO_CHANNEL(server_master), server_creds, nullptr,
                                        &error);
    g_assert_no_error(error);
    client = qio_channel_tls_new_client(QIO_CHANNEL(client_master), client_creds, "qio.test",
                                        &error);
    g_assert_no_error(error);
  }
  ~Fixture() {
    g_object_unref(server);
    g_object_unref(client);
    g_object_unref(server_master);
    g_object_unref(client_master);
    g_object_unref(server_creds);
    g_object_unref(client_creds);
  }

  void set_blocking(bool blocking) {
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(server), blocking, nullptr));
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(client), blocking, nullptr));
  }

  /* Both handshakes, asynchronously in one private main context. */
  void handshake_async(GError **server_error, GError **client_error) {
    set_blocking(false);
    g_autoptr(GMainContext) ctx = g_main_context_new();
    int pending = 2;
    struct Result {
      GError **error;
      int *pending;
    } sr{server_error, &pending}, cr{client_error, &pending};
    auto done = [](GObject *source, GAsyncResult *res, gpointer data) noexcept {
      auto *r = static_cast<Result *>(data);
      qio_channel_tls_handshake_finish(QIO_CHANNEL_TLS(source), res, r->error);
      (*r->pending)--;
    };
    qio_channel_tls_handshake(server, nullptr, done, &sr, ctx);
    qio_channel_tls_handshake(client, nullptr, done, &cr, ctx);
    while (pending > 0) g_main_context_iteration(ctx, TRUE);
  }

  void handshake_ok() {
    g_autoptr(GError) server_error = nullptr;
    g_autoptr(GError) client_error = nullptr;
    handshake_async(&server_error, &client_error);
    g_assert_no_error(server_error);
    g_assert_no_error(client_error);
  }
};

std::vector<guint8> pattern(gsize len, unsigned seed) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + seed) % 251);
  return data;
}

/* 300 iovecs of uneven sizes over @data. */
std::vector<struct iovec> split(std::vector<guint8> &data) {
  std::vector<struct iovec> iov;
  gsize off = 0;
  for (int i = 0; off < data.size(); i++) {
    gsize len = std::min<gsize>(data.size() - off, 1 + (i * 97) % 7000);
    if (i == 299) len = data.size() - off;
    iov.push_back({data.data() + off, len});
    off += len;
  }
  return iov;
}

void test_handshake_async() {
  Fixture f;
  f.handshake_ok();
  g_autoptr(QCryptoTLSSessionReport) report = qio_channel_tls_get_report(f.server);
  g_assert_cmpstr(report->protocol, ==, "TLS1.3");
  g_assert_cmpstr(report->cipher, ==, "AES-128-GCM");
  g_assert_cmpstr(report->peer_identity, ==, "O=qio test,CN=qio client");
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "ping", 4, &error));
  char buf[4];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, 4, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(buf, 4, "ping", 4);
}

void test_handshake_fails_async() {
  Fixture f(true);
  g_autoptr(GError) server_error = nullptr;
  g_autoptr(GError) client_error = nullptr;
  f.handshake_async(&server_error, &client_error);
  g_assert_error(client_error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY);
  g_assert_nonnull(strstr(client_error->message, "unknown CA"));
  g_assert_error(server_error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE);
  g_assert_nonnull(strstr(server_error->message, "does not trust the CA"));
}

/* Cancelling a handshake that waits for a silent peer ends it at once. */
void test_handshake_cancel() {
  Fixture f;
  f.set_blocking(false);
  g_autoptr(GMainContext) ctx = g_main_context_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  GError *error = nullptr;
  bool done = false;
  struct Result {
    GError **error;
    bool *done;
  } r{&error, &done};
  qio_channel_tls_handshake(
      f.server, cancellable,
      [](GObject *source, GAsyncResult *res, gpointer data) noexcept {
        auto *r = static_cast<Result *>(data);
        qio_channel_tls_handshake_finish(QIO_CHANNEL_TLS(source), res, r->error);
        *r->done = true;
      },
      &r, ctx);
  for (int i = 0; i < 3; i++) g_main_context_iteration(ctx, FALSE);
  g_assert_false(done);
  g_cancellable_cancel(cancellable);
  while (!done) g_main_context_iteration(ctx, TRUE);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&error);
}

void test_io_before_handshake() {
  Fixture f;
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_write(QIO_CHANNEL(f.client), "x", 1, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
}

struct Transfer {
  QIOChannel *ioc;
  std::vector<guint8> *data;
  GError *error = nullptr;
};

gpointer writer_thread(gpointer opaque) noexcept {
  auto *t = static_cast<Transfer *>(opaque);
  auto iov = split(*t->data);
  qio_channel_writev_all(t->ioc, iov.data(), iov.size(), &t->error);
  return nullptr;
}

gpointer reader_thread(gpointer opaque) noexcept {
  auto *t = static_cast<Transfer *>(opaque);
  std::vector<struct iovec> iov;
  for (gsize off = 0; off < t->data->size(); off += 4099)
    iov.push_back({t->data->data() + off, std::min<gsize>(4099, t->data->size() - off)});
  qio_channel_readv_all(t->ioc, iov.data(), iov.size(), &t->error);
  return nullptr;
}

void bulk(bool blocking, bool direct = false) {
  Fixture f(false, direct);
  f.handshake_ok();
  f.set_blocking(blocking);
  const gsize total = 1024 * 1024;
  auto src = pattern(total, 7);
  std::vector<guint8> dst(total);
  unsigned writes_before = f.client_writes;
  Transfer w{QIO_CHANNEL(f.client), &src}, r{QIO_CHANNEL(f.server), &dst};
  GThread *reader = g_thread_new("reader", reader_thread, &r);
  GThread *writer = g_thread_new("writer", writer_thread, &w);
  g_thread_join(writer);
  g_thread_join(reader);
  g_assert_no_error(w.error);
  g_assert_no_error(r.error);
  g_assert_true(src == dst);
  /* 300 iovecs went out as 64 full 16 KiB records, four per socket write
   * (not one record, let alone one write, per iovec entry); partial
   * writes of a non-blocking socket may add a few. */
  unsigned writes = f.client_writes - writes_before;
  g_test_message("%u writes to the socket for 1 MiB in 300 iovecs", writes);
  g_assert_cmpuint(writes, <=, direct ? 96 : 32);
  /* Records went straight to the socket only when the master allows it;
   * the first one, into an empty socket, always does. */
  if (direct)
    g_assert_cmpuint(f.client_dontwait_writes, >, 0);
  else
    g_assert_cmpuint(f.client_dontwait_writes, ==, 0);
}

/* The same bytes from entries that lie apart in memory (gathered into
 * records) and from pages back to back (encrypted in place), mixed; read
 * back into the same layout (runs of pages back to back filled by one
 * read), and into contiguous memory. */
void test_bulk_scattered() {
  Fixture f;
  f.handshake_ok();
  f.set_blocking(true);
  const gsize page = 4096, pages = 256;
  auto expect = pattern(page * pages, 11);
  /* Every fifth page sits after a gap; the others follow their predecessor. */
  std::vector<guint8> memory(page * pages + pages);
  std::vector<struct iovec> iov;
  gsize at = 0;
  for (gsize p = 0; p < pages; p++) {
    if (p % 5 == 0) at++;
    memcpy(memory.data() + at, expect.data() + p * page, page);
    iov.push_back({memory.data() + at, page});
    at += page;
  }
  std::vector<guint8> got(expect.size());
  Transfer r{QIO_CHANNEL(f.server), &got};
  GThread *reader = g_thread_new("reader", reader_thread, &r);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_writev_all(QIO_CHANNEL(f.client), iov.data(), iov.size(), &error));
  g_assert_no_error(error);
  g_thread_join(reader);
  g_assert_no_error(r.error);
  g_assert_true(got == expect);

  std::vector<guint8> landed(memory.size(), 0);
  std::vector<struct iovec> into;
  for (const auto &v : iov)
    into.push_back({landed.data() + (static_cast<guint8 *>(v.iov_base) - memory.data()), page});
  std::thread sender([&] {
    g_autoptr(GError) e = nullptr;
    g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), expect.data(), expect.size(), &e));
  });
  g_assert_true(qio_channel_readv_all(QIO_CHANNEL(f.server), into.data(), into.size(), &error));
  g_assert_no_error(error);
  sender.join();
  g_assert_true(landed == memory);
}

void test_bulk_blocking() { bulk(true); }
void test_bulk_nonblocking() { bulk(false); }

void test_bye_and_premature_close() {
  g_autoptr(GError) error = nullptr;
  char buf[8];
  {
    Fixture f;
    f.handshake_ok();
    f.set_blocking(true);
    g_assert_true(qio_channel_shutdown(QIO_CHANNEL(f.client), QIO_CHANNEL_SHUTDOWN_WRITE,
                                       &error));
    g_assert_no_error(error);
    g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, sizeof(buf), &error), ==, 0);
    g_assert_no_error(error);
    /* close after shutdown sends no second bye. */
    g_assert_true(qio_channel_close(QIO_CHANNEL(f.client), &error));
    g_assert_no_error(error);
  }
  Fixture f;
  f.handshake_ok();
  f.set_blocking(true);
  /* The client's transport goes away without a bye. */
  g_assert_true(qio_channel_close(QIO_CHANNEL(f.client_master), &error));
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(f.server), buf, sizeof(buf), &error), ==, -1);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_PREMATURE_CLOSE);
  /* Which connection: the channel's name, beside the credentials'. */
  g_autofree char *named =
      g_strdup_printf("Channel '%s': ", qio_channel_get_name(QIO_CHANNEL(f.server)));
  g_assert_true(g_str_has_prefix(error->message, named));
}

/* A write to a peer that is gone, and the bye after it, name the
 * transport's own failure behind the TLS one. */
void test_write_error_names_transport() {
  Fixture f;
  f.handshake_ok();
  f.set_blocking(true);
  g_assert_true(qio_channel_close(QIO_CHANNEL(f.client_master), nullptr));
  g_autoptr(GError) error = nullptr;
  auto data = pattern(64 * 1024, 9);
  /* The first writes may still land in the socket before it reports. */
  for (int i = 0; i < 64 && !error; i++)
    qio_channel_write_all(QIO_CHANNEL(f.server), data.data(), data.size(), &error);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_nonnull(strstr(error->message, "write failed: writev: "));
  g_assert_true(g_str_has_prefix(error->message, "Channel '"));
  g_clear_error(&error);
  g_assert_cmpint(qcrypto_tls_session_bye(qio_channel_tls_get_session(f.server), &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_nonnull(strstr(error->message, "bye failed: writev: "));
}

gboolean on_readable(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  *static_cast<GIOCondition *>(data) = cond;
  return G_SOURCE_REMOVE;
}

/* Decrypted bytes held by GnuTLS wake a watch although the socket is idle. */
void test_pending_watch() {
  Fixture f;
  f.handshake_ok();
  g_autoptr(GError) error = nullptr;
  std::vector<guint8> msg(200, 'x');
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), msg.data(), msg.size(), &error));
  char buf[100];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, sizeof(buf), &error));
  g_assert_no_error(error);
  g_assert_cmpuint(qcrypto_tls_session_check_pending(qio_channel_tls_get_session(f.server)), ==,
                   100);
  g_autoptr(GMainContext) ctx = g_main_context_new();
  GIOCondition fired = static_cast<GIOCondition>(0);
  qio_channel_add_watch_full(QIO_CHANNEL(f.server), G_IO_IN, on_readable, &fired, nullptr, ctx);
  for (int i = 0; i < 5 && !fired; i++) g_main_context_iteration(ctx, FALSE);
  g_assert_true(fired & G_IO_IN);
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), buf, sizeof(buf), &error));
  g_assert_no_error(error);
}

/* The low water mark a TLS channel passes to its master leaves out what
 * the session may hold already (decrypted data, ciphertext read ahead, part
 * of a record inside GnuTLS), so it never asks the master to wait for more
 * ciphertext than is still to come. */
void test_read_low_water() {
  Fixture f;
  f.handshake_ok();
  /* The client's records go to a tap, to reach the server piecemeal. */
  int tap[2];
  g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, tap), ==, 0);
  int to_server = std::exchange(f.client_master->fd, tap[0]);
  const gsize len = 100000;
  auto sent = pattern(len, 9);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), sent.data(), len, &error));
  g_assert_no_error(error);
  std::vector<guint8> wire(2 * len);
  gsize wire_len = 0;
  g_assert_true(g_unix_set_fd_nonblocking(tap[1], TRUE, nullptr));
  for (ssize_t n; (n = read(tap[1], wire.data() + wire_len, wire.size() - wire_len)) > 0;)
    wire_len += static_cast<gsize>(n);
  std::vector<gsize> record_ends;
  for (gsize at = 0; at < wire_len;) {
    at += 5 + (static_cast<gsize>(wire[at + 3]) << 8 | wire[at + 4]);
    record_ends.push_back(at);
  }
  g_assert_cmpuint(record_ends.back(), ==, wire_len);
  g_assert_cmpuint(record_ends.size(), >=, 5);

  /* Three records and 5000 bytes of the fourth. */
  const gsize released = record_ends[2] + 5000, to_come = wire_len - released;
  g_assert_cmpint(write(to_server, wire.data(), released), ==, released);
  /* Most of it read ahead and a record decrypted, 100 bytes of it read. */
  std::vector<guint8> got(len);
  gsize have = 0;
  while (have < 100) {
    gssize n = qio_channel_read(QIO_CHANNEL(f.server), got.data() + have, 100 - have, &error);
    g_assert_no_error(error);
    if (n > 0) have += static_cast<gsize>(n);
  }
  qio_channel_set_read_low_water(QIO_CHANNEL(f.server), len - have);
  g_assert_cmpint(f.server_master->read_low_water, <=, to_come);
  /* All whole records read: GnuTLS holds the start of the fourth. */
  for (gssize n; (n = qio_channel_read(QIO_CHANNEL(f.server), got.data() + have, len - have,
                                       &error)) > 0;)
    have += static_cast<gsize>(n);
  g_assert_no_error(error);
  g_assert_cmpuint(have, ==, record_ends[2] - 3 * (5 + 17));
  qio_channel_set_read_low_water(QIO_CHANNEL(f.server), len - have);
  g_assert_cmpint(f.server_master->read_low_water, <=, to_come);
  /* ...and still a useful hint: no lower than the largest record allows. */
  g_assert_cmpint(f.server_master->read_low_water, >=, len - have - (5 + 16384 + 2048 + 512));

  g_assert_cmpint(write(to_server, wire.data() + released, wire_len - released), ==,
                  wire_len - released);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(f.server), TRUE, &error));
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.server), got.data() + have, len - have, &error));
  g_assert_no_error(error);
  g_assert_true(got == sent);
  qio_channel_set_read_low_water(QIO_CHANNEL(f.server), 0);
  g_assert_cmpint(f.server_master->read_low_water, ==, 0);
  close(to_server);
  close(tap[1]);
}

struct SameIteration {
  QIOChannelTLS *tioc;
  GMainContext *ctx;
  int calls = 0;
  gssize got = 0;
};

gboolean same_iteration_readable(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  auto *s = static_cast<SameIteration *>(data);
  s->calls++;
  g_assert_true(cond & G_IO_IN);
  /* The watch must not run again inside its own callback although the
   * byte is still unread. */
  g_main_context_iteration(s->ctx, FALSE);
  g_assert_cmpint(s->calls, ==, 1);
  char buf[16];
  s->got = qio_channel_read(QIO_CHANNEL(s->tioc), buf, sizeof(buf), nullptr);
  return G_SOURCE_CONTINUE;
}

/* A record arriving on the master dispatches the TLS watch in the
 * iteration whose poll saw it, once. */
void test_watch_same_iteration() {
  Fixture f;
  f.handshake_ok();
  g_autoptr(GMainContext) ctx = g_main_context_new();
  SameIteration s{f.server, ctx};
  guint id = qio_channel_add_watch_full(QIO_CHANNEL(f.server), G_IO_IN,
                                        same_iteration_readable, &s, nullptr, ctx);
  g_assert_false(g_main_context_iteration(ctx, FALSE));
  g_assert_cmpint(s.calls, ==, 0);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "x", 1, &error));
  g_assert_no_error(error);
  g_assert_true(g_main_context_iteration(ctx, FALSE));
  g_assert_cmpint(s.calls, ==, 1);
  g_assert_cmpint(s.got, ==, 1);
  for (int i = 0; i < 5; i++) g_main_context_iteration(ctx, FALSE);
  g_assert_cmpint(s.calls, ==, 1);
  g_source_destroy(g_main_context_find_source_by_id(ctx, id));
}

/* Each end has a reader and a writer thread; the client's writer asks for
 * key updates along the way. */
struct Duplex {
  QIOChannelTLS *tioc;
  std::vector<guint8> out, in;
  GError *write_error = nullptr, *read_error = nullptr;
  GThread *writer = nullptr, *reader = nullptr;
  bool update_keys = false;
};

gpointer duplex_writer(gpointer opaque) noexcept {
  auto *d = static_cast<Duplex *>(opaque);
  /* Three key updates each way (GnuTLS accepts at most 8 per second). */
  const gsize chunk = d->out.size() / 4;
  QCryptoTLSSession *session = qio_channel_tls_get_session(d->tioc);
  for (gsize off = 0; off < d->out.size(); off += chunk) {
    if (!qio_channel_write_all(QIO_CHANNEL(d->tioc), d->out.data() + off, chunk,
                               &d->write_error) ||
        (d->update_keys && off + chunk < d->out.size() &&
         qcrypto_tls_session_update_keys(session, TRUE, &d->write_error) != 1)) {
      /* Unblock the peer's threads so that the test fails instead of hanging. */
      g_test_message("writer: %s", d->write_error->message);
      qio_channel_shutdown(qio_channel_tls_get_master(d->tioc), QIO_CHANNEL_SHUTDOWN_BOTH,
                           nullptr);
      return nullptr;
    }
  }
  return nullptr;
}

gpointer duplex_reader(gpointer opaque) noexcept {
  auto *d = static_cast<Duplex *>(opaque);
  if (!qio_channel_read_all(QIO_CHANNEL(d->tioc), d->in.data(), d->in.size(), &d->read_error)) {
    g_test_message("reader: %s", d->read_error->message);
    qio_channel_shutdown(qio_channel_tls_get_master(d->tioc), QIO_CHANNEL_SHUTDOWN_BOTH,
                         nullptr);
  }
  return nullptr;
}

void key_update_two_threads(bool direct) {
  Fixture f(false, direct);
  f.handshake_ok();
  f.set_blocking(true);
  const gsize total = 4 * 1024 * 1024;
  Duplex c{f.client, pattern(total, 1), std::vector<guint8>(total)};
  Duplex s{f.server, pattern(total, 2), std::vector<guint8>(total)};
  /* The client's writer asks for key updates on both sides; the server
   * answers from whichever thread GnuTLS runs next.  (Updates requested by
   * both ends at the same moment fail inside GnuTLS 3.7.9 even in a single
   * thread: "An illegal parameter was found".) */
  c.update_keys = true;
  for (Duplex *d : {&c, &s}) {
    d->reader = g_thread_new("reader", duplex_reader, d);
    d->writer = g_thread_new("writer", duplex_writer, d);
  }
  for (Duplex *d : {&c, &s}) {
    g_thread_join(d->writer);
    g_thread_join(d->reader);
    g_assert_no_error(d->write_error);
    g_assert_no_error(d->read_error);
  }
  g_assert_true(c.in == s.out);
  g_assert_true(s.in == c.out);
}

/* A reader must not wait to write.  Here the server's socket is full (the
 * client reads nothing yet) and more of the server's records are queued (a
 * key update) when its reader runs: the reader gets the client's byte all
 * the same, and the queue goes out with the server's next write.  A reader
 * that flushed the queue and waited for the socket deadlocked two peers
 * doing the same (CI hung on key-update-two-threads). */
struct OneByteReader {
  QIOChannel *ioc;
  char got = 0;
  GError *error = nullptr;
  std::atomic<bool> done{false};
};

gpointer read_one_byte(gpointer opaque) noexcept {
  auto *r = static_cast<OneByteReader *>(opaque);
  qio_channel_read_all(r->ioc, &r->got, 1, &r->error);
  r->done = true;
  return nullptr;
}

/* Finishes what would have blocked: the key update, the write; then one
 * byte under the new keys. */
struct FinishThenByte {
  QIOChannelTLS *tioc;
  const guint8 *retry;
  gsize retry_len;
  GError *error = nullptr;
};

gpointer finish_then_byte(gpointer opaque) noexcept {
  auto *w = static_cast<FinishThenByte *>(opaque);
  auto *ioc = QIO_CHANNEL(w->tioc);
  if (qcrypto_tls_session_update_keys(qio_channel_tls_get_session(w->tioc), FALSE,
                                      &w->error) == 1 &&
      qio_channel_write_all(ioc, w->retry, w->retry_len, &w->error))
    qio_channel_write_all(ioc, "y", 1, &w->error);
  return nullptr;
}

constexpr gsize kFillChunk = 64 * 1024;

/* Writes @sent from server to client, non-blocking, in kFillChunk pieces
 * until a write would block; returns the bytes accepted (the refused
 * chunk's records may be partly queued). */
gsize fill_until_blocked(Fixture &f, const std::vector<guint8> &sent) {
  f.set_blocking(false);
  gsize accepted = 0;
  g_autoptr(GError) error = nullptr;
  for (;;) {
    g_assert_cmpuint(accepted + kFillChunk, <=, sent.size());
    gssize n = qio_channel_write(QIO_CHANNEL(f.server), sent.data() + accepted, kFillChunk,
                                 &error);
    g_assert_no_error(error);
    if (n == QIO_CHANNEL_ERR_BLOCK) return accepted;
    accepted += static_cast<gsize>(n);
  }
}

void reader_does_not_wait_to_write(bool direct) {
  Fixture f(false, direct);
  f.handshake_ok();
  auto sent = pattern(16 * 1024 * 1024, 3);
  gsize accepted = fill_until_blocked(f, sent);
  g_autoptr(GError) error = nullptr;
  QCryptoTLSSession *server_session = qio_channel_tls_get_session(f.server);
  g_assert_cmpint(qcrypto_tls_session_update_keys(server_session, FALSE, &error), ==, 0);
  g_assert_no_error(error);
  f.set_blocking(true);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(f.client), "x", 1, &error));
  g_assert_no_error(error);

  OneByteReader r{QIO_CHANNEL(f.server)};
  GThread *reader = g_thread_new("reader", read_one_byte, &r);
  /* Not a speed check: 30 s only tells a stuck reader from a slow machine
   * (a failed assertion ends the test where a join would hang). */
  for (int i = 0; i < 3000 && !r.done; i++) g_usleep(10 * 1000);
  g_assert_true(r.done);
  g_thread_join(reader);
  g_assert_no_error(r.error);
  g_assert_cmpint(r.got, ==, 'x');

  /* The client reads every byte in order, the last under new keys. */
  FinishThenByte w{f.server, sent.data() + accepted, kFillChunk};
  GThread *writer = g_thread_new("writer", finish_then_byte, &w);
  std::vector<guint8> got(accepted + kFillChunk + 1);
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.client), got.data(), got.size(), &error));
  g_assert_no_error(error);
  g_thread_join(writer);
  g_assert_no_error(w.error);
  g_assert_true(std::equal(got.begin(), got.end() - 1, sent.begin()));
  g_assert_cmpint(got.back(), ==, 'y');
}

/* A peer that stopped reading must not hold the thread that ends the
 * channel: a server's main loop closing one such client stalled every
 * other client.  The bye is dropped, and the peer reads the data that
 * got out, then a close without close_notify. */
struct Ender {
  QIOChannel *ioc;
  bool shutdown_first;
  gboolean ok = FALSE;
  GError *error = nullptr;
  std::atomic<bool> done{false};
};

gpointer end_channel(gpointer opaque) noexcept {
  auto *e = static_cast<Ender *>(opaque);
  e->ok = (!e->shutdown_first ||
           qio_channel_shutdown(e->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, &e->error)) &&
          qio_channel_close(e->ioc, &e->error);
  e->done = true;
  return nullptr;
}

void end_does_not_wait_for_peer(bool shutdown_first) {
  Fixture f;
  f.handshake_ok();
  auto sent = pattern(16 * 1024 * 1024, 5);
  gsize accepted = fill_until_blocked(f, sent);
  g_autoptr(GError) error = nullptr;
  Ender e{QIO_CHANNEL(f.server), shutdown_first};
  GThread *ender = g_thread_new("ender", end_channel, &e);
  /* Not a speed check: 30 s only tells a stuck close from a slow machine. */
  for (int i = 0; i < 3000 && !e.done; i++) g_usleep(10 * 1000);
  g_assert_true(e.done);
  g_thread_join(ender);
  g_assert_no_error(e.error);
  g_assert_true(e.ok);

  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(f.client), TRUE, nullptr));
  std::vector<guint8> got(accepted);
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(f.client), got.data(), got.size(), &error));
  g_assert_no_error(error);
  g_assert_true(std::equal(got.begin(), got.end(), sent.begin()));
  /* Whatever else got out before the end, then no close_notify. */
  char rest[4096];
  gssize n;
  while ((n = qio_channel_read(QIO_CHANNEL(f.client), rest, sizeof rest, &error)) > 0) {
  }
  g_assert_cmpint(n, ==, -1);
  g_assert_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_PREMATURE_CLOSE);
}

void test_close_does_not_wait_for_peer() { end_does_not_wait_for_peer(false); }
void test_shutdown_does_not_wait_for_peer() { end_does_not_wait_for_peer(true); }
void test_reader_does_not_wait_to_write() { reader_does_not_wait_to_write(false); }
void test_direct_reader_does_not_wait_to_write() { reader_does_not_wait_to_write(true); }
void test_key_update_two_threads() { key_update_two_threads(false); }
void test_direct_key_update_two_threads() { key_update_two_threads(true); }
void test_direct_bulk_blocking() { bulk(true, true); }
void test_direct_bulk_nonblocking() { bulk(false, true); }

void test_handshake_sync_thread() {
  Fixture f;
  f.set_blocking(true);
  struct Side {
    QIOChannelTLS *tioc;
    GError *error = nullptr;
  } server{f.server}, client{f.client};
  auto run = [](gpointer data) noexcept -> gpointer {
    auto *side = static_cast<Side *>(data);
    qio_channel_tls_handshake_sync(side->tioc, nullptr, &side->error);
    return nullptr;
  };
  GThread *t = g_thread_new("server", run, &server);
  run(&client);
  g_thread_join(t);
  g_assert_no_error(server.error);
  g_assert_no_error(client.error);
  g_autoptr(QCryptoTLSSessionReport) report = qio_channel_tls_get_report(f.client);
  g_assert_cmpstr(report->peer_identity, ==, "O=qio test,CN=qio.test");
}

/* Data, then a record carrying none (a key update): a blocking read with
 * room for more returns the data instead of waiting on the transport for
 * a next record that may never come (a request/response peer waits). */
void test_read_returns_data_before_a_key_update() {
  Fixture f;
  f.handshake_ok();
  f.set_blocking(true);
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_write(QIO_CHANNEL(f.server), "hello", 5, &error), ==, 5);
  g_assert_cmpint(
      qcrypto_tls_session_update_keys(qio_channel_tls_get_session(f.server), FALSE, &error), ==, 1);
  std::atomic<gssize> got{-100};
  char buf[100];
  std::thread reader([&f, &got, &buf] {
    got = qio_channel_read(QIO_CHANNEL(f.client), buf, sizeof buf, nullptr);
  });
  for (int i = 0; i < 50 && got == -100; i++) g_usleep(G_USEC_PER_SEC / 10);
  gssize early = got;
  /* A stuck reader gets a byte, so that the test ends either way. */
  if (early == -100) qio_channel_write(QIO_CHANNEL(f.server), "x", 1, nullptr);
  reader.join();
  g_assert_cmpint(early, ==, 5);
  g_assert_cmpmem(buf, 5, "hello", 5);
}

/* A writer blocked on a peer that stopped reading, woken by a shutdown
 * from another thread (how migration and NBD cancel): the shutdown must
 * not wait behind that writer to send its bye. */
void test_shutdown_wakes_a_blocked_writer() {
  Fixture f;
  f.handshake_ok();
  f.set_blocking(true);
  std::atomic<bool> writer_done{false}, shutdown_done{false};
  std::thread writer([&f, &writer_done] {
    auto data = pattern(16 * 1024 * 1024, 3);
    g_autoptr(GError) error = nullptr;
    g_assert_false(qio_channel_write_all(QIO_CHANNEL(f.client), data.data(), data.size(), &error));
    writer_done = true;
  });
  g_usleep(G_USEC_PER_SEC / 2); /* the socket buffers fill up; the writer blocks */
  std::thread stopper([&f, &shutdown_done] {
    qio_channel_shutdown(QIO_CHANNEL(f.client), QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
    shutdown_done = true;
  });
  for (int i = 0; i < 50 && !(writer_done && shutdown_done); i++)
    g_usleep(G_USEC_PER_SEC / 10);
  bool woken = writer_done && shutdown_done;
  /* Unstick a deadlock from below, so that the test ends either way. */
  if (!woken) shutdown(f.client_master->fd, SHUT_RDWR);
  stopper.join();
  writer.join();
  g_assert_true(woken);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/channel-tls/read-returns-data-before-a-key-update",
                  test_read_returns_data_before_a_key_update);
  g_test_add_func("/qio/channel-tls/shutdown-wakes-a-blocked-writer",
                  test_shutdown_wakes_a_blocked_writer);
  g_test_add_func("/qio/channel-tls/handshake-async", test_handshake_async);
  g_test_add_func("/qio/channel-tls/handshake-fails-async", test_handshake_fails_async);
  g_test_add_func("/qio/channel-tls/handshake-sync-thread", test_handshake_sync_thread);
  g_test_add_func("/qio/channel-tls/handshake-cancel", test_handshake_cancel);
  g_test_add_func("/qio/channel-tls/io-before-handshake", test_io_before_handshake);
  g_test_add_func("/qio/channel-tls/bulk-blocking", test_bulk_blocking);
  g_test_add_func("/qio/channel-tls/bulk-nonblocking", test_bulk_nonblocking);
  g_test_add_func("/qio/channel-tls/bulk-scattered", test_bulk_scattered);
  g_test_add_func("/qio/channel-tls/bye-and-premature-close", test_bye_and_premature_close);
  g_test_add_func("/qio/channel-tls/pending-watch", test_pending_watch);
  g_test_add_func("/qio/channel-tls/read-low-water", test_read_low_water);
  g_test_add_func("/qio/channel-tls/watch-same-iteration", test_watch_same_iteration);
  g_test_add_func("/qio/channel-tls/key-update-two-threads", test_key_update_two_threads);
  g_test_add_func("/qio/channel-tls/write-error-names-transport",
                  test_write_error_names_transport);
  g_test_add_func("/qio/channel-tls/close-does-not-wait-for-peer",
                  test_close_does_not_wait_for_peer);
  g_test_add_func("/qio/channel-tls/shutdown-does-not-wait-for-peer",
                  test_shutdown_does_not_wait_for_peer);
  g_test_add_func("/qio/channel-tls/reader-does-not-wait-to-write",
                  test_reader_does_not_wait_to_write);
  g_test_add_func("/qio/channel-tls/direct/bulk-blocking", test_direct_bulk_blocking);
  g_test_add_func("/qio/channel-tls/direct/bulk-nonblocking", test_direct_bulk_nonblocking);
  g_test_add_func("/qio/channel-tls/direct/key-update-two-threads",
                  test_direct_key_update_two_threads);
  g_test_add_func("/qio/channel-tls/direct/reader-does-not-wait-to-write",
                  test_direct_reader_does_not_wait_to_write);
  return g_test_run();
}
