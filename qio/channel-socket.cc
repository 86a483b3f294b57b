#include "config.h"

#include "qio/channel-socket.h"
#include "qio/channel-watch.h"
#include "qio/error.h"
#include "qio/socket-task.h"

#include <glib/gi18n-lib.h>

#include <fcntl.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

struct _QIOChannelSocket {
  QIOChannel parent_instance;
  int fd;
  int family;
  char *unlink_path;   /* a UNIX socket file this channel created by listening */
  guint64 zc_queued;   /* zero-copy sendmsg calls made */
  guint64 zc_done;     /* of which the kernel has reported completion */
  gboolean zc_copied;  /* the kernel fell back to copying since the last flush */
  int read_low_water;  /* SO_RCVLOWAT as this channel last set it; 0: unknown */
};

G_DEFINE_FINAL_TYPE(QIOChannelSocket, qio_channel_socket, QIO_TYPE_CHANNEL)

namespace {

/* Descriptors one message may carry; the control buffer lives on the stack. */
constexpr gsize kMaxFds = 16;

union FdControl {
  char buf[CMSG_SPACE(sizeof(int) * kMaxFds)];
  struct cmsghdr align;
};

const char *channel_name(QIOChannelSocket *sioc) {
  return qio_channel_get_name(QIO_CHANNEL(sioc));
}

void set_errno_error(GError **error, int errsv, const char *format, const char *what) {
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv), format, what,
              g_strerror(errsv));
}

bool check_open(QIOChannelSocket *sioc, GError **error) {
  if (sioc->fd >= 0) return true;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED,
              _("Channel '%s' is not connected or already closed"), channel_name(sioc));
  return false;
}

bool set_fd_blocking(int fd, bool blocking) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  int want = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  return want == flags || fcntl(fd, F_SETFL, want) == 0;
}

/* Adopts a connected or listening descriptor: features and default name. */
void adopt_fd(QIOChannelSocket *sioc, int fd, const char *name) {
  QIOChannel *ioc = QIO_CHANNEL(sioc);
  sioc->fd = fd;
  sioc->read_low_water = 0;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  sioc->family = getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) == 0
                     ? ss.ss_family
                     : AF_UNSPEC;
  qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_SHUTDOWN);
  if (sioc->family != AF_UNSPEC) qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_WRITE_DONTWAIT);
  if (sioc->family == AF_UNIX) qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_FD_PASS);
  int listening = 0;
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
    qio_channel_set_feature(ioc, QIO_CHANNEL_FEATURE_LISTEN);
  /* Keep a name the caller chose; otherwise name the channel after its peer. */
  if (name && strcmp(qio_channel_get_name(ioc), G_OBJECT_TYPE_NAME(ioc)) == 0)
    qio_channel_set_name(ioc, name);
}

bool check_unused(QIOChannelSocket *sioc, QIOSocketAddress *addr, GError **error) {
  if (sioc->fd < 0) return true;
  g_autofree char *str = qio_socket_address_to_string(addr);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
              _("Channel '%s' already has a socket; use a new channel for '%s'"),
              channel_name(sioc), str);
  return false;
}

/* A descriptor from an fd: address, checked to be a stream socket. */
int take_socket_fd(QIOSocketAddress *addr, GError **error) {
  int fd = qio_socket_address_take_fd(addr, error);
  if (fd < 0) return -1;
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
    g_autofree char *str = qio_socket_address_to_string(addr);
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("Descriptor '%s' is not a stream socket; pass a connected or "
                  "listening socket"),
                str);
    close(fd);
    return -1;
  }
  return fd;
}

/* Waits until @fd is ready for @events or @cancellable fires. */
bool wait_fd(int fd, short events, int timeout_ms, GCancellable *cancellable, GError **error) {
  GPollFD pfd[2] = {{fd, static_cast<gushort>(events), 0}, {}};
  int n = 1;
  if (cancellable && g_cancellable_make_pollfd(cancellable, &pfd[1])) n = 2;
  while (g_poll(pfd, n, timeout_ms) < 0 && errno == EINTR) {
  }
  if (n == 2) g_cancellable_release_fd(cancellable);
  return !g_cancellable_set_error_if_cancelled(cancellable, error);
}

/* One connection attempt to a numeric address; errno-style result. */
int connect_one(QIOSocketAddress *addr, GCancellable *cancellable, int *out_fd,
                GError **error) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (!qio_socket_address_to_native(addr, &ss, &len, error)) return -1;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  int rc;
  for (;;) {
    rc = connect(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0 ? 0 : errno;
    if (rc == EINTR) continue;
    /* A UNIX listener with a full backlog: poll() cannot tell when it
     * frees up, so retry at short intervals while staying cancellable. */
    if (rc == EAGAIN && ss.ss_family == AF_UNIX) {
      if (!wait_fd(-1, 0, 10, cancellable, error)) break;
      continue;
    }
    if (rc == EINPROGRESS) {
      if (!wait_fd(fd, POLLOUT, -1, cancellable, error)) break;
      socklen_t optlen = sizeof(rc);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &optlen) < 0) rc = errno;
      if (rc == EINPROGRESS || rc == EALREADY) continue;
    }
    if (rc == 0 && g_cancellable_set_error_if_cancelled(cancellable, error)) break;
    if (rc != 0) {
      close(fd);
      return rc;
    }
    set_fd_blocking(fd, true);
    *out_fd = fd;
    return 0;
  }
  close(fd);
  return -1;
}

gboolean do_connect(QIOChannelSocket *sioc, QIOSocketAddress *addr, GCancellable *cancellable,
                    GError **error) {
  if (!check_unused(sioc, addr, error)) return FALSE;
  g_autofree char *str = qio_socket_address_to_string(addr);
  if (g_cancellable_set_error_if_cancelled(cancellable, error)) return FALSE;
  if (qio_socket_address_get_kind(addr) == QIO_SOCKET_ADDRESS_FD) {
    int fd = take_socket_fd(addr, error);
    if (fd < 0) return FALSE;
    adopt_fd(sioc, fd, str);
    return TRUE;
  }
  g_autoptr(GPtrArray) list = qio_socket_address_resolve(addr, FALSE, error);
  if (!list) return FALSE;
  int last = ENOENT;
  g_autofree char *last_str = nullptr;
  for (guint i = 0; i < list->len; i++) {
    auto *one = QIO_SOCKET_ADDRESS(g_ptr_array_index(list, i));
    int fd = -1;
    int rc = connect_one(one, cancellable, &fd, error);
    if (rc < 0) return FALSE;
    if (rc == 0) {
      adopt_fd(sioc, fd, str);
      return TRUE;
    }
    last = rc;
    g_free(last_str);
    last_str = qio_socket_address_to_string(one);
  }
  if (last_str && strcmp(last_str, str) != 0) {
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(last),
                _("Unable to connect to '%s' (tried %u addresses, last %s): %s; "
                  "check that a server is listening there"),
                str, list->len, last_str, g_strerror(last));
  } else {
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(last),
                _("Unable to connect to '%s': %s; check that a server is listening there"),
                str, g_strerror(last));
  }
  return FALSE;
}

/* A UNIX socket file nobody listens on any more (a crashed server's) is
 * removed so that the path can be reused; a live one is left alone.  The
 * probe does not wait: a server whose backlog is full (EAGAIN) is live,
 * and waiting for it would hold the caller for as long as it likes. */
void remove_stale_unix_socket(const struct sockaddr_storage *ss, socklen_t len) {
  auto *sun = reinterpret_cast<const sockaddr_un *>(ss);
  struct stat st;
  if (sun->sun_path[0] == '\0' || stat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
    return;
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return;
  if (connect(probe, reinterpret_cast<const sockaddr *>(ss), len) < 0 && errno == ECONNREFUSED)
    unlink(sun->sun_path);
  close(probe);
}

gboolean do_listen(QIOChannelSocket *sioc, QIOSocketAddress *addr, int backlog,
                   GCancellable *cancellable, GError **error) {
  if (!check_unused(sioc, addr, error)) return FALSE;
  if (g_cancellable_set_error_if_cancelled(cancellable, error)) return FALSE;
  g_autofree char *str = qio_socket_address_to_string(addr);
  if (backlog <= 0) backlog = SOMAXCONN;
  if (qio_socket_address_get_kind(addr) == QIO_SOCKET_ADDRESS_FD) {
    int fd = take_socket_fd(addr, error);
    if (fd < 0) return FALSE;
    adopt_fd(sioc, fd, str);
    if (!qio_channel_has_feature(QIO_CHANNEL(sioc), QIO_CHANNEL_FEATURE_LISTEN) &&
        listen(fd, backlog) < 0) {
      set_errno_error(error, errno, _("Unable to listen on '%s': %s"), str);
      return FALSE;
    }
    qio_channel_set_feature(QIO_CHANNEL(sioc), QIO_CHANNEL_FEATURE_LISTEN);
    return TRUE;
  }
  g_autoptr(GPtrArray) list = qio_socket_address_resolve(addr, TRUE, error);
  if (!list) return FALSE;
  if (list->len == 0) {
    g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
                _("Address '%s' resolves to nothing; use a numeric address"), str);
    return FALSE;
  }
  auto *one = QIO_SOCKET_ADDRESS(g_ptr_array_index(list, 0));
  struct sockaddr_storage ss;
  socklen_t len;
  if (!qio_socket_address_to_native(one, &ss, &len, error)) return FALSE;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    set_errno_error(error, errno,
                    _("Unable to create a socket for '%s': %s; is this address family "
                      "available on this host?"),
                    str);
    return FALSE;
  }
  if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  }
  if (ss.ss_family == AF_UNIX) remove_stale_unix_socket(&ss, len);
  if (bind(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0) {
    int errsv = errno;
    close(fd);
    set_errno_error(error, errsv,
                    _("Unable to bind to '%s': %s; choose another address or port"), str);
    return FALSE;
  }
  if (listen(fd, backlog) < 0) {
    int errsv = errno;
    close(fd);
    set_errno_error(error, errsv, _("Unable to listen on '%s': %s"), str);
    return FALSE;
  }
  if (ss.ss_family == AF_UNIX && !qio_socket_address_is_abstract(addr))
    sioc->unlink_path = g_strdup(qio_socket_address_get_path(addr));
  adopt_fd(sioc, fd, str);
  return TRUE;
}

void connect_thread(GTask *task, gpointer source, gpointer,
                    GCancellable *cancellable) noexcept {
  GError *error = nullptr;
  if (do_connect(QIO_CHANNEL_SOCKET(source), qio_socket_task_get_address(task), cancellable,
                 &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

void listen_thread(GTask *task, gpointer source, gpointer, GCancellable *cancellable) noexcept {
  GError *error = nullptr;
  if (do_listen(QIO_CHANNEL_SOCKET(source), qio_socket_task_get_address(task),
                qio_socket_task_get_backlog(task), cancellable, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

void run_task(QIOChannelSocket *sioc, QIOSocketAddress *addr, int backlog,
              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data,
              GMainContext *context, gpointer tag, GTaskThreadFunc func) {
  g_autoptr(GTask) task = qio_socket_task_new(sioc, addr, backlog, cancellable, callback,
                                              user_data, context, tag);
  /* The worker decides: a socket connected despite a late cancel is closed
   * there, so the result and the channel's state always agree. */
  g_task_set_check_cancellable(task, FALSE);
  g_task_run_in_thread(task, func);
}

}  // namespace

static gssize socket_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **fds,
                           gsize *nfds, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!check_open(sioc, error)) return -1;
  FdControl control;
  struct msghdr msg = {};
  msg.msg_iov = const_cast<struct iovec *>(iov);
  msg.msg_iovlen = std::min<gsize>(niov, IOV_MAX);
  if (fds && nfds) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    *fds = nullptr;
    *nfds = 0;
  }
  gssize ret;
  for (;;) {
    ret = recvmsg(sioc->fd, &msg, fds ? MSG_CMSG_CLOEXEC : 0);
    if (ret >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return QIO_CHANNEL_ERR_BLOCK;
    set_errno_error(error, errno, _("Unable to read from channel '%s': %s"),
                    channel_name(sioc));
    return -1;
  }
  if (!(fds && nfds)) return ret;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    gsize n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (n == 0) continue;
    *fds = g_renew(int, *fds, *nfds + n);
    memcpy(*fds + *nfds, CMSG_DATA(cm), n * sizeof(int));
    *nfds += n;
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    for (gsize i = 0; i < *nfds; i++) close((*fds)[i]);
    g_clear_pointer(fds, g_free);
    *nfds = 0;
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Channel '%s' received more than %zu file descriptors in one message; "
                  "the peer must send fewer at a time"),
                channel_name(sioc), kMaxFds);
    return -1;
  }
  return ret;
}

static gssize socket_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                            const int *fds, gsize nfds, int flags, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!check_open(sioc, error)) return -1;
  FdControl control;
  struct msghdr msg = {};
  msg.msg_iov = const_cast<struct iovec *>(iov);
  msg.msg_iovlen = std::min<gsize>(niov, IOV_MAX);
  if (nfds) {
    if (nfds > kMaxFds) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("Channel '%s' cannot send %zu file descriptors at once; "
                    "send at most %zu per message"),
                  channel_name(sioc), nfds, kMaxFds);
      return -1;
    }
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  int sflags = MSG_NOSIGNAL;
  if (flags & QIO_CHANNEL_WRITE_FLAG_ZERO_COPY) sflags |= MSG_ZEROCOPY;
  if (flags & QIO_CHANNEL_WRITE_FLAG_DONTWAIT) sflags |= MSG_DONTWAIT;
  for (;;) {
    gssize ret = sendmsg(sioc->fd, &msg, sflags);
    if (ret >= 0) {
      if (sflags & MSG_ZEROCOPY) sioc->zc_queued++;
      return ret;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return QIO_CHANNEL_ERR_BLOCK;
    if (errno == ENOBUFS && (sflags & MSG_ZEROCOPY)) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                  _("Channel '%s' has too many zero-copy writes in flight; flush more "
                    "often or raise net.core.optmem_max"),
                  channel_name(sioc));
      return -1;
    }
    set_errno_error(error, errno, _("Unable to write to channel '%s': %s"),
                    channel_name(sioc));
    return -1;
  }
}

static int socket_flush(QIOChannel *ioc, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!check_open(sioc, error)) return -1;
  while (sioc->zc_done < sioc->zc_queued) {
    char control[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))];
    struct msghdr msg = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (recvmsg(sioc->fd, &msg, MSG_ERRQUEUE) < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        /* Completions arrive as POLLERR, which poll reports unasked. */
        struct pollfd pfd = {sioc->fd, 0, 0};
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
        }
        continue;
      }
      set_errno_error(error, errno, _("Unable to flush zero-copy writes of channel '%s': %s"),
                      channel_name(sioc));
      return -1;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      bool is_err = (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
                    (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR);
      if (!is_err) continue;
      struct sock_extended_err serr;
      memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
      if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
        set_errno_error(error, serr.ee_errno,
                        _("Unable to flush zero-copy writes of channel '%s': %s"),
                        channel_name(sioc));
        return -1;
      }
      /* One notification covers the range [ee_info, ee_data] of calls. */
      sioc->zc_done += serr.ee_data - serr.ee_info + 1;
      if (serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) sioc->zc_copied = TRUE;
    }
  }
  int copied = sioc->zc_copied ? 1 : 0;
  sioc->zc_copied = FALSE;
  return copied;
}

static gboolean socket_close(QIOChannel *ioc, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (sioc->fd < 0) return TRUE;
  if (sioc->unlink_path) {
    unlink(sioc->unlink_path);
    g_clear_pointer(&sioc->unlink_path, g_free);
  }
  int fd = sioc->fd;
  sioc->fd = -1;
  /* On Linux the descriptor is gone even when close reports EINTR. */
  if (close(fd) < 0 && errno != EINTR) {
    set_errno_error(error, errno, _("Unable to close channel '%s': %s"), channel_name(sioc));
    return FALSE;
  }
  return TRUE;
}

static GSource *socket_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_fd_watch(ioc, QIO_CHANNEL_SOCKET(ioc)->fd, condition);
}

static gboolean socket_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!check_open(sioc, error)) return FALSE;
  if (!set_fd_blocking(sioc->fd, enabled)) {
    set_errno_error(error, errno, _("Unable to change blocking mode of channel '%s': %s"),
                    channel_name(sioc));
    return FALSE;
  }
  return TRUE;
}

static gboolean socket_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!check_open(sioc, error)) return FALSE;
  int sys_how = how == QIO_CHANNEL_SHUTDOWN_READ    ? SHUT_RD
                : how == QIO_CHANNEL_SHUTDOWN_WRITE ? SHUT_WR
                                                    : SHUT_RDWR;
  if (shutdown(sioc->fd, sys_how) < 0) {
    set_errno_error(error, errno, _("Unable to shut down channel '%s': %s"),
                    channel_name(sioc));
    return FALSE;
  }
  return TRUE;
}

static bool is_tcp(QIOChannelSocket *sioc) {
  return sioc->fd >= 0 && (sioc->family == AF_INET || sioc->family == AF_INET6);
}

static void socket_set_delay(QIOChannel *ioc, gboolean enabled) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!is_tcp(sioc)) return;
  int nodelay = enabled ? 0 : 1;
  setsockopt(sioc->fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
}

static void socket_set_cork(QIOChannel *ioc, gboolean enabled) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  if (!is_tcp(sioc)) return;
  int cork = enabled ? 1 : 0;
  setsockopt(sioc->fd, IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
}

/* Above this the kernel would have to grow the receive buffer and clamp
 * the window to the low water mark, which could stall the sender; a
 * wakeup per 256 KiB already costs next to nothing. */
constexpr gsize kMaxReadLowWater = 256 * 1024;

static void socket_set_read_low_water(QIOChannel *ioc, gsize bytes) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  /* Only TCP's poll honours SO_RCVLOWAT. */
  if (!is_tcp(sioc)) return;
  int low_water = static_cast<int>(std::clamp<gsize>(bytes, 1, kMaxReadLowWater));
  if (low_water == sioc->read_low_water) return;
  if (setsockopt(sioc->fd, SOL_SOCKET, SO_RCVLOWAT, &low_water, sizeof(low_water)) == 0)
    sioc->read_low_water = low_water;
}

static void qio_channel_socket_finalize(GObject *object) {
  socket_close(QIO_CHANNEL(object), nullptr);
  G_OBJECT_CLASS(qio_channel_socket_parent_class)->finalize(object);
}

static void qio_channel_socket_class_init(QIOChannelSocketClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_socket_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = socket_readv;
  ioc_class->io_writev = socket_writev;
  ioc_class->io_close = socket_close;
  ioc_class->io_create_watch = socket_create_watch;
  ioc_class->io_set_blocking = socket_set_blocking;
  ioc_class->io_shutdown = socket_shutdown;
  ioc_class->io_set_delay = socket_set_delay;
  ioc_class->io_set_cork = socket_set_cork;
  ioc_class->io_flush = socket_flush;
  ioc_class->io_set_read_low_water = socket_set_read_low_water;
}

static void qio_channel_socket_init(QIOChannelSocket *sioc) {
  sioc->fd = -1;
  sioc->family = AF_UNSPEC;
}

QIOChannelSocket *qio_channel_socket_new(void) {
  return QIO_CHANNEL_SOCKET(g_object_new(QIO_TYPE_CHANNEL_SOCKET, nullptr));
}

QIOChannelSocket *qio_channel_socket_new_fd(int fd, GError **error) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
    int errsv = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                _("File descriptor %d is not a socket: %s; pass a socket descriptor"), fd,
                g_strerror(errsv));
    return nullptr;
  }
  QIOChannelSocket *sioc = qio_channel_socket_new();
  g_autofree char *name = g_strdup_printf("fd:%d", fd);
  adopt_fd(sioc, fd, name);
  return sioc;
}

gboolean qio_channel_socket_new_pair(QIOChannelSocket **first, QIOChannelSocket **second,
                                     GError **error) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    int errsv = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                _("Unable to create a UNIX socket pair: %s"), g_strerror(errsv));
    return FALSE;
  }
  *first = qio_channel_socket_new();
  *second = qio_channel_socket_new();
  adopt_fd(*first, sv[0], "socketpair-0");
  adopt_fd(*second, sv[1], "socketpair-1");
  return TRUE;
}

gboolean qio_channel_socket_connect_sync(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                         GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), FALSE);
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  return do_connect(sioc, addr, nullptr, error);
}

gboolean qio_channel_socket_connect_sync_cancellable(QIOChannelSocket *sioc,
                                                     QIOSocketAddress *addr,
                                                     GCancellable *cancellable, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), FALSE);
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  return do_connect(sioc, addr, cancellable, error);
}

void qio_channel_socket_connect_async(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data, GMainContext *context) {
  g_return_if_fail(QIO_IS_CHANNEL_SOCKET(sioc));
  g_return_if_fail(QIO_IS_SOCKET_ADDRESS(addr));
  run_task(sioc, addr, 0, cancellable, callback, user_data, context,
           reinterpret_cast<gpointer>(qio_channel_socket_connect_async), connect_thread);
}

gboolean qio_channel_socket_connect_finish(QIOChannelSocket *sioc, GAsyncResult *result,
                                           GError **error) {
  g_return_val_if_fail(g_task_is_valid(result, sioc), FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

gboolean qio_channel_socket_listen_sync(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                        int backlog, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), FALSE);
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  return do_listen(sioc, addr, backlog, nullptr, error);
}

void qio_channel_socket_listen_async(QIOChannelSocket *sioc, QIOSocketAddress *addr,
                                     int backlog, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data,
                                     GMainContext *context) {
  g_return_if_fail(QIO_IS_CHANNEL_SOCKET(sioc));
  g_return_if_fail(QIO_IS_SOCKET_ADDRESS(addr));
  run_task(sioc, addr, backlog, cancellable, callback, user_data, context,
           reinterpret_cast<gpointer>(qio_channel_socket_listen_async), listen_thread);
}

gboolean qio_channel_socket_listen_finish(QIOChannelSocket *sioc, GAsyncResult *result,
                                          GError **error) {
  g_return_val_if_fail(g_task_is_valid(result, sioc), FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

QIOChannelSocket *qio_channel_socket_accept(QIOChannelSocket *sioc, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), nullptr);
  if (!check_open(sioc, error)) return nullptr;
  struct sockaddr_storage ss;
  for (;;) {
    socklen_t len = sizeof(ss);
    int fd = accept4(sioc->fd, reinterpret_cast<sockaddr *>(&ss), &len, SOCK_CLOEXEC);
    if (fd >= 0) {
      QIOChannelSocket *client = qio_channel_socket_new();
      g_autoptr(QIOSocketAddress) peer =
          qio_socket_address_new_from_native(reinterpret_cast<sockaddr *>(&ss), len, nullptr);
      g_autofree char *name = peer ? qio_socket_address_to_string(peer) : nullptr;
      /* UNIX clients are unnamed: name them after the listener instead. */
      if (!name || strcmp(name, "unix:") == 0) {
        g_free(name);
        name = g_strdup_printf("%s client", channel_name(sioc));
      }
      adopt_fd(client, fd, name);
      return client;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                  _("No client is waiting on channel '%s'"), channel_name(sioc));
      return nullptr;
    }
    set_errno_error(error, errno, _("Unable to accept a client on channel '%s': %s"),
                    channel_name(sioc));
    return nullptr;
  }
}

static QIOSocketAddress *socket_address(QIOChannelSocket *sioc, bool remote, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), nullptr);
  if (!check_open(sioc, error)) return nullptr;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  auto *sa = reinterpret_cast<sockaddr *>(&ss);
  if ((remote ? getpeername(sioc->fd, sa, &len) : getsockname(sioc->fd, sa, &len)) < 0) {
    set_errno_error(error, errno,
                    remote ? _("Unable to get the peer address of channel '%s': %s")
                           : _("Unable to get the local address of channel '%s': %s"),
                    channel_name(sioc));
    return nullptr;
  }
  return qio_socket_address_new_from_native(sa, len, error);
}

QIOSocketAddress *qio_channel_socket_get_local_address(QIOChannelSocket *sioc,
                                                       GError **error) {
  return socket_address(sioc, false, error);
}

QIOSocketAddress *qio_channel_socket_get_remote_address(QIOChannelSocket *sioc,
                                                        GError **error) {
  return socket_address(sioc, true, error);
}

int qio_channel_socket_get_fd(QIOChannelSocket *sioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), -1);
  return sioc->fd;
}

gssize qio_channel_socket_sendfile(QIOChannelSocket *sioc, int fd, guint64 *offset, gsize len,
                                   GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), -1);
  if (!check_open(sioc, error)) return -1;
  /* sendfile has no MSG_NOSIGNAL: a peer that went away must be an error,
   * not the death of the process (as for file channels, a handler the
   * program installed is left alone). */
  static gsize sigpipe_checked = 0;
  if (g_once_init_enter(&sigpipe_checked)) {
    struct sigaction action;
    if (sigaction(SIGPIPE, nullptr, &action) == 0 && action.sa_handler == SIG_DFL)
      signal(SIGPIPE, SIG_IGN);
    g_once_init_leave(&sigpipe_checked, 1);
  }
  for (;;) {
    off_t off = static_cast<off_t>(*offset);
    gssize ret = sendfile(sioc->fd, fd, &off, len);
    if (ret >= 0) {
      *offset = static_cast<guint64>(off);
      return ret;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return QIO_CHANNEL_ERR_BLOCK;
    set_errno_error(error, errno, _("Unable to send file data on channel '%s': %s"),
                    channel_name(sioc));
    return -1;
  }
}

gboolean qio_channel_socket_enable_zero_copy(QIOChannelSocket *sioc, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_SOCKET(sioc), FALSE);
  if (!check_open(sioc, error)) return FALSE;
  int on = 1;
  if (!is_tcp(sioc) || setsockopt(sioc->fd, SOL_SOCKET, SO_ZEROCOPY, &on, sizeof(on)) < 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("Channel '%s' cannot send without copying (MSG_ZEROCOPY needs a TCP "
                  "socket and Linux 4.14 or later); write normally"),
                channel_name(sioc));
    return FALSE;
  }
  qio_channel_set_feature(QIO_CHANNEL(sioc), QIO_CHANNEL_FEATURE_WRITE_ZERO_COPY);
  return TRUE;
}
