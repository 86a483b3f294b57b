#include "config.h"

#include "qio/channel-command.h"
#include "qio/channel-file.h"
#include "qio/channel-watch.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <initializer_list>

struct _QIOChannelCommand {
  QIOChannel parent_instance;
  GPid pid;
  int pidfd;             /* readable once the child exited; -1 if unsupported */
  GMutex reap_lock;      /* a reader and a writer thread may both reap */
  int wait_status;
  gboolean reaped;
  char *command;         /* argv joined, for messages */
  QIOChannelFile *from;  /* the child's stdout; nullptr when write-only */
  QIOChannelFile *to;    /* the child's stdin; nullptr when read-only */
  guint close_timeout_ms;
  gboolean closed;
  gboolean signalled;    /* qio sent SIGTERM/SIGKILL: that death is no error */
  gboolean eof_checked;  /* the child's status was looked at after EOF */
};

G_DEFINE_FINAL_TYPE(QIOChannelCommand, qio_channel_command, QIO_TYPE_CHANNEL)

/* Reaps the child if it has exited; TRUE once it has. */
static gboolean command_reap(QIOChannelCommand *cioc) {
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&cioc->reap_lock);
  if (cioc->reaped) return TRUE;
  pid_t ret;
  do {
    ret = waitpid(cioc->pid, &cioc->wait_status, WNOHANG);
  } while (ret < 0 && errno == EINTR);
  if (ret == 0) return FALSE;
  /* ECHILD: somebody else (a SIGCHLD handler of the program) reaped it;
   * its status is lost. */
  if (ret < 0) cioc->wait_status = -1;
  cioc->reaped = TRUE;
  return TRUE;
}

/* Waits up to @ms for the child to exit and reaps it; TRUE when it has.
 * Until then the child is not reaped, so its pid (and process group)
 * cannot be reused and signalling it is safe. */
static gboolean command_wait(QIOChannelCommand *cioc, guint ms) {
  gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(ms) * 1000;
  while (!command_reap(cioc)) {
    gint64 left_ms = (deadline - g_get_monotonic_time() + 999) / 1000;
    if (left_ms <= 0) return FALSE;
    if (cioc->pidfd >= 0) {
      struct pollfd pfd = {cioc->pidfd, POLLIN, 0};
      poll(&pfd, 1, static_cast<int>(left_ms));
    } else {
      /* Kernels before 5.3 have no pidfd: poll the status. */
      g_usleep(static_cast<gulong>(MIN(left_ms, 5)) * 1000);
    }
  }
  return TRUE;
}

/* Sets @error when the child failed on its own; FALSE then. */
static gboolean command_check_status(QIOChannelCommand *cioc, gboolean writing,
                                     GError **error) {
  int code, sig;
  if (!qio_channel_command_get_exit(cioc, &code, &sig)) return TRUE;
  if (sig && !cioc->signalled) {
    if (writing)
      g_set_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED,
                  _("Command '%s' was killed by signal %d (%s) without reading all its input"),
                  cioc->command, sig, g_strsignal(sig));
    else
      g_set_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED,
                  _("Command '%s' was killed by signal %d (%s)"), cioc->command, sig,
                  g_strsignal(sig));
    return FALSE;
  }
  if (writing && !sig) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED,
                _("Command '%s' exited with status %d without reading all its input"),
                cioc->command, code);
    return FALSE;
  }
  if (code > 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED,
                _("Command '%s' exited with status %d; see its error output"), cioc->command,
                code);
    return FALSE;
  }
  return TRUE;
}

static gboolean command_check_open(QIOChannelCommand *cioc, QIOChannelFile *pipe,
                                   gboolean writing, GError **error) {
  if (cioc->closed) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("Channel '%s' is closed"),
                qio_channel_get_name(QIO_CHANNEL(cioc)));
    return FALSE;
  }
  if (pipe) return TRUE;
  if (writing)
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Command '%s' was started read-only; start it with O_RDWR to write to it"),
                cioc->command);
  else
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Command '%s' was started write-only; start it with O_RDWR to read from it"),
                cioc->command);
  return FALSE;
}

/* How long a read at EOF or a failed write waits for the child's status. */
static constexpr guint kStatusWaitMs = 200;

static gssize command_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **,
                            gsize *, GError **error) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  if (!command_check_open(cioc, cioc->from, FALSE, error)) return -1;
  gssize len = qio_channel_readv(QIO_CHANNEL(cioc->from), iov, niov, error);
  if (len != 0) return len;
  /* The child closed its stdout, most likely by exiting: a failure must
   * not pass for a clean end of stream. */
  if (!cioc->eof_checked) {
    cioc->eof_checked = TRUE;
    command_wait(cioc, kStatusWaitMs);
  }
  return command_check_status(cioc, FALSE, error) ? 0 : -1;
}

static gssize command_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                             const int *, gsize, int, GError **error) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  if (!command_check_open(cioc, cioc->to, TRUE, error)) return -1;
  GError *local = nullptr;
  gssize len = qio_channel_writev(QIO_CHANNEL(cioc->to), iov, niov, &local);
  if (len != -1) return len;
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)) {
    g_clear_error(&local);
    command_wait(cioc, kStatusWaitMs);
    if (command_check_status(cioc, TRUE, error))
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                  _("Command '%s' closed its input before reading all of it"),
                  cioc->command);
    return -1;
  }
  g_propagate_error(error, local);
  return -1;
}

static gboolean command_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  if (!command_check_open(cioc, cioc->from ? cioc->from : cioc->to, FALSE, error)) return FALSE;
  for (QIOChannelFile *pipe : {cioc->from, cioc->to}) {
    if (pipe && qio_channel_file_get_fd(pipe) >= 0 &&
        !qio_channel_set_blocking(QIO_CHANNEL(pipe), enabled, error))
      return FALSE;
  }
  return TRUE;
}

static GSource *command_create_watch(QIOChannel *ioc, GIOCondition condition) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  int rfd = cioc->from ? qio_channel_file_get_fd(cioc->from) : -1;
  int wfd = cioc->to ? qio_channel_file_get_fd(cioc->to) : -1;
  if (rfd >= 0 && wfd >= 0) return qio_channel_create_fd_pair_watch(ioc, rfd, wfd, condition);
  /* One direction only (never opened, shut down or closed). */
  return qio_channel_create_fd_watch(ioc, rfd >= 0 ? rfd : wfd, condition);
}

static void close_pipe(QIOChannelFile *pipe) {
  if (pipe && qio_channel_file_get_fd(pipe) >= 0) qio_channel_close(QIO_CHANNEL(pipe), nullptr);
}

static gboolean command_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  if (!command_check_open(cioc, cioc->from ? cioc->from : cioc->to, FALSE, error)) return FALSE;
  if (how & QIO_CHANNEL_SHUTDOWN_WRITE) close_pipe(cioc->to);
  if (how & QIO_CHANNEL_SHUTDOWN_READ) close_pipe(cioc->from);
  return TRUE;
}

static void command_signal(QIOChannelCommand *cioc, int sig) {
  /* Until qio reaps it, the child's pid (even a zombie's) cannot be
   * reused: signalling under the lock never hits a stranger. */
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&cioc->reap_lock);
  if (cioc->reaped) return;
  cioc->signalled = TRUE;
  /* The whole process group: a shell's children die with it. */
  if (kill(-cioc->pid, sig) < 0) kill(cioc->pid, sig);
}

static gboolean command_close(QIOChannel *ioc, GError **error) {
  auto *cioc = QIO_CHANNEL_COMMAND(ioc);
  if (!command_check_open(cioc, cioc->from ? cioc->from : cioc->to, FALSE, error)) return FALSE;
  cioc->closed = TRUE;
  close_pipe(cioc->to);
  close_pipe(cioc->from);
  if (!command_wait(cioc, cioc->close_timeout_ms)) {
    command_signal(cioc, SIGTERM);
    if (!command_wait(cioc, cioc->close_timeout_ms)) {
      command_signal(cioc, SIGKILL);
      if (!command_wait(cioc, 10 * cioc->close_timeout_ms + 1000)) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_CHILD_EXITED,
                    _("Command '%s' (pid %d) did not exit even after SIGKILL; "
                      "check for a process stuck in the kernel"),
                    cioc->command, static_cast<int>(cioc->pid));
        return FALSE;
      }
    }
  }
  return command_check_status(cioc, FALSE, error);
}

static void qio_channel_command_dispose(GObject *object) {
  auto *cioc = QIO_CHANNEL_COMMAND(object);
  if (cioc->pid > 0 && !cioc->closed) command_close(QIO_CHANNEL(cioc), nullptr);
  g_clear_object(&cioc->from);
  g_clear_object(&cioc->to);
  G_OBJECT_CLASS(qio_channel_command_parent_class)->dispose(object);
}

static void qio_channel_command_finalize(GObject *object) {
  auto *cioc = QIO_CHANNEL_COMMAND(object);
  if (cioc->pidfd >= 0) close(cioc->pidfd);
  g_mutex_clear(&cioc->reap_lock);
  g_free(cioc->command);
  G_OBJECT_CLASS(qio_channel_command_parent_class)->finalize(object);
}

static void qio_channel_command_class_init(QIOChannelCommandClass *klass) {
  G_OBJECT_CLASS(klass)->dispose = qio_channel_command_dispose;
  G_OBJECT_CLASS(klass)->finalize = qio_channel_command_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = command_readv;
  ioc_class->io_writev = command_writev;
  ioc_class->io_close = command_close;
  ioc_class->io_create_watch = command_create_watch;
  ioc_class->io_set_blocking = command_set_blocking;
  ioc_class->io_shutdown = command_shutdown;
}

static void qio_channel_command_init(QIOChannelCommand *cioc) {
  cioc->close_timeout_ms = 1000;
  cioc->pidfd = -1;
  g_mutex_init(&cioc->reap_lock);
  qio_channel_set_feature(QIO_CHANNEL(cioc), QIO_CHANNEL_FEATURE_SHUTDOWN);
}

static void child_setup(gpointer) noexcept {
  /* Runs between fork and exec: async-signal-safe calls only. */
  setpgid(0, 0);
}

static QIOChannelFile *pipe_end(int fd, const char *command, const char *which) {
  QIOChannelFile *fioc = qio_channel_file_new_fd(fd);
  g_autofree char *name = g_strdup_printf("command %s (%s)", command, which);
  qio_channel_set_name(QIO_CHANNEL(fioc), name);
  return fioc;
}

QIOChannelCommand *qio_channel_command_new_spawn(const char *const *argv, int flags,
                                                 GError **error) {
  g_return_val_if_fail(argv && argv[0], nullptr);
  int mode = flags & O_ACCMODE;
  g_return_val_if_fail(mode == O_RDONLY || mode == O_WRONLY || mode == O_RDWR, nullptr);
  g_autofree char *command = g_strjoinv(" ", const_cast<char **>(argv));
  /* The child is reaped by qio, not GLib, so that its status is never
   * lost and its pid stays valid until qio has signalled it. */
  auto spawn_flags = static_cast<GSpawnFlags>(
      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CLOEXEC_PIPES |
      (mode == O_WRONLY ? G_SPAWN_STDOUT_TO_DEV_NULL : 0));
  GPid pid = 0;
  int to_child = -1, from_child = -1;
  GError *local = nullptr;
  if (!g_spawn_async_with_pipes_and_fds(nullptr, argv, nullptr, spawn_flags, child_setup,
                                        nullptr, -1, -1, -1, nullptr, nullptr, 0, &pid,
                                        mode != O_RDONLY ? &to_child : nullptr,
                                        mode != O_WRONLY ? &from_child : nullptr, nullptr,
                                        &local)) {
    g_set_error(error, local->domain, local->code,
                _("Cannot start command '%s': %s; check that it is installed and in PATH"),
                command, local->message);
    g_error_free(local);
    return nullptr;
  }

  auto *cioc = QIO_CHANNEL_COMMAND(g_object_new(QIO_TYPE_CHANNEL_COMMAND, nullptr));
  cioc->pid = pid;
  cioc->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  /* Also from the parent, so that a signal sent at once reaches the group. */
  setpgid(pid, pid);
  if (to_child >= 0) cioc->to = pipe_end(to_child, command, "stdin");
  if (from_child >= 0) cioc->from = pipe_end(from_child, command, "stdout");
  g_autofree char *name = g_strdup_printf("command %s", command);
  qio_channel_set_name(QIO_CHANNEL(cioc), name);
  cioc->command = g_steal_pointer(&command);
  return cioc;
}

gboolean qio_channel_command_get_exit(QIOChannelCommand *cioc, int *exit_code,
                                      int *term_signal) {
  g_return_val_if_fail(QIO_IS_CHANNEL_COMMAND(cioc), FALSE);
  if (!command_reap(cioc)) return FALSE;
  int status = cioc->wait_status;
  if (exit_code) *exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (term_signal) *term_signal = status != -1 && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return TRUE;
}

GPid qio_channel_command_get_pid(QIOChannelCommand *cioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_COMMAND(cioc), 0);
  return cioc->pid;
}

void qio_channel_command_set_close_timeout(QIOChannelCommand *cioc, guint ms) {
  g_return_if_fail(QIO_IS_CHANNEL_COMMAND(cioc));
  cioc->close_timeout_ms = ms;
}
