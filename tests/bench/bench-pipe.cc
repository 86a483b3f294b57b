/*
 * Pipe throughput of the local channels against raw system calls measured
 * in the same run:
 *   pipe-file-threads   QIOChannelFile writev_all/read_all, a thread per end,
 *                       against raw writev()/read() loops in two threads;
 *   pipe-coroutine      writer and reader qio::Tasks on one non-blocking
 *                       context, against a raw poll() loop doing the same;
 *   pipe-command-cat    QIOChannelCommand through `cat` (two pipes and a
 *                       process), against raw pipes through `cat`.
 * Usage: bench-pipe [MiB per run, default 256; three runs per side and case]
 */
#include "config.h"

#include "qio/channel-command.h"
#include "qio/channel-file.h"
#include "qio/coroutine.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr gsize kChunk = 128 * 1024;
gsize total_bytes;

double gib_per_s(gint64 usec) {
  return static_cast<double>(total_bytes) / (1024.0 * 1024 * 1024) / (usec / 1e6);
}

void report(const char *name, double value, double baseline) {
  printf("bench name=%s value=%.3f unit=GiB/s baseline=%.3f ratio=%.3f\n", name, value,
         baseline, value / baseline);
  fflush(stdout);
}

/* Runs a reader and a writer thread; returns the microseconds taken. */
gint64 run_pair(GThreadFunc reader, gpointer r, GThreadFunc writer, gpointer w) {
  gint64 start = g_get_monotonic_time();
  GThread *rt = g_thread_new("reader", reader, r);
  GThread *wt = g_thread_new("writer", writer, w);
  g_thread_join(wt);
  g_thread_join(rt);
  return g_get_monotonic_time() - start;
}

/* --- raw baselines --- */

struct RawEnd {
  int fd;
};

gpointer raw_writer(gpointer p) {
  int fd = static_cast<RawEnd *>(p)->fd;
  std::vector<char> buf(kChunk, 'q');
  for (gsize done = 0; done < total_bytes;) {
    struct iovec iov = {buf.data(), std::min(kChunk, total_bytes - done)};
    ssize_t n = writev(fd, &iov, 1);
    if (n <= 0) abort();
    done += static_cast<gsize>(n);
  }
  close(fd);
  return nullptr;
}

gpointer raw_reader(gpointer p) {
  int fd = static_cast<RawEnd *>(p)->fd;
  std::vector<char> buf(kChunk);
  while (read(fd, buf.data(), kChunk) > 0) {
  }
  return nullptr;
}

gint64 raw_threads() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) abort();
  RawEnd r = {fds[0]}, w = {fds[1]};
  gint64 elapsed = run_pair(raw_reader, &r, raw_writer, &w);
  close(fds[0]);
  return elapsed;
}

/* The same through `cat`: two pipes and a process in between. */
gint64 raw_cat() {
  const char *argv[] = {"cat", nullptr};
  GPid pid;
  int in, out;
  if (!g_spawn_async_with_pipes(nullptr, const_cast<char **>(argv), nullptr,
                                static_cast<GSpawnFlags>(G_SPAWN_SEARCH_PATH |
                                                         G_SPAWN_DO_NOT_REAP_CHILD),
                                nullptr, nullptr, &pid, &in, &out, nullptr, nullptr))
    abort();
  RawEnd r = {out}, w = {in};
  gint64 elapsed = run_pair(raw_reader, &r, raw_writer, &w);
  close(out);
  waitpid(pid, nullptr, 0);
  return elapsed;
}

/* Both ends in one thread, non-blocking, driven by poll(). */
gint64 raw_poll_loop() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) abort();
  std::vector<char> out(kChunk, 'q'), in(kChunk);
  gsize written = 0, got = 0;
  gint64 start = g_get_monotonic_time();
  while (got < total_bytes) {
    struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLOUT, 0}};
    poll(pfd, written < total_bytes ? 2 : 1, -1);
    if (written < total_bytes && (pfd[1].revents & POLLOUT)) {
      ssize_t n = write(fds[1], out.data(), std::min(kChunk, total_bytes - written));
      if (n > 0) written += static_cast<gsize>(n);
    }
    if (pfd[0].revents & POLLIN) {
      ssize_t n = read(fds[0], in.data(), kChunk);
      if (n > 0) got += static_cast<gsize>(n);
    }
  }
  gint64 elapsed = g_get_monotonic_time() - start;
  close(fds[0]);
  close(fds[1]);
  return elapsed;
}

/* --- qio --- */

struct QioEnd {
  QIOChannel *ioc;
};

gpointer qio_writer(gpointer p) {
  QIOChannel *ioc = static_cast<QioEnd *>(p)->ioc;
  std::vector<char> buf(kChunk, 'q');
  for (gsize done = 0; done < total_bytes; done += kChunk) {
    if (!qio_channel_write_all(ioc, buf.data(), std::min(kChunk, total_bytes - done),
                               nullptr))
      abort();
  }
  /* The reader's end of file: the write end closes (file) or the child's
   * stdin does (command). */
  if (qio_channel_has_feature(ioc, QIO_CHANNEL_FEATURE_SHUTDOWN))
    qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_WRITE, nullptr);
  else
    qio_channel_close(ioc, nullptr);
  return nullptr;
}

gpointer qio_reader(gpointer p) {
  QIOChannel *ioc = static_cast<QioEnd *>(p)->ioc;
  std::vector<char> buf(kChunk);
  while (qio_channel_read(ioc, buf.data(), kChunk, nullptr) > 0) {
  }
  return nullptr;
}

gint64 qio_threads() {
  QIOChannelFile *rd, *wr;
  if (!qio_channel_file_new_pipe(&rd, &wr, nullptr)) abort();
  QioEnd r = {QIO_CHANNEL(rd)}, w = {QIO_CHANNEL(wr)};
  gint64 elapsed = run_pair(qio_reader, &r, qio_writer, &w);
  g_object_unref(rd);
  g_object_unref(wr);
  return elapsed;
}

qio::Task<void> co_writer(QIOChannel *ioc) {
  std::vector<char> buf(kChunk, 'q');
  for (gsize done = 0; done < total_bytes; done += kChunk) {
    if (!co_await qio::write_all(ioc, buf.data(), std::min(kChunk, total_bytes - done),
                                 nullptr))
      abort();
  }
}

qio::Task<void> co_reader(QIOChannel *ioc) {
  std::vector<char> buf(kChunk);
  for (gsize got = 0; got < total_bytes;) {
    gssize n = co_await qio::read(ioc, buf.data(), kChunk, nullptr);
    if (n <= 0) abort();
    got += static_cast<gsize>(n);
  }
}

gint64 qio_coroutines() {
  QIOChannelFile *rd, *wr;
  if (!qio_channel_file_new_pipe(&rd, &wr, nullptr)) abort();
  qio_channel_set_blocking(QIO_CHANNEL(rd), FALSE, nullptr);
  qio_channel_set_blocking(QIO_CHANNEL(wr), FALSE, nullptr);
  GMainContext *context = g_main_context_new();
  int done = 0;
  gint64 start = g_get_monotonic_time();
  qio::spawn(co_writer(QIO_CHANNEL(wr)), [&done] { done++; }, context);
  qio::spawn(co_reader(QIO_CHANNEL(rd)), [&done] { done++; }, context);
  while (done < 2) g_main_context_iteration(context, TRUE);
  gint64 elapsed = g_get_monotonic_time() - start;
  g_main_context_unref(context);
  g_object_unref(rd);
  g_object_unref(wr);
  return elapsed;
}

gint64 qio_cat() {
  const char *argv[] = {"cat", nullptr};
  QIOChannelCommand *cioc = qio_channel_command_new_spawn(argv, O_RDWR, nullptr);
  if (!cioc) abort();
  QioEnd end = {QIO_CHANNEL(cioc)};
  gint64 elapsed = run_pair(qio_reader, &end, qio_writer, &end);
  qio_channel_close(QIO_CHANNEL(cioc), nullptr);
  g_object_unref(cioc);
  return elapsed;
}

/* Alternates @subject and @baseline three times each and keeps the best
 * of each, so that noise from the shared machine hits both alike. */
void compare(const char *name, gint64 (*subject)(), gint64 (*baseline)()) {
  gint64 best_subject = G_MAXINT64, best_baseline = G_MAXINT64;
  for (int i = 0; i < 3; i++) {
    best_baseline = std::min(best_baseline, baseline());
    best_subject = std::min(best_subject, subject());
  }
  report(name, gib_per_s(best_subject), gib_per_s(best_baseline));
}

}  // namespace

int main(int argc, char **argv) {
  /* Per run; each case runs three times on each side. */
  total_bytes = static_cast<gsize>(argc > 1 ? atoi(argv[1]) : 256) * 1024 * 1024;
  compare("pipe-file-threads", qio_threads, raw_threads);
  compare("pipe-coroutine", qio_coroutines, raw_poll_loop);
  compare("pipe-command-cat", qio_cat, raw_cat);
  return 0;
}
