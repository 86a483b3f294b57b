#include "config.h"

#include "nbd/client.h"

#include "nbd/error.h"
#include "nbd/protocol.h"
#include "qcrypto/error.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

struct NBDClientPrivate {
  QIOChannel *ioc = nullptr;
  /* The plain socket under ioc, and whether nbd_client_abort() was
   * called: both under abort_lock, the one thing other threads touch. */
  std::mutex abort_lock;
  QIOChannel *socket = nullptr;
  bool aborted = false;
  bool timed_out = false; /* a reconnect try ran past the delay */
  /* Wakes a reconnect's pause and its deadline watch. */
  std::condition_variable abort_wake;
  /* Cancels a connect in progress: set while one runs, under abort_lock. */
  GCancellable *connecting = nullptr;
  /* Where nbd_client_connect went (TCP or UNIX), for reconnecting. */
  QIOSocketAddress *addr = nullptr;
  std::string export_name;
  guint reconnect_delay = 0;
  guint64 connections = 0; /* successful connects and reconnects */
  QCryptoTLSCreds *tls_creds = nullptr;
  std::string tls_hostname;
  std::string peer;
  NBDExportInfo info = {};
  bool structured = false;
  bool base_allocation = false;
  guint32 base_allocation_id = 0;
  guint64 next_cookie = 1;
  /* Replies read to the option last sent: a server that never ends a
   * reply list must not keep the client reading (and storing) forever. */
  guint option_replies = 0;
};

/* More than any server has exports or information to give. */
constexpr guint kMaxOptionReplies = 4096;

struct _NBDClient {
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE_WITH_PRIVATE(NBDClient, nbd_client, G_TYPE_OBJECT)

static NBDClientPrivate *client_priv(NBDClient *client) {
  return static_cast<NBDClientPrivate *>(nbd_client_get_instance_private(client));
}

void nbd_export_info_free(NBDExportInfo *info) {
  if (!info) return;
  g_free(info->name);
  g_free(info->description);
  g_free(info);
}

static void clear_info(NBDExportInfo *info) {
  g_clear_pointer(&info->name, g_free);
  g_clear_pointer(&info->description, g_free);
  *info = {};
}

static void nbd_client_finalize(GObject *object) {
  NBDClient *client = NBD_CLIENT(object);
  NBDClientPrivate *priv = client_priv(client);
  nbd_client_disconnect(client);
  g_clear_object(&priv->tls_creds);
  g_clear_object(&priv->addr);
  clear_info(&priv->info);
  priv->~NBDClientPrivate();
  G_OBJECT_CLASS(nbd_client_parent_class)->finalize(object);
}

static void nbd_client_class_init(NBDClientClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = nbd_client_finalize;
}

static void nbd_client_init(NBDClient *client) { new (client_priv(client)) NBDClientPrivate(); }

NBDClient *nbd_client_new(void) { return NBD_CLIENT(g_object_new(NBD_TYPE_CLIENT, nullptr)); }

void nbd_client_set_tls_creds(NBDClient *client, QCryptoTLSCreds *creds) {
  NBDClientPrivate *priv = client_priv(client);
  g_set_object(&priv->tls_creds, creds);
}

void nbd_client_set_reconnect_delay(NBDClient *client, guint seconds) {
  client_priv(client)->reconnect_delay = seconds;
}

void nbd_client_set_tls_hostname(NBDClient *client, const char *hostname) {
  client_priv(client)->tls_hostname = hostname ? hostname : "";
}

static gboolean bad_uri(GError **error, const char *uri, const char *why) {
  g_set_error(error, NBD_ERROR, NBD_ERROR_INVALID_URI, _("Invalid NBD URI '%s': %s"), uri, why);
  return FALSE;
}

gboolean nbd_client_parse_uri(const char *uri, QIOSocketAddress **addr, char **export_name,
                              gboolean *tls, GError **error) {
  g_autoptr(GError) parse_error = nullptr;
  g_autoptr(GUri) u = g_uri_parse(uri, G_URI_FLAGS_ENCODED_QUERY, &parse_error);
  if (!u) return bad_uri(error, uri, parse_error->message);
  const char *scheme = g_uri_get_scheme(u);
  bool unix_socket;
  if (g_strcmp0(scheme, "nbd") == 0 || g_strcmp0(scheme, "nbds") == 0) {
    unix_socket = false;
  } else if (g_strcmp0(scheme, "nbd+unix") == 0 || g_strcmp0(scheme, "nbds+unix") == 0) {
    unix_socket = true;
  } else {
    return bad_uri(error, uri,
                   _("the scheme must be nbd, nbds, nbd+unix or nbds+unix"));
  }
  if (g_uri_get_user(u) || g_uri_get_fragment(u))
    return bad_uri(error, uri, _("user names and fragments are not allowed"));
  const char *path = g_uri_get_path(u);
  if (*path && *path != '/') return bad_uri(error, uri, _("the export must follow a '/'"));
  g_autofree char *name = g_strdup(*path ? path + 1 : "");
  if (strlen(name) > NBD_MAX_STRING)
    return bad_uri(error, uri, _("the export name is longer than 4096 bytes"));

  g_autofree char *socket_path = nullptr;
  if (const char *query = g_uri_get_query(u)) {
    g_autoptr(GHashTable) params =
        g_uri_parse_params(query, -1, "&", G_URI_PARAMS_NONE, &parse_error);
    if (!params) return bad_uri(error, uri, parse_error->message);
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, params);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
      if (unix_socket && strcmp(static_cast<char *>(key), "socket") == 0) {
        socket_path = g_strdup(static_cast<char *>(value));
      } else {
        g_autofree char *why =
            g_strdup_printf(_("unknown query parameter '%s' (only socket=PATH, with "
                              "nbd+unix and nbds+unix)"),
                            static_cast<char *>(key));
        return bad_uri(error, uri, why);
      }
    }
  }
  const char *host = g_uri_get_host(u);
  if (unix_socket) {
    if (host && *host) return bad_uri(error, uri, _("a +unix URI takes no host"));
    if (!socket_path || !*socket_path)
      return bad_uri(error, uri, _("a +unix URI needs ?socket=PATH"));
    *addr = qio_socket_address_new_unix(socket_path, FALSE);
  } else {
    if (!host || !*host) return bad_uri(error, uri, _("the host is missing"));
    gint port = g_uri_get_port(u);
    if (port == 0) return bad_uri(error, uri, _("the port must be between 1 and 65535"));
    *addr = qio_socket_address_new_inet(host, port < 0 ? NBD_DEFAULT_PORT
                                                       : static_cast<guint16>(port));
  }
  *export_name = g_steal_pointer(&name);
  *tls = g_str_has_prefix(scheme, "nbds");
  return TRUE;
}

namespace {

gboolean protocol_error(NBDClientPrivate *priv, GError **error, const char *what) {
  g_set_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL,
              _("NBD server %s broke the protocol: %s; is it an NBD server?"),
              priv->peer.c_str(), what);
  return FALSE;
}

gboolean send_option(NBDClientPrivate *priv, guint32 opt, const void *data, gsize len,
                     GError **error) {
  guint8 hdr[NBD_OPTION_HEADER_SIZE];
  nbd_put64(hdr, NBD_OPTS_MAGIC);
  nbd_put32(hdr + 8, opt);
  nbd_put32(hdr + 12, static_cast<guint32>(len));
  struct iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<void *>(data), len}};
  priv->option_replies = 0;
  return qio_channel_writev_all(priv->ioc, iov, len ? 2 : 1, error);
}

/* Reads one option reply; its payload (bounded) lands in @payload. */
gboolean read_reply(NBDClientPrivate *priv, guint32 opt, guint32 *type,
                    std::vector<guint8> &payload, GError **error) {
  guint8 hdr[NBD_OPTION_REPLY_HEADER_SIZE];
  if (++priv->option_replies > kMaxOptionReplies)
    return protocol_error(priv, error, _("thousands of replies to one option"));
  if (!qio_channel_read_all(priv->ioc, hdr, sizeof hdr, error)) return FALSE;
  if (nbd_get64(hdr) != NBD_REP_MAGIC) return protocol_error(priv, error, _("bad reply magic"));
  if (nbd_get32(hdr + 8) != opt)
    return protocol_error(priv, error, _("reply to an option that was not sent"));
  *type = nbd_get32(hdr + 12);
  guint32 len = nbd_get32(hdr + 16);
  if (len > NBD_MAX_OPTION_LENGTH) return protocol_error(priv, error, _("oversized reply"));
  payload.resize(len);
  return len == 0 || qio_channel_read_all(priv->ioc, payload.data(), len, error);
}

/* Turns an NBD_REP_ERR_* reply into a GError. */
gboolean reply_error(NBDClientPrivate *priv, guint32 opt, guint32 type,
                     const std::vector<guint8> &payload, const char *export_name,
                     GError **error) {
  std::string msg(payload.begin(), payload.end());
  int code = type == NBD_REP_ERR_UNKNOWN    ? NBD_ERROR_UNKNOWN_EXPORT
             : type == NBD_REP_ERR_TLS_REQD ? NBD_ERROR_TLS_REQUIRED
             : type == NBD_REP_ERR_POLICY   ? NBD_ERROR_POLICY
             : type == NBD_REP_ERR_UNSUP    ? NBD_ERROR_UNSUPPORTED
                                            : NBD_ERROR_FAILED;
  const char *hint = code == NBD_ERROR_UNKNOWN_EXPORT ? _("check the export name (--list shows them)")
                     : code == NBD_ERROR_TLS_REQUIRED ? _("connect with TLS credentials")
                                                      : _("see the server's log");
  g_set_error(error, NBD_ERROR, code, _("NBD server %s refused %s for export '%s': %s%s%s; %s"),
              priv->peer.c_str(), nbd_option_name(opt), export_name, nbd_reply_name(type),
              msg.empty() ? "" : ": ", msg.c_str(), hint);
  return FALSE;
}

/* Parses one NBD_REP_INFO into @info. */
gboolean take_info(NBDClientPrivate *priv, const std::vector<guint8> &p, NBDExportInfo *info,
                   GError **error) {
  if (p.size() < 2) return protocol_error(priv, error, _("short NBD_REP_INFO"));
  guint16 type = nbd_get16(p.data());
  switch (type) {
    case NBD_INFO_EXPORT:
      if (p.size() != 12) return protocol_error(priv, error, _("bad NBD_INFO_EXPORT size"));
      info->size = nbd_get64(p.data() + 2);
      info->flags = nbd_get16(p.data() + 10);
      break;
    case NBD_INFO_NAME:
    case NBD_INFO_DESCRIPTION: {
      if (p.size() - 2 > NBD_MAX_STRING) return protocol_error(priv, error, _("oversized name"));
      char *s = g_strndup(reinterpret_cast<const char *>(p.data() + 2), p.size() - 2);
      char **slot = type == NBD_INFO_NAME ? &info->name : &info->description;
      g_free(*slot);
      *slot = s;
      break;
    }
    case NBD_INFO_BLOCK_SIZE:
      if (p.size() != 14) return protocol_error(priv, error, _("bad NBD_INFO_BLOCK_SIZE size"));
      info->min_block = nbd_get32(p.data() + 2);
      info->preferred_block = nbd_get32(p.data() + 6);
      info->max_block = nbd_get32(p.data() + 10);
      break;
    default:
      break; /* newer information types are ignored, as the spec asks */
  }
  return TRUE;
}

/* NBD_OPT_INFO or NBD_OPT_GO on @name. */
gboolean info_or_go(NBDClientPrivate *priv, guint32 opt, const char *name, NBDExportInfo *info,
                    GError **error) {
  static const guint16 wanted[] = {NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE};
  g_autoptr(GByteArray) req = nbd_build_info_request(name, wanted, G_N_ELEMENTS(wanted));
  if (!send_option(priv, opt, req->data, req->len, error)) return FALSE;
  bool have_export = false;
  std::vector<guint8> payload;
  for (;;) {
    guint32 type;
    if (!read_reply(priv, opt, &type, payload, error)) return FALSE;
    if (type == NBD_REP_ACK) break;
    if (type & NBD_REP_FLAG_ERROR) return reply_error(priv, opt, type, payload, name, error);
    if (type != NBD_REP_INFO) return protocol_error(priv, error, _("unexpected reply type"));
    if (!take_info(priv, payload, info, error)) return FALSE;
    if (nbd_get16(payload.data()) == NBD_INFO_EXPORT) have_export = true;
  }
  if (!have_export) return protocol_error(priv, error, _("no NBD_INFO_EXPORT before NBD_REP_ACK"));
  if (!info->name) info->name = g_strdup(name);
  if (!info->description) info->description = g_strdup("");
  return TRUE;
}

/* Connects and runs the handshake up to (not including) the choice of
 * export: structured replies are negotiated when offered. */
gboolean open_session(NBDClientPrivate *priv, QIOSocketAddress *addr, GError **error) {
  g_autofree char *where = qio_socket_address_to_string(addr);
  priv->peer = where;
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  g_autoptr(GCancellable) connecting = g_cancellable_new();
  {
    std::lock_guard guard(priv->abort_lock);
    if (priv->aborted || priv->timed_out) g_cancellable_cancel(connecting);
    priv->connecting = connecting;
  }
  gboolean connected =
      qio_channel_socket_connect_sync_cancellable(sioc, addr, connecting, error);
  {
    std::lock_guard guard(priv->abort_lock);
    priv->connecting = nullptr;
    if (!connected && priv->timed_out) {
      g_clear_error(error);
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                  _("NBD connection to '%s' did not finish within the reconnect delay"), where);
    }
  }
  if (!connected) return FALSE;
  {
    std::lock_guard guard(priv->abort_lock);
    if (priv->aborted) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                  _("NBD connection to '%s' was stopped"), where);
      return FALSE;
    }
    if (priv->timed_out) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                  _("NBD connection to '%s' did not finish within the reconnect delay"), where);
      return FALSE;
    }
    priv->socket = QIO_CHANNEL(g_object_ref(sioc));
  }
  qio_channel_set_delay(QIO_CHANNEL(sioc), FALSE);
  priv->ioc = QIO_CHANNEL(g_object_ref(sioc));
  guint8 hello[18];
  if (!qio_channel_read_all(priv->ioc, hello, sizeof hello, error)) {
    std::lock_guard guard(priv->abort_lock);
    if (priv->timed_out) {
      g_clear_error(error);
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                  _("NBD server %s sent no greeting within the reconnect delay"), where);
    } else {
      g_prefix_error(error, _("NBD server %s hung up before its greeting (is it at its "
                              "connection limit?): "),
                     where);
    }
    return FALSE;
  }
  if (nbd_get64(hello) != NBD_INIT_MAGIC || nbd_get64(hello + 8) != NBD_OPTS_MAGIC)
    return protocol_error(priv, error, _("no fixed newstyle greeting"));
  guint16 sflags = nbd_get16(hello + 16);
  if (!(sflags & NBD_FLAG_FIXED_NEWSTYLE))
    return protocol_error(priv, error, _("the server does not speak fixed newstyle"));
  guint8 cflags[4];
  nbd_put32(cflags, NBD_FLAG_C_FIXED_NEWSTYLE | (sflags & NBD_FLAG_NO_ZEROES));
  if (!qio_channel_write_all(priv->ioc, cflags, 4, error)) return FALSE;
  std::vector<guint8> payload;
  guint32 type;
  if (priv->tls_creds) {
    if (!send_option(priv, NBD_OPT_STARTTLS, nullptr, 0, error) ||
        !read_reply(priv, NBD_OPT_STARTTLS, &type, payload, error))
      return FALSE;
    if (type != NBD_REP_ACK) {
      if (type & NBD_REP_FLAG_ERROR) return reply_error(priv, NBD_OPT_STARTTLS, type, payload, "", error);
      return protocol_error(priv, error, _("unexpected reply to NBD_OPT_STARTTLS"));
    }
    const char *hostname = !priv->tls_hostname.empty() ? priv->tls_hostname.c_str()
                           : qio_socket_address_get_kind(addr) == QIO_SOCKET_ADDRESS_INET
                               ? qio_socket_address_get_host(addr)
                               : nullptr;
    g_autoptr(QIOChannelTLS) tioc =
        qio_channel_tls_new_client(priv->ioc, priv->tls_creds, hostname, error);
    if (!tioc) return FALSE;
    if (!qio_channel_tls_handshake_sync(tioc, nullptr, error)) {
      g_prefix_error(error, _("TLS handshake with NBD server %s failed: "), where);
      return FALSE;
    }
    g_object_unref(priv->ioc);
    priv->ioc = QIO_CHANNEL(g_steal_pointer(&tioc));
  }
  if (!send_option(priv, NBD_OPT_STRUCTURED_REPLY, nullptr, 0, error) ||
      !read_reply(priv, NBD_OPT_STRUCTURED_REPLY, &type, payload, error))
    return FALSE;
  priv->structured = type == NBD_REP_ACK;
  return TRUE;
}

gboolean set_meta_context(NBDClientPrivate *priv, const char *name, GError **error) {
  static const char *const queries[] = {NBD_META_CONTEXT_BASE_ALLOCATION, nullptr};
  g_autoptr(GByteArray) req = nbd_build_meta_context_request(name, queries);
  if (!send_option(priv, NBD_OPT_SET_META_CONTEXT, req->data, req->len, error)) return FALSE;
  std::vector<guint8> payload;
  for (;;) {
    guint32 type;
    if (!read_reply(priv, NBD_OPT_SET_META_CONTEXT, &type, payload, error)) return FALSE;
    if (type == NBD_REP_ACK) return TRUE;
    if (type & NBD_REP_FLAG_ERROR) return TRUE; /* no block status then */
    if (type == NBD_REP_META_CONTEXT && payload.size() > 4 &&
        std::string(payload.begin() + 4, payload.end()) == NBD_META_CONTEXT_BASE_ALLOCATION) {
      priv->base_allocation = true;
      priv->base_allocation_id = nbd_get32(payload.data());
    }
  }
}

}  // namespace

gboolean nbd_client_connect(NBDClient *client, QIOSocketAddress *addr, const char *export_name,
                            GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  nbd_client_disconnect(client);
  if (!open_session(priv, addr, error) ||
      (priv->structured && !set_meta_context(priv, export_name, error)) ||
      !info_or_go(priv, NBD_OPT_GO, export_name, &priv->info, error)) {
    nbd_client_disconnect(client);
    return FALSE;
  }
  /* An fd: address names a descriptor used up by this connect. */
  auto kind = qio_socket_address_get_kind(addr);
  g_clear_object(&priv->addr);
  if (kind == QIO_SOCKET_ADDRESS_INET || kind == QIO_SOCKET_ADDRESS_UNIX)
    priv->addr = QIO_SOCKET_ADDRESS(g_object_ref(addr));
  priv->export_name = export_name;
  priv->connections++;
  return TRUE;
}

guint64 nbd_client_get_connections(NBDClient *client) { return client_priv(client)->connections; }

gboolean nbd_client_connect_uri(NBDClient *client, const char *uri, GError **error) {
  g_autoptr(QIOSocketAddress) addr = nullptr;
  g_autofree char *name = nullptr;
  gboolean tls;
  if (!nbd_client_parse_uri(uri, &addr, &name, &tls, error)) return FALSE;
  if (tls && !client_priv(client)->tls_creds) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_INVALID_URI,
                _("NBD URI '%s' asks for TLS; give TLS credentials (--tls-creds)"), uri);
    return FALSE;
  }
  return nbd_client_connect(client, addr, name, error);
}

GPtrArray *nbd_client_list(NBDClient *client, QIOSocketAddress *addr, GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  nbd_client_disconnect(client);
  g_autoptr(GPtrArray) list =
      g_ptr_array_new_with_free_func(reinterpret_cast<GDestroyNotify>(nbd_export_info_free));
  std::vector<guint8> payload;
  bool ok = open_session(priv, addr, error) &&
            send_option(priv, NBD_OPT_LIST, nullptr, 0, error);
  while (ok) {
    guint32 type;
    if (!(ok = read_reply(priv, NBD_OPT_LIST, &type, payload, error))) break;
    if (type == NBD_REP_ACK) break;
    if (type & NBD_REP_FLAG_ERROR) {
      ok = reply_error(priv, NBD_OPT_LIST, type, payload, "", error);
      break;
    }
    if (type != NBD_REP_SERVER) {
      ok = protocol_error(priv, error, _("unexpected reply to NBD_OPT_LIST"));
      break;
    }
    auto *info = g_new0(NBDExportInfo, 1);
    g_ptr_array_add(list, info);
    ok = nbd_parse_rep_server(payload.data(), payload.size(), &info->name, &info->description,
                              error);
  }
  for (guint i = 0; ok && i < list->len; i++) {
    auto *info = static_cast<NBDExportInfo *>(list->pdata[i]);
    g_autofree char *name = g_strdup(info->name);
    /* NBD_INFO_DESCRIPTION, when sent, replaces the listed one. */
    ok = info_or_go(priv, NBD_OPT_INFO, name, info, error);
  }
  if (ok) {
    std::vector<guint8> ignored;
    guint32 type;
    /* A polite goodbye; the server may close without answering. */
    if (send_option(priv, NBD_OPT_ABORT, nullptr, 0, nullptr))
      read_reply(priv, NBD_OPT_ABORT, &type, ignored, nullptr);
  }
  if (priv->ioc) qio_channel_close(priv->ioc, nullptr);
  g_clear_object(&priv->ioc);
  return ok ? static_cast<GPtrArray *>(g_steal_pointer(&list)) : nullptr;
}

const NBDExportInfo *nbd_client_get_info(NBDClient *client) { return &client_priv(client)->info; }

gboolean nbd_client_has_structured_replies(NBDClient *client) {
  return client_priv(client)->structured;
}

gboolean nbd_client_has_base_allocation(NBDClient *client) {
  return client_priv(client)->base_allocation;
}

namespace {

gboolean not_connected(GError **error) {
  g_set_error(error, NBD_ERROR, NBD_ERROR_FAILED,
              _("The NBD client is not connected; call nbd_client_connect first"));
  return FALSE;
}

gboolean send_request(NBDClientPrivate *priv, guint16 type, guint16 flags, guint64 offset,
                      guint32 len, const void *data, guint64 *cookie, GError **error) {
  if (!priv->ioc) return not_connected(error);
  NBDRequest req = {flags, type, priv->next_cookie++, offset, len};
  *cookie = req.cookie;
  guint8 raw[NBD_REQUEST_SIZE];
  nbd_request_encode(&req, raw);
  struct iovec iov[2] = {{raw, sizeof raw}, {const_cast<void *>(data), data ? len : 0}};
  return qio_channel_writev_all(priv->ioc, iov, data && len ? 2 : 1, error);
}

gboolean command_failed(NBDClientPrivate *priv, guint16 type, guint64 offset, guint32 err,
                        const std::string &msg, GError **error) {
  g_set_error(error, NBD_ERROR, err == NBD_ESHUTDOWN ? NBD_ERROR_SHUTTING_DOWN : NBD_ERROR_COMMAND,
              _("NBD server %s failed %s at offset %llu: %s%s%s"), priv->peer.c_str(),
              nbd_command_name(type), static_cast<unsigned long long>(offset), nbd_error_name(err),
              msg.empty() ? "" : ": ", msg.c_str());
  return FALSE;
}

/* Notes that a chunk filled @n bytes at @at of a @len-byte read.  A
 * server has no reason to send more than a chunk per 64 bytes on average;
 * more would only make the client keep a long list. */
gboolean note_filled(NBDClientPrivate *priv, std::vector<std::pair<guint32, guint32>> &filled,
                     guint32 at, guint32 n, guint32 len, GError **error) {
  if (filled.size() > len / 64 + 64)
    return protocol_error(priv, error, _("too many chunks in the reply to a read"));
  filled.emplace_back(at, n);
  return TRUE;
}

/* What is wrong with the tiling of [0, @len) by @filled, or nullptr. */
const char *tiling_fault(std::vector<std::pair<guint32, guint32>> &filled, guint32 len) {
  std::sort(filled.begin(), filled.end());
  guint64 end = 0;
  for (const auto &[at, n] : filled) {
    if (at < end) return _("the reply to a read filled part of it twice");
    if (at > end) break;
    end += n;
  }
  return end == len ? nullptr : _("the reply to a read left part of it unfilled");
}

/* Reads the reply to @cookie.  Read data goes to @buf (@len bytes at
 * @offset), block status extents to @extents. */
gboolean read_reply_chunks(NBDClientPrivate *priv, guint16 type, guint64 cookie, guint64 offset,
                           guint8 *buf, guint32 len, GArray *extents, GError **error) {
  /* The first error chunk is reported once the reply is done, so that the
   * connection stays in step. */
  guint32 failure = 0;
  std::string failure_message;
  /* What data and hole chunks of a read filled (offset in the read,
   * length), to check that they tile it without overlap. */
  std::vector<std::pair<guint32, guint32>> filled;
  bool got_block_status = false;
  for (;;) {
    guint8 magic[4];
    if (!qio_channel_read_all(priv->ioc, magic, 4, error)) return FALSE;
    if (nbd_get32(magic) == NBD_SIMPLE_REPLY_MAGIC) {
      guint8 rest[12];
      if (!qio_channel_read_all(priv->ioc, rest, 12, error)) return FALSE;
      if (nbd_get64(rest + 4) != cookie) return protocol_error(priv, error, _("wrong cookie"));
      guint32 err = nbd_get32(rest);
      if (err) return command_failed(priv, type, offset, err, "", error);
      if (type == NBD_CMD_READ && priv->structured)
        return protocol_error(priv, error, _("simple reply to a structured read"));
      if (type == NBD_CMD_READ && len && !qio_channel_read_all(priv->ioc, buf, len, error))
        return FALSE;
      return TRUE;
    }
    if (nbd_get32(magic) != NBD_STRUCTURED_REPLY_MAGIC || !priv->structured)
      return protocol_error(priv, error, _("bad reply magic"));
    guint8 rest[16];
    if (!qio_channel_read_all(priv->ioc, rest, 16, error)) return FALSE;
    guint16 flags = nbd_get16(rest);
    guint16 ctype = nbd_get16(rest + 2);
    if (nbd_get64(rest + 4) != cookie) return protocol_error(priv, error, _("wrong cookie"));
    guint32 clen = nbd_get32(rest + 12);
    if (ctype == NBD_REPLY_TYPE_OFFSET_DATA && type == NBD_CMD_READ) {
      guint8 off[8];
      if (clen < 9 || !qio_channel_read_all(priv->ioc, off, 8, error))
        return clen < 9 ? protocol_error(priv, error, _("short data chunk")) : FALSE;
      guint64 at = nbd_get64(off);
      guint32 n = clen - 8;
      if (at < offset || at - offset > len || n > len - (at - offset))
        return protocol_error(priv, error, _("data chunk outside the requested range"));
      if (!note_filled(priv, filled, static_cast<guint32>(at - offset), n, len, error) ||
          !qio_channel_read_all(priv->ioc, buf + (at - offset), n, error))
        return FALSE;
    } else if (ctype == NBD_REPLY_TYPE_OFFSET_HOLE && type == NBD_CMD_READ) {
      guint8 p[12];
      if (clen != 12) return protocol_error(priv, error, _("bad hole chunk"));
      if (!qio_channel_read_all(priv->ioc, p, 12, error)) return FALSE;
      guint64 at = nbd_get64(p);
      guint32 n = nbd_get32(p + 8);
      if (at < offset || at - offset > len || n > len - (at - offset))
        return protocol_error(priv, error, _("hole chunk outside the requested range"));
      if (!note_filled(priv, filled, static_cast<guint32>(at - offset), n, len, error))
        return FALSE;
      memset(buf + (at - offset), 0, n);
    } else if (ctype == NBD_REPLY_TYPE_BLOCK_STATUS && type == NBD_CMD_BLOCK_STATUS) {
      if (clen < 12 || (clen - 4) % 8 || clen > NBD_MAX_OPTION_LENGTH * 16)
        return protocol_error(priv, error, _("bad block status chunk"));
      std::vector<guint8> p(clen);
      if (!qio_channel_read_all(priv->ioc, p.data(), clen, error)) return FALSE;
      /* One chunk per context, and base:allocation is the only one asked for. */
      if (nbd_get32(p.data()) != priv->base_allocation_id || got_block_status)
        return protocol_error(priv, error, _("block status for a context not asked for"));
      got_block_status = true;
      for (guint32 i = 4; i < clen; i += 8) {
        NBDExtent e = {nbd_get32(p.data() + i), nbd_get32(p.data() + i + 4)};
        g_array_append_val(extents, e);
      }
    } else if (ctype == NBD_REPLY_TYPE_ERROR || ctype == NBD_REPLY_TYPE_ERROR_OFFSET) {
      if (clen < 6 || clen > NBD_MAX_OPTION_LENGTH)
        return protocol_error(priv, error, _("bad error chunk"));
      std::vector<guint8> p(clen);
      if (!qio_channel_read_all(priv->ioc, p.data(), clen, error)) return FALSE;
      guint16 mlen = nbd_get16(p.data() + 4);
      if (6u + mlen > clen || nbd_get32(p.data()) == 0)
        return protocol_error(priv, error, _("bad error chunk"));
      if (!failure) {
        failure = nbd_get32(p.data());
        failure_message.assign(p.begin() + 6, p.begin() + 6 + mlen);
      }
    } else if (ctype == NBD_REPLY_TYPE_NONE) {
      if (clen != 0 || !(flags & NBD_REPLY_FLAG_DONE))
        return protocol_error(priv, error, _("bad NBD_REPLY_TYPE_NONE chunk"));
    } else {
      return protocol_error(priv, error, _("unexpected reply chunk"));
    }
    if (!(flags & NBD_REPLY_FLAG_DONE)) continue;
    if (failure) return command_failed(priv, type, offset, failure, failure_message, error);
    /* Bytes no chunk filled would read as whatever the buffer held. */
    if (const char *fault = type == NBD_CMD_READ ? tiling_fault(filled, len) : nullptr)
      return protocol_error(priv, error, fault);
    return TRUE;
  }
}

gboolean simple_command(NBDClient *client, guint16 type, guint16 flags, guint64 offset,
                        guint32 len, const void *data, GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  guint64 cookie;
  return send_request(priv, type, flags, offset, len, data, &cookie, error) &&
         read_reply_chunks(priv, type, cookie, offset, nullptr, 0, nullptr, error);
}

/* Commands the server did not offer must not be sent (the spec forbids
 * them): refused here, naming the server. */
gboolean require_flag(NBDClient *client, guint16 flag, const char *command, GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  if (!priv->ioc || (priv->info.flags & flag)) return TRUE;
  g_set_error(error, NBD_ERROR, NBD_ERROR_UNSUPPORTED,
              _("NBD server %s does not offer %s on this export"), priv->peer.c_str(), command);
  return FALSE;
}

gboolean flush(NBDClient *client, GError **error) {
  /* A server that offers no flush cannot be asked for one (the spec
   * forbids the command): its writes are as durable as it makes them. */
  NBDClientPrivate *priv = client_priv(client);
  if (priv->ioc && !(priv->info.flags & NBD_FLAG_SEND_FLUSH)) return TRUE;
  return simple_command(client, NBD_CMD_FLUSH, 0, 0, 0, nullptr, error);
}

/* Calls @step(offset, done, n) for pieces of at most the server's maximum
 * payload covering @len bytes from @offset. */
template <typename F>
gboolean for_each_piece(NBDClientPrivate *priv, guint64 offset, gsize len, F step) {
  guint32 max = priv->info.max_block ? MIN(priv->info.max_block, NBD_MAX_PAYLOAD) : 1u << 20;
  gsize done = 0;
  do {
    guint32 n = static_cast<guint32>(MIN(len - done, max));
    if (!step(offset + done, done, n)) return FALSE;
    done += n;
  } while (done < len);
  return TRUE;
}

/* Closes the connection without a goodbye: the socket leaves the reach
 * of nbd_client_abort() before it is closed. */
void drop_connection(NBDClientPrivate *priv) {
  {
    std::lock_guard guard(priv->abort_lock);
    g_clear_object(&priv->socket);
  }
  if (priv->ioc) qio_channel_close(priv->ioc, nullptr);
  g_clear_object(&priv->ioc);
  priv->structured = false;
  priv->base_allocation = false;
}

/* A failure that another connection may not have: the transport broke,
 * or the server said it is going away.  Other answers of the server
 * (NBD_ERROR) and a stop are final. */
bool connection_lost(NBDClientPrivate *priv, const GError *error) {
  std::lock_guard guard(priv->abort_lock);
  if (priv->aborted || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return false;
  return error->domain != NBD_ERROR || error->code == NBD_ERROR_SHUTTING_DOWN;
}

/* Whether @fresh makes writes less durable than @old did: a flush the
 * server no longer offers succeeds without making anything durable, and
 * so does a FUA write without FUA unless a flush can replace it.  (Trim,
 * write-zeroes and block status a server stops offering fail when used,
 * naming the server.) */
bool durability_lost(guint16 old, guint16 fresh) {
  bool lost_flush = (old & NBD_FLAG_SEND_FLUSH) && !(fresh & NBD_FLAG_SEND_FLUSH);
  bool lost_fua = (old & NBD_FLAG_SEND_FUA) && !(fresh & NBD_FLAG_SEND_FUA) &&
                  !(fresh & NBD_FLAG_SEND_FLUSH);
  return lost_flush || lost_fua;
}

enum class Reconnect { Done, Failed, Refused };

/* Connects again to the same export.  Refused (trying again would not
 * help): the export is not the one the client was using, or the server
 * refused in a way a restart does not change (TLS, protocol). */
Reconnect reconnect(NBDClientPrivate *priv, GError **error) {
  drop_connection(priv);
  NBDExportInfo fresh = {};
  if (!open_session(priv, priv->addr, error) ||
      (priv->structured && !set_meta_context(priv, priv->export_name.c_str(), error)) ||
      !info_or_go(priv, NBD_OPT_GO, priv->export_name.c_str(), &fresh, error)) {
    clear_info(&fresh);
    drop_connection(priv);
    const GError *e = *error;
    bool final = (e->domain == NBD_ERROR &&
                  (e->code == NBD_ERROR_PROTOCOL || e->code == NBD_ERROR_TLS_REQUIRED)) ||
                 (e->domain == QCRYPTO_ERROR &&
                  (e->code == QCRYPTO_ERROR_VERIFY || e->code == QCRYPTO_ERROR_CERTIFICATE ||
                   e->code == QCRYPTO_ERROR_ACCESS_DENIED));
    return final ? Reconnect::Refused : Reconnect::Failed;
  }
  const char *changed =
      fresh.size != priv->info.size ? _("its size changed")
      : (fresh.flags & NBD_FLAG_READ_ONLY) && !(priv->info.flags & NBD_FLAG_READ_ONLY)
          ? _("it became read-only")
      : durability_lost(priv->info.flags, fresh.flags) ? _("it no longer offers flush")
                                                        : nullptr;
  if (changed) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_FAILED,
                _("NBD server %s: export '%s' is not the one it was before reconnecting (%s); "
                  "not using it"),
                priv->peer.c_str(), priv->export_name.c_str(), changed);
    clear_info(&fresh);
    drop_connection(priv);
    return Reconnect::Refused;
  }
  clear_info(&priv->info);
  priv->info = fresh;
  priv->connections++;
  return Reconnect::Done;
}

/* Waits @us unless nbd_client_abort() comes first; false if it did. */
bool pause_unless_aborted(NBDClientPrivate *priv, gint64 us) {
  std::unique_lock guard(priv->abort_lock);
  priv->abort_wake.wait_for(guard, std::chrono::microseconds(us), [priv] { return priv->aborted; });
  return !priv->aborted;
}

/* Runs @attempt, cut off at @deadline (monotonic us) as nbd_client_abort()
 * would cut it: a connect in progress is cancelled, a socket waiting for
 * the server is shut down. */
template <typename Attempt>
auto until_deadline(NBDClientPrivate *priv, gint64 deadline, Attempt attempt) {
  bool finished = false;
  {
    std::lock_guard guard(priv->abort_lock);
    priv->timed_out = false;
  }
  std::thread watch([priv, deadline, &finished] {
    std::unique_lock guard(priv->abort_lock);
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::microseconds(std::max<gint64>(deadline - g_get_monotonic_time(), 0));
    if (priv->abort_wake.wait_until(guard, until, [&] { return finished || priv->aborted; }))
      return;
    /* Also for a try that has not reached its connect yet: open_session
     * checks the flag where it would start one. */
    priv->timed_out = true;
    if (priv->connecting) g_cancellable_cancel(priv->connecting);
    if (priv->socket) qio_channel_shutdown(priv->socket, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  });
  auto result = attempt();
  {
    std::lock_guard guard(priv->abort_lock);
    finished = true;
  }
  priv->abort_wake.notify_all();
  watch.join();
  return result;
}

/* Runs @op, a whole command.  With a reconnect delay, a command whose
 * connection broke waits for a new connection to the same export, trying
 * with growing pauses for up to that many seconds (each try cut off at
 * that time too), and runs again.  A command may thus reach the server
 * more than once, and writes acknowledged on the old connection but not
 * yet flushed may be lost with it: nbd_client_get_connections() tells a
 * caller that must write them again. */
template <typename Op>
gboolean with_reconnect(NBDClient *client, GError **error, Op op) {
  NBDClientPrivate *priv = client_priv(client);
  GError *failure = nullptr;
  if (op(&failure)) return TRUE;
  if (!priv->reconnect_delay || !priv->addr || !connection_lost(priv, failure)) {
    g_propagate_error(error, failure);
    return FALSE;
  }
  g_message(_("NBD server %s: connection lost (%s); reconnecting for up to %u seconds"),
            priv->peer.c_str(), failure->message, priv->reconnect_delay);
  const gint64 deadline =
      g_get_monotonic_time() + static_cast<gint64>(priv->reconnect_delay) * G_USEC_PER_SEC;
  gint64 pause = 100 * G_TIME_SPAN_MILLISECOND;
  std::string last_logged;
  for (;;) {
    GError *attempt = nullptr;
    Reconnect r = until_deadline(priv, deadline, [&] { return reconnect(priv, &attempt); });
    {
      std::lock_guard guard(priv->abort_lock);
      priv->timed_out = false;
    }
    if (r == Reconnect::Refused) {
      g_clear_error(&failure);
      g_propagate_error(error, attempt);
      return FALSE;
    }
    if (r == Reconnect::Done) {
      g_message(_("NBD server %s: reconnected to export '%s'"), priv->peer.c_str(),
                priv->export_name.c_str());
      g_clear_error(&failure);
      if (op(&failure)) return TRUE;
      if (!connection_lost(priv, failure)) break;
    } else {
      /* A server that stays away logs once, not at every try. */
      if (last_logged != attempt->message) {
        last_logged = attempt->message;
        g_message(_("NBD server %s: reconnecting failed (%s); trying again"),
                  priv->peer.c_str(), attempt->message);
      }
      g_clear_error(&failure);
      failure = attempt;
    }
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) {
      g_prefix_error(&failure, _("NBD server %s: gave up reconnecting after %u seconds: "),
                     priv->peer.c_str(), priv->reconnect_delay);
      break;
    }
    if (!pause_unless_aborted(priv, std::min(pause, left))) break;
    pause = std::min<gint64>(pause * 2, 2 * G_USEC_PER_SEC);
  }
  g_propagate_error(error, failure);
  return FALSE;
}

}  // namespace

gboolean nbd_client_read(NBDClient *client, guint64 offset, void *buf, gsize len,
                         GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  auto *p = static_cast<guint8 *>(buf);
  return with_reconnect(client, error, [&](GError **err) {
    return for_each_piece(priv, offset, len, [&](guint64 at, gsize done, guint32 n) {
      guint64 cookie;
      return send_request(priv, NBD_CMD_READ, 0, at, n, nullptr, &cookie, err) &&
             read_reply_chunks(priv, NBD_CMD_READ, cookie, at, p + done, n, nullptr, err);
    });
  });
}

gboolean nbd_client_write(NBDClient *client, guint64 offset, const void *buf, gsize len,
                          gboolean fua, GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  auto *p = static_cast<const guint8 *>(buf);
  return with_reconnect(client, error, [&](GError **err) {
    /* The spec forbids the FUA flag unless the server offered it; a flush
     * after the write gives the same guarantee where only that is offered. */
    bool fua_flag = fua && (priv->info.flags & NBD_FLAG_SEND_FUA);
    return for_each_piece(priv, offset, len, [&](guint64 at, gsize done, guint32 n) {
             return simple_command(client, NBD_CMD_WRITE, fua_flag ? NBD_CMD_FLAG_FUA : 0, at,
                                   n, p + done, err);
           }) &&
           (!fua || fua_flag || flush(client, err));
  });
}

gboolean nbd_client_flush(NBDClient *client, GError **error) {
  return with_reconnect(client, error, [&](GError **err) { return flush(client, err); });
}

gboolean nbd_client_trim(NBDClient *client, guint64 offset, guint32 len, GError **error) {
  return with_reconnect(client, error, [&](GError **err) {
    return require_flag(client, NBD_FLAG_SEND_TRIM, "NBD_CMD_TRIM", err) &&
           simple_command(client, NBD_CMD_TRIM, 0, offset, len, nullptr, err);
  });
}

gboolean nbd_client_write_zeroes(NBDClient *client, guint64 offset, guint32 len,
                                 GError **error) {
  return with_reconnect(client, error, [&](GError **err) {
    return require_flag(client, NBD_FLAG_SEND_WRITE_ZEROES, "NBD_CMD_WRITE_ZEROES", err) &&
           simple_command(client, NBD_CMD_WRITE_ZEROES, 0, offset, len, nullptr, err);
  });
}

GArray *nbd_client_block_status(NBDClient *client, guint64 offset, guint32 len,
                                GError **error) {
  NBDClientPrivate *priv = client_priv(client);
  g_autoptr(GArray) extents = g_array_new(FALSE, FALSE, sizeof(NBDExtent));
  if (!with_reconnect(client, error, [&](GError **err) -> gboolean {
        if (priv->ioc && !priv->base_allocation) {
          g_set_error(err, NBD_ERROR, NBD_ERROR_UNSUPPORTED,
                      _("NBD server %s does not offer base:allocation block status"),
                      priv->peer.c_str());
          return FALSE;
        }
        guint64 cookie;
        g_array_set_size(extents, 0);
        return send_request(priv, NBD_CMD_BLOCK_STATUS, 0, offset, len, nullptr, &cookie, err) &&
               read_reply_chunks(priv, NBD_CMD_BLOCK_STATUS, cookie, offset, nullptr, 0, extents,
                                 err);
      }))
    return nullptr;
  return static_cast<GArray *>(g_steal_pointer(&extents));
}

void nbd_client_disconnect(NBDClient *client) {
  NBDClientPrivate *priv = client_priv(client);
  if (priv->ioc && (priv->info.size || priv->info.flags)) {
    guint64 cookie;
    send_request(priv, NBD_CMD_DISC, 0, 0, 0, nullptr, &cookie, nullptr);
  }
  drop_connection(priv);
  clear_info(&priv->info);
}

void nbd_client_abort(NBDClient *client) {
  g_return_if_fail(NBD_IS_CLIENT(client));
  NBDClientPrivate *priv = client_priv(client);
  std::lock_guard guard(priv->abort_lock);
  priv->aborted = true;
  if (priv->connecting) g_cancellable_cancel(priv->connecting);
  if (priv->socket) qio_channel_shutdown(priv->socket, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  priv->abort_wake.notify_all();
}
