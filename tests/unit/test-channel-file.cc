/* QIOChannelFile: paths, pipes, ptys, seek, blocking and non-blocking I/O. */
#include "config.h"

#include "qio/channel-file.h"

#include <glib/gstdio.h>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

namespace {

std::vector<guint8> pattern(gsize len) {
  std::vector<guint8> data(len);
  for (gsize i = 0; i < len; i++) data[i] = static_cast<guint8>((i * 131 + 7) % 251);
  return data;
}

/* Splits [data, data + total) into @count uneven iovecs. */
std::vector<struct iovec> split(guint8 *data, gsize total, gsize count, gsize seed) {
  std::vector<struct iovec> iov;
  gsize off = 0;
  for (gsize i = 0; i < count; i++) {
    gsize len = i + 1 == count ? total - off
                               : std::min<gsize>(total - off, 1 + (i * seed) % (2 * total / count));
    iov.push_back({data + off, len});
    off += len;
  }
  g_assert_cmpuint(off, ==, total);
  return iov;
}

struct TempDir {
  char *path;
  TempDir() : path(g_dir_make_tmp("qio-file-XXXXXX", nullptr)) { g_assert_nonnull(path); }
  ~TempDir() {
    g_autoptr(GDir) dir = g_dir_open(path, 0, nullptr);
    while (const char *name = dir ? g_dir_read_name(dir) : nullptr) {
      g_autofree char *file = g_build_filename(path, name, nullptr);
      g_unlink(file);
    }
    g_rmdir(path);
    g_free(path);
  }
};

void test_path_and_seek() {
  TempDir tmp;
  g_autofree char *file = g_build_filename(tmp.path, "data", nullptr);
  g_autoptr(GError) error = nullptr;
  auto src = pattern(100000);
  {
    g_autoptr(QIOChannelFile) fioc =
        qio_channel_file_new_path(file, O_WRONLY | O_CREAT | O_TRUNC, 0600, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(qio_channel_get_name(QIO_CHANNEL(fioc)), ==, file);
    auto iov = split(src.data(), src.size(), 50, 37);
    g_assert_true(qio_channel_writev_all(QIO_CHANNEL(fioc), iov.data(), iov.size(), &error));
    g_assert_no_error(error);
    g_assert_true(qio_channel_close(QIO_CHANNEL(fioc), &error));
    g_assert_cmpint(qio_channel_file_get_fd(fioc), ==, -1);
  }
  g_autoptr(QIOChannelFile) fioc = qio_channel_file_new_path(file, O_RDONLY, 0, &error);
  g_assert_no_error(error);
  QIOChannel *ioc = QIO_CHANNEL(fioc);
  g_assert_cmpint(qio_channel_file_seek(fioc, 0, SEEK_END, &error), ==, 100000);
  g_assert_cmpint(qio_channel_file_seek(fioc, 5000, SEEK_SET, &error), ==, 5000);
  guint8 buf[100];
  g_assert_true(qio_channel_read_all(ioc, buf, sizeof buf, &error));
  g_assert_cmpmem(buf, sizeof buf, src.data() + 5000, sizeof buf);
  g_assert_cmpint(qio_channel_file_seek(fioc, -10, SEEK_CUR, &error), ==, 5090);
  g_assert_cmpint(qio_channel_file_seek(fioc, -1, SEEK_SET, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, file));
  g_clear_error(&error);

  /* Reading the rest, then the end of file. */
  g_assert_cmpint(qio_channel_file_seek(fioc, 99990, SEEK_SET, &error), ==, 99990);
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, 10);
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error(error);

  /* A regular file is always ready. */
  GMainContext *context = g_main_context_new();
  GIOCondition fired = static_cast<GIOCondition>(0);
  GSource *source = qio_channel_create_watch(ioc, static_cast<GIOCondition>(G_IO_IN | G_IO_OUT));
  g_source_set_callback(
      source,
      G_SOURCE_FUNC(+[](QIOChannel *, GIOCondition cond, gpointer data) noexcept -> gboolean {
        *static_cast<GIOCondition *>(data) = cond;
        return G_SOURCE_REMOVE;
      }),
      &fired, nullptr);
  g_source_attach(source, context);
  g_source_unref(source);
  g_assert_true(g_main_context_iteration(context, FALSE));
  g_assert_true(fired & G_IO_IN);
  g_main_context_unref(context);
}

/* More iovecs than IOV_MAX: short transfers that the _all helpers finish. */
void test_iov_max() {
  TempDir tmp;
  g_autofree char *file = g_build_filename(tmp.path, "many", nullptr);
  g_autoptr(GError) error = nullptr;
  auto src = pattern(3000 * 7);
  auto iov = split(src.data(), src.size(), 3000, 13);
  g_autoptr(QIOChannelFile) fioc =
      qio_channel_file_new_path(file, O_RDWR | O_CREAT | O_TRUNC, 0600, &error);
  g_assert_no_error(error);
  QIOChannel *ioc = QIO_CHANNEL(fioc);
  g_assert_cmpint(qio_channel_writev(ioc, iov.data(), iov.size(), &error), <, src.size());
  g_assert_no_error(error);
  g_assert_cmpint(qio_channel_file_seek(fioc, 0, SEEK_SET, &error), ==, 0);
  g_assert_true(qio_channel_writev_all(ioc, iov.data(), iov.size(), &error));
  g_assert_cmpint(qio_channel_file_seek(fioc, 0, SEEK_SET, &error), ==, 0);
  std::vector<guint8> dst(src.size());
  auto riov = split(dst.data(), dst.size(), 3000, 17);
  g_assert_true(qio_channel_readv_all(ioc, riov.data(), riov.size(), &error));
  g_assert_no_error(error);
  g_assert_true(dst == src);
}

void test_open_errors() {
  TempDir tmp;
  g_autoptr(GError) error = nullptr;
  g_autofree char *missing = g_build_filename(tmp.path, "no", "such-file", nullptr);
  g_assert_null(qio_channel_file_new_path(missing, O_RDONLY, 0, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, missing));
  g_clear_error(&error);

  /* A directory cannot be opened for writing. */
  g_assert_null(qio_channel_file_new_path(tmp.path, O_WRONLY, 0, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY);
  g_assert_nonnull(strstr(error->message, tmp.path));
  g_clear_error(&error);

  /* O_EXCL on an existing file. */
  g_autofree char *file = g_build_filename(tmp.path, "exists", nullptr);
  g_assert_true(g_file_set_contents(file, "x", 1, nullptr));
  g_assert_null(qio_channel_file_new_path(file, O_WRONLY | O_CREAT | O_EXCL, 0600, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_assert_nonnull(strstr(error->message, file));
}

struct Transfer {
  QIOChannel *ioc;
  std::vector<guint8> *data;
  gsize niov;
  gboolean ok;
  GError *error;
};

gpointer writer_thread(gpointer p) {
  auto *t = static_cast<Transfer *>(p);
  auto iov = split(t->data->data(), t->data->size(), t->niov, 97);
  t->ok = qio_channel_writev_all(t->ioc, iov.data(), iov.size(), &t->error);
  qio_channel_close(t->ioc, nullptr);
  return nullptr;
}

gpointer reader_thread(gpointer p) {
  auto *t = static_cast<Transfer *>(p);
  auto iov = split(t->data->data(), t->data->size(), t->niov, 61);
  t->ok = qio_channel_readv_all(t->ioc, iov.data(), iov.size(), &t->error);
  if (t->ok) {
    /* Then the clean end of file. */
    guint8 byte;
    gssize n;
    /* A non-blocking reader may get here before the writer has closed. */
    while ((n = qio_channel_read(t->ioc, &byte, 1, &t->error)) == QIO_CHANNEL_ERR_BLOCK)
      qio_channel_wait(t->ioc, G_IO_IN);
    t->ok = n == 0;
  }
  return nullptr;
}

/* 1 MiB through hundreds of iovecs over a pipe, a thread at each end. */
void pipe_threads(bool blocking) {
  QIOChannelFile *rd, *wr;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_file_new_pipe(&rd, &wr, &error));
  if (!blocking) {
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(rd), FALSE, &error));
    g_assert_true(qio_channel_set_blocking(QIO_CHANNEL(wr), FALSE, &error));
  }
  const gsize total = 1024 * 1024;
  auto src = pattern(total);
  std::vector<guint8> dst(total);
  Transfer w = {QIO_CHANNEL(wr), &src, 300, FALSE, nullptr};
  Transfer r = {QIO_CHANNEL(rd), &dst, 257, FALSE, nullptr};
  GThread *wt = g_thread_new("writer", writer_thread, &w);
  GThread *rt = g_thread_new("reader", reader_thread, &r);
  g_thread_join(wt);
  g_thread_join(rt);
  g_assert_no_error(w.error);
  g_assert_no_error(r.error);
  g_assert_true(w.ok);
  g_assert_true(r.ok);
  g_assert_cmpmem(dst.data(), total, src.data(), total);
  g_object_unref(rd);
  g_object_unref(wr);
}

void test_pipe_blocking() { pipe_threads(true); }
void test_pipe_nonblocking() { pipe_threads(false); }

gboolean record_condition(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  *static_cast<GIOCondition *>(data) = cond;
  return G_SOURCE_REMOVE;
}

/* Would-block is a return value; watches follow the pipe's state. */
void test_nonblocking_semantics() {
  QIOChannelFile *rd, *wr;
  g_autoptr(GError) error = nullptr;
  g_assert_true(qio_channel_file_new_pipe(&rd, &wr, &error));
  QIOChannel *r = QIO_CHANNEL(rd), *w = QIO_CHANNEL(wr);
  g_assert_true(qio_channel_set_blocking(r, FALSE, &error));
  g_assert_true(qio_channel_set_blocking(w, FALSE, &error));
  g_assert_nonnull(strstr(qio_channel_get_name(r), "read end"));
  char buf[4096];
  g_assert_cmpint(qio_channel_read(r, buf, sizeof buf, &error), ==, QIO_CHANNEL_ERR_BLOCK);
  g_assert_no_error(error);

  GMainContext *context = g_main_context_new();
  GIOCondition fired = static_cast<GIOCondition>(0);
  qio_channel_add_watch_full(r, G_IO_IN, record_condition, &fired, nullptr, context);
  g_assert_false(g_main_context_iteration(context, FALSE));
  g_assert_cmpint(fired, ==, 0);

  /* Fill the pipe until the write would block. */
  memset(buf, 'z', sizeof buf);
  gsize filled = 0;
  gssize n;
  while ((n = qio_channel_write(w, buf, sizeof buf, &error)) > 0) filled += n;
  g_assert_cmpint(n, ==, QIO_CHANNEL_ERR_BLOCK);
  g_assert_no_error(error);
  g_assert_cmpuint(filled, >=, 4096);
  g_assert_true(g_main_context_iteration(context, FALSE));
  g_assert_true(fired & G_IO_IN);

  GIOCondition out = static_cast<GIOCondition>(0);
  qio_channel_add_watch_full(w, G_IO_OUT, record_condition, &out, nullptr, context);
  g_assert_false(g_main_context_iteration(context, FALSE));
  g_assert_cmpint(out, ==, 0);
  while (filled > 0) {
    n = qio_channel_read(r, buf, sizeof buf, &error);
    g_assert_cmpint(n, >, 0);
    filled -= n;
  }
  g_assert_true(g_main_context_iteration(context, FALSE));
  g_assert_true(out & G_IO_OUT);
  g_main_context_unref(context);

  /* No reader: an error, not SIGPIPE. */
  g_assert_true(qio_channel_close(r, &error));
  g_assert_cmpint(qio_channel_write(w, "x", 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_nonnull(strstr(error->message, "write end"));
  g_clear_error(&error);

  /* A closed channel says so. */
  g_assert_cmpint(qio_channel_read(r, buf, 1, &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);
  g_assert_false(qio_channel_close(r, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error(&error);
  g_assert_false(qio_channel_set_blocking(r, TRUE, &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_object_unref(rd);
  g_object_unref(wr);
}

void test_fd() {
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  g_autoptr(QIOChannelFile) fioc = qio_channel_file_new_fd(fd);
  g_assert_cmpint(qio_channel_file_get_fd(fioc), ==, fd);
  g_autofree char *name = g_strdup_printf("fd %d", fd);
  g_assert_cmpstr(qio_channel_get_name(QIO_CHANNEL(fioc)), ==, name);
  char buf[64];
  memset(buf, 1, sizeof buf);
  g_assert_true(qio_channel_read_all(QIO_CHANNEL(fioc), buf, sizeof buf, nullptr));
  for (char c : buf) g_assert_cmpint(c, ==, 0);
  /* Finalize closes the descriptor. */
  g_clear_object(&fioc);
  g_assert_cmpint(fcntl(fd, F_GETFD), ==, -1);
}

void test_pty() {
  g_autoptr(GError) error = nullptr;
  g_autofree char *slave = nullptr;
  g_autoptr(QIOChannelFile) master = qio_channel_file_new_pty(&slave, &error);
  g_assert_no_error(error);
  g_assert_true(g_str_has_prefix(slave, "/dev/pts/"));
  QIOChannel *ioc = QIO_CHANNEL(master);
  g_assert_nonnull(strstr(qio_channel_get_name(ioc), slave));
  int sfd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint(sfd, >=, 0);

  /* Raw mode: no echo, "\n" is not turned into "\r\n". */
  g_assert_true(qio_channel_write_all(ioc, "to slave\n", 9, &error));
  char buf[32];
  gsize got = 0;
  while (got < 9) {
    ssize_t n = read(sfd, buf + got, sizeof buf - got);
    g_assert_cmpint(n, >, 0);
    got += n;
  }
  g_assert_cmpmem(buf, got, "to slave\n", 9);
  g_assert_cmpint(write(sfd, "to master\n", 10), ==, 10);
  g_assert_true(qio_channel_read_all(ioc, buf, 10, &error));
  g_assert_cmpmem(buf, 10, "to master\n", 10);

  /* The slave hangs up: end of file, not an error. */
  close(sfd);
  g_assert_cmpint(qio_channel_read(ioc, buf, sizeof buf, &error), ==, 0);
  g_assert_no_error(error);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qio/channel-file/path-and-seek", test_path_and_seek);
  g_test_add_func("/qio/channel-file/iov-max", test_iov_max);
  g_test_add_func("/qio/channel-file/open-errors", test_open_errors);
  g_test_add_func("/qio/channel-file/pipe-threads-blocking", test_pipe_blocking);
  g_test_add_func("/qio/channel-file/pipe-threads-nonblocking", test_pipe_nonblocking);
  g_test_add_func("/qio/channel-file/nonblocking-semantics", test_nonblocking_semantics);
  g_test_add_func("/qio/channel-file/fd", test_fd);
  g_test_add_func("/qio/channel-file/pty", test_pty);
  return g_test_run();
}
