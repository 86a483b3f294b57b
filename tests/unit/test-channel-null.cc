/* QIOChannelNull: EOF on read, everything swallowed on write, always
 * ready, errors after close. */
#include "config.h"

#include "qio/channel-null.h"
#include "qio/coroutine.h"

namespace {

gboolean record_condition(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  *static_cast<GIOCondition *>(data) = cond;
  return G_SOURCE_REMOVE;
}

qio::Task<int> read_eof(QIOChannel *ioc, GError **error) {
  char buf[8];
  co_return co_await qio::read_all_eof(ioc, buf, sizeof buf, error);
}

void test_semantics() {
  g_autoptr(QIOChannelNull) nioc = qio_channel_null_new();
  QIOChannel *ioc = QIO_CHANNEL(nioc);
  g_autoptr(GError) error = nullptr;
  char buf[16] = "unchanged";
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, 0);
  g_assert_cmpstr(buf, ==, "unchanged");
  g_assert_cmpint(qio_channel_readv_all_eof(ioc, nullptr, 0, &error), ==, 1);
  struct iovec iov = {buf, 4};
  g_assert_cmpint(qio_channel_readv_all_eof(ioc, &iov, 1, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpint(qio::block_on(read_eof(ioc, &error)), ==, 0);
  g_assert_no_error(error);

  static char big[1 << 20];
  struct iovec wiov[3] = {{big, sizeof big}, {buf, 0}, {buf, 7}};
  g_assert_cmpint(qio_channel_writev(ioc, wiov, 3, &error), ==, (1 << 20) + 7);
  g_assert_true(qio_channel_write_all(ioc, big, sizeof big, &error));
  g_assert_no_error(error);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, &error));

  GMainContext *context = g_main_context_new();
  GIOCondition fired = static_cast<GIOCondition>(0);
  qio_channel_add_watch_full(ioc, static_cast<GIOCondition>(G_IO_IN | G_IO_OUT | G_IO_PRI),
                             record_condition, &fired, nullptr, context);
  g_assert_true(g_main_context_iteration(context, FALSE));
  g_assert_cmpint(fired, ==, G_IO_IN | G_IO_OUT);
  g_main_context_unref(context);

  g_assert_true(qio_channel_close(ioc, &error));
  g_assert_cmpint(qio_channel_read(ioc, buf, 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_nonnull(strstr(error->message, "QIOChannelNull"));
  g_clear_error(&error);
  g_assert_cmpint(qio_channel_write(ioc, buf, 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);
  g_assert_false(qio_channel_close(ioc, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);
  g_assert_false(qio_channel_set_blocking(ioc, TRUE, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/channel-null/semantics", test_semantics);
  return g_test_run();
}
