#include "config.h"

#include "ui/vnc-server.h"
#include "qcrypto/error.h"
#include "qcrypto/sasl-session.h"
#include "qcrypto/secret.h"
#include "qcrypto/tls-creds-anon.h"
#include "qcrypto/tls-creds-x509.h"
#include "qcrypto/vnc-auth.h"
#include "qio/admission.h"
#include "qio/channel-sasl.h"
#include "qio/channel-tls.h"
#include "qio/channel-websock.h"
#include "qio/coroutine.h"
#include "qio/error.h"
#include "qom/keyval.h"
#include "qom/object-registry.h"
#include "ui/vnc-pixel-format.h"
#include "ui/vnc-tight-encoder.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace qio::ui {

namespace {

/* RFB security types and VeNCrypt subtypes (RFC 6143 7.1.2, VeNCrypt 0.2). */
constexpr guint8 kSecNone = 1, kSecVnc = 2, kSecVeNCrypt = 19, kSecSasl = 20;
constexpr guint32 kTlsNone = 257, kTlsVnc = 258, kX509None = 260, kX509Vnc = 261,
                  kX509Sasl = 263, kTlsSasl = 264;

/* Client-to-server message types (RFC 6143 7.5). */
constexpr guint8 kSetPixelFormat = 0, kSetEncodings = 2, kUpdateRequest = 3, kKeyEvent = 4,
                 kPointerEvent = 5, kClientCutText = 6;

/* Encodings (RFC 6143 7.7 and the community registry): Raw, and the
 * CompressionLevel pseudo-encodings -256 (level 0) to -247 (level 9). */
constexpr gint32 kEncodingRaw = 0, kCompressLevel0 = -256, kCompressLevel9 = -247;

/* The RFB SASL exchange (as QEMU and gtk-vnc speak it): the longest
 * mechanism name and step a client may send. */
constexpr guint32 kSaslMaxMechName = 100, kSaslMaxData = 1 << 20;

constexpr guint16 kBasePort = 5900, kWebsocketBasePort = 5700;
/* A person may type a password in the viewer's dialog within the
 * handshake, so the limit is generous; crowding is handled by eviction. */
constexpr guint kHandshakeLimitMs = 60 * 1000;
constexpr guint kRefreshMs = 30;
/* A client that keeps sending would otherwise keep the coroutine running
 * (reads complete at once while data is buffered) and starve the main
 * loop: it yields after this many messages, or bytes of skipped data, or
 * after any message that produced an update. */
constexpr guint kMessagesPerTurn = 16;
constexpr gsize kSkipBytesPerTurn = 64 * 1024;

/* X keysyms the console understands besides Latin-1 printables. */
constexpr guint32 kKeyBackSpace = 0xff08, kKeyTab = 0xff09, kKeyReturn = 0xff0d,
                  kKeyEscape = 0xff1b, kKeyKpEnter = 0xff8d, kKeyKp0 = 0xffb0, kKeyKp9 = 0xffb9,
                  kKeyControlL = 0xffe3, kKeyControlR = 0xffe4;

void put16(guint8 *p, guint16 v) {
  p[0] = static_cast<guint8>(v >> 8);
  p[1] = static_cast<guint8>(v);
}
void put32(guint8 *p, guint32 v) {
  p[0] = static_cast<guint8>(v >> 24);
  p[1] = static_cast<guint8>(v >> 16);
  p[2] = static_cast<guint8>(v >> 8);
  p[3] = static_cast<guint8>(v);
}
guint16 get16(const guint8 *p) { return static_cast<guint16>(p[0] << 8 | p[1]); }
guint32 get32(const guint8 *p) {
  return static_cast<guint32>(p[0]) << 24 | static_cast<guint32>(p[1]) << 16 |
         static_cast<guint32>(p[2]) << 8 | p[3];
}

host::Rect unite(const host::Rect &a, const host::Rect &b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  int x0 = std::min(a.x, b.x), y0 = std::min(a.y, b.y);
  int x1 = std::max(a.x + a.width, b.x + b.width), y1 = std::max(a.y + a.height, b.y + b.height);
  return {x0, y0, x1 - x0, y1 - y0};
}

host::Rect intersect(const host::Rect &a, const host::Rect &b) {
  int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  int x1 = std::min(a.x + a.width, b.x + b.width), y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return {};
  return {x0, y0, x1 - x0, y1 - y0};
}

/* @dirty without @sent, where the rest is still one rectangle (@sent
 * spans it across or along an edge); otherwise @dirty stays whole, which
 * sends some pixels twice but loses none. */
host::Rect subtract(const host::Rect &dirty, const host::Rect &sent) {
  const int dx1 = dirty.x + dirty.width, dy1 = dirty.y + dirty.height;
  const int sx1 = sent.x + sent.width, sy1 = sent.y + sent.height;
  const bool across = sent.x <= dirty.x && sx1 >= dx1;
  const bool along = sent.y <= dirty.y && sy1 >= dy1;
  if (across && along) return {};
  if (across && sent.y <= dirty.y && sy1 > dirty.y) return {dirty.x, sy1, dirty.width, dy1 - sy1};
  if (across && sy1 >= dy1 && sent.y < dy1) return {dirty.x, dirty.y, dirty.width, sent.y - dirty.y};
  if (along && sent.x <= dirty.x && sx1 > dirty.x) return {sx1, dirty.y, dx1 - sx1, dirty.height};
  if (along && sx1 >= dx1 && sent.x < dx1) return {dirty.x, dirty.y, sent.x - dirty.x, dirty.height};
  return dirty;
}

/* "[::1]" as written in HOST:PORT, to "::1". */
std::string unbracket(const std::string &host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

bool parse_display(const std::string &text, std::string &host, guint16 base, guint16 &port,
                   GError **error) {
  auto colon = text.rfind(':');
  guint64 display = 0;
  if (colon == std::string::npos ||
      !g_ascii_string_to_unsigned(text.c_str() + colon + 1, 10, 0, 65535u - base, &display,
                                  nullptr)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("-vnc: '%s' is not HOST:DISPLAY (port 5900 + DISPLAY) or unix:PATH"),
                text.c_str());
    return false;
  }
  host = unbracket(text.substr(0, colon));
  if (host.empty()) host = "0.0.0.0";
  port = static_cast<guint16>(base + display);
  return true;
}

}  // namespace

bool VncConfig::parse(const char *text, VncConfig &out, GError **error) {
  g_autoptr(JsonObject) obj = qom_keyval_parse(text, "vnc", error);
  if (!obj) {
    g_prefix_error(error, "-vnc: ");
    return false;
  }
  VncConfig cfg;
  g_autoptr(GList) members = json_object_get_members(obj);
  for (GList *m = members; m; m = m->next) {
    const char *key = static_cast<const char *>(m->data);
    JsonNode *node = json_object_get_member(obj, key);
    if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("-vnc: option '%s' takes a single value"), key);
      return false;
    }
    std::string value = json_node_get_string(node);
    auto take_bool = [&](bool &field) {
      if (value == "on" || value == "true" || value == "yes") {
        field = true;
      } else if (value == "off" || value == "false" || value == "no") {
        field = false;
      } else {
        g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                    _("-vnc: %s='%s' is not on or off"), key, value.c_str());
        return false;
      }
      return true;
    };
    bool ok = true;
    if (g_str_equal(key, "vnc")) {
      cfg.address = value;
    } else if (g_str_equal(key, "tls-creds")) {
      cfg.tls_creds = value;
    } else if (g_str_equal(key, "tls-authz")) {
      cfg.tls_authz = value;
    } else if (g_str_equal(key, "sasl")) {
      ok = take_bool(cfg.sasl);
    } else if (g_str_equal(key, "sasl-authz")) {
      cfg.sasl_authz = value;
    } else if (g_str_equal(key, "password")) {
      ok = take_bool(cfg.password);
    } else if (g_str_equal(key, "password-secret")) {
      cfg.password_secret = value;
    } else if (g_str_equal(key, "websocket")) {
      bool on = false;
      if (value == "on" || value == "off" || value == "true" || value == "false") {
        ok = take_bool(on);
        cfg.websocket = on ? "on" : "";
      } else {
        cfg.websocket = value;
      }
    } else if (g_str_equal(key, "connections")) {
      guint64 n = 0;
      if (!g_ascii_string_to_unsigned(value.c_str(), 10, 1, 1024, &n, nullptr)) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                    _("-vnc: connections='%s' is not a number from 1 to 1024"), value.c_str());
        return false;
      }
      cfg.connections = static_cast<guint>(n);
    } else {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("-vnc: unknown option '%s'; see docs/vnc.md for tls-creds, tls-authz, "
                    "password, password-secret, sasl, sasl-authz, websocket and connections"),
                  key);
      return false;
    }
    if (!ok) return false;
  }
  if (cfg.address.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                _("-vnc: give an address first: HOST:DISPLAY or unix:PATH"));
    return false;
  }
  if (cfg.password && !cfg.password_secret.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("-vnc: give password=on (set it later with set_password) or "
                  "password-secret, not both"));
    return false;
  }
  if (cfg.sasl && (cfg.password || !cfg.password_secret.empty())) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("-vnc: sasl=on and a VNC password are two ways to authenticate; choose one"));
    return false;
  }
  if (!cfg.tls_authz.empty() && cfg.tls_creds.empty()) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("-vnc: tls-authz needs tls-creds"));
    return false;
  }
  if (!cfg.sasl_authz.empty() && !cfg.sasl) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED, _("-vnc: sasl-authz needs sasl=on"));
    return false;
  }
  out = std::move(cfg);
  return true;
}

/* One client. */
struct VncServer::Conn {
  VncServer *server;
  QIOChannelSocket *sioc;
  QIOChannel *ioc; /* the top of the stack: socket, TLS, websocket */
  GCancellable *cancel = g_cancellable_new();
  std::string peer;
  VncClientInfo info;
  bool negotiating = true;
  bool evicted = false;
  int minor = 8;
  VncPixelFormat pf;
  /* Created when the client first lists Tight; kept while connected, as
   * the client keeps its zlib streams. */
  std::unique_ptr<VncTightEncoder> tight;
  bool use_tight = false;
  bool update_requested = false;
  host::Rect requested, dirty;
  std::vector<guint8> out;
  gsize out_pos = 0;
  guint out_watch = 0;
  GError *write_error = nullptr;
  bool ctrl_down = false;
  guint tls_key_bits = 0; /* the TLS layer below, if any: SASL need not add one */

  Conn(VncServer *s, QIOChannelSocket *socket, bool websocket)
      : server(s), sioc(QIO_CHANNEL_SOCKET(g_object_ref(socket))),
        ioc(QIO_CHANNEL(g_object_ref(socket))) {
    info.websocket = websocket;
    g_autoptr(QIOSocketAddress) remote = qio_channel_socket_get_remote_address(sioc, nullptr);
    if (remote && qio_socket_address_get_kind(remote) == QIO_SOCKET_ADDRESS_INET) {
      info.host = qio_socket_address_get_host(remote);
      info.service = std::to_string(qio_socket_address_get_port(remote));
      info.family = info.host.find(':') != std::string::npos ? "ipv6" : "ipv4";
      peer = info.family == "ipv6" ? "[" + info.host + "]:" + info.service
                                   : info.host + ":" + info.service;
    } else {
      info.family = "unix";
      peer = std::string(qio_channel_get_name(ioc) ? qio_channel_get_name(ioc) : "unix") +
             " #" + std::to_string(++s->unix_clients_);
    }
  }
  ~Conn() {
    if (out_watch) g_source_remove(out_watch);
    qio_channel_close(ioc, nullptr);
    g_object_unref(ioc);
    g_object_unref(sioc);
    g_object_unref(cancel);
    g_clear_error(&write_error);
  }

  /* What query-vnc and SASL learn from a finished TLS handshake. */
  void note_tls(QIOChannelTLS *tioc) {
    g_autoptr(QCryptoTLSSessionReport) report = qio_channel_tls_get_report(tioc);
    if (!report) return;
    if (report->peer_identity && server->x509_) info.x509_dname = report->peer_identity;
    tls_key_bits = report->cipher_key_bits;
  }

  void push_layer(QIOChannel *layer) {
    g_object_unref(ioc);
    ioc = layer;
    qio_channel_set_blocking(ioc, FALSE, nullptr);
  }

  qio::Task<bool> write(const void *data, gsize len, GError **error) {
    co_return co_await qio::write_all(ioc, data, len, error, cancel);
  }
  qio::Task<bool> read(void *data, gsize len, GError **error) {
    co_return co_await qio::read_all(ioc, data, len, error, cancel);
  }
  /* Gives the main loop a turn, resuming when more input is ready. */
  qio::Task<bool> yield(GError **error);
  qio::Task<bool> skip(gsize len, GError **error);
  qio::Task<bool> set_encodings(guint count, GError **error);

  qio::Task<bool> open_layers(GError **error);
  qio::Task<bool> start_tls(GError **error);
  qio::Task<bool> version(GError **error);
  qio::Task<bool> security(GError **error);
  qio::Task<bool> vencrypt(GError **error);
  qio::Task<bool> authenticate(guint8 type, bool after_vencrypt, GError **error);
  qio::Task<bool> throttled_auth(guint8 type, GError **error);
  qio::Task<bool> vnc_auth(GError **error);
  qio::Task<bool> sasl_auth(GError **error);
  qio::Task<bool> sasl_send(const char *data, gsize len, bool done, GError **error);
  qio::Task<bool> sasl_receive(std::vector<char> &data, const char *what, GError **error);
  qio::Task<bool> security_result(bool ok, const char *reason, GError **error);
  qio::Task<bool> init(GError **error);
  qio::Task<bool> messages(GError **error);
  qio::Task<GError *> serve();

  guint8 inner_type() const {
    if (server->sasl_) return kSecSasl;
    if (server->password_auth_) return kSecVnc;
    return kSecNone;
  }

  void key_event(bool down, guint32 key);
  void maybe_send_update();
  void flush();
  static gboolean on_writable(QIOChannel *, GIOCondition, gpointer data) noexcept;
};

/* TLS on the connection (VeNCrypt, or below a websocket), noting what
 * query-vnc and SASL learn from it. */
qio::Task<bool> VncServer::Conn::start_tls(GError **error) {
  QIOChannelTLS *tioc =
      qio_channel_tls_new_server(ioc, server->creds_, server->tls_authz_, error);
  if (!tioc) {
    g_prefix_error(error, info.websocket ? _("VNC websocket client %s: ") : _("VNC client %s: "),
                   peer.c_str());
    co_return false;
  }
  push_layer(QIO_CHANNEL(tioc));
  if (!co_await qio::tls_handshake(tioc, cancel, error)) {
    /* Browsers cannot present a client certificate for a websocket. */
    if (info.websocket && server->x509_ && qcrypto_tls_creds_get_verify_peer(server->creds_))
      g_prefix_error(error,
                     _("VNC websocket client %s: TLS handshake failed (the credentials "
                       "demand a client certificate, which browsers do not send for "
                       "websockets: use credentials with verify-peer=off for them): "),
                     peer.c_str());
    else
      g_prefix_error(error,
                     info.websocket ? _("VNC websocket client %s: TLS handshake failed: ")
                                    : _("VNC client %s: TLS handshake failed: "),
                     peer.c_str());
    co_return false;
  }
  note_tls(tioc);
  co_return true;
}

/* Browsers reach the server over a websocket; with tls-creds it is wss,
 * so TLS sits below the websocket and RFB offers no VeNCrypt there. */
qio::Task<bool> VncServer::Conn::open_layers(GError **error) {
  if (!info.websocket) co_return true;
  if (server->creds_ && !co_await start_tls(error)) co_return false;
  QIOChannelWebsock *wioc = qio_channel_websock_new_server(ioc);
  push_layer(QIO_CHANNEL(wioc));
  if (!co_await qio::websock_handshake(wioc, cancel, error)) {
    g_prefix_error(error, _("VNC websocket client %s: "), peer.c_str());
    co_return false;
  }
  co_return true;
}

qio::Task<bool> VncServer::Conn::version(GError **error) {
  static const char kVersion[] = "RFB 003.008\n";
  if (!co_await write(kVersion, 12, error)) co_return false;
  char reply[13] = {};
  if (!co_await read(reply, 12, error)) co_return false;
  unsigned major = 0, minor_v = 0;
  char nl = 0;
  if (sscanf(reply, "RFB %3u.%3u%c", &major, &minor_v, &nl) != 3 || nl != '\n' || major != 3) {
    g_autofree char *shown = g_strescape(reply, nullptr);
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s sent '%s' instead of an RFB 3.x version; is it a VNC "
                  "viewer?"),
                peer.c_str(), shown);
    co_return false;
  }
  /* 3.7 and 3.8 as such; 3.3 and anything unknown (e.g. Apple's 3.889) as
   * 3.3, as RFC 6143 says. */
  minor = minor_v == 8 ? 8 : minor_v == 7 ? 7 : 3;
  co_return true;
}

qio::Task<bool> VncServer::Conn::security_result(bool ok, const char *reason, GError **error) {
  guint8 result[4];
  put32(result, ok ? 0 : 1);
  if (!co_await write(result, 4, error)) co_return false;
  if (!ok && minor >= 8) {
    guint8 len[4];
    put32(len, static_cast<guint32>(strlen(reason)));
    if (!co_await write(len, 4, error) || !co_await write(reason, strlen(reason), error))
      co_return false;
  }
  co_return true;
}

qio::Task<bool> VncServer::Conn::vnc_auth(GError **error) {
  guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN], response[QCRYPTO_VNC_AUTH_CHALLENGE_LEN];
  if (!qcrypto_vnc_auth_challenge(challenge, error)) {
    g_prefix_error(error, _("VNC client %s: "), peer.c_str());
    co_return false;
  }
  if (!co_await write(challenge, sizeof challenge, error) ||
      !co_await read(response, sizeof response, error))
    co_return false;
  /* Always compare, so that an unset password takes as long as a wrong one. */
  std::string password = server->password_;
  g_autoptr(GError) check_error = nullptr;
  bool ok = qcrypto_vnc_auth_check(password.c_str(), challenge, response, &check_error) &&
            !password.empty();
  if (ok && g_get_real_time() / G_USEC_PER_SEC > server->password_expires_) {
    co_await security_result(false, "authentication failed", nullptr);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("VNC client %s refused: the VNC password has expired; move the time with "
                  "the QMP command expire_password"),
                peer.c_str());
    co_return false;
  }
  if (!ok) {
    if (check_error) {
      co_await security_result(false, "authentication failed", nullptr);
      g_propagate_prefixed_error(error, g_steal_pointer(&check_error), _("VNC client %s: "),
                                 peer.c_str());
      co_return false;
    }
    co_await security_result(false, "authentication failed", nullptr);
    if (password.empty())
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                  _("VNC client %s refused: no VNC password is set; set one with the QMP "
                    "command set_password"),
                  peer.c_str());
    else
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                  _("VNC client %s refused: wrong VNC password"), peer.c_str());
    co_return false;
  }
  co_return co_await security_result(true, nullptr, error);
}

namespace {

/* "IP;PORT" as Cyrus SASL wants addresses; NULL for UNIX sockets. */
char *sasl_address(QIOSocketAddress *addr) {
  if (!addr || qio_socket_address_get_kind(addr) != QIO_SOCKET_ADDRESS_INET) return nullptr;
  return g_strdup_printf("%s;%u", qio_socket_address_get_host(addr),
                         qio_socket_address_get_port(addr));
}

}  // namespace

/* One server message of the exchange: the data with a NUL after it (its
 * length counts the NUL; 0 means no data) and whether the server is done. */
qio::Task<bool> VncServer::Conn::sasl_send(const char *data, gsize len, bool done,
                                           GError **error) {
  guint8 head[4];
  put32(head, data ? static_cast<guint32>(len + 1) : 0);
  if (!co_await write(head, 4, error)) co_return false;
  if (data) {
    static const char kNul = 0;
    if (!co_await write(data, len, error) || !co_await write(&kNul, 1, error)) co_return false;
  }
  guint8 flag = done;
  co_return co_await write(&flag, 1, error);
}

/* One client message: a length (at most kSaslMaxData) and that many
 * bytes, of which a trailing NUL is not data. */
qio::Task<bool> VncServer::Conn::sasl_receive(std::vector<char> &data, const char *what,
                                              GError **error) {
  guint8 head[4];
  if (!co_await read(head, 4, error)) co_return false;
  guint32 len = get32(head);
  if (len > kSaslMaxData) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s sent a SASL %s of %u bytes; the limit is %u"), peer.c_str(),
                what, len, kSaslMaxData);
    co_return false;
  }
  /* Grown as bytes come, so a length alone reserves nothing. */
  data.clear();
  while (data.size() < len) {
    gsize have = data.size(), n = std::min<gsize>(len - have, 4096);
    data.resize(have + n);
    if (!co_await read(data.data() + have, n, error)) co_return false;
  }
  if (!data.empty() && data.back() == '\0') data.pop_back();
  co_return true;
}

qio::Task<bool> VncServer::Conn::sasl_auth(GError **error) {
  g_autoptr(QIOSocketAddress) local = qio_channel_socket_get_local_address(sioc, nullptr);
  g_autoptr(QIOSocketAddress) remote = qio_channel_socket_get_remote_address(sioc, nullptr);
  g_autofree char *local_text = sasl_address(local);
  g_autofree char *remote_text = sasl_address(remote);
  g_autoptr(QCryptoSASLSession) sasl =
      qcrypto_sasl_session_new_server("vnc", local_text, remote_text, error);
  if (!sasl) co_return false;
  if (tls_key_bits) qcrypto_sasl_session_set_external_ssf(sasl, tls_key_bits);
  g_autofree char *mechs = qcrypto_sasl_session_list_mechanisms(sasl, error);
  if (!mechs) co_return false;
  /* The list goes without a NUL, unlike the exchange's data (as QEMU). */
  guint8 mechs_len[4];
  put32(mechs_len, static_cast<guint32>(strlen(mechs)));
  if (!co_await write(mechs_len, 4, error) || !co_await write(mechs, strlen(mechs), error))
    co_return false;

  guint8 head[4];
  if (!co_await read(head, 4, error)) co_return false;
  guint32 mech_len = get32(head);
  if (mech_len == 0 || mech_len > kSaslMaxMechName) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s named a SASL mechanism of %u bytes; names are 1 to %u"),
                peer.c_str(), mech_len, kSaslMaxMechName);
    co_return false;
  }
  std::string mech(mech_len, '\0');
  if (!co_await read(mech.data(), mech_len, error)) co_return false;
  for (char c : mech) {
    if (!g_ascii_isupper(c) && !g_ascii_isdigit(c) && c != '-' && c != '_') {
      g_autofree char *shown = g_strescape(mech.c_str(), nullptr);
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("VNC client %s named SASL mechanism '%s', which is not a mechanism name"),
                  peer.c_str(), shown);
      co_return false;
    }
  }
  std::vector<char> in;
  if (!co_await sasl_receive(in, _("start"), error)) co_return false;
  const char *out = nullptr;
  gsize out_len = 0;
  g_autoptr(GError) auth_error = nullptr;
  QCryptoSASLStep step = qcrypto_sasl_session_server_start(
      sasl, mech.c_str(), in.empty() ? nullptr : in.data(), in.size(), &out, &out_len,
      &auth_error);
  while (step == QCRYPTO_SASL_STEP_CONTINUE) {
    if (!co_await sasl_send(out, out_len, false, error)) co_return false;
    if (!co_await sasl_receive(in, _("step"), error)) co_return false;
    step = qcrypto_sasl_session_server_step(sasl, in.empty() ? nullptr : in.data(), in.size(),
                                            &out, &out_len, &auth_error);
  }
  if (step == QCRYPTO_SASL_STEP_FAILED) {
    /* The client waits for a step reply: "done, no data", then the
     * verdict with its reason. */
    if (co_await sasl_send(nullptr, 0, true, nullptr))
      co_await security_result(false, "authentication failed", nullptr);
    g_propagate_prefixed_error(error, g_steal_pointer(&auth_error), _("VNC client %s: "),
                               peer.c_str());
    co_return false;
  }
  if (!co_await sasl_send(out, out_len, true, error)) co_return false;
  const char *user = qcrypto_sasl_session_get_username(sasl);
  info.sasl_username = user ? user : "";
  if (server->sasl_authz_ &&
      !qcrypto_authz_is_allowed(server->sasl_authz_, info.sasl_username.c_str(), &auth_error)) {
    co_await security_result(false, "access denied", nullptr);
    g_propagate_prefixed_error(error, g_steal_pointer(&auth_error),
                               _("VNC client %s (SASL user '%s'): "), peer.c_str(),
                               info.sasl_username.c_str());
    co_return false;
  }
  /* Cyrus enforces the minimum; checked again because a session without
   * either layer would be plaintext. */
  if (!tls_key_bits && qcrypto_sasl_session_get_ssf(sasl) < 56) {
    co_await security_result(false, "no security layer", nullptr);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                _("VNC client %s: the SASL mechanism gave no security layer and there is no "
                  "TLS; refused"),
                peer.c_str());
    co_return false;
  }
  if (!co_await security_result(true, nullptr, error)) co_return false;
  /* Without TLS the mechanism's security layer protects the rest. */
  if (qcrypto_sasl_session_get_ssf(sasl) > 0 && !tls_key_bits) {
    QIOChannelSASL *layer = qio_channel_sasl_new(ioc, sasl, error);
    if (!layer) co_return false;
    push_layer(QIO_CHANNEL(layer));
  }
  co_return true;
}

/* A password check, queued behind earlier tries from the same source once
 * it has failed a few times (VncAuthThrottle).  The wait ends early when
 * the handshake limit or an eviction cancels the client. */
qio::Task<bool> VncServer::Conn::throttled_auth(guint8 type, GError **error) {
  VncAuthThrottle &throttle = server->auth_throttle_;
  const std::string source =
      VncAuthThrottle::source_of(info.family == "unix" ? "unix" : info.host);
  const gint64 wait = throttle.reserve(source, g_get_monotonic_time());
  if (wait < 0) {
    /* RFB has no failure message between the choice of a security type
     * and its exchange: the connection is closed without one. */
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("VNC client %s refused: %lld authentication attempts from %s are already "
                  "waiting their turn after repeated failures; try again later"),
                peer.c_str(), static_cast<long long>(VncAuthThrottle::kMaxWaitingTurns),
                source.c_str());
    co_return false;
  }
  const gint64 until = g_get_monotonic_time() + wait;
  for (gint64 left; (left = until - g_get_monotonic_time()) > 0;) {
    if (g_cancellable_is_cancelled(cancel)) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                  _("VNC client %s: cancelled while waiting its turn to authenticate"),
                  peer.c_str());
      co_return false;
    }
    co_await qio::sleep(static_cast<guint>(std::min<gint64>(left / 1000 + 1, 100)));
  }
  /* Not a conditional expression around co_await: GCC 12 destroys the
   * chosen task twice. */
  bool ok;
  if (type == kSecVnc)
    ok = co_await vnc_auth(error);
  else
    ok = co_await sasl_auth(error);
  if (ok && type == kSecVnc) {
    throttle.forget(source); /* whoever knows the one password may come in */
  } else if (!ok && error && *error && (*error)->domain == QCRYPTO_ERROR &&
             ((*error)->code == QCRYPTO_ERROR_ACCESS_DENIED ||
              (*error)->code == QCRYPTO_ERROR_AUTHENTICATION)) {
    gint64 now = g_get_monotonic_time();
    bool before = throttle.throttled(source, now);
    throttle.failed(source, now);
    /* A line of its own (the failure lines are rate-limited), at most one
     * a second however many sources cross the line. */
    if (!before && throttle.throttled(source, now) && server->throttle_log_.allow())
      g_message(_("VNC: %u failed authentications in a row from %s; its further attempts are "
                  "answered one at a time, at least %u ms apart"),
                VncAuthThrottle::kFreeFailures, source.c_str(), VncAuthThrottle::kFirstDelayMs);
  }
  co_return ok;
}

qio::Task<bool> VncServer::Conn::authenticate(guint8 type, bool after_vencrypt, GError **error) {
  switch (type) {
    case kSecNone:
      /* RFB 3.8 and VeNCrypt confirm even "no authentication". */
      if (minor >= 8 || after_vencrypt) co_return co_await security_result(true, nullptr, error);
      co_return true;
    case kSecVnc:
    case kSecSasl:
      co_return co_await throttled_auth(type, error);
    default:
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("VNC client %s: security type %u is not built in"), peer.c_str(), type);
      co_return false;
  }
}

qio::Task<bool> VncServer::Conn::vencrypt(GError **error) {
  static const guint8 kVeNCryptVersion[2] = {0, 2};
  if (!co_await write(kVeNCryptVersion, 2, error)) co_return false;
  guint8 version[2];
  if (!co_await read(version, 2, error)) co_return false;
  if (version[0] != 0 || version[1] != 2) {
    guint8 refuse = 1;
    co_await write(&refuse, 1, nullptr);
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s asked for VeNCrypt %u.%u; the server speaks 0.2"),
                peer.c_str(), version[0], version[1]);
    co_return false;
  }
  guint8 inner = inner_type();
  guint32 subtype = server->x509_ ? (inner == kSecSasl   ? kX509Sasl
                                     : inner == kSecVnc ? kX509Vnc
                                                        : kX509None)
                                  : (inner == kSecSasl   ? kTlsSasl
                                     : inner == kSecVnc ? kTlsVnc
                                                        : kTlsNone);
  guint8 offer[6] = {0, 1};
  put32(offer + 2, subtype);
  if (!co_await write(offer, sizeof offer, error)) co_return false;
  guint8 chosen_buf[4];
  if (!co_await read(chosen_buf, 4, error)) co_return false;
  guint32 chosen = get32(chosen_buf);
  guint8 accept = chosen == subtype;
  if (!co_await write(&accept, 1, error)) co_return false;
  if (!accept) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("VNC client %s chose VeNCrypt subtype %u, but the server offers only %u "
                  "(%s)"),
                peer.c_str(), chosen, subtype, server->auth_name());
    co_return false;
  }
  if (!co_await start_tls(error)) co_return false;
  co_return co_await authenticate(inner, true, error);
}

qio::Task<bool> VncServer::Conn::security(GError **error) {
  guint8 type = server->creds_ && !info.websocket ? kSecVeNCrypt : inner_type();
  if (minor == 3) {
    /* RFB 3.3: the server picks; VeNCrypt and SASL need a newer client. */
    if (type != kSecNone && type != kSecVnc) {
      static const char kReason[] = "this server requires RFB 3.7 or later";
      guint8 head[8];
      put32(head, 0);
      put32(head + 4, sizeof kReason - 1);
      co_await write(head, sizeof head, nullptr);
      co_await write(kReason, sizeof kReason - 1, nullptr);
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("VNC client %s speaks RFB 3.3, which cannot do the server's "
                    "authentication (%s); use a newer viewer"),
                  peer.c_str(), server->auth_name());
      co_return false;
    }
    guint8 chosen[4];
    put32(chosen, type);
    if (!co_await write(chosen, 4, error)) co_return false;
  } else {
    guint8 offer[2] = {1, type};
    if (!co_await write(offer, 2, error)) co_return false;
    guint8 chosen;
    if (!co_await read(&chosen, 1, error)) co_return false;
    if (chosen != type) {
      if (minor >= 8) co_await security_result(false, "unsupported security type", nullptr);
      g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                  _("VNC client %s chose security type %u, but the server offers only %u "
                    "(%s)"),
                  peer.c_str(), chosen, type, server->auth_name());
      co_return false;
    }
  }
  if (type == kSecVeNCrypt) co_return co_await vencrypt(error);
  co_return co_await authenticate(type, false, error);
}

qio::Task<bool> VncServer::Conn::init(GError **error) {
  guint8 shared;
  if (!co_await read(&shared, 1, error)) co_return false;
  const auto &fb = server->guest_.framebuffer();
  static const char kName[] = "qiod";
  guint8 msg[24 + sizeof kName - 1];
  put16(msg, static_cast<guint16>(fb.width()));
  put16(msg + 2, static_cast<guint16>(fb.height()));
  pf.write(msg + 4);
  put32(msg + 20, sizeof kName - 1);
  memcpy(msg + 24, kName, sizeof kName - 1);
  co_return co_await write(msg, sizeof msg, error);
}

void VncServer::Conn::key_event(bool down, guint32 key) {
  if (key == kKeyControlL || key == kKeyControlR) {
    ctrl_down = down;
    return;
  }
  if (!down) return;
  char c = 0;
  if (key >= 0x20 && key <= 0x7e) {
    c = static_cast<char>(key);
    if (ctrl_down && g_ascii_isalpha(c)) c = static_cast<char>(g_ascii_toupper(c) & 0x1f);
  } else if (key == kKeyReturn || key == kKeyKpEnter) {
    c = '\r';
  } else if (key == kKeyBackSpace) {
    c = '\b';
  } else if (key == kKeyTab) {
    c = '\t';
  } else if (key == kKeyEscape) {
    c = 0x1b;
  } else if (key >= kKeyKp0 && key <= kKeyKp9) {
    c = static_cast<char>('0' + (key - kKeyKp0));
  }
  if (!c) return;
  server->guest_.serial_input(std::string_view(&c, 1));
  server->refresh();
}

void VncServer::Conn::maybe_send_update() {
  if (negotiating || !update_requested || out_pos < out.size()) return;
  host::Rect r = intersect(dirty, requested);
  if (r.empty()) return;
  const auto &fb = server->guest_.framebuffer();
  out.assign(4, 0); /* FramebufferUpdate, padding, rectangle count */
  guint16 rects = 1;
  if (use_tight) {
    rects = static_cast<guint16>(tight->encode(fb.pixels(), fb.width(), r, pf, out));
  } else {
    gsize row_bytes = static_cast<gsize>(r.width) * pf.bytes_per_pixel();
    out.resize(16 + row_bytes * static_cast<gsize>(r.height));
    guint8 *p = out.data();
    put16(p + 4, static_cast<guint16>(r.x));
    put16(p + 6, static_cast<guint16>(r.y));
    put16(p + 8, static_cast<guint16>(r.width));
    put16(p + 10, static_cast<guint16>(r.height));
    put32(p + 12, kEncodingRaw);
    for (int y = 0; y < r.height; y++)
      pf.convert(fb.pixels() + static_cast<gsize>(r.y + y) * fb.width() + r.x,
                 static_cast<gsize>(r.width), p + 16 + row_bytes * y);
  }
  put16(out.data() + 2, rects);
  out_pos = 0;
  update_requested = false;
  dirty = subtract(dirty, r);
  flush();
}

void VncServer::Conn::flush() {
  while (out_pos < out.size()) {
    struct iovec iov = {out.data() + out_pos, out.size() - out_pos};
    GError *err = nullptr;
    gssize n = qio_channel_writev(ioc, &iov, 1, &err);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      if (!out_watch)
        out_watch = qio_channel_add_watch(ioc, G_IO_OUT, on_writable, this, nullptr);
      return;
    }
    if (n < 0) {
      if (!write_error) write_error = err;
      else g_error_free(err);
      g_cancellable_cancel(cancel);
      return;
    }
    out_pos += static_cast<gsize>(n);
  }
  out.clear();
  out_pos = 0;
  /* A request that came while the last update was on its way. */
  maybe_send_update();
}

gboolean VncServer::Conn::on_writable(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<Conn *>(data);
  self->out_watch = 0;
  self->flush();
  return G_SOURCE_REMOVE;
}

qio::Task<bool> VncServer::Conn::yield(GError **error) {
  GIOCondition ready = co_await qio::wait_io(ioc, G_IO_IN, nullptr, cancel);
  if (ready) co_return true;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, _("VNC client %s: cancelled"),
              peer.c_str());
  co_return false;
}

/* Reads and drops @len bytes in bounded pieces, giving the loop a turn
 * between pieces. */
qio::Task<bool> VncServer::Conn::skip(gsize len, GError **error) {
  guint8 chunk[4096];
  gsize since_yield = 0;
  while (len) {
    gsize n = std::min(len, sizeof chunk);
    if (!co_await read(chunk, n, error)) co_return false;
    len -= n;
    since_yield += n;
    if (since_yield >= kSkipBytesPerTurn) {
      if (!co_await yield(error)) co_return false;
      since_yield = 0;
    }
  }
  co_return true;
}

/* Reads a SetEncodings list of @count entries in bounded pieces.  The
 * client lists what it takes in the order it prefers: the first of Tight
 * and Raw wins (Raw when it names neither), and the first compression
 * level sets Tight's zlib level (zlib's default when it names none).  The
 * choice applies once the whole list is in: updates go out while it is
 * read. */
qio::Task<bool> VncServer::Conn::set_encodings(guint count, GError **error) {
  guint8 chunk[4 * 256];
  bool chosen = false, tight_chosen = false;
  int level = -1;
  gsize since_yield = 0;
  while (count) {
    guint n = std::min<guint>(count, sizeof chunk / 4);
    if (!co_await read(chunk, n * 4, error)) co_return false;
    for (guint i = 0; i < n; i++) {
      auto encoding = static_cast<gint32>(get32(chunk + 4 * i));
      if (!chosen && (encoding == kEncodingRaw ||
                      encoding == static_cast<gint32>(VncTightEncoder::kEncoding))) {
        chosen = true;
        tight_chosen = encoding != kEncodingRaw;
      } else if (level < 0 && encoding >= kCompressLevel0 && encoding <= kCompressLevel9) {
        level = encoding - kCompressLevel0;
      }
    }
    count -= n;
    since_yield += n * 4;
    if (since_yield >= kSkipBytesPerTurn) {
      if (!co_await yield(error)) co_return false;
      since_yield = 0;
    }
  }
  if (tight_chosen && !tight) tight = std::make_unique<VncTightEncoder>();
  if (tight) tight->set_level(level);
  use_tight = tight_chosen;
  co_return true;
}

qio::Task<bool> VncServer::Conn::messages(GError **error) {
  const auto &fb = server->guest_.framebuffer();
  const host::Rect screen{0, 0, fb.width(), fb.height()};
  /* Until the first update, everything the client will ask about is new. */
  dirty = screen;
  for (guint handled = 0;; handled++) {
    if (handled >= kMessagesPerTurn || out_pos < out.size()) {
      if (!co_await yield(error)) co_return false;
      handled = 0;
    }
    guint8 type;
    if (!co_await read(&type, 1, error)) co_return false;
    switch (type) {
      case kSetPixelFormat: {
        guint8 body[3 + VncPixelFormat::kWireSize];
        if (!co_await read(body, sizeof body, error)) co_return false;
        if (!VncPixelFormat::parse(body + 3, peer.c_str(), pf, error)) co_return false;
        /* What the client has is in the old format: all of it again. */
        dirty = screen;
        break;
      }
      case kSetEncodings: {
        guint8 head[3];
        if (!co_await read(head, sizeof head, error)) co_return false;
        if (!co_await set_encodings(get16(head + 1), error)) co_return false;
        break;
      }
      case kUpdateRequest: {
        guint8 body[9];
        if (!co_await read(body, sizeof body, error)) co_return false;
        host::Rect r = intersect(screen, {get16(body + 1), get16(body + 3), get16(body + 5),
                                          get16(body + 7)});
        if (r.empty()) break; /* nothing of the screen: nothing to send */
        requested = r;
        update_requested = true;
        if (!body[0]) dirty = unite(dirty, r);
        maybe_send_update();
        break;
      }
      case kKeyEvent: {
        guint8 body[7];
        if (!co_await read(body, sizeof body, error)) co_return false;
        key_event(body[0] != 0, get32(body + 3));
        break;
      }
      case kPointerEvent: {
        guint8 body[5]; /* the guest has no pointer */
        if (!co_await read(body, sizeof body, error)) co_return false;
        break;
      }
      case kClientCutText: {
        guint8 body[7];
        if (!co_await read(body, sizeof body, error)) co_return false;
        /* The guest has no clipboard; the extended-clipboard form sends a
         * negative length, whose magnitude is what follows. */
        auto len = static_cast<gint32>(get32(body + 3));
        if (!co_await skip(len < 0 ? static_cast<gsize>(-static_cast<gint64>(len))
                                   : static_cast<gsize>(len),
                           error))
          co_return false;
        break;
      }
      default:
        g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                    _("VNC client %s sent unknown message type %u; disconnected"), peer.c_str(),
                    type);
        co_return false;
    }
  }
}

qio::Task<GError *> VncServer::Conn::serve() {
  GError *error = nullptr;
  bool ok;
  {
    qio::CancelAfter timer(cancel, kHandshakeLimitMs);
    ok = co_await open_layers(&error) && co_await version(&error) &&
         co_await security(&error) && co_await init(&error);
    if (!ok && evicted) {
      g_clear_error(&error);
      g_set_error(&error, QIO_ERROR, QIO_ERROR_TIMEOUT,
                  _("VNC client %s had not finished its handshake when the connections limit "
                    "was reached; disconnected to make room for a newer client"),
                  peer.c_str());
    } else if (!ok && timer.expired()) {
      g_clear_error(&error);
      g_set_error(&error, QIO_ERROR, QIO_ERROR_TIMEOUT,
                  _("VNC client %s did not finish the handshake within %u seconds; "
                    "disconnected"),
                  peer.c_str(), kHandshakeLimitMs / 1000);
    }
  }
  if (ok) {
    negotiating = false;
    g_info(_("VNC client %s connected (%s%s%s)"), peer.c_str(), server->auth_name(),
           info.x509_dname.empty() ? "" : ", ", info.x509_dname.c_str());
    co_await messages(&error);
    if (write_error) {
      g_clear_error(&error);
      error = g_steal_pointer(&write_error);
    }
  }
  /* A viewer closing its window is the normal end of a session, with or
   * without a TLS bye. */
  if (error && (g_error_matches(error, QIO_ERROR, QIO_ERROR_EOF) ||
                (!negotiating && g_error_matches(error, QCRYPTO_ERROR,
                                                 QCRYPTO_ERROR_PREMATURE_CLOSE))))
    g_clear_error(&error);
  /* Channel and TLS failures do not say which client: name it. */
  if (error && !strstr(error->message, peer.c_str()))
    g_prefix_error(&error, _("VNC client %s: "), peer.c_str());
  co_return error;
}

std::unique_ptr<VncServer> VncServer::create(const VncConfig &config, host::Guest &guest,
                                             GError **error) {
  std::unique_ptr<VncServer> self(new VncServer(guest));
  self->max_clients_ = config.connections;
  if (!config.tls_creds.empty()) {
    self->creds_ = static_cast<QCryptoTLSCreds *>(qom_object_ref_typed(
        config.tls_creds.c_str(), QCRYPTO_TYPE_TLS_CREDS, _("TLS credentials"), error));
    if (!self->creds_) {
      g_prefix_error(error, "-vnc: ");
      return nullptr;
    }
    if (qcrypto_tls_creds_get_endpoint(self->creds_) != QCRYPTO_TLS_CREDS_ENDPOINT_SERVER) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("-vnc: TLS credentials '%s' are for a client; create them with "
                    "endpoint=server"),
                  config.tls_creds.c_str());
      return nullptr;
    }
    if (QCRYPTO_IS_TLS_CREDS_X509(self->creds_)) {
      self->x509_ = true;
      if (!config.tls_authz.empty() && !qcrypto_tls_creds_get_verify_peer(self->creds_)) {
        g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                    _("-vnc: tls-authz checks the client certificate, but TLS credentials '%s' "
                      "have verify-peer=off; turn it on"),
                    config.tls_creds.c_str());
        return nullptr;
      }
    } else if (QCRYPTO_IS_TLS_CREDS_ANON(self->creds_) && !config.tls_authz.empty()) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("-vnc: tls-authz checks the client certificate, but TLS credentials '%s' "
                    "are anonymous; use tls-creds-x509"),
                  config.tls_creds.c_str());
      return nullptr;
    } else if (!QCRYPTO_IS_TLS_CREDS_ANON(self->creds_)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                  _("-vnc: TLS credentials '%s' are neither x509 nor anon; VeNCrypt has no "
                    "PSK mode: use tls-creds-x509 (or tls-creds-anon)"),
                  config.tls_creds.c_str());
      return nullptr;
    }
  }
  if (!config.tls_authz.empty()) {
    self->tls_authz_ = static_cast<QCryptoAuthz *>(qom_object_ref_typed(
        config.tls_authz.c_str(), QCRYPTO_TYPE_AUTHZ, _("authorization"), error));
    if (!self->tls_authz_) {
      g_prefix_error(error, "-vnc: ");
      return nullptr;
    }
  }
  self->sasl_ = config.sasl;
  if (!config.sasl_authz.empty()) {
    self->sasl_authz_ = static_cast<QCryptoAuthz *>(qom_object_ref_typed(
        config.sasl_authz.c_str(), QCRYPTO_TYPE_AUTHZ, _("authorization"), error));
    if (!self->sasl_authz_) {
      g_prefix_error(error, "-vnc: ");
      return nullptr;
    }
  }
  self->password_auth_ = config.password || !config.password_secret.empty();
  if (!config.password_secret.empty()) {
    char *text = nullptr;
    if (!qcrypto_secret_lookup_text(config.password_secret.c_str(), &text, error)) {
      g_prefix_error(error, "-vnc password-secret: ");
      return nullptr;
    }
    self->password_ = text;
    g_free(text);
  }
  if (!self->open_listeners(config, error)) return nullptr;
  return self;
}

bool VncServer::open_listeners(const VncConfig &config, GError **error) {
  g_autoptr(QIOSocketAddress) addr = nullptr;
  std::string host;
  guint16 port = 0;
  bool unix_path = g_str_has_prefix(config.address.c_str(), "unix:");
  if (unix_path) {
    addr = qio_socket_address_new_unix(config.address.c_str() + 5, FALSE);
  } else {
    if (!parse_display(config.address, host, kBasePort, port, error)) return false;
    addr = qio_socket_address_new_inet(host.c_str(), port);
  }
  listener_ = qio_net_listener_new();
  qio_net_listener_set_name(listener_, "vnc");
  if (!qio_net_listener_open_sync(listener_, addr, 16, error)) {
    g_prefix_error(error, "-vnc: ");
    return false;
  }
  qio_net_listener_set_client_func(listener_, on_client, this, nullptr, nullptr);
  if (config.websocket.empty()) return true;

  std::string ws_host = host;
  guint16 ws_port = 0;
  if (config.websocket == "on") {
    if (unix_path) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("-vnc: websocket=on takes its port from the display number; with "
                    "unix:PATH give websocket=PORT or HOST:PORT"));
      return false;
    }
    ws_port = static_cast<guint16>(port - kBasePort + kWebsocketBasePort);
  } else {
    std::string text = config.websocket;
    auto colon = text.rfind(':');
    if (colon != std::string::npos) {
      ws_host = unbracket(text.substr(0, colon));
      text = text.substr(colon + 1);
    }
    guint64 p = 0;
    if (!g_ascii_string_to_unsigned(text.c_str(), 10, 1, 65535, &p, nullptr)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_INVALID_ADDRESS,
                  _("-vnc: websocket='%s' is not on, PORT or HOST:PORT"),
                  config.websocket.c_str());
      return false;
    }
    ws_port = static_cast<guint16>(p);
  }
  if (ws_host.empty()) ws_host = unix_path ? "localhost" : "0.0.0.0";
  g_autoptr(QIOSocketAddress) ws_addr = qio_socket_address_new_inet(ws_host.c_str(), ws_port);
  ws_listener_ = qio_net_listener_new();
  qio_net_listener_set_name(ws_listener_, "vnc-websocket");
  if (!qio_net_listener_open_sync(ws_listener_, ws_addr, 16, error)) {
    g_prefix_error(error, "-vnc websocket: ");
    return false;
  }
  qio_net_listener_set_client_func(ws_listener_, on_ws_client, this, nullptr, nullptr);
  return true;
}

VncServer::~VncServer() {
  for (QIONetListener **l : {&listener_, &ws_listener_}) {
    if (!*l) continue;
    qio_net_listener_disconnect(*l);
    g_clear_object(l);
  }
  /* Clients end when cancelled; their tasks finish on this context,
   * unlogged: qiod is going, not they. */
  stopping_ = true;
  for (Conn *conn : conns_) {
    g_cancellable_cancel(conn->cancel);
    qio_channel_shutdown(conn->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  }
  while (!conns_.empty()) g_main_context_iteration(nullptr, TRUE);
  if (refresh_timer_) g_source_remove(refresh_timer_);
  g_clear_object(&creds_);
  g_clear_object(&tls_authz_);
  g_clear_object(&sasl_authz_);
}

void VncServer::on_client(QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
  static_cast<VncServer *>(data)->add_client(client, false);
}

void VncServer::on_ws_client(QIONetListener *, QIOChannelSocket *client, gpointer data) noexcept {
  static_cast<VncServer *>(data)->add_client(client, true);
}

void VncServer::add_client(QIOChannelSocket *sioc, bool websocket) {
  if (qio::make_room(conns_, max_clients_, [](const Conn *c) { return c->negotiating; }) ==
      qio::Room::Full) {
    g_autofree char *message =
        g_strdup_printf(_("VNC client %s refused: %u clients already (connections); raise the "
                          "limit to serve more at once"),
                        qio_channel_get_name(QIO_CHANNEL(sioc)), max_clients_);
    log_failure(message);
    qio_channel_close(QIO_CHANNEL(sioc), nullptr);
    return;
  }
  qio_channel_set_blocking(QIO_CHANNEL(sioc), FALSE, nullptr);
  qio_channel_set_delay(QIO_CHANNEL(sioc), FALSE);
  auto *conn = new Conn(this, sioc, websocket);
  conns_.push_back(conn);
  if (!refresh_timer_) refresh_timer_ = g_timeout_add(kRefreshMs, on_refresh, this);
  qio::spawn(conn->serve(), [this, conn](GError *error) { conn_finished(conn, error); });
}

/* Any peer can fail on purpose, in a loop: one line a second. */
void VncServer::log_failure(const char *message) {
  guint held_back = 0;
  if (!failure_log_.allow(&held_back)) return;
  if (held_back)
    g_message(_("%s (%u more failed or refused VNC clients not logged)"), message, held_back);
  else
    g_message("%s", message);
}

void VncServer::conn_finished(Conn *conn, GError *error) {
  if (error && !stopping_)
    log_failure(error->message);
  else if (!conn->negotiating)
    g_info(_("VNC client %s disconnected"), conn->peer.c_str());
  g_clear_error(&error);
  conns_.remove(conn);
  delete conn;
}

void VncServer::refresh() {
  host::Rect damage = guest_.framebuffer().take_damage();
  for (Conn *conn : conns_) {
    if (conn->negotiating) continue;
    conn->dirty = unite(conn->dirty, damage);
    conn->maybe_send_update();
  }
}

gboolean VncServer::on_refresh(gpointer data) noexcept {
  auto *self = static_cast<VncServer *>(data);
  if (self->conns_.empty()) {
    self->refresh_timer_ = 0;
    return G_SOURCE_REMOVE;
  }
  self->refresh();
  return G_SOURCE_CONTINUE;
}

static std::string listener_part(QIONetListener *listener, int part) {
  if (!listener || qio_net_listener_get_n_sockets(listener) == 0) return "";
  g_autoptr(QIOSocketAddress) addr = qio_net_listener_get_address(listener, 0, nullptr);
  if (!addr) return "";
  if (qio_socket_address_get_kind(addr) != QIO_SOCKET_ADDRESS_INET)
    return part == 0 ? qio_socket_address_get_path(addr) : part == 1 ? "" : "unix";
  std::string host = qio_socket_address_get_host(addr);
  if (part == 0) return host;
  if (part == 1) return std::to_string(qio_socket_address_get_port(addr));
  return host.find(':') != std::string::npos ? "ipv6" : "ipv4";
}

std::string VncServer::host() const { return listener_part(listener_, 0); }
std::string VncServer::service() const { return listener_part(listener_, 1); }
std::string VncServer::family() const { return listener_part(listener_, 2); }
std::string VncServer::websocket_service() const { return listener_part(ws_listener_, 1); }

const char *VncServer::auth_name() const {
  if (creds_) {
    if (x509_) return sasl_ ? "vencrypt+x509+sasl" : password_auth_ ? "vencrypt+x509+vnc"
                                                                     : "vencrypt+x509+none";
    return sasl_ ? "vencrypt+tls+sasl" : password_auth_ ? "vencrypt+tls+vnc" : "vencrypt+tls+none";
  }
  if (sasl_) return "sasl";
  if (password_auth_) return "vnc";
  return "none";
}

std::vector<VncClientInfo> VncServer::clients() const {
  std::vector<VncClientInfo> list;
  for (const Conn *conn : conns_)
    if (!conn->negotiating) {
      list.push_back(conn->info);
      list.back().encoding = conn->use_tight ? "tight" : "raw";
    }
  return list;
}

bool VncServer::set_password(const char *password, GError **error) {
  if (!password_auth_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("the VNC server takes no password: start it with -vnc ...,password=on"));
    return false;
  }
  password_ = password ? password : "";
  return true;
}

bool VncServer::expire_password(const char *time, GError **error) {
  if (!password_auth_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("the VNC server takes no password: start it with -vnc ...,password=on"));
    return false;
  }
  const gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  /* Not the clock's "now": a clock stepped back must not revive it. */
  if (g_str_equal(time, "now")) {
    password_expires_ = G_MININT64;
    return true;
  }
  if (g_str_equal(time, "never")) {
    password_expires_ = G_MAXINT64;
    return true;
  }
  const bool relative = time[0] == '+';
  const char *digits = relative ? time + 1 : time;
  guint64 seconds = 0;
  /* Seconds up to the year 10000 at most, so that now + SECONDS fits. */
  if (!g_ascii_isdigit(digits[0]) ||
      !g_ascii_string_to_unsigned(digits, 10, 0, G_GINT64_CONSTANT(253402300799), &seconds,
                                  nullptr)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("expire_password: time '%s' is not \"now\", \"never\", \"+SECONDS\" or "
                  "SECONDS since the epoch"),
                time);
    return false;
  }
  password_expires_ = relative ? now + static_cast<gint64>(seconds) : static_cast<gint64>(seconds);
  return true;
}

bool VncServer::reload_tls(GError **error) {
  if (!creds_) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_NOT_SUPPORTED,
                _("the VNC server has no TLS credentials to reload; start it with "
                  "-vnc ...,tls-creds=ID"));
    return false;
  }
  return qcrypto_tls_creds_reload(creds_, error);
}

}  // namespace qio::ui
