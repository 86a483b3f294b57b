/* The public headers are C: this program is compiled as C99 and links
 * against libqio from C, so a C++-only construct in a header breaks it. */
#include "config.h"

#include "tests/unit/public-headers.h"

static void test_c_channel(void) {
  QIOChannelBuffer *bioc = qio_channel_buffer_new(0);
  GError *error = NULL;
  g_assert_true(qio_channel_write_all(QIO_CHANNEL(bioc), "abc", 3, &error));
  g_assert_no_error(error);
  qio_channel_buffer_rewind(bioc);
  char buf[3];
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(bioc), buf, 3, &error));
  g_assert_cmpmem(buf, 3, "abc", 3);
  g_object_unref(bioc);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qio/c-api/channel", test_c_channel);
  return g_test_run();
}
