/*
 * QIOSocketAddress: an immutable socket address as users type it.
 *
 *   HOST:PORT  [IPV6]:PORT  inet:HOST:PORT   TCP (host name or literal)
 *   unix:PATH  unix:@NAME                    UNIX socket (path or abstract)
 *   vsock:CID:PORT                           AF_VSOCK
 *   fd:NAME                                  a descriptor passed in by name
 */
#pragma once

#include <gio/gio.h>
#include <sys/socket.h>

G_BEGIN_DECLS

#define QIO_TYPE_SOCKET_ADDRESS (qio_socket_address_get_type())
G_DECLARE_FINAL_TYPE(QIOSocketAddress, qio_socket_address, QIO, SOCKET_ADDRESS, GObject)

typedef enum {
  QIO_SOCKET_ADDRESS_INET,
  QIO_SOCKET_ADDRESS_UNIX,
  QIO_SOCKET_ADDRESS_VSOCK,
  QIO_SOCKET_ADDRESS_FD,
} QIOSocketAddressKind;

/* Parses @str; on failure sets QIO_ERROR_INVALID_ADDRESS naming @str. */
QIOSocketAddress *qio_socket_address_parse(const char *str, GError **error);

QIOSocketAddress *qio_socket_address_new_inet(const char *host, guint16 port);
/* @abstract: a Linux abstract-namespace name instead of a file path. */
QIOSocketAddress *qio_socket_address_new_unix(const char *path, gboolean abstract);
QIOSocketAddress *qio_socket_address_new_vsock(guint32 cid, guint32 port);
QIOSocketAddress *qio_socket_address_new_fd(const char *name);
/* The address of a socket as the kernel reports it (numeric host). */
QIOSocketAddress *qio_socket_address_new_from_native(const struct sockaddr *sa,
                                                     socklen_t len, GError **error);

QIOSocketAddressKind qio_socket_address_get_kind(QIOSocketAddress *addr);
/* INET: host name or literal, without brackets. */
const char *qio_socket_address_get_host(QIOSocketAddress *addr);
/* INET and VSOCK. */
guint32 qio_socket_address_get_port(QIOSocketAddress *addr);
/* UNIX: the path, or the abstract name without its '@'. */
const char *qio_socket_address_get_path(QIOSocketAddress *addr);
gboolean qio_socket_address_is_abstract(QIOSocketAddress *addr);
guint32 qio_socket_address_get_cid(QIOSocketAddress *addr);
/* FD: the descriptor's name. */
const char *qio_socket_address_get_fd_name(QIOSocketAddress *addr);

/* The address in the syntax qio_socket_address_parse() accepts. */
char *qio_socket_address_to_string(QIOSocketAddress *addr);

/* Resolves @addr into the addresses to try, in order: an INET address
 * becomes one numeric address per result of getaddrinfo (@passive: for
 * binding); the other kinds are returned as they are.  Blocks. */
GPtrArray *qio_socket_address_resolve(QIOSocketAddress *addr, gboolean passive,
                                      GError **error);

/* Fills @ss for a numeric INET, a UNIX or a VSOCK address. */
gboolean qio_socket_address_to_native(QIOSocketAddress *addr, struct sockaddr_storage *ss,
                                      socklen_t *len, GError **error);

/* Turns the name of an fd: address into a descriptor the caller owns.
 * Returns -1 with @error set when the name is unknown. */
typedef int (*QIOSocketAddressFdLookup)(const char *name, gpointer user_data,
                                        GError **error);

/* Installs the process-wide lookup used by qio_socket_address_take_fd()
 * (the monitor's named descriptors); NULL restores the default, which
 * accepts only decimal descriptor numbers and duplicates them. */
void qio_socket_address_set_fd_lookup(QIOSocketAddressFdLookup lookup, gpointer user_data);

/* The descriptor named by an FD address, owned by the caller. */
int qio_socket_address_take_fd(QIOSocketAddress *addr, GError **error);

G_END_DECLS
