#include "config.h"

#include "qio/net-listener.h"
#include "qio/error.h"
#include "qio/socket-task.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <new>
#include <utility>
#include <string>
#include <vector>

struct QIONetListenerPrivate {
  std::vector<QIOChannelSocket *> sockets; /* strong references */
  std::vector<GSource *> sources;          /* accept watches, one per socket */
  QIONetListenerClientFunc func = nullptr;
  gpointer user_data = nullptr;
  GDestroyNotify notify = nullptr;
  GMainContext *context = nullptr;
  std::string name;
};

struct _QIONetListener {
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE_WITH_PRIVATE(QIONetListener, qio_net_listener, G_TYPE_OBJECT)

static QIONetListenerPrivate *listener_priv(QIONetListener *listener) {
  return static_cast<QIONetListenerPrivate *>(qio_net_listener_get_instance_private(listener));
}

static void remove_watches(QIONetListenerPrivate *priv) {
  for (GSource *source : priv->sources) {
    g_source_destroy(source);
    g_source_unref(source);
  }
  priv->sources.clear();
}

static void clear_client_func(QIONetListenerPrivate *priv) {
  remove_watches(priv);
  if (priv->notify) priv->notify(priv->user_data);
  priv->func = nullptr;
  priv->user_data = nullptr;
  priv->notify = nullptr;
  g_clear_pointer(&priv->context, g_main_context_unref);
}

static void name_socket(QIONetListenerPrivate *priv, QIOChannelSocket *sioc) {
  if (priv->name.empty()) return;
  g_autoptr(QIOSocketAddress) addr = qio_channel_socket_get_local_address(sioc, nullptr);
  g_autofree char *str = addr ? qio_socket_address_to_string(addr) : nullptr;
  g_autofree char *name = g_strdup_printf("%s (%s)", priv->name.c_str(), str ? str : "?");
  qio_channel_set_name(QIO_CHANNEL(sioc), name);
}

/* After a failed accept (descriptors or memory exhausted), the client is
 * still queued and the socket stays readable: pause instead of spinning. */
constexpr guint kAcceptBackoffMs = 100;

static gboolean accept_ready(QIOChannel *ioc, GIOCondition, gpointer data) noexcept;

/* An accept watch on @sioc, attached to the listener's context. */
static GSource *attach_watch(QIONetListener *listener, QIOChannelSocket *sioc) {
  GSource *source = qio_channel_create_watch(QIO_CHANNEL(sioc), G_IO_IN);
  g_source_set_callback(source, G_SOURCE_FUNC(accept_ready), listener, nullptr);
  g_source_attach(source, listener_priv(listener)->context);
  return source;
}

namespace {

struct Rearm {
  QIONetListener *listener;
  gsize index;
};

gboolean rearm_watch(gpointer data) noexcept {
  auto *rearm = static_cast<Rearm *>(data);
  QIONetListenerPrivate *priv = listener_priv(rearm->listener);
  GSource *source = attach_watch(rearm->listener, priv->sockets[rearm->index]);
  /* The timeout being dispatched is kept alive by GLib until it returns. */
  g_source_unref(std::exchange(priv->sources[rearm->index], source));
  return G_SOURCE_REMOVE;
}

}  // namespace

static gboolean accept_ready(QIOChannel *ioc, GIOCondition, gpointer data) noexcept {
  auto *listener = QIO_NET_LISTENER(data);
  QIONetListenerPrivate *priv = listener_priv(listener);
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) client =
      qio_channel_socket_accept(QIO_CHANNEL_SOCKET(ioc), &error);
  if (!client) {
    /* Another thread took the client, or it went away before accept. */
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) return G_SOURCE_CONTINUE;
    g_warning(_("%s; trying again in %u ms"), error->message, kAcceptBackoffMs);
    auto it = std::find(priv->sources.begin(), priv->sources.end(), g_main_current_source());
    g_return_val_if_fail(it != priv->sources.end(), G_SOURCE_REMOVE);
    auto *rearm = g_new(Rearm, 1);
    rearm->listener = listener;
    rearm->index = static_cast<gsize>(it - priv->sources.begin());
    GSource *timeout = g_timeout_source_new(kAcceptBackoffMs);
    g_source_set_callback(timeout, rearm_watch, rearm, g_free);
    g_source_attach(timeout, priv->context);
    g_source_unref(std::exchange(*it, timeout));
    return G_SOURCE_REMOVE;
  }
  /* The callback may drop the last reference or replace itself. */
  g_autoptr(QIONetListener) keep = QIO_NET_LISTENER(g_object_ref(listener));
  if (priv->func) priv->func(listener, client, priv->user_data);
  return G_SOURCE_CONTINUE;
}

static void add_watch(QIONetListener *listener, QIOChannelSocket *sioc) {
  listener_priv(listener)->sources.push_back(attach_watch(listener, sioc));
}

static void qio_net_listener_finalize(GObject *object) {
  auto *listener = QIO_NET_LISTENER(object);
  qio_net_listener_disconnect(listener);
  listener_priv(listener)->~QIONetListenerPrivate();
  G_OBJECT_CLASS(qio_net_listener_parent_class)->finalize(object);
}

static void qio_net_listener_class_init(QIONetListenerClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_net_listener_finalize;
}

static void qio_net_listener_init(QIONetListener *listener) {
  new (listener_priv(listener)) QIONetListenerPrivate();
}

QIONetListener *qio_net_listener_new(void) {
  return QIO_NET_LISTENER(g_object_new(QIO_TYPE_NET_LISTENER, nullptr));
}

void qio_net_listener_set_name(QIONetListener *listener, const char *name) {
  g_return_if_fail(QIO_IS_NET_LISTENER(listener));
  QIONetListenerPrivate *priv = listener_priv(listener);
  priv->name = name ? name : "";
  for (QIOChannelSocket *sioc : priv->sockets) name_socket(priv, sioc);
}

void qio_net_listener_add(QIONetListener *listener, QIOChannelSocket *sioc) {
  g_return_if_fail(QIO_IS_NET_LISTENER(listener));
  g_return_if_fail(QIO_IS_CHANNEL_SOCKET(sioc));
  QIONetListenerPrivate *priv = listener_priv(listener);
  /* Non-blocking, so that a client another thread accepted first does not
   * block the main loop in accept. */
  qio_channel_set_blocking(QIO_CHANNEL(sioc), FALSE, nullptr);
  name_socket(priv, sioc);
  priv->sockets.push_back(QIO_CHANNEL_SOCKET(g_object_ref(sioc)));
  if (priv->func) add_watch(listener, sioc);
}

/* Binds every address @addr resolves to; the listening channels, or NULL
 * with nothing left open. */
static GPtrArray *open_sockets(QIOSocketAddress *addr, int backlog, GCancellable *cancellable,
                               GError **error) {
  g_autoptr(GPtrArray) list = qio_socket_address_resolve(addr, TRUE, error);
  if (!list) return nullptr;
  g_autoptr(GPtrArray) opened = g_ptr_array_new_with_free_func(g_object_unref);
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, nullptr);
  guint32 port = 0;
  for (guint i = 0; i < list->len; i++) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error)) return nullptr;
    auto *one = QIO_SOCKET_ADDRESS(g_ptr_array_index(list, i));
    g_autoptr(QIOSocketAddress) bind_addr = QIO_SOCKET_ADDRESS(g_object_ref(one));
    /* Port 0: every address shares the port the kernel gave the first. */
    if (port && qio_socket_address_get_kind(one) == QIO_SOCKET_ADDRESS_INET &&
        qio_socket_address_get_port(one) == 0) {
      g_object_unref(bind_addr);
      bind_addr = qio_socket_address_new_inet(qio_socket_address_get_host(one),
                                              static_cast<guint16>(port));
    }
    char *key = qio_socket_address_to_string(bind_addr);
    if (!g_hash_table_add(seen, key)) continue; /* getaddrinfo repeats itself */
    g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
    if (!qio_channel_socket_listen_sync(sioc, bind_addr, backlog, error)) return nullptr;
    if (qio_socket_address_get_kind(one) == QIO_SOCKET_ADDRESS_INET && !port) {
      g_autoptr(QIOSocketAddress) local = qio_channel_socket_get_local_address(sioc, error);
      if (!local) return nullptr;
      port = qio_socket_address_get_port(local);
    }
    g_ptr_array_add(opened, g_object_ref(sioc));
  }
  return static_cast<GPtrArray *>(g_steal_pointer(&opened));
}

static void add_all(QIONetListener *listener, GPtrArray *opened) {
  for (guint i = 0; i < opened->len; i++)
    qio_net_listener_add(listener, QIO_CHANNEL_SOCKET(g_ptr_array_index(opened, i)));
}

gboolean qio_net_listener_open_sync(QIONetListener *listener, QIOSocketAddress *addr,
                                    int backlog, GError **error) {
  g_return_val_if_fail(QIO_IS_NET_LISTENER(listener), FALSE);
  g_return_val_if_fail(QIO_IS_SOCKET_ADDRESS(addr), FALSE);
  g_autoptr(GPtrArray) opened = open_sockets(addr, backlog, nullptr, error);
  if (!opened) return FALSE;
  add_all(listener, opened);
  return TRUE;
}

static void open_thread(GTask *task, gpointer, gpointer, GCancellable *cancellable) noexcept {
  GError *error = nullptr;
  GPtrArray *opened = open_sockets(qio_socket_task_get_address(task),
                                   qio_socket_task_get_backlog(task), cancellable, &error);
  if (opened)
    g_task_return_pointer(task, opened, reinterpret_cast<GDestroyNotify>(g_ptr_array_unref));
  else
    g_task_return_error(task, error);
}

void qio_net_listener_open_async(QIONetListener *listener, QIOSocketAddress *addr, int backlog,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data, GMainContext *context) {
  g_return_if_fail(QIO_IS_NET_LISTENER(listener));
  g_return_if_fail(QIO_IS_SOCKET_ADDRESS(addr));
  g_autoptr(GTask) task =
      qio_socket_task_new(listener, addr, backlog, cancellable, callback, user_data, context,
                          reinterpret_cast<gpointer>(qio_net_listener_open_async));
  g_task_run_in_thread(task, open_thread);
}

gboolean qio_net_listener_open_finish(QIONetListener *listener, GAsyncResult *result,
                                      GError **error) {
  g_return_val_if_fail(g_task_is_valid(result, listener), FALSE);
  /* The sockets join the listener here, in the caller's context, so that
   * its state is only ever touched there. */
  g_autoptr(GPtrArray) opened =
      static_cast<GPtrArray *>(g_task_propagate_pointer(G_TASK(result), error));
  if (!opened) return FALSE;
  add_all(listener, opened);
  return TRUE;
}

void qio_net_listener_set_client_func(QIONetListener *listener, QIONetListenerClientFunc func,
                                      gpointer user_data, GDestroyNotify notify,
                                      GMainContext *context) {
  g_return_if_fail(QIO_IS_NET_LISTENER(listener));
  QIONetListenerPrivate *priv = listener_priv(listener);
  clear_client_func(priv);
  if (!func) return;
  priv->func = func;
  priv->user_data = user_data;
  priv->notify = notify;
  priv->context = context ? g_main_context_ref(context) : nullptr;
  for (QIOChannelSocket *sioc : priv->sockets) add_watch(listener, sioc);
}

QIOChannelSocket *qio_net_listener_wait_client(QIONetListener *listener, GError **error) {
  g_return_val_if_fail(QIO_IS_NET_LISTENER(listener), nullptr);
  QIONetListenerPrivate *priv = listener_priv(listener);
  if (priv->sockets.empty()) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                _("Listener '%s' has no socket to accept clients on; open an address first"),
                priv->name.empty() ? G_OBJECT_TYPE_NAME(listener) : priv->name.c_str());
    return nullptr;
  }
  g_autoptr(GMainContext) context = g_main_context_new();
  QIOChannelSocket *ready = nullptr;
  std::vector<GSource *> sources;
  for (QIOChannelSocket *sioc : priv->sockets) {
    GSource *source = qio_channel_create_watch(QIO_CHANNEL(sioc), G_IO_IN);
    g_source_set_callback(
        source,
        G_SOURCE_FUNC(+[](QIOChannel *ioc, GIOCondition, gpointer data) noexcept -> gboolean {
          *static_cast<QIOChannelSocket **>(data) = QIO_CHANNEL_SOCKET(ioc);
          return G_SOURCE_CONTINUE;
        }),
        &ready, nullptr);
    g_source_attach(source, context);
    sources.push_back(source);
  }
  QIOChannelSocket *client = nullptr;
  while (!client) {
    ready = nullptr;
    while (!ready) g_main_context_iteration(context, TRUE);
    GError *local = nullptr;
    client = qio_channel_socket_accept(ready, &local);
    if (!client && !g_error_matches(local, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
      g_propagate_error(error, local);
      break;
    }
    g_clear_error(&local);
  }
  for (GSource *source : sources) {
    g_source_destroy(source);
    g_source_unref(source);
  }
  return client;
}

gsize qio_net_listener_get_n_sockets(QIONetListener *listener) {
  g_return_val_if_fail(QIO_IS_NET_LISTENER(listener), 0);
  return listener_priv(listener)->sockets.size();
}

QIOChannelSocket *qio_net_listener_get_socket(QIONetListener *listener, gsize index) {
  g_return_val_if_fail(QIO_IS_NET_LISTENER(listener), nullptr);
  QIONetListenerPrivate *priv = listener_priv(listener);
  g_return_val_if_fail(index < priv->sockets.size(), nullptr);
  return priv->sockets[index];
}

QIOSocketAddress *qio_net_listener_get_address(QIONetListener *listener, gsize index,
                                               GError **error) {
  QIOChannelSocket *sioc = qio_net_listener_get_socket(listener, index);
  return sioc ? qio_channel_socket_get_local_address(sioc, error) : nullptr;
}

gboolean qio_net_listener_is_connected(QIONetListener *listener) {
  g_return_val_if_fail(QIO_IS_NET_LISTENER(listener), FALSE);
  return !listener_priv(listener)->sockets.empty();
}

void qio_net_listener_disconnect(QIONetListener *listener) {
  g_return_if_fail(QIO_IS_NET_LISTENER(listener));
  QIONetListenerPrivate *priv = listener_priv(listener);
  clear_client_func(priv);
  for (QIOChannelSocket *sioc : priv->sockets) {
    qio_channel_close(QIO_CHANNEL(sioc), nullptr);
    g_object_unref(sioc);
  }
  priv->sockets.clear();
}
