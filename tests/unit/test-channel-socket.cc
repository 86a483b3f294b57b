/* QIOChannelSocket over TCP (IPv4, IPv6), UNIX (path, abstract) and vsock. */
#include "config.h"

#include "qio/channel-file.h"
#include "qio/channel-socket.h"
#include "qio/error.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

char *tmp_dir;

std::vector<guint8> pattern(gsize len, guint seed) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + seed) % 251);
  return data;
}

QIOSocketAddress *parse(const char *str) {
  g_autoptr(GError) error = nullptr;
  QIOSocketAddress *addr = qio_socket_address_parse(str, &error);
  g_assert_no_error(error);
  return addr;
}

/* A listening channel on @str, or NULL (test skipped) when the host lacks
 * the address family. */
QIOChannelSocket *listen_on(const char *str) {
  g_autoptr(QIOSocketAddress) addr = parse(str);
  g_autoptr(GError) error = nullptr;
  QIOChannelSocket *sioc = qio_channel_socket_new();
  if (!qio_channel_socket_listen_sync(sioc, addr, 16, &error)) {
    g_object_unref(sioc);
    g_autofree char *msg = g_strdup_printf("cannot listen on %s: %s", str, error->message);
    g_test_skip(msg);
    return nullptr;
  }
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(sioc), QIO_CHANNEL_FEATURE_LISTEN));
  return sioc;
}

/* Client and accepted server channel for a listener. */
void connect_pair(QIOChannelSocket *listener, QIOChannelSocket **client,
                  QIOChannelSocket **server) {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(listener, &error);
  g_assert_no_error(error);
  *client = qio_channel_socket_new();
  g_assert_true(qio_channel_socket_connect_sync(*client, addr, &error));
  g_assert_no_error(error);
  *server = qio_channel_socket_accept(listener, &error);
  g_assert_no_error(error);
  g_assert_nonnull(*server);
}

char *unix_path(const char *name) { return g_build_filename(tmp_dir, name, nullptr); }

/* 1 MiB through hundreds of uneven iovecs, a writer thread and a reader
 * thread, in blocking or non-blocking mode. */
void transfer(QIOChannelSocket *client, QIOChannelSocket *server, bool blocking) {
  const gsize total = 1024 * 1024;
  auto src = pattern(total, 7);
  std::vector<guint8> dst(total);
  std::vector<struct iovec> wiov, riov;
  for (gsize off = 0, i = 0; off < total; i++) {
    gsize len = std::min<gsize>(total - off, 1 + (i * 97) % 7000);
    wiov.push_back({src.data() + off, len});
    off += len;
  }
  for (gsize off = 0; off < total; off += 3001)
    riov.push_back({dst.data() + off, std::min<gsize>(3001, total - off)});
  g_assert_cmpuint(wiov.size(), >, 250);
  g_assert_cmpuint(riov.size(), >, 250);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(client), blocking, nullptr));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(server), blocking, nullptr));

  bool wrote = false;
  int read_ret = -1;
  std::thread writer([&] {
    g_autoptr(GError) error = nullptr;
    wrote = qio_channel_writev_all(QIO_CHANNEL(client), wiov.data(), wiov.size(), &error);
    g_assert_no_error(error);
  });
  std::thread reader([&] {
    g_autoptr(GError) error = nullptr;
    read_ret = qio_channel_readv_all_eof(QIO_CHANNEL(server), riov.data(), riov.size(), &error);
    g_assert_no_error(error);
  });
  writer.join();
  reader.join();
  g_assert_true(wrote);
  g_assert_cmpint(read_ret, ==, 1);
  g_assert_true(src == dst);
}

void run_transfer(const char *listen_str, bool blocking) {
  g_autoptr(QIOChannelSocket) listener = listen_on(listen_str);
  if (!listener) return;
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  transfer(client, server, blocking);
  g_object_unref(client);
  g_object_unref(server);
}

void test_transfer_tcp4() {
  run_transfer("127.0.0.1:0", true);
  run_transfer("127.0.0.1:0", false);
}

void test_transfer_tcp6() {
  run_transfer("[::1]:0", true);
  run_transfer("[::1]:0", false);
}

void test_transfer_unix() {
  g_autofree char *path = unix_path("transfer.sock");
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  run_transfer(str, true);
  run_transfer(str, false);
  run_transfer("unix:@qio-test-transfer", false);
}

void test_socketpair() {
  QIOChannelSocket *a, *b;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(a), QIO_CHANNEL_FEATURE_FD_PASS));
  transfer(a, b, true);
  g_object_unref(a);
  g_object_unref(b);
}

/* More iovecs than one system call takes (IOV_MAX, 1024): each call sends
 * a prefix and the _all helpers finish the rest. */
void test_iov_max() {
  QIOChannelSocket *a, *b;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, nullptr));
  const gsize n = 3000, each = 100;
  auto src = pattern(n * each, 11);
  std::vector<guint8> dst(n * each);
  std::vector<struct iovec> wiov(n), riov(n);
  for (gsize i = 0; i < n; i++) {
    wiov[i] = {src.data() + i * each, each};
    riov[i] = {dst.data() + i * each, each};
  }
  std::thread reader([&] {
    g_assert_true(qio_channel_readv_all(QIO_CHANNEL(b), riov.data(), n, nullptr));
  });
  g_autoptr(GError) error = nullptr;
  gssize once = qio_channel_writev(QIO_CHANNEL(a), wiov.data(), n, &error);
  g_assert_no_error(error);
  g_assert_cmpint(once, >, 0);
  g_assert_cmpint(once, <=, 1024 * each);
  gsize off = static_cast<gsize>(once) / each;
  g_assert_cmpuint(static_cast<gsize>(once) % each, ==, 0);
  g_assert_true(qio_channel_writev_all(QIO_CHANNEL(a), wiov.data() + off, n - off, &error));
  g_assert_no_error(error);
  reader.join();
  g_assert_true(src == dst);
  g_object_unref(a);
  g_object_unref(b);
}

void test_addresses() {
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) l = qio_channel_socket_get_local_address(listener, &error);
  g_autoptr(QIOSocketAddress) cr = qio_channel_socket_get_remote_address(client, &error);
  g_autoptr(QIOSocketAddress) cl = qio_channel_socket_get_local_address(client, &error);
  g_autoptr(QIOSocketAddress) sr = qio_channel_socket_get_remote_address(server, &error);
  g_assert_no_error(error);
  g_autofree char *ls = qio_socket_address_to_string(l);
  g_autofree char *crs = qio_socket_address_to_string(cr);
  g_autofree char *cls = qio_socket_address_to_string(cl);
  g_autofree char *srs = qio_socket_address_to_string(sr);
  g_assert_cmpstr(ls, ==, crs);
  g_assert_cmpstr(cls, ==, srs);
  g_assert_cmpuint(qio_socket_address_get_port(l), !=, 0);
  /* Channels are named after their peer for diagnostics. */
  g_assert_cmpstr(qio_channel_get_name(QIO_CHANNEL(server)), ==, srs);
  g_assert_false(qio_channel_has_feature(QIO_CHANNEL(client), QIO_CHANNEL_FEATURE_FD_PASS));
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(client), QIO_CHANNEL_FEATURE_SHUTDOWN));

  /* TCP_NODELAY follows set_delay, TCP_CORK follows set_cork. */
  int fd = qio_channel_socket_get_fd(client), val = 0;
  socklen_t len = sizeof(val);
  qio_channel_set_delay(QIO_CHANNEL(client), FALSE);
  getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &val, &len);
  g_assert_cmpint(val, !=, 0);
  qio_channel_set_delay(QIO_CHANNEL(client), TRUE);
  getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &val, &len);
  g_assert_cmpint(val, ==, 0);
  qio_channel_set_cork(QIO_CHANNEL(client), TRUE);
  getsockopt(fd, IPPROTO_TCP, TCP_CORK, &val, &len);
  g_assert_cmpint(val, !=, 0);
  qio_channel_set_cork(QIO_CHANNEL(client), FALSE);
  getsockopt(fd, IPPROTO_TCP, TCP_CORK, &val, &len);
  g_assert_cmpint(val, ==, 0);
  g_object_unref(client);
  g_object_unref(server);
}

void test_fd_passing() {
  g_autofree char *path = unix_path("fdpass.sock");
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  g_autoptr(QIOChannelSocket) listener = listen_on(str);
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(client), QIO_CHANNEL_FEATURE_FD_PASS));

  int pipefd[2];
  g_assert_cmpint(pipe(pipefd), ==, 0);
  g_autoptr(GError) error = nullptr;
  char tag = 'F';
  struct iovec iov = {&tag, 1};
  g_assert_true(qio_channel_writev_full_all(QIO_CHANNEL(client), &iov, 1, &pipefd[1], 1, 0,
                                            &error));
  g_assert_no_error(error);
  close(pipefd[1]); /* the receiver's copy is now the only write end */

  char got = 0;
  struct iovec riov = {&got, 1};
  int *fds = nullptr;
  gsize nfds = 0;
  g_assert_true(qio_channel_readv_full_all(QIO_CHANNEL(server), &riov, 1, &fds, &nfds, &error));
  g_assert_no_error(error);
  g_assert_cmpint(got, ==, 'F');
  g_assert_cmpuint(nfds, ==, 1);
  g_assert_cmpint(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, !=, 0);
  g_assert_cmpint(write(fds[0], "through", 7), ==, 7);
  close(fds[0]);
  g_free(fds);
  char buf[16] = {};
  g_assert_cmpint(read(pipefd[0], buf, sizeof(buf)), ==, 7);
  g_assert_cmpstr(buf, ==, "through");
  /* The received write end was the last one: EOF now. */
  g_assert_cmpint(read(pipefd[0], buf, sizeof(buf)), ==, 0);
  close(pipefd[0]);

  /* Too many descriptors for one message is refused, not truncated. */
  std::vector<int> many(17, 0);
  g_assert_cmpint(qio_channel_writev_full(QIO_CHANNEL(client), &iov, 1, many.data(), many.size(),
                                          0, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_clear_error(&error);
  g_object_unref(client);
  g_object_unref(server);

  /* TCP cannot carry descriptors. */
  g_autoptr(QIOChannelSocket) tcp = listen_on("127.0.0.1:0");
  connect_pair(tcp, &client, &server);
  int one = 0;
  g_assert_cmpint(qio_channel_writev_full(QIO_CHANNEL(client), &iov, 1, &one, 1, 0, &error),
                  ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_object_unref(client);
  g_object_unref(server);
}

void test_close_shutdown_eof() {
  g_autofree char *path = unix_path("close.sock");
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  QIOChannelSocket *listener = listen_on(str);
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_autoptr(GError) error = nullptr;

  /* Shutdown of the write side: the peer sees EOF before any byte. */
  g_assert_true(qio_channel_shutdown(QIO_CHANNEL(client), QIO_CHANNEL_SHUTDOWN_WRITE, &error));
  char buf[10];
  struct iovec iov = {buf, sizeof(buf)};
  g_assert_cmpint(qio_channel_readv_all_eof(QIO_CHANNEL(server), &iov, 1, &error), ==, 0);
  g_assert_no_error(error);
  /* The other direction still works. */
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(server), "abc", 3, &error));
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(client), buf, 3, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(buf, 3, "abc", 3);
  /* A close in the middle of a message is an error naming the channel. */
  g_assert_true(qio_channel_close(QIO_CHANNEL(server), &error));
  g_assert_false(qio_channel_read_all(QIO_CHANNEL(client), buf, 3, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
  g_clear_error(&error);

  /* Close is idempotent; I/O afterwards fails cleanly. */
  g_assert_true(qio_channel_close(QIO_CHANNEL(server), &error));
  g_assert_no_error(error);
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(server), buf, 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);
  g_assert_cmpint(qio_channel_socket_get_fd(server), ==, -1);
  g_assert_false(qio_channel_shutdown(QIO_CHANNEL(server), QIO_CHANNEL_SHUTDOWN_BOTH, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);

  /* A listener removes the socket file it created, and only on close. */
  g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
  g_assert_true(qio_channel_close(QIO_CHANNEL(listener), &error));
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  g_assert_true(qio_channel_close(QIO_CHANNEL(listener), &error));
  g_object_unref(listener);
  g_object_unref(client);
  g_object_unref(server);

  /* Finalizing without close unlinks too. */
  listener = listen_on(str);
  g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
  g_object_unref(listener);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

void test_nonblocking() {
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(listener), FALSE, &error));
  g_assert_null(qio_channel_socket_accept(listener, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error(&error);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(listener), TRUE, &error));

  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(server), FALSE, &error));
  char buf[4];
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(server), buf, 4, &error), ==,
                  QIO_CHANNEL_ERR_BLOCK);
  g_assert_no_error(error);
  /* Fill the socket until writes would block. */
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(client), FALSE, &error));
  std::vector<guint8> chunk(256 * 1024);
  gssize n;
  int rounds = 0;
  while ((n = qio_channel_write(QIO_CHANNEL(client), chunk.data(), chunk.size(), &error)) > 0)
    g_assert_cmpint(++rounds, <, 10000);
  g_assert_cmpint(n, ==, QIO_CHANNEL_ERR_BLOCK);
  g_assert_no_error(error);
  g_object_unref(client);
  g_object_unref(server);
}

/* A write told not to wait returns at once on a blocking socket that is
 * full; channels that cannot honour the flag refuse it. */
void test_write_dontwait() {
  QIOChannelSocket *a, *b;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  g_assert_true(qio_channel_has_feature(QIO_CHANNEL(a), QIO_CHANNEL_FEATURE_WRITE_DONTWAIT));
  g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(a), TRUE, &error));
  std::vector<guint8> chunk(256 * 1024, 'd');
  struct iovec out = {chunk.data(), chunk.size()};
  gssize n;
  int rounds = 0;
  while ((n = qio_channel_writev_full(QIO_CHANNEL(a), &out, 1, nullptr, 0,
                                      QIO_CHANNEL_WRITE_FLAG_DONTWAIT, &error)) > 0)
    g_assert_cmpint(++rounds, <, 10000);
  g_assert_cmpint(n, ==, QIO_CHANNEL_ERR_BLOCK);
  g_assert_no_error(error);
  char buf[4];
  g_assert_cmpint(qio_channel_read(QIO_CHANNEL(b), buf, sizeof(buf), &error), ==, 4);
  g_assert_cmpmem(buf, 4, "dddd", 4);
  g_object_unref(a);
  g_object_unref(b);

  int pipefd[2];
  g_assert_cmpint(pipe(pipefd), ==, 0);
  close(pipefd[0]);
  g_autoptr(QIOChannelFile) file = qio_channel_file_new_fd(pipefd[1]);
  g_assert_false(qio_channel_has_feature(QIO_CHANNEL(file), QIO_CHANNEL_FEATURE_WRITE_DONTWAIT));
  g_assert_cmpint(qio_channel_writev_full(QIO_CHANNEL(file), &out, 1, nullptr, 0,
                                          QIO_CHANNEL_WRITE_FLAG_DONTWAIT, &error),
                  ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
}

int read_low_water_of(QIOChannelSocket *sioc) {
  int val = 0;
  socklen_t len = sizeof(val);
  g_assert_cmpint(getsockopt(qio_channel_socket_get_fd(sioc), SOL_SOCKET, SO_RCVLOWAT, &val, &len),
                  ==, 0);
  return val;
}

/* Waits until @sioc has @bytes to read, so that a watch's answer is final. */
void wait_queued(QIOChannelSocket *sioc, int bytes) {
  int queued = 0;
  for (int i = 0; i < 5000 && queued != bytes; i++) {
    g_assert_cmpint(ioctl(qio_channel_socket_get_fd(sioc), FIONREAD, &queued), ==, 0);
    if (queued != bytes) g_usleep(1000);
  }
  g_assert_cmpint(queued, ==, bytes);
}

/* Whether a G_IO_IN watch on @ioc dispatches within @ms milliseconds. */
bool readable_within(QIOChannel *ioc, guint ms) {
  g_autoptr(GMainContext) ctx = g_main_context_new();
  bool fired = false, timed_out = false;
  GSource *watch = qio_channel_create_watch(ioc, G_IO_IN);
  g_source_set_callback(watch, G_SOURCE_FUNC(+[](QIOChannel *, GIOCondition, gpointer data) noexcept -> gboolean {
                          *static_cast<bool *>(data) = true;
                          return G_SOURCE_REMOVE;
                        }),
                        &fired, nullptr);
  g_source_attach(watch, ctx);
  GSource *timer = g_timeout_source_new(ms);
  g_source_set_callback(timer, G_SOURCE_FUNC(+[](gpointer data) noexcept -> gboolean {
                          *static_cast<bool *>(data) = true;
                          return G_SOURCE_REMOVE;
                        }),
                        &timed_out, nullptr);
  g_source_attach(timer, ctx);
  while (!fired && !timed_out) g_main_context_iteration(ctx, TRUE);
  g_source_destroy(watch);
  g_source_unref(watch);
  g_source_destroy(timer);
  g_source_unref(timer);
  return fired;
}

/* A TCP reader told to expect a payload is not woken before it arrived
 * (SO_RCVLOWAT), or the peer closed; 0 wakes at every byte again. */
void test_read_low_water() {
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  QIOChannel *in = QIO_CHANNEL(server);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_set_blocking(in, FALSE, &error));
  const gsize low = 64 * 1024;
  auto sent = pattern(low, 5);
  std::vector<guint8> got(low);
  qio_channel_set_read_low_water(in, low);
  g_assert_cmpint(read_low_water_of(server), ==, low);

  g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), sent.data(), 1000, &error));
  wait_queued(server, 1000);
  g_assert_false(readable_within(in, 50));
  g_assert_true(
      qio_channel_write_all(QIO_CHANNEL(client), sent.data() + 1000, low - 1000, &error));
  wait_queued(server, low);
  g_assert_true(readable_within(in, 5000));
  g_assert_true(qio_channel_read_all(in, got.data(), low, &error));
  g_assert_true(got == sent);

  qio_channel_set_read_low_water(in, 0);
  g_assert_cmpint(read_low_water_of(server), ==, 1);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), "x", 1, &error));
  g_assert_true(readable_within(in, 5000));
  g_assert_true(qio_channel_read_all(in, got.data(), 1, &error));
  g_assert_no_error(error);

  /* A large hint is capped, so that the kernel never has to clamp the
   * receive window to it. */
  qio_channel_set_read_low_water(in, 64 * 1024 * 1024);
  g_assert_cmpint(read_low_water_of(server), ==, 256 * 1024);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), sent.data(), 10, &error));
  wait_queued(server, 10);
  g_assert_false(readable_within(in, 50));
  g_object_unref(client); /* closes: the end of data wakes the reader */
  g_assert_true(readable_within(in, 5000));
  g_assert_cmpint(qio_channel_read(in, got.data(), low, &error), ==, 10);
  g_assert_cmpint(qio_channel_read(in, got.data(), low, &error), ==, 0);
  g_object_unref(server);

  /* UNIX sockets' poll ignores the mark; so does the channel. */
  QIOChannelSocket *a, *b;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  qio_channel_set_read_low_water(QIO_CHANNEL(b), low);
  g_assert_cmpint(read_low_water_of(b), ==, 1);
  g_object_unref(a);
  g_object_unref(b);
}

void test_connect_refused() {
  g_autoptr(GError) error = nullptr;
  QIOChannelSocket *listener = listen_on("127.0.0.1:0");
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(listener, &error);
  g_object_unref(listener); /* nobody listens on that port any more */
  g_autofree char *str = qio_socket_address_to_string(addr);
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_connect_sync(sioc, addr, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull(strstr(error->message, str));
  g_test_message("%s", error->message);
  g_clear_error(&error);
  g_assert_cmpint(qio_channel_socket_get_fd(sioc), ==, -1);

  g_autofree char *path = unix_path("nobody.sock");
  g_autofree char *ustr = g_strdup_printf("unix:%s", path);
  g_autoptr(QIOSocketAddress) uaddr = parse(ustr);
  g_assert_false(qio_channel_socket_connect_sync(sioc, uaddr, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, path));
}

void test_listen_errors() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) first = listen_on("127.0.0.1:0");
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(first, &error);
  g_autofree char *str = qio_socket_address_to_string(addr);
  g_autoptr(QIOChannelSocket) second = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_listen_sync(second, addr, 0, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull(strstr(error->message, str));
  g_clear_error(&error);

  /* A channel cannot be reused for a second socket. */
  g_assert_false(qio_channel_socket_listen_sync(first, addr, 0, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error(&error);

  /* A stale UNIX socket file (its server is gone) is replaced. */
  g_autofree char *path = unix_path("stale.sock");
  g_autofree char *ustr = g_strdup_printf("unix:%s", path);
  g_autoptr(QIOSocketAddress) uaddr = parse(ustr);
  QIOChannelSocket *stale = listen_on(ustr);
  int fd = dup(qio_channel_socket_get_fd(stale));
  g_object_unref(stale); /* unlinks... */
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  g_autoptr(QIOChannelSocket) live = listen_on(ustr);
  close(fd);
  /* ...a live one is not: a second listener on it fails. */
  g_autoptr(QIOChannelSocket) other = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_listen_sync(other, uaddr, 0, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_clear_error(&error);
  g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));

  /* new_fd refuses what is not a socket. */
  int pipefd[2];
  g_assert_cmpint(pipe(pipefd), ==, 0);
  g_assert_null(qio_channel_socket_new_fd(pipefd[0], &error));
  g_assert_true(error && error->domain == G_IO_ERROR);
  g_assert_nonnull(strstr(error->message, "not a socket"));
  g_clear_error(&error);
  /* ...and so does an fd: address. */
  g_autofree char *fdstr = g_strdup_printf("fd:%d", pipefd[0]);
  g_autoptr(QIOSocketAddress) fdaddr = parse(fdstr);
  g_autoptr(QIOChannelSocket) viafd = qio_channel_socket_new();
  g_assert_false(qio_channel_socket_connect_sync(viafd, fdaddr, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS);
  close(pipefd[0]);
  close(pipefd[1]);
}

void test_fd_address() {
  QIOChannelSocket *a, *b;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  g_autofree char *str = g_strdup_printf("fd:%d", qio_channel_socket_get_fd(a));
  g_autoptr(QIOSocketAddress) addr = parse(str);
  g_autoptr(QIOChannelSocket) c = qio_channel_socket_new();
  g_assert_true(qio_channel_socket_connect_sync(c, addr, &error));
  g_assert_no_error(error);
  g_assert_cmpint(qio_channel_socket_get_fd(c), !=, qio_channel_socket_get_fd(a));
  g_object_unref(a); /* c holds its own duplicate */
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(c), "via fd", 6, &error));
  char buf[6];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(b), buf, 6, &error));
  g_assert_cmpmem(buf, 6, "via fd", 6);
  g_object_unref(b);
}

struct AsyncState {
  GMainContext *context;
  bool done = false;
  gboolean ok = FALSE;
  GError *error = nullptr;
  bool in_context = false;
};

void async_done(GObject *source, GAsyncResult *result, gpointer data) noexcept {
  auto *st = static_cast<AsyncState *>(data);
  st->in_context = g_main_context_is_owner(st->context) &&
                   g_main_context_get_thread_default() == st->context;
  st->ok = qio_channel_socket_connect_finish(QIO_CHANNEL_SOCKET(source), result, &st->error);
  st->done = true;
}

void listen_done(GObject *source, GAsyncResult *result, gpointer data) noexcept {
  auto *st = static_cast<AsyncState *>(data);
  st->in_context = g_main_context_is_owner(st->context);
  st->ok = qio_channel_socket_listen_finish(QIO_CHANNEL_SOCKET(source), result, &st->error);
  st->done = true;
}

void wait_async(AsyncState *st) {
  while (!st->done) g_main_context_iteration(st->context, TRUE);
}

void test_transfer_vsock() {
  /* Listen on VMADDR_CID_ANY; reach it through VMADDR_CID_LOCAL (1), which
   * loops back only when the kernel has vsock_loopback. */
  g_autoptr(QIOChannelSocket) listener = listen_on("vsock:4294967295:23456");
  if (!listener) return;
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOSocketAddress) local = qio_channel_socket_get_local_address(listener, &error);
  g_assert_no_error(error);
  g_assert_cmpint(qio_socket_address_get_kind(local), ==, QIO_SOCKET_ADDRESS_VSOCK);
  g_assert_cmpuint(qio_socket_address_get_port(local), ==, 23456);

  /* A connect that the host never answers is cut short by cancellation. */
  g_autoptr(QIOSocketAddress) addr = parse("vsock:1:23456");
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  AsyncState st{context};
  qio_channel_socket_connect_async(client, addr, cancellable, async_done, &st, context);
  gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
  while (!st.done && g_get_monotonic_time() < deadline) {
    g_main_context_iteration(context, FALSE);
    g_usleep(1000);
  }
  g_cancellable_cancel(cancellable);
  wait_async(&st);
  if (!st.ok) {
    g_autofree char *msg = g_strdup_printf("no vsock loopback: %s", st.error->message);
    g_error_free(st.error);
    g_test_skip(msg);
    return;
  }
  g_autoptr(QIOChannelSocket) server = qio_channel_socket_accept(listener, &error);
  g_assert_no_error(error);
  transfer(client, server, true);
}

void test_async() {
  g_autoptr(GMainContext) context = g_main_context_new();
  /* Listen asynchronously on a UNIX path, then connect asynchronously to it;
   * both callbacks run in @context, which is not the thread default. */
  g_autofree char *path = unix_path("async.sock");
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  g_autoptr(QIOSocketAddress) addr = parse(str);
  g_autoptr(QIOChannelSocket) listener = qio_channel_socket_new();
  AsyncState ls{context};
  qio_channel_socket_listen_async(listener, addr, 4, nullptr, listen_done, &ls, context);
  wait_async(&ls);
  g_assert_no_error(ls.error);
  g_assert_true(ls.ok);
  g_assert_true(ls.in_context);

  g_main_context_push_thread_default(context);
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  AsyncState cs{context};
  /* NULL context: the caller's thread default, here @context. */
  qio_channel_socket_connect_async(client, addr, nullptr, async_done, &cs, nullptr);
  wait_async(&cs);
  g_main_context_pop_thread_default(context);
  g_assert_no_error(cs.error);
  g_assert_true(cs.ok);
  g_assert_true(cs.in_context);
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) server = qio_channel_socket_accept(listener, &error);
  g_assert_no_error(error);
  transfer(client, server, true);

  /* An async connect to a closed port fails naming the address. */
  QIOChannelSocket *gone = listen_on("127.0.0.1:0");
  g_autoptr(QIOSocketAddress) gone_addr = qio_channel_socket_get_local_address(gone, &error);
  g_object_unref(gone);
  g_autoptr(QIOChannelSocket) refused = qio_channel_socket_new();
  AsyncState rs{context};
  qio_channel_socket_connect_async(refused, gone_addr, nullptr, async_done, &rs, context);
  wait_async(&rs);
  g_assert_false(rs.ok);
  g_assert_error(rs.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_autofree char *gone_str = qio_socket_address_to_string(gone_addr);
  g_assert_nonnull(strstr(rs.error->message, gone_str));
  g_error_free(rs.error);
}

void test_async_cancel_before() {
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(listener, nullptr);
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  AsyncState st{context};
  qio_channel_socket_connect_async(client, addr, cancellable, async_done, &st, context);
  wait_async(&st);
  g_assert_false(st.ok);
  g_assert_error(st.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_error_free(st.error);
  g_assert_cmpint(qio_channel_socket_get_fd(client), ==, -1);
}

/* A UNIX listener named @name whose backlog is full of connections kept
 * in @fillers, so that a connect to @addr waits; false (the test
 * skipped) if the kernel never says full. */
bool full_listener(const char *name, QIOSocketAddress **addr, QIOChannelSocket **listener,
                   std::vector<int> &fillers) {
  g_autofree char *path = unix_path(name);
  g_autofree char *str = g_strdup_printf("unix:%s", path);
  *addr = parse(str);
  *listener = qio_channel_socket_new();
  g_assert_true(qio_channel_socket_listen_sync(*listener, *addr, 1, nullptr));
  struct sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
  for (int i = 0; i < 64; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    fillers.push_back(fd);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) < 0 && errno == EAGAIN)
      return true;
  }
  for (int fd : fillers) close(fd);
  g_test_skip("this kernel never reports a full UNIX listen backlog");
  return false;
}

void test_async_cancel_running() {
  /* A UNIX listener with a full backlog keeps a connect pending until
   * the cancellable fires. */
  g_autoptr(QIOSocketAddress) addr = nullptr;
  g_autoptr(QIOChannelSocket) listener = nullptr;
  std::vector<int> fillers;
  if (!full_listener("full.sock", &addr, &listener, fillers)) return;
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  AsyncState st{context};
  qio_channel_socket_connect_async(client, addr, cancellable, async_done, &st, context);
  /* Still pending after 100 ms... */
  gint64 until = g_get_monotonic_time() + 100 * 1000;
  while (g_get_monotonic_time() < until) g_main_context_iteration(context, FALSE);
  g_assert_false(st.done);
  /* ...and cancelled promptly once asked. */
  g_cancellable_cancel(cancellable);
  wait_async(&st);
  g_assert_false(st.ok);
  g_assert_error(st.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_error_free(st.error);
  g_assert_cmpint(qio_channel_socket_get_fd(client), ==, -1);
  for (int fd : fillers) close(fd);
}

/* The blocking connect, cancelled from another thread while it waits for
 * a listener with a full backlog (as nbd_client_abort() does). */
void test_sync_cancel_running() {
  g_autoptr(QIOSocketAddress) addr = nullptr;
  g_autoptr(QIOChannelSocket) listener = nullptr;
  std::vector<int> fillers;
  if (!full_listener("full-sync.sock", &addr, &listener, fillers)) return;
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_autoptr(QIOChannelSocket) client = qio_channel_socket_new();
  std::thread canceller([&] {
    g_usleep(200 * 1000);
    g_cancellable_cancel(cancellable);
  });
  g_autoptr(GError) err = nullptr;
  gint64 start = g_get_monotonic_time();
  g_assert_false(qio_channel_socket_connect_sync_cancellable(client, addr, cancellable, &err));
  gint64 took = g_get_monotonic_time() - start;
  canceller.join();
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* Pending until the cancel (200 ms), then done promptly. */
  g_assert_cmpint(took, >=, 150 * 1000);
  g_assert_cmpint(took, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpint(qio_channel_socket_get_fd(client), ==, -1);
  for (int fd : fillers) close(fd);
}

struct WatchState {
  GMainContext *context;
  GThread *expected_thread;
  bool fired = false;
  bool right_thread = false;
  GMainLoop *loop;
};

void test_watch_context() {
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GMainLoop) loop = g_main_loop_new(context, FALSE);
  WatchState st{context, nullptr, false, false, loop};
  std::thread runner([&] {
    g_main_context_push_thread_default(context);
    g_main_loop_run(loop);
    g_main_context_pop_thread_default(context);
  });
  while (!g_main_loop_is_running(loop)) g_usleep(1000);
  st.expected_thread = nullptr;
  qio_channel_add_watch_full(
      QIO_CHANNEL(server), G_IO_IN,
      [](QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept -> gboolean {
        auto *s = static_cast<WatchState *>(data);
        s->right_thread = g_main_context_is_owner(s->context) && (cond & G_IO_IN);
        char c;
        g_assert_cmpint(qio_channel_read(ioc, &c, 1, nullptr), ==, 1);
        s->fired = true;
        g_main_loop_quit(s->loop);
        return G_SOURCE_REMOVE;
      },
      &st, nullptr, context);
  /* Nothing to read yet: the watch stays quiet. */
  g_usleep(50 * 1000);
  g_assert_false(st.fired);
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(client), "w", 1, nullptr));
  runner.join();
  g_assert_true(st.fired);
  g_assert_true(st.right_thread);

  /* A peer's close wakes a G_IO_IN watch too (EOF is readable). */
  g_object_unref(client);
  bool hup = false;
  g_autoptr(GMainContext) ctx2 = g_main_context_new();
  qio_channel_add_watch_full(
      QIO_CHANNEL(server), G_IO_IN,
      [](QIOChannel *ioc, GIOCondition, gpointer data) noexcept -> gboolean {
        char c;
        *static_cast<bool *>(data) = qio_channel_read(ioc, &c, 1, nullptr) == 0;
        return G_SOURCE_REMOVE;
      },
      &hup, nullptr, ctx2);
  g_main_context_iteration(ctx2, TRUE);
  g_assert_true(hup);
  g_object_unref(server);
}

void test_zero_copy() {
  g_autoptr(QIOChannelSocket) listener = listen_on("127.0.0.1:0");
  QIOChannelSocket *client, *server;
  connect_pair(listener, &client, &server);
  g_autoptr(GError) error = nullptr;
  g_assert_false(qio_channel_has_feature(QIO_CHANNEL(client),
                                         QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY));
  if (!qio_channel_socket_enable_zero_copy(client, &error)) {
    g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
    g_test_skip("MSG_ZEROCOPY is not available");
  } else {
    g_assert_true(qio_channel_has_feature(QIO_CHANNEL(client),
                                          QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY));
    const gsize total = 4 * 1024 * 1024;
    auto src = pattern(total, 3);
    std::vector<guint8> dst(total);
    std::thread reader([&] {
      g_assert_true(qio_channel_read_all(QIO_CHANNEL(server), dst.data(), total, nullptr));
    });
    struct iovec iov[4];
    for (int i = 0; i < 4; i++) iov[i] = {src.data() + i * (total / 4), total / 4};
    g_assert_true(qio_channel_writev_full_all(QIO_CHANNEL(client), iov, 4, nullptr, 0,
                                              QIO_CHANNEL_WRITE_FLAG_ZERO_COPY, &error));
    g_assert_no_error(error);
    int copied = qio_channel_flush(QIO_CHANNEL(client), &error);
    g_assert_no_error(error);
    /* Loopback delivers locally, so the kernel usually reports a copy. */
    g_assert_true(copied == 0 || copied == 1);
    g_test_message("zero-copy flush: %s", copied ? "kernel copied" : "no copy");
    reader.join();
    g_assert_true(src == dst);
    /* Nothing in flight: flush returns at once. */
    g_assert_cmpint(qio_channel_flush(QIO_CHANNEL(client), &error), ==, 0);
  }
  g_clear_error(&error);
  /* Without the feature the zero-copy flag is refused. */
  QIOChannelSocket *a, *b;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, nullptr));
  g_assert_false(qio_channel_socket_enable_zero_copy(a, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_clear_error(&error);
  struct iovec one = {const_cast<char *>("x"), 1};
  g_assert_cmpint(qio_channel_writev_full(QIO_CHANNEL(a), &one, 1, nullptr, 0,
                                          QIO_CHANNEL_WRITE_FLAG_ZERO_COPY, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_object_unref(a);
  g_object_unref(b);
  g_object_unref(client);
  g_object_unref(server);
}

/* sendfile moves a file's bytes from an offset, advances the offset, says
 * 0 at the file's end and reports a descriptor it cannot read. */
void test_sendfile() {
  GError *error = nullptr;
  g_autofree char *path = g_build_filename(tmp_dir, "sendfile", nullptr);
  std::string data(300 * 1024, '\0');
  for (gsize i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7 + i / 1024);
  g_assert_true(g_file_set_contents(path, data.data(), static_cast<gssize>(data.size()), &error));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  QIOChannelSocket *a, *b;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  std::string got(data.size() - 1000, '\0');
  std::thread reader([&] {
    g_assert_true(qio_channel_read_all(QIO_CHANNEL(b), got.data(), got.size(), nullptr));
  });
  guint64 offset = 1000;
  gsize left = got.size();
  while (left > 0) {
    gssize n = qio_channel_socket_sendfile(a, fd, &offset, left, &error);
    g_assert_no_error(error);
    g_assert_cmpint(n, >, 0);
    left -= static_cast<gsize>(n);
  }
  reader.join();
  g_assert_cmpuint(offset, ==, data.size());
  g_assert_true(got == data.substr(1000));
  g_assert_cmpint(qio_channel_socket_sendfile(a, fd, &offset, 4096, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpuint(offset, ==, data.size());
  /* A peer that went away is an error, not SIGPIPE's death of the test. */
  {
    QIOChannelSocket *c, *d;
    g_assert_true(qio_channel_socket_new_pair(&c, &d, &error));
    g_object_unref(d);
    offset = 0;
    g_assert_cmpint(qio_channel_socket_sendfile(c, fd, &offset, 4096, &error), ==, -1);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
    g_clear_error(&error);
    g_object_unref(c);
  }
  /* A write-only descriptor cannot be read from. */
  int wfd = open(path, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint(wfd, >=, 0);
  offset = 0;
  g_assert_cmpint(qio_channel_socket_sendfile(a, wfd, &offset, 4096, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "file data"));
  g_clear_error(&error);
  close(wfd);
  close(fd);
  g_object_unref(a);
  g_object_unref(b);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_autoptr(GError) error = nullptr;
  tmp_dir = g_dir_make_tmp("qio-socket-XXXXXX", &error);
  g_assert_no_error(error);
  g_test_add_func("/qio/channel-socket/transfer/tcp4", test_transfer_tcp4);
  g_test_add_func("/qio/channel-socket/transfer/tcp6", test_transfer_tcp6);
  g_test_add_func("/qio/channel-socket/transfer/unix", test_transfer_unix);
  g_test_add_func("/qio/channel-socket/transfer/vsock", test_transfer_vsock);
  g_test_add_func("/qio/channel-socket/transfer/socketpair", test_socketpair);
  g_test_add_func("/qio/channel-socket/iov-max", test_iov_max);
  g_test_add_func("/qio/channel-socket/addresses", test_addresses);
  g_test_add_func("/qio/channel-socket/fd-passing", test_fd_passing);
  g_test_add_func("/qio/channel-socket/fd-address", test_fd_address);
  g_test_add_func("/qio/channel-socket/close-shutdown-eof", test_close_shutdown_eof);
  g_test_add_func("/qio/channel-socket/nonblocking", test_nonblocking);
  g_test_add_func("/qio/channel-socket/write-dontwait", test_write_dontwait);
  g_test_add_func("/qio/channel-socket/read-low-water", test_read_low_water);
  g_test_add_func("/qio/channel-socket/connect-refused", test_connect_refused);
  g_test_add_func("/qio/channel-socket/listen-errors", test_listen_errors);
  g_test_add_func("/qio/channel-socket/async", test_async);
  g_test_add_func("/qio/channel-socket/async-cancel-before", test_async_cancel_before);
  g_test_add_func("/qio/channel-socket/async-cancel-running", test_async_cancel_running);
  g_test_add_func("/qio/channel-socket/sync-cancel-running", test_sync_cancel_running);
  g_test_add_func("/qio/channel-socket/watch-context", test_watch_context);
  g_test_add_func("/qio/channel-socket/zero-copy", test_zero_copy);
  g_test_add_func("/qio/channel-socket/sendfile", test_sendfile);
  int ret = g_test_run();
  rmdir(tmp_dir);
  g_free(tmp_dir);
  return ret;
}
