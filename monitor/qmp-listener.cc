#include "config.h"

#include "monitor/qmp-listener.h"
#include "qio/admission.h"
#include "qio/channel-tls.h"
#include "qio/coroutine.h"
#include "qio/error.h"
#include "qom/object-registry.h"

#include <glib/gi18n-lib.h>

#include <algorithm>

namespace qio::monitor {

QmpListener::QmpListener(QmpServer &server)
    : server_(server), listener_(qio_net_listener_new()) {
  qio_net_listener_set_name(listener_, "qmp");
}

QmpListener::~QmpListener() {
  disconnect();
  /* Its sockets remove the files they created (not one a newer qiod has
   * bound at the same path since). */
  g_object_unref(listener_);
  if (creds_) g_object_unref(creds_);
  if (authz_) g_object_unref(authz_);
}

/* A client whose TLS handshake takes longer is dropped. */
static constexpr guint kHandshakeTimeoutMs = 10000;

struct QmpListener::Handshake {
  std::weak_ptr<int> alive;
  QmpListener *listener;
  QIOChannelTLS *tioc;
  GCancellable *cancel;
  qio::CancelAfter timeout;
  bool evicted = false; /* gave way to a newer client */
  std::list<Handshake *>::iterator pos;

  Handshake(QmpListener *l, QIOChannelTLS *t)
      : alive(l->alive_), listener(l), tioc(t), cancel(g_cancellable_new()),
        timeout(cancel, kHandshakeTimeoutMs) {}
  ~Handshake() {
    g_object_unref(tioc);
    g_object_unref(cancel);
  }
};

bool QmpListener::setup_tls(const QmpListenerConfig &config, GError **error) {
  if (config.tls_creds.empty()) {
    if (config.tls_authz.empty()) return true;
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("QMP monitor on '%s': tls-authz needs tls-creds as well"),
                config.address.c_str());
    return false;
  }
  creds_ = static_cast<QCryptoTLSCreds *>(qom_object_ref_typed(
      config.tls_creds.c_str(), QCRYPTO_TYPE_TLS_CREDS, _("TLS credentials"), error));
  if (!creds_) return false;
  if (qcrypto_tls_creds_get_endpoint(creds_) != QCRYPTO_TLS_CREDS_ENDPOINT_SERVER) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("QMP monitor on '%s': TLS credentials '%s' are for a client; create them "
                  "with endpoint=server"),
                config.address.c_str(), config.tls_creds.c_str());
    return false;
  }
  if (!config.tls_authz.empty()) {
    authz_ = static_cast<QCryptoAuthz *>(qom_object_ref_typed(
        config.tls_authz.c_str(), QCRYPTO_TYPE_AUTHZ, _("an authorization object"), error));
    if (!authz_) return false;
  }
  return true;
}

void QmpListener::disconnect() { qio_net_listener_disconnect(listener_); }

std::unique_ptr<QmpListener> QmpListener::open(QmpServer &server, const QmpListenerConfig &config,
                                               GError **error) {
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_parse(config.address.c_str(), error);
  if (!addr) return nullptr;
  std::unique_ptr<QmpListener> self(new QmpListener(server));
  if (!self->setup_tls(config, error)) return nullptr;
  if (!qio_net_listener_open_sync(self->listener_, addr, 16, error)) return nullptr;
  for (gsize i = 0; i < qio_net_listener_get_n_sockets(self->listener_); i++) {
    g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(self->listener_, i, nullptr);
    g_autofree char *text = local ? qio_socket_address_to_string(local) : nullptr;
    if (text) g_info(_("QMP: listening on %s"), text);
  }
  if (config.wait) {
    g_message(_("QMP: waiting for a client on %s (wait=on)"), config.address.c_str());
    g_autoptr(QIOChannelSocket) client = qio_net_listener_wait_client(self->listener_, error);
    if (!client) return nullptr;
    self->take_client(client);
  }
  qio_net_listener_set_client_func(
      self->listener_,
      [](QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
        static_cast<QmpListener *>(data)->take_client(client);
      },
      self.get(), nullptr, server.context());
  return self;
}

void QmpListener::take_client(QIOChannelSocket *client) {
  if (!creds_) {
    server_.add_client(QIO_CHANNEL(client));
    return;
  }
  g_autoptr(GError) error = nullptr;
  guint max = server_.limits().max_clients;
  /* Every pending client is in its TLS handshake. */
  qio::Room room = qio::make_room(pending_, max, [](const Handshake *) { return true; });
  if (room == qio::Room::Full) {
    if (crowd_log_.allow()) {
      g_message(_("QMP: dropping client '%s': %u TLS handshakes are already under way"),
                qio_channel_get_name(QIO_CHANNEL(client)), static_cast<guint>(pending_.size()));
    }
    return;
  }
  if (room == qio::Room::Evicted && crowd_log_.allow()) {
    g_message(_("QMP: %u TLS handshakes are under way; the oldest gives way to client '%s'"), max,
              qio_channel_get_name(QIO_CHANNEL(client)));
  }
  if (!qio_channel_set_blocking(QIO_CHANNEL(client), FALSE, &error)) {
    g_message(_("QMP: dropping client '%s': %s"), qio_channel_get_name(QIO_CHANNEL(client)),
              error->message);
    return;
  }
  QIOChannelTLS *tioc = qio_channel_tls_new_server(QIO_CHANNEL(client), creds_, authz_, &error);
  if (!tioc) {
    g_message(_("QMP: dropping client '%s': %s"), qio_channel_get_name(QIO_CHANNEL(client)),
              error->message);
    return;
  }
  auto *hs = new Handshake(this, tioc);
  hs->pos = pending_.insert(pending_.end(), hs);
  qio_channel_tls_handshake(tioc, hs->cancel, on_handshake, hs, server_.context());
}

void QmpListener::on_handshake(GObject *, GAsyncResult *result, gpointer data) noexcept {
  std::unique_ptr<Handshake> hs(static_cast<Handshake *>(data));
  g_autoptr(GError) error = nullptr;
  bool ok = qio_channel_tls_handshake_finish(hs->tioc, result, &error);
  if (hs->alive.expired()) return;
  hs->listener->pending_.erase(hs->pos);
  if (!ok && hs->evicted) {
    /* take_client() says so, at most once a second. */
    g_debug("QMP: TLS handshake with '%s' gave way to a newer client",
            qio_channel_get_name(QIO_CHANNEL(hs->tioc)));
  } else if (!ok) {
    g_message(_("QMP: TLS handshake with '%s' failed: %s"),
              qio_channel_get_name(QIO_CHANNEL(hs->tioc)),
              hs->timeout.expired() ? _("it took too long") : error->message);
  }
  if (!ok) {
    qio_channel_close(QIO_CHANNEL(hs->tioc), nullptr);
    return;
  }
  hs->listener->server_.add_client(QIO_CHANNEL(hs->tioc));
}

}  // namespace qio::monitor
