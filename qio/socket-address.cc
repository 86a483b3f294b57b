#include "config.h"

#include "qio/socket-address.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

struct _QIOSocketAddress {
  GObject parent_instance;
  QIOSocketAddressKind kind;
  char *host; /* INET */
  char *path; /* UNIX path or abstract name; FD name */
  gboolean abstract;
  guint32 cid;
  guint32 port;
};

G_DEFINE_FINAL_TYPE(QIOSocketAddress, qio_socket_address, G_TYPE_OBJECT)

static void qio_socket_address_finalize(GObject *object) {
  auto *addr = QIO_SOCKET_ADDRESS(object);
  g_free(addr->host);
  g_free(addr->path);
  G_OBJECT_CLASS(qio_socket_address_parent_class)->finalize(object);
}

static void qio_socket_address_class_init(QIOSocketAddressClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_socket_address_finalize;
}

static void qio_socket_address_init(QIOSocketAddress *) {}

static QIOSocketAddress *address_new(QIOSocketAddressKind kind) {
  auto *addr = QIO_SOCKET_ADDRESS(g_object_new(QIO_TYPE_SOCKET_ADDRESS, nullptr));
  addr->kind = kind;
  return addr;
}

QIOSocketAddress *qio_socket_address_new_inet(const char *host, guint16 port) {
  g_return_val_if_fail(host != nullptr, nullptr);
  QIOSocketAddress *addr = address_new(QIO_SOCKET_ADDRESS_INET);
  addr->host = g_strdup(host);
  addr->port = port;
  return addr;
}

QIOSocketAddress *qio_socket_address_new_unix(const char *path, gboolean abstract) {
  g_return_val_if_fail(path != nullptr, nullptr);
  QIOSocketAddress *addr = address_new(QIO_SOCKET_ADDRESS_UNIX);
  addr->path = g_strdup(path);
  addr->abstract = abstract;
  return addr;
}

QIOSocketAddress *qio_socket_address_new_vsock(guint32 cid, guint32 port) {
  QIOSocketAddress *addr = address_new(QIO_SOCKET_ADDRESS_VSOCK);
  addr->cid = cid;
  addr->port = port;
  return addr;
}

QIOSocketAddress *qio_socket_address_new_fd(const char *name) {
  g_return_val_if_fail(name != nullptr, nullptr);
  QIOSocketAddress *addr = address_new(QIO_SOCKET_ADDRESS_FD);
  addr->path = g_strdup(name);
  return addr;
}

namespace {

/* The longest path or abstract name that fits sun_path (with its NUL or
 * its leading NUL). */
constexpr gsize kMaxUnixPath = sizeof(sockaddr_un::sun_path) - 1;

void set_invalid(GError **error, const char *str, const std::string &why) {
  g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
              _("Invalid socket address '%s': %s"), str, why.c_str());
}

/* Decimal number up to @max, nothing else (no sign, no spaces). */
bool parse_number(std::string_view text, guint64 max, guint64 *out) {
  if (text.empty() || text.size() > 10) return false;
  guint64 value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<guint64>(c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

QIOSocketAddress *parse_inet(const char *str, std::string_view text, GError **error) {
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      set_invalid(error, str, _("'[' is not closed by ']'; write an IPv6 address as [ADDRESS]:PORT"));
      return nullptr;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest[0] != ':') {
      set_invalid(error, str, _("a port is missing after ']'; write [ADDRESS]:PORT"));
      return nullptr;
    }
    port = rest.substr(1);
    if (host.find(':') == std::string_view::npos) {
      set_invalid(error, str, _("brackets are only for IPv6 addresses; write HOST:PORT"));
      return nullptr;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      set_invalid(error, str, _("the port is missing; write HOST:PORT, unix:PATH, "
                                "vsock:CID:PORT or fd:NAME"));
      return nullptr;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      set_invalid(error, str, _("an IPv6 address needs brackets; write [ADDRESS]:PORT"));
      return nullptr;
    }
  }
  if (host.empty()) {
    set_invalid(error, str, _("the host is empty; give a host name or address, "
                              "e.g. 127.0.0.1 or [::]"));
    return nullptr;
  }
  if (port.empty()) {
    set_invalid(error, str, _("the port is empty; give a number from 0 to 65535"));
    return nullptr;
  }
  guint64 value;
  if (!parse_number(port, 65535, &value)) {
    set_invalid(error, str, _("the port is not a number from 0 to 65535"));
    return nullptr;
  }
  std::string host_str(host);
  return qio_socket_address_new_inet(host_str.c_str(), static_cast<guint16>(value));
}

QIOSocketAddress *parse_unix(const char *str, std::string_view text, GError **error) {
  bool abstract = !text.empty() && text[0] == '@';
  std::string_view path = abstract ? text.substr(1) : text;
  if (path.empty()) {
    set_invalid(error, str, abstract ? _("the abstract socket name after '@' is empty")
                                     : _("the socket path is empty; write unix:PATH"));
    return nullptr;
  }
  if (path.size() > kMaxUnixPath) {
    g_autofree char *why = g_strdup_printf(
        _("the socket path is %zu bytes long, more than the %zu a UNIX socket allows; "
          "use a shorter path"),
        path.size(), kMaxUnixPath);
    set_invalid(error, str, why);
    return nullptr;
  }
  if (path.find('\0') != std::string_view::npos) {
    set_invalid(error, str, _("the socket path contains a NUL byte"));
    return nullptr;
  }
  std::string path_str(path);
  return qio_socket_address_new_unix(path_str.c_str(), abstract);
}

QIOSocketAddress *parse_vsock(const char *str, std::string_view text, GError **error) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    set_invalid(error, str, _("the port is missing; write vsock:CID:PORT"));
    return nullptr;
  }
  guint64 cid, port;
  if (!parse_number(text.substr(0, colon), G_MAXUINT32, &cid)) {
    set_invalid(error, str, _("the context ID (CID) is not a number from 0 to 4294967295"));
    return nullptr;
  }
  if (!parse_number(text.substr(colon + 1), G_MAXUINT32, &port)) {
    set_invalid(error, str, _("the vsock port is not a number from 0 to 4294967295"));
    return nullptr;
  }
  return qio_socket_address_new_vsock(static_cast<guint32>(cid), static_cast<guint32>(port));
}

}  // namespace

QIOSocketAddress *qio_socket_address_parse(const char *str, GError **error) {
  g_return_val_if_fail(str != nullptr, nullptr);
  std::string_view text(str);
  if (text.empty()) {
    set_invalid(error, str, _("the address is empty; write HOST:PORT, unix:PATH, "
                              "vsock:CID:PORT or fd:NAME"));
    return nullptr;
  }
  auto starts = [&](std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; };
  if (starts("inet:")) return parse_inet(str, text.substr(5), error);
  if (starts("unix:")) return parse_unix(str, text.substr(5), error);
  if (starts("vsock:")) return parse_vsock(str, text.substr(6), error);
  if (starts("fd:")) {
    if (text.size() == 3) {
      set_invalid(error, str, _("the descriptor name is empty; write fd:NAME"));
      return nullptr;
    }
    return qio_socket_address_new_fd(str + 3);
  }
  /* A lowercase word followed by ':' and another ':' or a path looks like a
   * mistyped prefix ("tcp:host:1", "unx:/run/s"), not a host: say so
   * instead of failing on the port. */
  auto colon = text.find(':');
  if (colon != std::string_view::npos && colon > 0 &&
      (text.find(':', colon + 1) != std::string_view::npos ||
       text.substr(colon + 1, 1) == "/" || text.substr(colon + 1, 1) == "@") &&
      text.substr(0, colon).find_first_not_of("abcdefghijklmnopqrstuvwxyz") ==
          std::string_view::npos) {
    std::string prefix(text.substr(0, colon));
    g_autofree char *why = g_strdup_printf(
        _("unknown prefix '%s:'; use inet:, unix:, vsock: or fd:"), prefix.c_str());
    set_invalid(error, str, why);
    return nullptr;
  }
  return parse_inet(str, text, error);
}

QIOSocketAddress *qio_socket_address_new_from_native(const struct sockaddr *sa, socklen_t len,
                                                     GError **error) {
  g_return_val_if_fail(sa != nullptr, nullptr);
  char host[INET6_ADDRSTRLEN];
  switch (sa->sa_family) {
    case AF_INET: {
      auto *sin = reinterpret_cast<const sockaddr_in *>(sa);
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
      return qio_socket_address_new_inet(host, ntohs(sin->sin_port));
    }
    case AF_INET6: {
      auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(sa);
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
      if (sin6->sin6_scope_id == 0) return qio_socket_address_new_inet(host, ntohs(sin6->sin6_port));
      /* A link-local address means nothing without its interface (RFC 4007). */
      char ifname[IF_NAMESIZE];
      g_autofree char *scoped =
          if_indextoname(sin6->sin6_scope_id, ifname)
              ? g_strdup_printf("%s%%%s", host, ifname)
              : g_strdup_printf("%s%%%u", host, sin6->sin6_scope_id);
      return qio_socket_address_new_inet(scoped, ntohs(sin6->sin6_port));
    }
    case AF_UNIX: {
      auto *sun = reinterpret_cast<const sockaddr_un *>(sa);
      gsize off = offsetof(sockaddr_un, sun_path);
      /* Unnamed sockets (socketpair, unbound clients) have no path. */
      if (len <= off) return qio_socket_address_new_unix("", FALSE);
      if (sun->sun_path[0] == '\0') {
        std::string name(sun->sun_path + 1, len - off - 1);
        return qio_socket_address_new_unix(name.c_str(), TRUE);
      }
      std::string path(sun->sun_path, strnlen(sun->sun_path, len - off));
      return qio_socket_address_new_unix(path.c_str(), FALSE);
    }
    case AF_VSOCK: {
      auto *svm = reinterpret_cast<const sockaddr_vm *>(sa);
      return qio_socket_address_new_vsock(svm->svm_cid, svm->svm_port);
    }
    default:
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("Socket address family %d is not supported; use TCP, UNIX or vsock"),
                  sa->sa_family);
      return nullptr;
  }
}

QIOSocketAddressKind qio_socket_address_get_kind(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), QIO_SOCKET_ADDRESS_INET);
  return addr->kind;
}

const char *qio_socket_address_get_host(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), nullptr);
  return addr->host;
}

guint32 qio_socket_address_get_port(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), 0);
  return addr->port;
}

const char *qio_socket_address_get_path(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), nullptr);
  return addr->kind == QIO_SOCKET_ADDRESS_UNIX ? addr->path : nullptr;
}

gboolean qio_socket_address_is_abstract(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  return addr->abstract;
}

guint32 qio_socket_address_get_cid(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), 0);
  return addr->cid;
}

const char *qio_socket_address_get_fd_name(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), nullptr);
  return addr->kind == QIO_SOCKET_ADDRESS_FD ? addr->path : nullptr;
}

char *qio_socket_address_to_string(QIOSocketAddress *addr) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), nullptr);
  switch (addr->kind) {
    case QIO_SOCKET_ADDRESS_INET: {
      if (strchr(addr->host, ':')) return g_strdup_printf("[%s]:%u", addr->host, addr->port);
      /* A host named like a prefix ("unix:1") needs the explicit inet:. */
      bool prefix_word = false;
      for (const char *word : {"inet", "unix", "vsock", "fd"})
        prefix_word = prefix_word || strcmp(addr->host, word) == 0;
      return g_strdup_printf("%s%s:%u", prefix_word ? "inet:" : "", addr->host, addr->port);
    }
    case QIO_SOCKET_ADDRESS_UNIX:
      return g_strdup_printf("unix:%s%s", addr->abstract ? "@" : "", addr->path);
    case QIO_SOCKET_ADDRESS_VSOCK:
      return g_strdup_printf("vsock:%u:%u", addr->cid, addr->port);
    case QIO_SOCKET_ADDRESS_FD:
      return g_strdup_printf("fd:%s", addr->path);
  }
  g_return_val_if_reached(nullptr);
}

GPtrArray *qio_socket_address_resolve(QIOSocketAddress *addr, gboolean passive,
                                      GError **error) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), nullptr);
  GPtrArray *list = g_ptr_array_new_with_free_func(g_object_unref);
  if (addr->kind != QIO_SOCKET_ADDRESS_INET) {
    g_ptr_array_add(list, g_object_ref(addr));
    return list;
  }
  /* A zone is checked here, so that an unknown interface is named as such
   * rather than as a host that does not resolve. */
  if (strchr(addr->host, '%')) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (!qio_socket_address_to_native(addr, &ss, &len, error)) {
      g_ptr_array_unref(list);
      return nullptr;
    }
  }
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  char port[16];
  g_snprintf(port, sizeof(port), "%u", addr->port);
  struct addrinfo *res = nullptr;
  int rc = getaddrinfo(addr->host, port, &hints, &res);
  if (rc != 0) {
    g_autofree char *str = qio_socket_address_to_string(addr);
    g_set_error(error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
                _("Unable to resolve host '%s' of address '%s': %s; "
                  "check the name or use a numeric address"),
                addr->host, str, rc == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(rc));
    g_ptr_array_unref(list);
    return nullptr;
  }
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    QIOSocketAddress *one = qio_socket_address_new_from_native(ai->ai_addr, ai->ai_addrlen,
                                                               nullptr);
    if (one) g_ptr_array_add(list, one);
  }
  freeaddrinfo(res);
  return list;
}

gboolean qio_socket_address_to_native(QIOSocketAddress *addr, struct sockaddr_storage *ss,
                                      socklen_t *len, GError **error) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  memset(ss, 0, sizeof(*ss));
  g_autofree char *str = qio_socket_address_to_string(addr);
  switch (addr->kind) {
    case QIO_SOCKET_ADDRESS_INET: {
      auto *sin = reinterpret_cast<sockaddr_in *>(ss);
      auto *sin6 = reinterpret_cast<sockaddr_in6 *>(ss);
      if (inet_pton(AF_INET, addr->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(static_cast<guint16>(addr->port));
        *len = sizeof(*sin);
        return TRUE;
      }
      std::string host = addr->host;
      std::string scope;
      const auto percent = host.find('%');
      const bool scoped = percent != std::string::npos;
      if (scoped) {
        scope = host.substr(percent + 1);
        host.erase(percent);
      }
      if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
        guint64 index = 0;
        char ifname[IF_NAMESIZE];
        if (scoped && !g_ascii_string_to_unsigned(scope.c_str(), 10, 1, G_MAXUINT32, &index,
                                                  nullptr))
          index = if_nametoindex(scope.c_str());
        else if (scoped && !if_indextoname(static_cast<unsigned>(index), ifname))
          index = 0;
        if (scoped && index == 0) {
          g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                      _("Socket address '%s' names interface '%s', which this host does not "
                        "have; use the name or index of a local interface after '%%'"),
                      str, scope.c_str());
          return FALSE;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<guint16>(addr->port));
        sin6->sin6_scope_id = static_cast<guint32>(index);
        *len = sizeof(*sin6);
        return TRUE;
      }
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("Socket address '%s' is not numeric; resolve it first"), str);
      return FALSE;
    }
    case QIO_SOCKET_ADDRESS_UNIX: {
      auto *sun = reinterpret_cast<sockaddr_un *>(ss);
      gsize n = strlen(addr->path);
      if (n == 0 || n > kMaxUnixPath) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                    _("Socket address '%s' does not fit a UNIX socket address; "
                      "use a path of 1 to %zu bytes"),
                    str, kMaxUnixPath);
        return FALSE;
      }
      sun->sun_family = AF_UNIX;
      /* Abstract names are as long as given, not padded with NULs. */
      memcpy(sun->sun_path + (addr->abstract ? 1 : 0), addr->path, n);
      *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
      return TRUE;
    }
    case QIO_SOCKET_ADDRESS_VSOCK: {
      auto *svm = reinterpret_cast<sockaddr_vm *>(ss);
      svm->svm_family = AF_VSOCK;
      svm->svm_cid = addr->cid;
      svm->svm_port = addr->port;
      *len = sizeof(*svm);
      return TRUE;
    }
    case QIO_SOCKET_ADDRESS_FD:
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("Socket address '%s' names a descriptor, not an address; "
                    "take the descriptor instead"),
                  str);
      return FALSE;
  }
  g_return_val_if_reached(FALSE);
}

namespace {

G_LOCK_DEFINE_STATIC(fd_lookup);
QIOSocketAddressFdLookup fd_lookup_func;
gpointer fd_lookup_data;

}  // namespace

void qio_socket_address_set_fd_lookup(QIOSocketAddressFdLookup lookup, gpointer user_data) {
  G_LOCK(fd_lookup);
  fd_lookup_func = lookup;
  fd_lookup_data = user_data;
  G_UNLOCK(fd_lookup);
}

int qio_socket_address_take_fd(QIOSocketAddress *addr, GError **error) {
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), -1);
  g_return_val_if_fail(addr->kind == QIO_SOCKET_ADDRESS_FD, -1);
  G_LOCK(fd_lookup);
  QIOSocketAddressFdLookup func = fd_lookup_func;
  gpointer data = fd_lookup_data;
  G_UNLOCK(fd_lookup);
  if (func) return func(addr->path, data, error);

  guint64 num;
  if (!parse_number(addr->path, G_MAXINT, &num)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("No file descriptor is named '%s'; pass a descriptor number"), addr->path);
    return -1;
  }
  int fd = fcntl(static_cast<int>(num), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    int errsv = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errsv),
                _("Unable to use file descriptor %s: %s"), addr->path, g_strerror(errsv));
  }
  return fd;
}
