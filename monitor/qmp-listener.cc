#include "config.h"

#include "monitor/qmp-listener.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

namespace qio::monitor {

QmpListener::QmpListener(QmpServer &server)
    : server_(server), listener_(qio_net_listener_new()) {
  qio_net_listener_set_name(listener_, "qmp");
}

QmpListener::~QmpListener() {
  disconnect();
  g_object_unref(listener_);
  if (!unix_path_.empty()) g_unlink(unix_path_.c_str());
}

void QmpListener::disconnect() { qio_net_listener_disconnect(listener_); }

std::unique_ptr<QmpListener> QmpListener::open(QmpServer &server, const QmpListenerConfig &config,
                                               GError **error) {
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(config.address.c_str(), error);
  if (!addr) return nullptr;
  std::unique_ptr<QmpListener> self(new QmpListener(server));
  if (!qio_net_listener_open_sync(self->listener_, addr, 16, error)) return nullptr;
  if (qio_socket_address_get_kind(addr) == QIO_SOCKET_ADDRESS_UNIX &&
      !qio_socket_address_is_abstract(addr))
    self->unix_path_ = qio_socket_address_get_path(addr);
  for (gsize i = 0; i < qio_net_listener_get_n_sockets(self->listener_); i++) {
    g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(self->listener_, i, nullptr);
    g_autofree char *text = local ? qio_socket_address_to_string(local) : nullptr;
    if (text) g_info(_("QMP: listening on %s"), text);
  }
  if (config.wait) {
    g_message(_("QMP: waiting for a client on %s (wait=on)"), config.address.c_str());
    g_autoptr(QIOChannelSocket) client = qio_net_listener_wait_client(self->listener_, error);
    if (!client) return nullptr;
    self->accept(client);
  }
  qio_net_listener_set_client_func(
      self->listener_,
      [](QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
        static_cast<QmpListener *>(data)->accept(client);
      },
      self.get(), nullptr, server.context());
  return self;
}

void QmpListener::accept(QIOChannelSocket *client) { server_.add_client(QIO_CHANNEL(client)); }

}  // namespace qio::monitor
