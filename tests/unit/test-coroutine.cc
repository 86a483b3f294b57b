/* qio::Task, qio::spawn and the coroutine I/O awaitables over pipes. */
#include "config.h"

#include "qio/channel-file.h"
#include "qio/channel-socket.h"
#include "qio/coroutine.h"
#include "qio/error.h"

#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Pipe {
  QIOChannelFile *rd = nullptr;
  QIOChannelFile *wr = nullptr;
  explicit Pipe(bool nonblocking = true) {
    g_autoptr(GError) error = nullptr;
    g_assert_true(qio_channel_file_new_pipe(&rd, &wr, &error));
    g_assert_no_error(error);
    if (nonblocking) {
      g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(rd), FALSE, &error));
      g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(wr), FALSE, &error));
    }
  }
  ~Pipe() {
    g_object_unref(rd);
    g_object_unref(wr);
  }
  QIOChannel *r() const { return QIO_CHANNEL(rd); }
  QIOChannel *w() const { return QIO_CHANNEL(wr); }
};

std::vector<guint8> pattern(gsize len) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + 7) % 251);
  return data;
}

/* --- a task resumes in the context it was spawned on --- */

struct ContextProbe {
  GMainContext *context;
  GThread *loop_thread = nullptr;
  GThread *resumed_thread = nullptr;
  gboolean resumed_in_context = FALSE;
  GIOCondition fired = static_cast<GIOCondition>(0);
  char byte = 0;
  GMainLoop *loop;
};

qio::Task<void> wait_then_read(QIOChannel *ioc, ContextProbe *probe) {
  probe->fired = co_await qio::wait_io(ioc, G_IO_IN);
  probe->resumed_thread = g_thread_self();
  probe->resumed_in_context = g_main_context_is_owner(probe->context) &&
                              g_main_context_get_thread_default() == probe->context;
  g_autoptr(GError) error = nullptr;
  gssize n = co_await qio::read(ioc, &probe->byte, 1, &error);
  g_assert_no_error(error);
  g_assert_cmpint(n, ==, 1);
}

gpointer run_loop(gpointer data) {
  auto *probe = static_cast<ContextProbe *>(data);
  g_main_context_push_thread_default(probe->context);
  g_main_loop_run(probe->loop);
  g_main_context_pop_thread_default(probe->context);
  return nullptr;
}

void test_resume_in_context() {
  Pipe pipe;
  ContextProbe probe;
  probe.context = g_main_context_new();
  probe.loop = g_main_loop_new(probe.context, FALSE);
  /* The completion callback runs in the same context and stops its loop. */
  qio::spawn(wait_then_read(pipe.r(), &probe), [&probe] { g_main_loop_quit(probe.loop); },
             probe.context);
  probe.loop_thread = g_thread_new("loop", run_loop, &probe);
  g_usleep(20000);
  g_assert_null(probe.resumed_thread);  // suspended: nothing to read yet
  g_autoptr(GError) error = nullptr;
  g_assert_cmpint(qio_channel_write(pipe.w(), "x", 1, &error), ==, 1);
  g_thread_join(probe.loop_thread);
  g_assert_true(probe.resumed_thread == probe.loop_thread);
  g_assert_true(probe.resumed_in_context);
  g_assert_true(probe.fired & G_IO_IN);
  g_assert_cmpint(probe.byte, ==, 'x');
  g_main_loop_unref(probe.loop);
  g_main_context_unref(probe.context);
}

/* --- 1 MiB through a non-blocking pipe: writer and reader tasks --- */

qio::Task<bool> writer(QIOChannel *ioc, const std::vector<guint8> *src, GError **error) {
  /* Uneven iovecs, so that short writes split entries. */
  std::vector<struct iovec> iov;
  for (gsize off = 0, i = 0; off < src->size(); i++) {
    gsize len = std::min<gsize>(src->size() - off, 1 + (i * 977) % 9000);
    iov.push_back({const_cast<guint8 *>(src->data()) + off, len});
    off += len;
  }
  bool ok = co_await qio::writev_all(ioc, iov.data(), iov.size(), error);
  co_return ok;
}

qio::Task<bool> reader(QIOChannel *ioc, std::vector<guint8> *dst, GError **error) {
  gsize off = 0;
  while (off < dst->size()) {
    gsize len = std::min<gsize>(dst->size() - off, 10007);
    if (!co_await qio::read_all(ioc, dst->data() + off, len, error)) co_return false;
    off += len;
  }
  co_return true;
}

qio::Task<GError *> send(QIOChannel *wr, const std::vector<guint8> *src, int *finished) {
  GError *error = nullptr;
  if (!co_await writer(wr, src, &error)) co_return error;
  (*finished)++;
  co_return nullptr;
}

qio::Task<GError *> receive(QIOChannel *rd, std::vector<guint8> *dst, int *finished) {
  GError *error = nullptr;
  if (!co_await reader(rd, dst, &error)) co_return error;
  (*finished)++;
  co_return nullptr;
}

void test_pipe_1mib() {
  Pipe pipe;
  const gsize total = 1024 * 1024;
  auto src = pattern(total);
  std::vector<guint8> dst(total);
  int finished = 0;
  int callbacks = 0;
  GMainContext *context = g_main_context_new();
  auto done = [&callbacks](GError *error) {
    g_assert_no_error(error);
    callbacks++;
  };
  qio::spawn(send(pipe.w(), &src, &finished), done, context);
  qio::spawn(receive(pipe.r(), &dst, &finished), done, context);
  while (callbacks < 2) g_main_context_iteration(context, TRUE);
  g_assert_cmpint(finished, ==, 2);
  g_assert_cmpmem(dst.data(), total, src.data(), total);
  g_main_context_unref(context);
}

/* --- end of file --- */

qio::Task<void> eof_checks(QIOChannel *ioc) {
  g_autoptr(GError) error = nullptr;
  char buf[16];
  g_assert_cmpint(co_await qio::read_all_eof(ioc, buf, 5, &error), ==, 1);
  g_assert_cmpmem(buf, 5, "hello", 5);
  /* Clean EOF: 0 without error, for the _eof form and for a single read. */
  g_assert_cmpint(co_await qio::read_all_eof(ioc, buf, 5, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_cmpint(co_await qio::read(ioc, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error(error);
  g_assert_false(co_await qio::read_all(ioc, buf, 5, &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
}

qio::Task<void> eof_in_message(QIOChannel *ioc) {
  g_autoptr(GError) error = nullptr;
  char buf[16];
  struct iovec iov[2] = {{buf, 3}, {buf + 3, 10}};
  g_assert_cmpint(co_await qio::readv_all_eof(ioc, iov, 2, &error), ==, -1);
  g_assert_error(error, QIO_ERROR, QIO_ERROR_EOF);
  g_assert_nonnull(strstr(error->message, "middle"));
  g_assert_nonnull(strstr(error->message, "read end"));
}

void test_eof() {
  {
    Pipe pipe;
    g_assert_cmpint(qio_channel_write(pipe.w(), "hello", 5, nullptr), ==, 5);
    g_assert_true(qio_channel_close(pipe.w(), nullptr));
    qio::block_on(eof_checks(pipe.r()));
  }
  {
    /* The writer closes only later: the reader suspends, then sees EOF. */
    Pipe pipe;
    g_assert_cmpint(qio_channel_write(pipe.w(), "hello", 5, nullptr), ==, 5);
    GMainContext *context = g_main_context_new();
    bool done = false;
    qio::spawn(eof_in_message(pipe.r()), [&done] { done = true; }, context);
    g_main_context_iteration(context, FALSE);
    g_main_context_iteration(context, FALSE);
    g_assert_false(done);
    g_assert_true(qio_channel_close(pipe.w(), nullptr));
    while (!done) g_main_context_iteration(context, TRUE);
    g_main_context_unref(context);
  }
}

/* --- errors and exceptions travel up the chain of tasks --- */

qio::Task<bool> write_lots(QIOChannel *ioc, GError **error) {
  static const std::vector<guint8> data = pattern(256 * 1024);
  co_return co_await qio::write_all(ioc, data.data(), data.size(), error);
}

qio::Task<GError *> write_outer(QIOChannel *ioc) {
  GError *error = nullptr;
  if (co_await write_lots(ioc, &error)) co_return nullptr;
  g_prefix_error(&error, "outer: ");
  co_return error;
}

qio::Task<int> thrower() {
  co_await qio::sleep(1);
  throw std::runtime_error("boom");
}

qio::Task<std::string> catcher() {
  try {
    co_await thrower();
  } catch (const std::runtime_error &e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "not thrown";
}

void test_errors() {
  Pipe pipe;
  /* The reader goes away while the writer is suspended on a full pipe. */
  g_autoptr(GError) error = nullptr;
  GMainContext *context = g_main_context_new();
  GError *result = nullptr;
  bool done = false;
  qio::spawn(write_outer(pipe.w()),
             [&](GError *err) {
               result = err;
               done = true;
             },
             context);
  for (int i = 0; i < 3; i++) g_main_context_iteration(context, FALSE);
  g_assert_false(done);
  g_assert_true(qio_channel_close(pipe.r(), nullptr));
  while (!done) g_main_context_iteration(context, TRUE);
  g_assert_error(result, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_true(g_str_has_prefix(result->message, "outer: "));
  g_assert_nonnull(strstr(result->message, "write end"));
  g_error_free(result);
  g_main_context_unref(context);

  std::string caught = qio::block_on(catcher());
  g_assert_cmpstr(caught.c_str(), ==, "caught boom");
}

/* --- cancellation and time limits --- */

qio::Task<bool> read_with_deadline(QIOChannel *ioc, guint ms, bool *expired, GError **error) {
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  qio::CancelAfter deadline(cancellable, ms);
  char buf[4];
  bool ok = co_await qio::read_all(ioc, buf, sizeof buf, error, cancellable);
  *expired = deadline.expired();
  co_return ok;
}

qio::Task<GIOCondition> wait_cancelled(QIOChannel *ioc, GCancellable *cancellable) {
  co_return co_await qio::wait_io(ioc, G_IO_IN, nullptr, cancellable);
}

qio::Task<gint64> sleeper(guint ms) {
  gint64 start = g_get_monotonic_time();
  co_await qio::sleep(ms);
  co_return g_get_monotonic_time() - start;
}

void test_cancel() {
  Pipe pipe;
  g_autoptr(GError) error = nullptr;
  bool expired = false;
  gint64 start = g_get_monotonic_time();
  g_assert_false(qio::block_on(read_with_deadline(pipe.r(), 50, &expired, &error)));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_nonnull(strstr(error->message, "read end"));
  g_assert_true(expired);
  g_assert_cmpint(g_get_monotonic_time() - start, >=, 50000);
  g_clear_error(&error);

  /* Data in time: the deadline does not fire. */
  g_assert_cmpint(qio_channel_write(pipe.w(), "abcd", 4, nullptr), ==, 4);
  g_assert_true(qio::block_on(read_with_deadline(pipe.r(), 5000, &expired, &error)));
  g_assert_no_error(error);
  g_assert_false(expired);

  /* A cancellable cancelled beforehand fails without waiting. */
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_cancellable_cancel(cancellable);
  g_assert_cmpint(qio::block_on(wait_cancelled(pipe.r(), cancellable)), ==, 0);

  g_assert_cmpint(qio::block_on(sleeper(30)), >=, 30000);
}

/* --- blocking channels never suspend --- */

qio::Task<bool> echo_blocking(QIOChannel *rd, QIOChannel *wr, GError **error) {
  if (!co_await qio::write_all(wr, "ping", 4, error)) co_return false;
  char buf[4];
  if (!co_await qio::read_all(rd, buf, 4, error)) co_return false;
  co_return memcmp(buf, "ping", 4) == 0;
}

void test_blocking() {
  Pipe pipe(false);
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio::block_on(echo_blocking(pipe.r(), pipe.w(), &error)));
  g_assert_no_error(error);
}

/* A task spawned on a context that is destroyed before it runs is freed
 * (ASan checks the frame does not leak). */
qio::Task<void> never_run(bool *ran) {
  *ran = true;
  co_return;
}

void test_context_destroyed() {
  bool ran = false;
  GMainContext *context = g_main_context_new();
  qio::spawn(never_run(&ran), context);
  g_main_context_unref(context);
  g_assert_false(ran);
}

/* --- descriptors travel with the data --- */

qio::Task<bool> send_fd(QIOChannel *ioc, int fd, GError **error) {
  struct iovec iov[2] = {{const_cast<char *>("fd"), 2}, {const_cast<char *>("!"), 1}};
  co_return co_await qio::writev_full_all(ioc, iov, 2, &fd, 1, 0, error);
}

qio::Task<int> recv_fd(QIOChannel *ioc, int **fds, gsize *nfds, GError **error) {
  char buf[3];
  struct iovec iov = {buf, sizeof buf};
  int ret = co_await qio::readv_full_all_eof(ioc, &iov, 1, fds, nfds, error);
  if (ret == 1) g_assert_cmpmem(buf, 3, "fd!", 3);
  co_return ret;
}

qio::Task<bool> recv_fd_bool(QIOChannel *ioc, int **fds, gsize *nfds, GError **error) {
  char buf[3];
  struct iovec iov = {buf, sizeof buf};
  co_return co_await qio::readv_full_all(ioc, &iov, 1, fds, nfds, error);
}

void test_fd_passing() {
  QIOChannelSocket *a, *b;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_socket_new_pair(&a, &b, &error));
  QIOChannel *ca = QIO_CHANNEL(a), *cb = QIO_CHANNEL(b);
  g_assert_true(qio_channel_set_blocking(ca, FALSE, &error));
  g_assert_true(qio_channel_set_blocking(cb, FALSE, &error));
  Pipe pipe;

  /* The receiver waits first, so it suspends; then the sender runs. */
  GMainContext *context = g_main_context_new();
  int *fds = nullptr;
  gsize nfds = 0;
  int received = -2;
  bool sent = false;
  qio::spawn(recv_fd(cb, &fds, &nfds, &error), [&received](int r) { received = r; }, context);
  g_main_context_iteration(context, FALSE);
  g_assert_cmpint(received, ==, -2);
  qio::spawn(send_fd(ca, qio_channel_file_get_fd(pipe.wr), &error),
             [&sent](bool ok) { sent = ok; }, context);
  while (received == -2 || !sent) g_main_context_iteration(context, TRUE);
  g_assert_no_error(error);
  g_assert_cmpint(received, ==, 1);
  g_assert_cmpuint(nfds, ==, 1);
  /* The received descriptor is the pipe's write end. */
  g_assert_cmpint(write(fds[0], "via", 3), ==, 3);
  char buf[3];
  g_assert_cmpint(qio_channel_read(pipe.r(), buf, 3, &error), ==, 3);
  g_assert_cmpmem(buf, 3, "via", 3);
  close(fds[0]);
  g_free(fds);

  /* The peer closes before anything: clean EOF, no descriptors. */
  g_assert_true(qio_channel_close(ca, &error));
  fds = nullptr;
  g_assert_cmpint(qio::block_on(recv_fd(cb, &fds, &nfds, &error), context), ==, 0);
  g_assert_no_error(error);
  g_assert_null(fds);
  g_assert_cmpuint(nfds, ==, 0);
  g_main_context_unref(context);

  /* A pipe cannot carry descriptors: a clear error, not a hang. */
  g_assert_false(qio::block_on(recv_fd_bool(pipe.r(), &fds, &nfds, &error)));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull(strstr(error->message, "read end"));
  g_object_unref(a);
  g_object_unref(b);
}

/* nullptr means the global default context, for spawn with and without
 * a completion callback. */
void test_default_context() {
  bool ran = false, done = false;
  qio::spawn(never_run(&ran), nullptr);
  qio::spawn(sleeper(1), [&done](gint64) { done = true; });
  while (!ran || !done) g_main_context_iteration(nullptr, TRUE);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/coroutine/resume-in-context", test_resume_in_context);
  g_test_add_func("/qio/coroutine/pipe-1mib", test_pipe_1mib);
  g_test_add_func("/qio/coroutine/eof", test_eof);
  g_test_add_func("/qio/coroutine/errors", test_errors);
  g_test_add_func("/qio/coroutine/cancel", test_cancel);
  g_test_add_func("/qio/coroutine/blocking", test_blocking);
  g_test_add_func("/qio/coroutine/context-destroyed", test_context_destroyed);
  g_test_add_func("/qio/coroutine/default-context", test_default_context);
  g_test_add_func("/qio/coroutine/fd-passing", test_fd_passing);
  return g_test_run();
}
