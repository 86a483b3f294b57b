/* QIOChannelCommand against real programs: cat, sh, head, sleep. */
#include "config.h"

#include "qio/channel-command.h"
#include "qio/coroutine.h"
#include "qio/error.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>

#include <vector>

namespace {

std::vector<guint8> pattern(gsize len) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + 7) % 251);
  return data;
}

qio::Task<GError *> feed(QIOChannel *ioc, const std::vector<guint8> *src) {
  GError *error = nullptr;
  if (!co_await qio::write_all(ioc, src->data(), src->size(), &error)) co_return error;
  /* End of input: cat finishes and closes its output. */
  qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_WRITE, &error);
  co_return error;
}

qio::Task<GError *> drain(QIOChannel *ioc, std::vector<guint8> *dst) {
  GError *error = nullptr;
  guint8 buf[65536];
  for (;;) {
    gssize n = co_await qio::read(ioc, buf, sizeof buf, &error);
    if (n < 0) co_return error;
    if (n == 0) co_return nullptr;
    dst->insert(dst->end(), buf, buf + n);
  }
}

/* 4 MiB through cat and back, writer and reader tasks on one loop. */
void test_cat_echo() {
  const char *argv[] = {"cat", nullptr};
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelCommand) cioc = qio_channel_command_new_spawn(argv, O_RDWR, &error);
  g_assert_no_error(error);
  QIOChannel *ioc = QIO_CHANNEL(cioc);
  g_assert_cmpstr(qio_channel_get_name(ioc), ==, "command cat");
  g_assert_cmpint(qio_channel_command_get_pid(cioc), >, 0);
  g_assert_true(qio_channel_set_blocking(ioc, FALSE, &error));
  auto src = pattern(4 * 1024 * 1024);
  std::vector<guint8> dst;
  GMainContext *context = g_main_context_new();
  int done = 0;
  auto check = [&done](GError *err) {
    g_assert_no_error(err);
    done++;
  };
  qio::spawn(feed(ioc, &src), check, context);
  qio::spawn(drain(ioc, &dst), check, context);
  while (done < 2) g_main_context_iteration(context, TRUE);
  g_main_context_unref(context);
  g_assert_cmpuint(dst.size(), ==, src.size());
  g_assert_true(dst == src);

  g_assert_true(qio_channel_close(ioc, &error));
  g_assert_no_error(error);
  int code = -1, sig = -1;
  g_assert_true(qio_channel_command_get_exit(cioc, &code, &sig));
  g_assert_cmpint(code, ==, 0);
  g_assert_cmpint(sig, ==, 0);
  g_assert_cmpint(qio_channel_write(ioc, "x", 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

/* A failing child: its end of output is an error naming it and its status. */
void test_exit_status() {
  const char *argv[] = {"sh", "-c", "echo partial; exit 3", nullptr};
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelCommand) cioc = qio_channel_command_new_spawn(argv, O_RDONLY, &error);
  g_assert_no_error(error);
  QIOChannel *ioc = QIO_CHANNEL(cioc);
  char buf[64];
  g_assert_true(qio_channel_read_all(ioc, buf, 8, &error));
  g_assert_cmpmem(buf, 8, "partial\n", 8);
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED);
  g_assert_nonnull(strstr(error->message, "sh -c echo partial; exit 3"));
  g_assert_nonnull(strstr(error->message, "status 3"));
  g_clear_error(&error);
  int code = -1, sig = -1;
  g_assert_true(qio_channel_command_get_exit(cioc, &code, &sig));
  g_assert_cmpint(code, ==, 3);
  g_assert_cmpint(sig, ==, 0);
  /* Close reports it too. */
  g_assert_false(qio_channel_close(ioc, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED);
  g_clear_error(&error);

  /* Read-only: writing is refused with a hint. */
  g_autoptr(QIOChannelCommand) ro = qio_channel_command_new_spawn(argv, O_RDONLY, &error);
  g_assert_cmpint(qio_channel_write(QIO_CHANNEL(ro), "x", 1, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull(strstr(error->message, "O_RDWR"));
}

/* A child that stops reading in the middle of the stream. */
void test_dies_mid_stream() {
  const char *argv[] = {"head", "-c", "10", nullptr};
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelCommand) cioc = qio_channel_command_new_spawn(argv, O_RDWR, &error);
  g_assert_no_error(error);
  QIOChannel *ioc = QIO_CHANNEL(cioc);
  auto src = pattern(1024 * 1024);
  g_assert_false(qio_channel_write_all(ioc, src.data(), src.size(), &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED);
  g_assert_nonnull(strstr(error->message, "head -c 10"));
  g_assert_nonnull(strstr(error->message, "status 0"));
  g_assert_nonnull(strstr(error->message, "without reading all its input"));
  g_clear_error(&error);
  char buf[16];
  g_assert_true(qio_channel_read_all(ioc, buf, 10, &error));
  g_assert_cmpmem(buf, 10, src.data(), 10);
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error(error);
  /* It exited by itself with 0: closing is no error. */
  g_assert_true(qio_channel_close(ioc, &error));
  g_assert_no_error(error);
}

/* Members of process group @pgid that are still running (zombies waiting
 * for init to reap them do not count). */
int group_running(GPid pgid) {
  int count = 0;
  g_autoptr(GDir) dir = g_dir_open("/proc", 0, nullptr);
  while (const char *name = g_dir_read_name(dir)) {
    g_autofree char *path = g_build_filename("/proc", name, "stat", nullptr);
    g_autofree char *stat = nullptr;
    if (!g_ascii_isdigit(name[0]) || !g_file_get_contents(path, &stat, nullptr, nullptr))
      continue;
    /* "pid (comm) state ppid pgrp ..."; comm may contain spaces. */
    const char *rest = strrchr(stat, ')');
    char state;
    int ppid, pgrp;
    if (rest && sscanf(rest + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
        state != 'Z')
      count++;
  }
  return count;
}

/* A child ignoring SIGTERM is killed (with its process group) and reaped
 * within the bounded time. */
void test_close_kills() {
  const char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30", nullptr};
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelCommand) cioc = qio_channel_command_new_spawn(argv, O_RDWR, &error);
  g_assert_no_error(error);
  qio_channel_command_set_close_timeout(cioc, 200);
  GPid pid = qio_channel_command_get_pid(cioc);
  g_usleep(100000); /* let sh install the trap and start sleep */
  gint64 start = g_get_monotonic_time();
  /* Killed on purpose: no error. */
  g_assert_true(qio_channel_close(QIO_CHANNEL(cioc), &error));
  g_assert_no_error(error);
  gint64 elapsed = g_get_monotonic_time() - start;
  g_test_message("close took %" G_GINT64_FORMAT " ms", elapsed / 1000);
  g_assert_cmpint(elapsed, >=, 400000);  /* waited, then SIGTERM, waited */
  g_assert_cmpint(elapsed, <, 3000000);
  int code = 0, sig = 0;
  g_assert_true(qio_channel_command_get_exit(cioc, &code, &sig));
  g_assert_cmpint(sig, ==, SIGKILL);
  g_assert_cmpint(code, ==, -1);
  /* Reaped, and sleep went with the group. */
  g_assert_cmpint(kill(pid, 0), ==, -1);
  for (int i = 0; i < 100 && group_running(pid) > 0; i++) g_usleep(10000);
  g_assert_cmpint(group_running(pid), ==, 0);
}

/* A child that exits on SIGTERM: close takes one timeout, not two. */
void test_close_terminates() {
  const char *argv[] = {"sleep", "30", nullptr};
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelCommand) cioc = qio_channel_command_new_spawn(argv, O_WRONLY, &error);
  g_assert_no_error(error);
  qio_channel_command_set_close_timeout(cioc, 200);
  gint64 start = g_get_monotonic_time();
  g_assert_true(qio_channel_close(QIO_CHANNEL(cioc), &error));
  g_assert_cmpint(g_get_monotonic_time() - start, <, 400000 + 1000000);
  int code = 0, sig = 0;
  g_assert_true(qio_channel_command_get_exit(cioc, &code, &sig));
  g_assert_cmpint(sig, ==, SIGTERM);
}

void test_spawn_error() {
  const char *argv[] = {"/nonexistent/qio-no-such-program", "arg", nullptr};
  g_autoptr(GError) error = nullptr;
  g_assert_null(qio_channel_command_new_spawn(argv, O_RDWR, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "/nonexistent/qio-no-such-program arg"));
}

/* Dropping the last reference of an open channel still reaps the child. */
void test_finalize_closes() {
  const char *argv[] = {"cat", nullptr};
  QIOChannelCommand *cioc = qio_channel_command_new_spawn(argv, O_RDWR, nullptr);
  g_assert_nonnull(cioc);
  GPid pid = qio_channel_command_get_pid(cioc);
  g_object_unref(cioc);
  g_assert_cmpint(kill(pid, 0), ==, -1);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/channel-command/cat-echo", test_cat_echo);
  g_test_add_func("/qio/channel-command/exit-status", test_exit_status);
  g_test_add_func("/qio/channel-command/dies-mid-stream", test_dies_mid_stream);
  g_test_add_func("/qio/channel-command/close-kills", test_close_kills);
  g_test_add_func("/qio/channel-command/close-terminates", test_close_terminates);
  g_test_add_func("/qio/channel-command/spawn-error", test_spawn_error);
  g_test_add_func("/qio/channel-command/finalize-closes", test_finalize_closes);
  return g_test_run();
}
