/* QIOChannelBuffer, and through it the generic QIOChannel helpers. */
#include "config.h"

#include "qio/channel-buffer.h"
#include "qio/error.h"

#include <vector>

static std::vector<guint8> pattern(gsize len) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + 7) % 251);
  return data;
}

/* 1 MiB through 300 iovecs of uneven sizes, out and back in. */
static void test_many_iovecs() {
  const gsize total = 1024 * 1024;
  auto src = pattern(total);
  std::vector<struct iovec> iov;
  gsize off = 0;
  for (int i = 0; off < total; i++) {
    gsize len = std::min<gsize>(total - off, 1 + (i * 97) % 7000);
    if (i == 299) len = total - off;
    iov.push_back({src.data() + off, len});
    off += len;
  }
  g_assert_cmpuint(iov.size(), ==, 300);

  g_autoptr(QIOChannelBuffer) bioc = qio_channel_buffer_new(0);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_writev_all(QIO_CHANNEL(bioc), iov.data(), iov.size(), &error));
  g_assert_no_error(error);
  gsize len;
  const guint8 *data = qio_channel_buffer_get_data(bioc, &len);
  g_assert_cmpuint(len, ==, total);
  g_assert_cmpmem(data, len, src.data(), total);

  qio_channel_buffer_rewind(bioc);
  std::vector<guint8> dst(total);
  std::vector<struct iovec> riov;
  for (off = 0; off < total; off += 4099)
    riov.push_back({dst.data() + off, std::min<gsize>(4099, total - off)});
  g_assert_cmpint(qio_channel_readv_all_eof(QIO_CHANNEL(bioc), riov.data(), riov.size(), &error),
                  ==, 1);
  g_assert_no_error(error);
  g_assert_cmpmem(dst.data(), total, src.data(), total);
  /* The caller's iovec array is not modified by the _all helpers. */
  g_assert_true(riov[0].iov_base == dst.data());
  g_assert_cmpuint(riov[0].iov_len, ==, 4099);
}

static void test_eof_semantics() {
  const char msg[] = "hello";
  g_autoptr(QIOChannelBuffer) bioc = qio_channel_buffer_new_with_data(msg, 5);
  g_autoptr(GError) error = nullptr;
  char buf[10];
  struct iovec iov = {buf, 5};
  g_assert_cmpint(qio_channel_readv_all_eof(QIO_CHANNEL(bioc), &iov, 1, &error), ==, 1);
  /* Clean EOF before the first byte: 0, no error. */
  g_assert_cmpint(qio_channel_readv_all_eof(QIO_CHANNEL(bioc), &iov, 1, &error), ==, 0);
  g_assert_no_error(error);
  /* The non-_eof variant turns that into an error. */
  g_assert_false(qio_channel_read_all(QIO_CHANNEL(bioc), buf, 5, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
  g_clear_error(&error);

  /* EOF in the middle of a message is always an error. */
  qio_channel_buffer_rewind(bioc);
  struct iovec big = {buf, 10};
  g_assert_cmpint(qio_channel_readv_all_eof(QIO_CHANNEL(bioc), &big, 1, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
  g_assert_nonnull(strstr(error->message, "QIOChannelBuffer"));
}

static void test_closed_and_unsupported() {
  g_autoptr(QIOChannelBuffer) bioc = qio_channel_buffer_new(16);
  QIOChannel *ioc = QIO_CHANNEL(bioc);
  g_autoptr(GError) error = nullptr;
  qio_channel_set_name(ioc, "test-buffer");
  g_assert_cmpstr(qio_channel_get_name(ioc), ==, "test-buffer");

  int fd = 0;
  struct iovec iov = {const_cast<char *>("x"), 1};
  g_assert_cmpint(qio_channel_writev_full(ioc, &iov, 1, &fd, 1, 0, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull(strstr(error->message, "test-buffer"));
  g_clear_error(&error);

  g_assert_cmpint(qio_channel_writev_full(ioc, &iov, 1, nullptr, 0,
                                          QIO_CHANNEL_WRITE_FLAG_ZERO_COPY, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_clear_error(&error);
  g_assert_false(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS));
  g_assert_true(qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SHUTDOWN));

  g_assert_true(qio_channel_close(ioc, &error));
  g_assert_cmpint(qio_channel_write(ioc, "x", 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

static gboolean on_ready(QIOChannel *ioc, GIOCondition cond, gpointer data) {
  auto *fired = static_cast<GMainContext **>(data);
  *fired = g_main_context_get_thread_default();
  g_assert_true(cond & G_IO_IN);
  g_assert_true(QIO_IS_CHANNEL_BUFFER(ioc));
  return G_SOURCE_REMOVE;
}

/* A watch fires in the context it was attached to, not the default one. */
static void test_watch_context() {
  g_autoptr(QIOChannelBuffer) bioc = qio_channel_buffer_new(0);
  g_autoptr(GMainContext) ctx = g_main_context_new();
  GMainContext *fired = nullptr;
  g_main_context_push_thread_default(ctx);
  qio_channel_add_watch_full(QIO_CHANNEL(bioc), G_IO_IN, on_ready, &fired, nullptr, ctx);
  g_assert_false(g_main_context_iteration(nullptr, FALSE));
  g_assert_null(fired);
  g_assert_true(g_main_context_iteration(ctx, FALSE));
  g_assert_true(fired == ctx);
  g_main_context_pop_thread_default(ctx);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/channel-buffer/many-iovecs", test_many_iovecs);
  g_test_add_func("/qio/channel-buffer/eof", test_eof_semantics);
  g_test_add_func("/qio/channel-buffer/closed-and-unsupported", test_closed_and_unsupported);
  g_test_add_func("/qio/channel-buffer/watch-context", test_watch_context);
  return g_test_run();
}
