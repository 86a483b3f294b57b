#include "config.h"

#include "chardev/chardev-socket.h"
#include "chardev/telnet.h"
#include "qio/channel-tls.h"
#include "qio/channel-websock.h"
#include "qio/error.h"
#include "qom/object-registry.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <utility>

namespace qio::chardev {

/* One asynchronous step (connect, TLS or websocket handshake).  The
 * chardev may be removed while it runs: it then clears @self, and the
 * callback only frees this. */
struct ChardevSocket::Pending {
  ChardevSocket *self;
  GCancellable *cancel;
  bool timed_out = false;
  ~Pending() { g_object_unref(cancel); }
};

namespace {

/* Telnet commands (RFC 854) and the options QEMU's server offers. */
constexpr guchar kIac = 255, kSb = 250, kSe = 240, kWill = 251, kDont = 254, kDo = 253;
constexpr guchar kOptEcho = 1, kOptSga = 3, kOptLinemode = 34;

bool connected_to_itself(QIOChannelSocket *sioc) {
  g_autoptr(QIOSocketAddress) local = qio_channel_socket_get_local_address(sioc, nullptr);
  g_autoptr(QIOSocketAddress) remote = qio_channel_socket_get_remote_address(sioc, nullptr);
  if (!local || !remote || qio_socket_address_get_kind(local) != QIO_SOCKET_ADDRESS_INET)
    return false;
  g_autofree char *a = qio_socket_address_to_string(local);
  g_autofree char *b = qio_socket_address_to_string(remote);
  return g_str_equal(a, b);
}

}  // namespace

ChardevSocket::ChardevSocket(const std::string &id, GMainContext *context)
    : Chardev(id, "socket", context) {}

ChardevSocket::~ChardevSocket() {
  if (pending_) {
    pending_->self = nullptr;
    g_cancellable_cancel(pending_->cancel);
  }
  remove_source(handshake_timer_);
  remove_source(reconnect_timer_);
  drop_channels();
  if (listener_) {
    qio_net_listener_disconnect(listener_);
    g_object_unref(listener_);
  }
  g_clear_object(&top_);
  /* A getfd descriptor taken but never used (opening failed). */
  if (fd_ >= 0 && fd_owned_) g_close(fd_, nullptr);
  g_clear_object(&sioc_);
  g_clear_object(&addr_);
  g_clear_object(&creds_);
  g_clear_object(&authz_);
}

std::unique_ptr<ChardevSocket> ChardevSocket::create(ChardevOptions &opts, GMainContext *context,
                                                     GError **error) {
  const char *id = opts.id().c_str();
  std::unique_ptr<ChardevSocket> self(new ChardevSocket(opts.id(), context));
  std::string host = opts.take_string("host");
  std::string port = opts.take_string("port");
  std::string path = opts.take_string("path");
  std::string fd = opts.take_string("fd");
  int given = !host.empty() + !path.empty() + !fd.empty();
  if (given != 1 || (!host.empty() && port.empty()) || (host.empty() && !port.empty())) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("chardev '%s': give exactly one address: host=HOST,port=PORT, path=PATH "
                  "or fd=N"),
                id);
    return nullptr;
  }
  if (!host.empty()) {
    guint64 p = 0;
    if (!g_ascii_string_to_unsigned(port.c_str(), 10, 0, 65535, &p, nullptr)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("chardev '%s': port '%s' is not a number from 0 to 65535"), id, port.c_str());
      return nullptr;
    }
    self->addr_ = qio_socket_address_new_inet(host.c_str(), static_cast<guint16>(p));
  } else if (!path.empty()) {
    self->addr_ = qio_socket_address_new_unix(path.c_str(), FALSE);
  } else if (opts.from_monitor()) {
    /* As in QEMU, a monitor names a descriptor it passed with getfd: a
     * number would be any of qiod's own (its QMP listener, say). */
    if (g_ascii_isdigit(fd[0])) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("chardev '%s': fd '%s' is a number; from the monitor, pass the descriptor "
                    "with getfd and give its name"),
                  id, fd.c_str());
      return nullptr;
    }
    /* Taken when opening: a chardev-add refused for another argument
     * leaves it for the next try. */
    self->fd_name_ = fd;
    self->fd_text_ = fd;
  } else {
    guint64 n = 0;
    if (!g_ascii_string_to_unsigned(fd.c_str(), 10, 0, G_MAXINT, &n, nullptr)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("chardev '%s': fd '%s' is not a descriptor number"), id, fd.c_str());
      return nullptr;
    }
    self->fd_ = static_cast<int>(n);
    self->fd_text_ = fd;
  }
  /* wait=on blocks until a client connects: fine at start-up, as in QEMU,
   * but from chardev-add it would stop qiod's main loop. */
  if (!opts.take_bool("server", false, &self->server_, error) ||
      !opts.take_bool("wait", !opts.from_monitor(), &self->wait_, error) ||
      !opts.take_bool("nodelay", false, &self->nodelay_, error) ||
      !opts.take_bool("telnet", false, &self->telnet_, error) ||
      !opts.take_bool("websocket", false, &self->websocket_, error) ||
      !opts.take_uint("reconnect-ms", 0, G_MAXUINT32, &self->reconnect_ms_, error))
    return nullptr;
  /* QEMU before 9.2 (Debian 12's 7.2, and libvirt driving it) says it in
   * seconds. */
  guint64 reconnect_s = 0;
  if (!opts.take_uint("reconnect", 0, G_MAXUINT32 / 1000, &reconnect_s, error)) return nullptr;
  if (reconnect_s && self->reconnect_ms_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("chardev '%s': give reconnect-ms (milliseconds) or reconnect (seconds), "
                  "not both"),
                id);
    return nullptr;
  }
  if (reconnect_s) self->reconnect_ms_ = reconnect_s * 1000;
  if (!self->server_) self->wait_ = false;
  if (self->wait_ && opts.from_monitor()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("chardev '%s': wait=true would stop qiod until a client connects; leave it "
                  "off and connect once chardev-add has returned"),
                id);
    return nullptr;
  }
  if (self->websocket_ && !self->server_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("chardev '%s': websocket=on needs server=on"), id);
    return nullptr;
  }
  if (self->websocket_ && self->telnet_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("chardev '%s': websocket=on and telnet=on cannot be combined"), id);
    return nullptr;
  }
  if (self->reconnect_ms_ && (self->server_ || self->has_fd())) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("chardev '%s': reconnect-ms is for clients with an address (server=off)"), id);
    return nullptr;
  }
  std::string creds = opts.take_string("tls-creds");
  std::string authz = opts.take_string("tls-authz");
  if (!creds.empty()) {
    self->creds_ = static_cast<QCryptoTLSCreds *>(
        qom_object_ref_typed(creds.c_str(), QCRYPTO_TYPE_TLS_CREDS, _("TLS credentials"), error));
    if (!self->creds_) {
      g_prefix_error(error, _("chardev '%s': "), id);
      return nullptr;
    }
    auto want = self->server_ ? QCRYPTO_TLS_CREDS_ENDPOINT_SERVER
                              : QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT;
    if (qcrypto_tls_creds_get_endpoint(self->creds_) != want) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("chardev '%s': TLS credentials '%s' are for the %s endpoint; a chardev with "
                    "server=%s needs endpoint=%s"),
                  id, creds.c_str(), self->server_ ? "client" : "server",
                  self->server_ ? "on" : "off", self->server_ ? "server" : "client");
      return nullptr;
    }
  }
  if (!authz.empty()) {
    if (!self->creds_ || !self->server_) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("chardev '%s': tls-authz needs server=on and tls-creds"), id);
      return nullptr;
    }
    self->authz_ = static_cast<QCryptoAuthz *>(
        qom_object_ref_typed(authz.c_str(), QCRYPTO_TYPE_AUTHZ, _("authorization"), error));
    if (!self->authz_) {
      g_prefix_error(error, _("chardev '%s': "), id);
      return nullptr;
    }
  }
  return self;
}

void ChardevSocket::remove_source(guint &id) {
  if (!id) return;
  GSource *src = g_main_context_find_source_by_id(context(), id);
  if (src) g_source_destroy(src);
  id = 0;
}

std::string ChardevSocket::address_text() const {
  if (!addr_) return "fd:" + fd_text_;
  g_autofree char *text = qio_socket_address_to_string(addr_);
  if (qio_socket_address_get_kind(addr_) != QIO_SOCKET_ADDRESS_INET) return text;
  /* QEMU names TCP chardevs tcp:HOST:PORT. */
  return std::string("tcp:") + (g_str_has_prefix(text, "inet:") ? text + 5 : text);
}

std::string ChardevSocket::filename() const {
  std::string s = address_text();
  if (server_) s += ",server=on";
  if (!is_open()) return "disconnected:" + s;
  if (!peer_.empty()) s += " <-> " + peer_;
  return s;
}

void ChardevSocket::describe(JsonObject *info) const {
  json_object_set_boolean_member(info, "connected", is_open());
  json_object_set_boolean_member(info, "server", server_);
  json_object_set_int_member(info, "connections", static_cast<gint64>(connects_));
  if (is_open() && !peer_.empty()) json_object_set_string_member(info, "peer", peer_.c_str());
  if (websocket_) json_object_set_boolean_member(info, "websocket", TRUE);
  if (reconnect_ms_)
    json_object_set_int_member(info, "reconnect-ms", static_cast<gint64>(reconnect_ms_));
  if (creds_) json_object_set_string_member(info, "tls-creds", qcrypto_tls_creds_get_id(creds_));
  if (creds_ && is_open()) {
    JsonObject *tls = json_object_new();
    json_object_set_string_member(tls, "protocol", tls_protocol_.c_str());
    json_object_set_string_member(tls, "cipher", tls_cipher_.c_str());
    if (has_tls_peer_) json_object_set_string_member(tls, "peer-identity", tls_peer_.c_str());
    json_object_set_object_member(info, "tls", tls);
  }
}

bool ChardevSocket::open(GError **error) {
  if (!fd_name_.empty()) {
    g_autoptr(QIOSocketAddress) named = qio_socket_address_new_fd(fd_name_.c_str());
    fd_ = qio_socket_address_take_fd(named, error);
    if (fd_ < 0) {
      g_prefix_error(error, _("chardev '%s': "), id().c_str());
      return false;
    }
    fd_name_.clear();
    fd_owned_ = true;
  }
  if (!server_) {
    g_autoptr(QIOChannelSocket) sioc = nullptr;
    if (fd_ >= 0) {
      sioc = qio_channel_socket_new_fd(fd_, error);
      if (!sioc) {
        g_prefix_error(error, _("chardev '%s': "), id().c_str());
        return false;
      }
      fd_ = -1;
    } else {
      sioc = qio_channel_socket_new();
      g_autoptr(GError) local = nullptr;
      if (!qio_channel_socket_connect_sync(sioc, addr_, &local)) {
        /* With reconnect-ms, an absent server is waited for. */
        if (!reconnect_ms_) {
          g_propagate_prefixed_error(error, g_steal_pointer(&local), _("chardev '%s': "),
                                     id().c_str());
          return false;
        }
        g_message(_("chardev '%s': %s; trying again every %llu ms"), id().c_str(),
                  local->message, static_cast<unsigned long long>(reconnect_ms_));
        schedule_reconnect();
        return true;
      }
    }
    start_session(sioc);
    return true;
  }
  listener_ = qio_net_listener_new();
  qio_net_listener_set_name(listener_, id().c_str());
  if (fd_ >= 0) {
    g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new_fd(fd_, error);
    if (!sioc) {
      g_prefix_error(error, _("chardev '%s': "), id().c_str());
      return false;
    }
    fd_ = -1;
    qio_net_listener_add(listener_, sioc);
  } else if (!qio_net_listener_open_sync(listener_, addr_, 1, error)) {
    g_prefix_error(error, _("chardev '%s': "), id().c_str());
    return false;
  }
  if (addr_ && qio_socket_address_get_kind(addr_) == QIO_SOCKET_ADDRESS_INET &&
      qio_socket_address_get_port(addr_) == 0) {
    /* Port 0: report the port the kernel chose. */
    g_autoptr(QIOSocketAddress) local = qio_net_listener_get_address(listener_, 0, nullptr);
    if (local) {
      g_object_unref(addr_);
      addr_ = QIO_SOCKET_ADDRESS(g_steal_pointer(&local));
    }
  }
  if (wait_) {
    g_message(_("chardev '%s': waiting for a connection on %s (wait=on)"), id().c_str(),
              address_text().c_str());
    g_autoptr(QIOChannelSocket) client = qio_net_listener_wait_client(listener_, error);
    if (!client) return false;
    start_session(client);
    return true;
  }
  listen_for_clients();
  return true;
}

void ChardevSocket::listen_for_clients() {
  qio_net_listener_set_client_func(listener_, on_client, this, nullptr, context());
}

void ChardevSocket::on_client(QIONetListener *listener, QIOChannelSocket *client,
                              gpointer data) noexcept {
  /* One client at a time: later ones wait in the backlog. */
  qio_net_listener_set_client_func(listener, nullptr, nullptr, nullptr, nullptr);
  static_cast<ChardevSocket *>(data)->start_session(client);
}

ChardevSocket::Pending *ChardevSocket::new_pending() {
  pending_ = new Pending{this, g_cancellable_new()};
  return pending_;
}

void ChardevSocket::start_session(QIOChannelSocket *sioc) {
  g_clear_object(&sioc_);
  sioc_ = QIO_CHANNEL_SOCKET(g_object_ref(sioc));
  qio_channel_set_blocking(QIO_CHANNEL(sioc_), FALSE, nullptr);
  if (nodelay_) qio_channel_set_delay(QIO_CHANNEL(sioc_), FALSE);
  peer_.clear();
  g_autoptr(QIOSocketAddress) remote = qio_channel_socket_get_remote_address(sioc_, nullptr);
  if (remote && qio_socket_address_get_kind(remote) == QIO_SOCKET_ADDRESS_INET) {
    g_autofree char *text = qio_socket_address_to_string(remote);
    peer_ = g_str_has_prefix(text, "inet:") ? text + 5 : text;
  }
  remove_source(handshake_timer_);
  if (!creds_) {
    start_websock(QIO_CHANNEL(sioc_));
    return;
  }
  g_autoptr(GError) error = nullptr;
  const char *hostname = !server_ && addr_ &&
                                 qio_socket_address_get_kind(addr_) == QIO_SOCKET_ADDRESS_INET
                             ? qio_socket_address_get_host(addr_)
                             : nullptr;
  g_autoptr(QIOChannelTLS) tioc =
      server_ ? qio_channel_tls_new_server(QIO_CHANNEL(sioc_), creds_, authz_, &error)
              : qio_channel_tls_new_client(QIO_CHANNEL(sioc_), creds_, hostname, &error);
  if (!tioc) {
    session_failed("TLS", error);
    return;
  }
  Pending *p = new_pending();
  GSource *timer = g_timeout_source_new(kHandshakeTimeoutMs);
  g_source_set_callback(timer, on_handshake_timeout, this, nullptr);
  handshake_timer_ = g_source_attach(timer, context());
  g_source_unref(timer);
  qio_channel_tls_handshake(tioc, p->cancel, on_tls_done, p, context());
}

gboolean ChardevSocket::on_handshake_timeout(gpointer data) noexcept {
  auto *self = static_cast<ChardevSocket *>(data);
  self->handshake_timer_ = 0;
  if (self->pending_) {
    self->pending_->timed_out = true;
    g_cancellable_cancel(self->pending_->cancel);
  }
  return G_SOURCE_REMOVE;
}

void ChardevSocket::on_tls_done(GObject *source, GAsyncResult *result, gpointer data) noexcept {
  std::unique_ptr<Pending> p(static_cast<Pending *>(data));
  auto *tioc = QIO_CHANNEL_TLS(source);
  g_autoptr(GError) error = nullptr;
  gboolean ok = qio_channel_tls_handshake_finish(tioc, result, &error);
  ChardevSocket *self = p->self;
  if (!self) return;
  self->pending_ = nullptr;
  if (p->timed_out) {
    g_clear_error(&error);
    g_set_error(&error, QIO_ERROR, QIO_ERROR_TIMEOUT, _("no handshake within %u ms"),
                kHandshakeTimeoutMs);
    ok = FALSE;
  }
  if (!ok) {
    self->session_failed("TLS", error);
    return;
  }
  g_autoptr(QCryptoTLSSessionReport) report = qio_channel_tls_get_report(tioc);
  if (report) {
    self->tls_protocol_ = report->protocol ? report->protocol : "";
    self->tls_cipher_ = report->cipher ? report->cipher : "";
    self->has_tls_peer_ = report->peer_identity != nullptr;
    self->tls_peer_ = report->peer_identity ? report->peer_identity : "";
  }
  self->start_websock(QIO_CHANNEL(tioc));
}

void ChardevSocket::start_websock(QIOChannel *master) {
  if (!websocket_) {
    session_ready(master);
    return;
  }
  g_autoptr(QIOChannelWebsock) wioc = qio_channel_websock_new_server(master);
  qio_channel_websock_set_handshake_timeout(wioc, kHandshakeTimeoutMs);
  Pending *p = new_pending();
  qio_channel_websock_handshake(wioc, context(), p->cancel, on_websock_done, p);
}

void ChardevSocket::on_websock_done(GObject *source, GAsyncResult *result,
                                    gpointer data) noexcept {
  std::unique_ptr<Pending> p(static_cast<Pending *>(data));
  auto *wioc = QIO_CHANNEL_WEBSOCK(source);
  g_autoptr(GError) error = nullptr;
  gboolean ok = qio_channel_websock_handshake_finish(wioc, result, &error);
  ChardevSocket *self = p->self;
  if (!self) return;
  self->pending_ = nullptr;
  if (!ok) {
    self->session_failed("websocket", error);
    return;
  }
  self->session_ready(QIO_CHANNEL(wioc));
}

/* Connections, disconnections and failed handshakes: a peer connecting in
 * a loop must not fill the log (one line a second, then a count). */
void ChardevSocket::log_peer_event(bool failure, const char *line) {
  guint held_back = 0;
  if (!(failure ? failure_log_ : peer_log_).allow(&held_back)) return;
  g_autofree char *text =
      held_back ? g_strdup_printf(_("%s (%u more lines about this chardev's peers not logged)"),
                                  line, held_back)
                : g_strdup(line);
  if (failure)
    g_message("%s", text);
  else
    g_info("%s", text);
}

void ChardevSocket::session_ready(QIOChannel *top) {
  remove_source(handshake_timer_);
  g_clear_object(&top_);
  top_ = QIO_CHANNEL(g_object_ref(top));
  connects_++;
  telnet_state_ = 0;
  set_channels(top_, top_);
  g_autofree char *line = g_strdup_printf(_("chardev '%s': connected %s"), id().c_str(),
                                          filename().c_str());
  log_peer_event(false, line);
  if (telnet_) {
    static const guchar offer[] = {kIac, kWill, kOptEcho, kIac, kWill, kOptSga,
                                   kIac, kDont, kOptLinemode, kIac, kDo, kOptSga};
    Chardev::write(std::string_view(reinterpret_cast<const char *>(offer), sizeof offer));
  }
}

void ChardevSocket::session_failed(const char *what, const GError *error) {
  g_autofree char *line =
      g_strdup_printf(_("chardev '%s': %s handshake with %s failed: %s"), id().c_str(), what,
                      peer_.empty() ? address_text().c_str() : peer_.c_str(), error->message);
  log_peer_event(true, line);
  end_session();
}

void ChardevSocket::hangup() {
  g_autofree char *line = g_strdup_printf(_("chardev '%s': peer %s disconnected"),
                                          id().c_str(),
                                          peer_.empty() ? address_text().c_str() : peer_.c_str());
  log_peer_event(false, line);
  drop_channels();
  end_session();
}

void ChardevSocket::end_session() {
  remove_source(handshake_timer_);
  if (sioc_) qio_channel_close(QIO_CHANNEL(sioc_), nullptr);
  g_clear_object(&top_);
  g_clear_object(&sioc_);
  tls_protocol_.clear();
  tls_cipher_.clear();
  tls_peer_.clear();
  has_tls_peer_ = false;
  peer_.clear();
  if (server_) {
    listen_for_clients();
  } else if (reconnect_ms_) {
    schedule_reconnect();
  }
}

void ChardevSocket::schedule_reconnect() {
  if (reconnect_timer_) return;
  GSource *t = g_timeout_source_new(static_cast<guint>(reconnect_ms_));
  g_source_set_callback(t, on_reconnect, this, nullptr);
  reconnect_timer_ = g_source_attach(t, context());
  g_source_unref(t);
}

gboolean ChardevSocket::on_reconnect(gpointer data) noexcept {
  auto *self = static_cast<ChardevSocket *>(data);
  self->reconnect_timer_ = 0;
  Pending *p = self->new_pending();
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  qio_channel_socket_connect_async(sioc, self->addr_, p->cancel, on_connected, p,
                                   self->context());
  return G_SOURCE_REMOVE;
}

void ChardevSocket::on_connected(GObject *source, GAsyncResult *result, gpointer data) noexcept {
  std::unique_ptr<Pending> p(static_cast<Pending *>(data));
  auto *sioc = QIO_CHANNEL_SOCKET(source);
  g_autoptr(GError) error = nullptr;
  gboolean ok = qio_channel_socket_connect_finish(sioc, result, &error);
  ChardevSocket *self = p->self;
  if (!self) return;
  self->pending_ = nullptr;
  if (ok && connected_to_itself(sioc)) {
    /* With no server on a port in the ephemeral range, the kernel may
     * pick that very port for the client: a TCP self-connection. */
    g_set_error(&error, QIO_ERROR, QIO_ERROR_FAILED, _("connected to itself"));
    ok = FALSE;
  }
  /* The first connection of open_async() answers its caller, last: a
   * failure may end this chardev. */
  OpenDone done = std::exchange(self->open_done_, nullptr);
  if (!ok) {
    qio_channel_close(QIO_CHANNEL(sioc), nullptr);
    if (done && !self->reconnect_ms_) {
      g_prefix_error(&error, _("chardev '%s': "), self->id().c_str());
      return done(g_steal_pointer(&error));
    }
    if (done)
      g_message(_("chardev '%s': %s; trying again every %llu ms"), self->id().c_str(),
                error->message, static_cast<unsigned long long>(self->reconnect_ms_));
    else
      g_debug("chardev '%s': reconnect failed: %s", self->id().c_str(), error->message);
    self->schedule_reconnect();
  } else {
    self->start_session(sioc);
  }
  if (done) done(nullptr);
}

void ChardevSocket::open_async(OpenDone done) {
  if (server_ || has_fd()) return Chardev::open_async(std::move(done));
  /* A client connects in the background: a host that does not answer
   * would hold the loop for the TCP connect timeout (minutes). */
  open_done_ = std::move(done);
  Pending *p = new_pending();
  g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();
  qio_channel_socket_connect_async(sioc, addr_, p->cancel, on_connected, p, context());
}

gsize ChardevSocket::write(std::string_view data) {
  /* Without a peer the bytes are dropped, as Chardev::write does. */
  if (!telnet_ || !top_) return Chardev::write(data);
  /* Only what fits in the queue is escaped, so an IAC pair is never cut
   * in half and the caller learns how many of its bytes went. */
  gsize room = kMaxQueued > pending_output() ? kMaxQueued - pending_output() : 0;
  gsize used = telnet_escape(data, room, escaped_);
  Chardev::write(escaped_);
  return used;
}

void ChardevSocket::filter_input(std::string_view bytes) {
  if (!telnet_) {
    deliver(bytes);
    return;
  }
  /* Drops telnet commands and option negotiation; IAC IAC is a 0xff
   * data byte. */
  filtered_.clear();
  for (char ch : bytes) {
    auto c = static_cast<guchar>(ch);
    switch (telnet_state_) {
      case 0:
        if (c == kIac) telnet_state_ = 1;
        else filtered_ += ch;
        break;
      case 1:
        if (c == kIac) {
          filtered_ += ch;
          telnet_state_ = 0;
        } else if (c == kSb) {
          telnet_state_ = 3;
        } else if (c >= kWill) {
          telnet_state_ = 2;
        } else {
          telnet_state_ = 0;
        }
        break;
      case 2:
        telnet_state_ = 0;
        break;
      case 3:
        if (c == kIac) telnet_state_ = 4;
        break;
      default:
        telnet_state_ = c == kSe ? 0 : 3;
        break;
    }
  }
  deliver(filtered_);
}

}  // namespace qio::chardev
