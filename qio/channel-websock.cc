#include "config.h"

#include "qio/channel-websock.h"
#include "qcrypto/base64.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr char kProtocolBinary[] = "binary";

enum Opcode : guint8 {
  kOpContinuation = 0x0,
  kOpText = 0x1,
  kOpBinary = 0x2,
  kOpClose = 0x8,
  kOpPing = 0x9,
  kOpPong = 0xA,
};

constexpr gsize kMaxFrameHeader = 14;
constexpr gsize kMaxControlPayload = 125;
/* How much a client masks per writev: its scratch buffer. */
constexpr gsize kClientChunk = 256 * 1024;
/* Iovec entries framed by one writev; more are left for the next call. */
constexpr gsize kMaxIov = 256;
/* Reads that look for a frame header go through rx, and the payload that
 * comes with them costs one more copy: keep them small, since a frame's
 * payload is later read straight into the caller's buffers. */
constexpr gsize kReadChunk = 16 * 1024;
/* A non-blocking read that has pulled this much from the master without
 * finding payload returns "would block": a peer streaming empty or control
 * frames cannot hold the main loop; the watch fires again at once. */
constexpr gsize kMaxIdlePull = 16 * kReadChunk;

enum class Role { kServer, kClient };
enum class Handshake { kSendRequest, kReadHead, kSendReply, kSendRejection, kDone, kFailed };
enum class Step { kDone, kNeedIn, kNeedOut, kFailed };

/* A FIFO of bytes: append at the tail, consume at the head; the storage is
 * kept between calls so the data path does not allocate. */
class ByteQueue {
 public:
  gsize size() const { return buf_.size() - head_; }
  bool empty() const { return size() == 0; }
  const guint8 *data() const { return buf_.data() + head_; }
  void consume(gsize n) {
    head_ += n;
    if (head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
    }
  }
  void append(const void *p, gsize n) {
    compact();
    auto *b = static_cast<const guint8 *>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  /* Room for @n more bytes at the tail; commit() what was filled. */
  guint8 *reserve(gsize n) {
    compact();
    fill_ = buf_.size();
    buf_.resize(fill_ + n);
    return buf_.data() + fill_;
  }
  void commit(gsize used) { buf_.resize(fill_ + used); }

 private:
  void compact() {
    if (head_ == 0) return;
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  std::vector<guint8> buf_;
  gsize head_ = 0;
  gsize fill_ = 0;
};

struct WebsockPrivate {
  QIOChannel *master = nullptr;
  Role role = Role::kServer;
  bool blocking = true;
  gsize max_payload = QIO_CHANNEL_WEBSOCK_DEFAULT_MAX_PAYLOAD;
  guint handshake_timeout_ms = QIO_CHANNEL_WEBSOCK_DEFAULT_HANDSHAKE_TIMEOUT_MS;

  /* Handshake. */
  Handshake hs = Handshake::kReadHead;
  std::string host, path, key;
  bool offer_binary = false;
  bool request_queued = false;
  std::string protocol;
  std::string head; /* the peer's request or response head */
  GError *hs_error = nullptr;

  /* Bytes read from the master, not yet decoded. */
  ByteQueue rx;
  bool master_eof = false;
  /* The frame being received. */
  bool in_payload = false;
  bool in_message = false; /* a fragmented message awaits continuations */
  guint64 rx_remaining = 0;
  guint8 rx_mask[4] = {};
  bool rx_masked = false;
  guint64 rx_mask_off = 0;

  /* One thread may read while another writes (the reader answers pings),
   * so the output side has two locks.  write_lock is held across master
   * writes and guards tx and the data frame being sent; ctl_lock is never
   * held across I/O and guards ctl and close_sent. */
  std::mutex write_lock;
  /* Bytes for the master: handshake, the part of a frame header the
   * master did not take, control frames on their way. */
  ByteQueue tx;
  /* The data frame being sent; control frames may not interrupt it. */
  guint64 tx_remaining = 0;
  guint8 tx_mask[4] = {};
  guint64 tx_mask_off = 0;
  std::vector<guint8> scratch; /* client: masked payload */

  std::mutex ctl_lock;
  ByteQueue ctl; /* pongs and close frames, queued by readers */
  std::atomic<bool> ctl_pending{false};
  bool close_sent = false;

  guint peer_close_code = 0;
  bool close_received = false;
  GError *error = nullptr; /* sticky protocol failure */
};

}  // namespace

using QIOChannelWebsockPrivate = WebsockPrivate;

struct _QIOChannelWebsock {
  QIOChannel parent_instance;
};

G_DEFINE_FINAL_TYPE_WITH_PRIVATE(QIOChannelWebsock, qio_channel_websock, QIO_TYPE_CHANNEL)

static WebsockPrivate *ws_priv(QIOChannelWebsock *wioc) {
  return static_cast<WebsockPrivate *>(qio_channel_websock_get_instance_private(wioc));
}

static const char *ws_name(QIOChannelWebsock *wioc) {
  return qio_channel_get_name(QIO_CHANNEL(wioc));
}

/* ---- helpers ---------------------------------------------------------- */

static bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && g_ascii_strncasecmp(a.data(), b.data(), a.size()) == 0;
}

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/* Whether the comma-separated list @list holds @token (ignoring case when
 * @nocase, as for Connection and Upgrade). */
static bool list_has_token(std::string_view list, std::string_view token, bool nocase) {
  while (true) {
    gsize comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (nocase ? ieq(item, token) : item == token) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

static std::string accept_key(std::string_view key) {
  g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
  g_checksum_update(sha1, reinterpret_cast<const guchar *>(key.data()),
                    static_cast<gssize>(key.size()));
  g_checksum_update(sha1, reinterpret_cast<const guchar *>(kGuid), sizeof(kGuid) - 1);
  guint8 digest[20];
  gsize len = sizeof(digest);
  g_checksum_get_digest(sha1, digest, &len);
  g_autofree char *b64 = g_base64_encode(digest, len);
  return b64;
}

/* A Sec-WebSocket-Key is 16 bytes in canonical base64 (22 characters of
 * the alphabet and "=="). */
static bool valid_key(std::string_view key) {
  gsize len = 0;
  g_autofree guint8 *raw = qcrypto_base64_decode_strict(key.data(), key.size(), &len);
  return raw && len == 16 && key.size() == 24;
}

static bool is_tchar(char c) {
  return g_ascii_isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

struct Header {
  std::string_view name, value;
};

/* Splits an HTTP head (ending in its blank line) into its first line and
 * headers; false on a malformed line. */
static bool split_head(std::string_view head, std::string_view *first,
                       std::vector<Header> *headers) {
  head.remove_suffix(4);
  gsize eol = head.find("\r\n");
  *first = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    gsize colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    std::string_view name = line.substr(0, colon);
    /* No whitespace before the colon, no obsolete line folding. */
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return false;
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value)
      if ((static_cast<guchar>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
    headers->push_back({name, value});
  }
  for (char c : *first)
    if (static_cast<guchar>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

/* The one value of header @name; false if it repeats. */
static bool single_header(const std::vector<Header> &headers, std::string_view name,
                          std::string_view *value, bool *present) {
  *present = false;
  for (const Header &h : headers) {
    if (!ieq(h.name, name)) continue;
    if (*present) return false;
    *present = true;
    *value = h.value;
  }
  return true;
}

/* Whether any header @name lists @token (they may repeat: RFC 9110 5.3). */
static bool headers_have_token(const std::vector<Header> &headers, std::string_view name,
                               std::string_view token, bool nocase) {
  for (const Header &h : headers)
    if (ieq(h.name, name) && list_has_token(h.value, token, nocase)) return true;
  return false;
}

static gsize frame_header(guint8 *out, guint8 opcode, guint64 len, const guint8 *mask) {
  gsize n = 0;
  out[n++] = static_cast<guint8>(0x80 | opcode);
  guint8 maskbit = mask ? 0x80 : 0;
  if (len < 126) {
    out[n++] = static_cast<guint8>(maskbit | len);
  } else if (len <= 0xffff) {
    out[n++] = static_cast<guint8>(maskbit | 126);
    out[n++] = static_cast<guint8>(len >> 8);
    out[n++] = static_cast<guint8>(len);
  } else {
    out[n++] = static_cast<guint8>(maskbit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out[n++] = static_cast<guint8>(len >> shift);
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

static void new_mask(guint8 *mask) {
  guint32 r = g_random_int();
  memcpy(mask, &r, 4);
}

/* dst = src XOR the mask, starting @offset bytes into the payload; @dst
 * may be @src.  Eight bytes a step: the byte loop runs at a tenth of the
 * speed of the socket. */
static void mask_copy(guint8 *dst, const guint8 *src, gsize len, const guint8 *mask,
                      guint64 offset) {
  guint8 pattern[8];
  for (gsize k = 0; k < 8; k++) pattern[k] = mask[(offset + k) & 3];
  guint64 m;
  memcpy(&m, pattern, 8);
  gsize i = 0;
  for (; i + 8 <= len; i += 8) {
    guint64 v;
    memcpy(&v, src + i, 8);
    v ^= m;
    memcpy(dst + i, &v, 8);
  }
  for (; i < len; i++) dst[i] = src[i] ^ mask[(offset + i) & 3];
}

static void apply_mask(guint8 *data, gsize len, const guint8 *mask, guint64 offset) {
  mask_copy(data, data, len, mask, offset);
}

/* ---- master I/O ------------------------------------------------------- */

/* [write_lock held] Writes tx to the master, then the queued control
 * frames once no data frame is half sent.  Returns 1 when nothing more
 * can go out now, BLOCK, or -1. */
static int flush_locked(QIOChannelWebsock *wioc, GError **error) {
  WebsockPrivate *p = ws_priv(wioc);
  while (true) {
    while (!p->tx.empty()) {
      gssize n = qio_channel_write(p->master, p->tx.data(), p->tx.size(), error);
      if (n == QIO_CHANNEL_ERR_BLOCK) return QIO_CHANNEL_ERR_BLOCK;
      if (n < 0) {
        /* Undeliverable; the next writev meets the master's error itself. */
        p->tx.consume(p->tx.size());
        return -1;
      }
      p->tx.consume(static_cast<gsize>(n));
    }
    if (p->tx_remaining > 0 || !p->ctl_pending) return 1;
    std::lock_guard<std::mutex> guard(p->ctl_lock);
    p->tx.append(p->ctl.data(), p->ctl.size());
    p->ctl.consume(p->ctl.size());
    p->ctl_pending = false;
  }
}

static int flush_tx(QIOChannelWebsock *wioc, GError **error) {
  std::lock_guard<std::mutex> guard(ws_priv(wioc)->write_lock);
  return flush_locked(wioc, error);
}

/* For readers and watches: sends queued control frames unless a writer
 * is busy (it sends them itself).  True while they wait for the master. */
static bool try_flush(QIOChannelWebsock *wioc) {
  WebsockPrivate *p = ws_priv(wioc);
  if (!p->ctl_pending) return false;
  std::unique_lock<std::mutex> guard(p->write_lock, std::try_to_lock);
  return guard.owns_lock() && flush_locked(wioc, nullptr) == QIO_CHANNEL_ERR_BLOCK;
}

/* Queues a control frame; nothing follows a close frame. */
static void queue_control(QIOChannelWebsock *wioc, guint8 opcode, const guint8 *payload,
                          gsize len) {
  WebsockPrivate *p = ws_priv(wioc);
  guint8 mask[4];
  if (p->role == Role::kClient) new_mask(mask);
  guint8 frame[kMaxFrameHeader + kMaxControlPayload];
  gsize n = frame_header(frame, opcode, len, p->role == Role::kClient ? mask : nullptr);
  memcpy(frame + n, payload, len);
  if (p->role == Role::kClient) apply_mask(frame + n, len, mask, 0);
  std::lock_guard<std::mutex> guard(p->ctl_lock);
  if (p->close_sent) return;
  if (opcode == kOpClose) p->close_sent = true;
  /* Before a close only pongs are queued: only the latest ping is answered
   * (RFC 6455 5.5.3), so a peer that pings and never reads cannot grow the
   * queue. */
  if (opcode == kOpPong) p->ctl.consume(p->ctl.size());
  p->ctl.append(frame, n + len);
  p->ctl_pending = true;
}

static void queue_close(QIOChannelWebsock *wioc, guint code) {
  guint8 payload[2] = {static_cast<guint8>(code >> 8), static_cast<guint8>(code)};
  queue_control(wioc, kOpClose, payload, code == QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS ? 0 : 2);
}

static bool closing(WebsockPrivate *p) {
  std::lock_guard<std::mutex> guard(p->ctl_lock);
  return p->close_sent;
}

/* Records a protocol violation by the peer: later reads fail with it and
 * a close frame with @code is on its way. */
static void fail_protocol(QIOChannelWebsock *wioc, guint code, GError *error) {
  WebsockPrivate *p = ws_priv(wioc);
  g_clear_error(&p->error);
  p->error = error;
  queue_close(wioc, code);
  try_flush(wioc);
}

/* ---- handshake -------------------------------------------------------- */

static void reject(QIOChannelWebsock *wioc, int status, const char *reason) {
  WebsockPrivate *p = ws_priv(wioc);
  const char *phrase = status == 405   ? "Method Not Allowed"
                       : status == 426 ? "Upgrade Required"
                       : status == 431 ? "Request Header Fields Too Large"
                                       : "Bad Request";
  g_autofree char *reply = g_strdup_printf(
      "HTTP/1.1 %d %s\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: %zu\r\n"
      "Connection: close\r\n"
      "%s%s"
      "\r\n"
      "%s\n",
      status, phrase, strlen(reason) + 1,
      status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
      status == 405 ? "Allow: GET\r\n" : "", reason);
  p->tx.append(reply, strlen(reply));
  g_set_error(&p->hs_error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("Channel '%s': rejected the websocket handshake of the peer with HTTP %d: "
                "%s; connect with a websocket client (RFC 6455, version 13)"),
              ws_name(wioc), status, _(reason));
  p->hs = Handshake::kSendRejection;
}

/* Checks that the bytes so far can start an HTTP request (a method
 * token and a space), so that a TLS hello or other garbage is refused at
 * once rather than after 8 KiB. */
static bool plausible_request_start(std::string_view head) {
  constexpr gsize kMaxMethod = 16;
  gsize i = 0;
  while (i < head.size() && i <= kMaxMethod && is_tchar(head[i])) i++;
  if (i == head.size()) return i <= kMaxMethod;
  return i > 0 && head[i] == ' ';
}

static void server_parse(QIOChannelWebsock *wioc) {
  WebsockPrivate *p = ws_priv(wioc);
  std::string_view first;
  std::vector<Header> headers;
  if (!split_head(p->head, &first, &headers)) {
    reject(wioc, 400, N_("malformed HTTP header line"));
    return;
  }
  /* METHOD SP request-target SP HTTP-version */
  gsize sp1 = first.find(' ');
  gsize sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || first.find(' ', sp2 + 1) != std::string_view::npos) {
    reject(wioc, 400, N_("malformed HTTP request line"));
    return;
  }
  std::string_view method = first.substr(0, sp1);
  std::string_view target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = first.substr(sp2 + 1);
  if (version != "HTTP/1.1") {
    reject(wioc, 400, N_("the request is not HTTP/1.1"));
    return;
  }
  if (method != "GET") {
    reject(wioc, 405, N_("the request method is not GET"));
    return;
  }
  if (target.empty() || target[0] != '/') {
    reject(wioc, 400, N_("the request path does not start with '/'"));
    return;
  }
  std::string_view value;
  bool present;
  if (!single_header(headers, "Host", &value, &present) || !present) {
    reject(wioc, 400, N_("missing or repeated Host header"));
    return;
  }
  if (!headers_have_token(headers, "Upgrade", "websocket", true)) {
    reject(wioc, 400, N_("missing 'Upgrade: websocket' header"));
    return;
  }
  if (!headers_have_token(headers, "Connection", "upgrade", true)) {
    reject(wioc, 400, N_("the Connection header lacks the 'upgrade' token"));
    return;
  }
  if (!single_header(headers, "Sec-WebSocket-Version", &value, &present) || !present ||
      value != "13") {
    reject(wioc, 426, N_("only Sec-WebSocket-Version 13 is supported"));
    return;
  }
  if (!single_header(headers, "Sec-WebSocket-Key", &value, &present) || !present) {
    reject(wioc, 400, N_("missing or repeated Sec-WebSocket-Key header"));
    return;
  }
  if (!valid_key(value)) {
    reject(wioc, 400, N_("Sec-WebSocket-Key is not 16 bytes in base64"));
    return;
  }
  p->path = target;
  /* "binary" is accepted, not required (noVNC and browsers differ). */
  bool binary = headers_have_token(headers, "Sec-WebSocket-Protocol", kProtocolBinary, false);
  if (binary) p->protocol = kProtocolBinary;
  std::string reply =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " + accept_key(value) + "\r\n";
  if (binary) reply += "Sec-WebSocket-Protocol: binary\r\n";
  reply += "\r\n";
  p->tx.append(reply.data(), reply.size());
  p->hs = Handshake::kSendReply;
}

static void client_fail(QIOChannelWebsock *wioc, const char *what) {
  WebsockPrivate *p = ws_priv(wioc);
  g_set_error(&p->hs_error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("Channel '%s': the websocket server's handshake reply is invalid: %s; "
                "check that the peer is a websocket server (RFC 6455)"),
              ws_name(wioc), _(what));
  p->hs = Handshake::kFailed;
}

static void client_parse(QIOChannelWebsock *wioc) {
  WebsockPrivate *p = ws_priv(wioc);
  std::string_view first;
  std::vector<Header> headers;
  if (!split_head(p->head, &first, &headers)) {
    client_fail(wioc, N_("malformed HTTP header line"));
    return;
  }
  if (first.substr(0, 13) != "HTTP/1.1 101 " && first != "HTTP/1.1 101") {
    std::string line(first);
    g_set_error(&p->hs_error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Channel '%s': the websocket server refused the handshake: '%s'; "
                  "check the path and that the server accepts websockets"),
                ws_name(wioc), line.c_str());
    p->hs = Handshake::kFailed;
    return;
  }
  if (!headers_have_token(headers, "Upgrade", "websocket", true)) {
    client_fail(wioc, N_("missing 'Upgrade: websocket' header"));
    return;
  }
  if (!headers_have_token(headers, "Connection", "upgrade", true)) {
    client_fail(wioc, N_("the Connection header lacks the 'upgrade' token"));
    return;
  }
  std::string_view value;
  bool present;
  if (!single_header(headers, "Sec-WebSocket-Accept", &value, &present) || !present ||
      value != accept_key(p->key)) {
    client_fail(wioc, N_("Sec-WebSocket-Accept does not match the key"));
    return;
  }
  if (!single_header(headers, "Sec-WebSocket-Protocol", &value, &present) ||
      (present && (!p->offer_binary || value != kProtocolBinary))) {
    client_fail(wioc, N_("the server chose a subprotocol that was not offered"));
    return;
  }
  if (present) p->protocol = kProtocolBinary;
  p->hs = Handshake::kDone;
}

/* Reads the peer's head up to the blank line; what follows it belongs to
 * the frame stream.  Returns kDone once the head is complete. */
static Step read_head(QIOChannelWebsock *wioc, GError **error) {
  WebsockPrivate *p = ws_priv(wioc);
  while (true) {
    char buf[1024];
    gssize n = qio_channel_read(p->master, buf, sizeof(buf), error);
    if (n == QIO_CHANNEL_ERR_BLOCK) return Step::kNeedIn;
    if (n < 0) return Step::kFailed;
    if (n == 0) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                  _("Channel '%s': the peer closed the connection during the websocket "
                    "handshake"),
                  ws_name(wioc));
      return Step::kFailed;
    }
    gsize from = p->head.size() < 3 ? 0 : p->head.size() - 3;
    p->head.append(buf, static_cast<gsize>(n));
    if (p->role == Role::kServer && !plausible_request_start(p->head)) {
      reject(wioc, 400, N_("the data is not an HTTP request"));
      return Step::kDone;
    }
    gsize end = p->head.find("\r\n\r\n", from);
    if (end != std::string::npos) {
      end += 4;
      if (end <= QIO_CHANNEL_WEBSOCK_MAX_HEADER_SIZE) {
        p->rx.append(p->head.data() + end, p->head.size() - end);
        p->head.resize(end);
        return Step::kDone;
      }
    }
    if (p->head.size() > QIO_CHANNEL_WEBSOCK_MAX_HEADER_SIZE) {
      if (p->role == Role::kServer) {
        reject(wioc, 431, N_("the request head is larger than 8 KiB"));
      } else {
        client_fail(wioc, N_("the reply head is larger than 8 KiB"));
      }
      return Step::kDone;
    }
  }
}

/* The request is built when the handshake starts, so set_offer_binary
 * can still change it. */
static void client_queue_request(WebsockPrivate *p) {
  std::string req = "GET " + p->path + " HTTP/1.1\r\n"
                    "Host: " + p->host + "\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Key: " + p->key + "\r\n"
                    "Sec-WebSocket-Version: 13\r\n";
  if (p->offer_binary) req += "Sec-WebSocket-Protocol: binary\r\n";
  req += "\r\n";
  p->tx.append(req.data(), req.size());
}

/* Advances the handshake as far as the master allows. */
static Step handshake_step(QIOChannelWebsock *wioc, GError **error) {
  WebsockPrivate *p = ws_priv(wioc);
  while (true) {
    switch (p->hs) {
      case Handshake::kSendRequest:
        if (!p->request_queued) {
          client_queue_request(p);
          p->request_queued = true;
        }
        [[fallthrough]];
      case Handshake::kSendReply:
      case Handshake::kSendRejection: {
        int r = flush_tx(wioc, error);
        if (r == QIO_CHANNEL_ERR_BLOCK) return Step::kNeedOut;
        if (r < 0) return Step::kFailed;
        p->hs = p->hs == Handshake::kSendRequest ? Handshake::kReadHead
                : p->hs == Handshake::kSendReply ? Handshake::kDone
                                                 : Handshake::kFailed;
        break;
      }
      case Handshake::kReadHead: {
        Step s = read_head(wioc, error);
        if (s != Step::kDone) return s;
        if (p->hs != Handshake::kReadHead) break; /* rejected while reading */
        if (p->role == Role::kServer) {
          server_parse(wioc);
        } else {
          client_parse(wioc);
        }
        break;
      }
      case Handshake::kDone:
        return Step::kDone;
      case Handshake::kFailed: /* every way here sets hs_error */
        g_propagate_error(error, g_error_copy(p->hs_error));
        return Step::kFailed;
    }
  }
}

gboolean qio_channel_websock_handshake_sync(QIOChannelWebsock *wioc, GCancellable *cancellable,
                                            GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), FALSE);
  WebsockPrivate *p = ws_priv(wioc);
  while (true) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error)) return FALSE;
    Step s = handshake_step(wioc, error);
    if (s == Step::kDone) return TRUE;
    if (s == Step::kFailed) return FALSE;
    qio_channel_wait(p->master, s == Step::kNeedIn ? G_IO_IN : G_IO_OUT);
  }
}

namespace {

struct HandshakeTask {
  GMainContext *context;
  GSource *next = nullptr; /* the idle start or the master watch */
  GSource *cancel = nullptr;
  GSource *timeout = nullptr;
  bool timed_out = false;
};

void drop_source(GSource **source) {
  if (!*source) return;
  g_source_destroy(*source);
  g_clear_pointer(source, g_source_unref);
}

void handshake_task_free(gpointer data) noexcept {
  auto *t = static_cast<HandshakeTask *>(data);
  drop_source(&t->next);
  drop_source(&t->cancel);
  drop_source(&t->timeout);
  g_main_context_unref(t->context);
  delete t;
}

/* One round: step, then either finish the task or wait on the master. */
void handshake_run(GTask *task) noexcept {
  auto *t = static_cast<HandshakeTask *>(g_task_get_task_data(task));
  auto *wioc = QIO_CHANNEL_WEBSOCK(g_task_get_source_object(task));
  drop_source(&t->next);
  GError *error = nullptr;
  Step s;
  if (g_cancellable_set_error_if_cancelled(g_task_get_cancellable(task), &error)) {
    s = Step::kFailed;
  } else if (t->timed_out) {
    g_set_error(&error, QIO_ERROR, QIO_ERROR_TIMEOUT,
                _("Channel '%s': the peer did not complete the websocket handshake within "
                  "%u ms; it is too slow or not a websocket peer"),
                ws_name(wioc), ws_priv(wioc)->handshake_timeout_ms);
    s = Step::kFailed;
  } else {
    s = handshake_step(wioc, &error);
  }
  if (s == Step::kNeedIn || s == Step::kNeedOut) {
    t->next = qio_channel_create_watch(ws_priv(wioc)->master,
                                       s == Step::kNeedIn ? G_IO_IN : G_IO_OUT);
    g_source_set_callback(
        t->next,
        G_SOURCE_FUNC(+[](QIOChannel *, GIOCondition, gpointer data) noexcept -> gboolean {
          handshake_run(static_cast<GTask *>(data));
          return G_SOURCE_REMOVE;
        }),
        task, nullptr);
    g_source_attach(t->next, t->context);
    return;
  }
  /* Nothing may call back into a finished task. */
  drop_source(&t->cancel);
  drop_source(&t->timeout);
  if (s == Step::kDone) {
    g_task_return_boolean(task, TRUE);
  } else {
    g_task_return_error(task, error);
  }
  g_object_unref(task);
}

gboolean handshake_source_cb(gpointer data) noexcept {
  handshake_run(static_cast<GTask *>(data));
  return G_SOURCE_REMOVE;
}

gboolean handshake_cancelled_cb(GCancellable *, gpointer data) noexcept {
  handshake_run(static_cast<GTask *>(data));
  return G_SOURCE_REMOVE;
}

}  // namespace

void qio_channel_websock_handshake(QIOChannelWebsock *wioc, GMainContext *context,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data) {
  g_return_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc));
  if (!context) context = g_main_context_default();
  /* GTask calls back in the thread-default context of its creation. */
  g_main_context_push_thread_default(context);
  GTask *task = g_task_new(wioc, cancellable, callback, user_data);
  g_main_context_pop_thread_default(context);
  g_task_set_source_tag(task, reinterpret_cast<gpointer>(qio_channel_websock_handshake));
  auto *t = new HandshakeTask{g_main_context_ref(context)};
  g_task_set_task_data(task, t, handshake_task_free);
  if (cancellable) {
    t->cancel = g_cancellable_source_new(cancellable);
    g_source_set_callback(t->cancel, G_SOURCE_FUNC(handshake_cancelled_cb), task, nullptr);
    g_source_attach(t->cancel, context);
  }
  if (guint ms = ws_priv(wioc)->handshake_timeout_ms) {
    /* A peer that sends nothing, or a byte a minute, must not hold the
     * server's resources forever. */
    t->timeout = g_timeout_source_new(ms);
    g_source_set_callback(
        t->timeout,
        +[](gpointer data) noexcept -> gboolean {
          auto *task = static_cast<GTask *>(data);
          static_cast<HandshakeTask *>(g_task_get_task_data(task))->timed_out = true;
          handshake_run(task);
          return G_SOURCE_REMOVE;
        },
        task, nullptr);
    g_source_attach(t->timeout, context);
  }
  /* Start from the loop so the callback never runs before this returns. */
  t->next = g_idle_source_new();
  g_source_set_callback(t->next, handshake_source_cb, task, nullptr);
  g_source_attach(t->next, context);
}

gboolean qio_channel_websock_handshake_finish(QIOChannelWebsock *wioc, GAsyncResult *result,
                                              GError **error) {
  g_return_val_if_fail(g_task_is_valid(result, wioc), FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- data path -------------------------------------------------------- */

static bool check_ready(QIOChannelWebsock *wioc, GError **error) {
  WebsockPrivate *p = ws_priv(wioc);
  if (p->hs == Handshake::kDone) return true;
  g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
              _("Channel '%s': the websocket handshake has not completed; run it before "
                "reading or writing"),
              ws_name(wioc));
  return false;
}

static bool frame_error(QIOChannelWebsock *wioc, guint code, const char *what) {
  fail_protocol(wioc, code,
                g_error_new(QIO_ERROR, QIO_ERROR_PROTOCOL,
                            _("Channel '%s': the websocket peer broke the protocol: %s"),
                            ws_name(wioc), _(what)));
  return false;
}

static bool valid_close_code(guint code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

static bool handle_control(QIOChannelWebsock *wioc, guint8 opcode, guint8 *payload,
                           gsize len) {
  WebsockPrivate *p = ws_priv(wioc);
  switch (opcode) {
    case kOpPing:
      queue_control(wioc, kOpPong, payload, len);
      return true;
    case kOpPong:
      return true;
    case kOpClose: {
      guint code = QIO_CHANNEL_WEBSOCK_CLOSE_NO_STATUS;
      if (len == 1) return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                                       N_("a close frame with a 1-byte payload"));
      if (len >= 2) {
        code = (static_cast<guint>(payload[0]) << 8) | payload[1];
        if (!valid_close_code(code))
          return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                             N_("a close frame with an invalid close code"));
      }
      p->peer_close_code = code;
      p->close_received = true;
      queue_close(wioc, code);
      return true;
    }
    default:
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         N_("a frame with an unknown opcode"));
  }
}

/* Decodes buffered frame headers and control frames until payload bytes
 * are next, more input is needed, or the stream ended.  False on a
 * protocol violation (p->error is then set). */
static bool decode(QIOChannelWebsock *wioc) {
  WebsockPrivate *p = ws_priv(wioc);
  while (!p->in_payload && !p->close_received && !p->error) {
    gsize avail = p->rx.size();
    if (avail < 2) return true;
    const guint8 *h = p->rx.data();
    bool fin = h[0] & 0x80;
    guint8 opcode = h[0] & 0x0f;
    bool masked = h[1] & 0x80;
    guint64 len = h[1] & 0x7f;
    gsize hlen = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0) + (masked ? 4 : 0);
    if (avail < hlen) return true;
    if (h[0] & 0x70)
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         N_("reserved bits are set, but no extension was agreed"));
    if (masked != (p->role == Role::kServer))
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         p->role == Role::kServer ? N_("a client frame is not masked")
                                                  : N_("a server frame is masked"));
    gsize at = 2;
    if (len == 126) {
      len = (static_cast<guint64>(h[2]) << 8) | h[3];
      at = 4;
      if (len < 126)
        return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                           N_("a frame length is not minimally encoded"));
    } else if (len == 127) {
      len = 0;
      for (gsize i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
      at = 10;
      if (len >> 63)
        return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                           N_("a 64-bit frame length has its top bit set"));
      if (len <= 0xffff)
        return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                           N_("a frame length is not minimally encoded"));
    }
    guint8 mask[4] = {};
    if (masked) memcpy(mask, h + at, 4);

    if (opcode & 0x8) {
      if (!fin || len > kMaxControlPayload)
        return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                           N_("a control frame is fragmented or longer than 125 bytes"));
      if (avail < hlen + len) return true;
      guint8 payload[kMaxControlPayload];
      memcpy(payload, h + hlen, len);
      if (masked) apply_mask(payload, len, mask, 0);
      p->rx.consume(hlen + len);
      if (!handle_control(wioc, opcode, payload, len)) return false;
      continue;
    }
    if (opcode == kOpContinuation && !p->in_message)
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         N_("a continuation frame without a message to continue"));
    if ((opcode == kOpText || opcode == kOpBinary) && p->in_message)
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         N_("a new message inside an unfinished fragmented message"));
    if (opcode != kOpContinuation && opcode != kOpText && opcode != kOpBinary)
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_PROTOCOL_ERROR,
                         N_("a frame with an unknown opcode"));
    if (len > p->max_payload)
      return frame_error(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_TOO_BIG,
                         N_("a frame is larger than the payload limit"));
    p->rx.consume(hlen);
    p->in_message = !fin;
    if (len > 0) {
      p->in_payload = true;
      p->rx_remaining = len;
      p->rx_masked = masked;
      memcpy(p->rx_mask, mask, 4);
      p->rx_mask_off = 0;
    }
  }
  return true;
}

/* Whether a read would return without waiting for the master. */
static bool read_ready(QIOChannelWebsock *wioc) {
  WebsockPrivate *p = ws_priv(wioc);
  if (p->hs != Handshake::kDone) return false;
  decode(wioc);
  return p->error || p->close_received || p->master_eof || (p->in_payload && !p->rx.empty());
}

static void payload_done(WebsockPrivate *p, gsize n) {
  p->rx_remaining -= n;
  p->rx_mask_off += n;
  if (p->rx_remaining == 0) p->in_payload = false;
}

/* Copies decoded payload from rx into @iov; returns the bytes copied. */
static gsize copy_payload(WebsockPrivate *p, const struct iovec *iov, gsize niov,
                          gsize *idx, gsize *off) {
  gsize total = 0;
  while (p->in_payload && !p->rx.empty() && *idx < niov) {
    gsize room = iov[*idx].iov_len - *off;
    gsize n = std::min<guint64>({room, p->rx.size(), p->rx_remaining});
    auto *dst = static_cast<guint8 *>(iov[*idx].iov_base) + *off;
    memcpy(dst, p->rx.data(), n);
    if (p->rx_masked) apply_mask(dst, n, p->rx_mask, p->rx_mask_off);
    p->rx.consume(n);
    payload_done(p, n);
    total += n;
    *off += n;
    if (*off == iov[*idx].iov_len) {
      ++*idx;
      *off = 0;
    }
  }
  return total;
}

static gssize websock_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **,
                            gsize *, GError **error) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(ioc);
  WebsockPrivate *p = ws_priv(wioc);
  if (!check_ready(wioc, error)) return -1;
  gsize idx = 0, off = 0, total = 0, pulled = 0;
  while (idx < niov && iov[idx].iov_len == 0) idx++;
  while (true) {
    if (!decode(wioc) || p->error) {
      if (total > 0) return static_cast<gssize>(total);
      g_propagate_error(error, g_error_copy(p->error));
      return -1;
    }
    /* Pongs and close echoes go out on the reader's time too; a failure
     * to send them must not hide the data or EOF already received. */
    try_flush(wioc);
    gsize got = copy_payload(p, iov, niov, &idx, &off);
    total += got;
    if (idx >= niov) return static_cast<gssize>(total);
    if (got > 0) continue; /* the frame ended: decode the next one */
    if (total > 0) return static_cast<gssize>(total);
    if (p->close_received) return 0;
    if (p->master_eof) {
      if (!p->in_payload && !p->in_message && p->rx.empty()) return 0;
      g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                  _("Channel '%s': the websocket peer closed the connection in the middle "
                    "of a frame"),
                  ws_name(wioc));
      return -1;
    }
    if (pulled >= kMaxIdlePull && !p->blocking) return QIO_CHANNEL_ERR_BLOCK;
    gssize n;
    if (p->in_payload && p->rx.empty()) {
      /* Payload goes straight into the caller's buffers and is unmasked
       * in place: one copy instead of two. */
      struct iovec part[kMaxIov];
      gsize np = 0;
      guint64 want = p->rx_remaining;
      for (gsize i = idx; i < niov && np < kMaxIov && want > 0; i++) {
        gsize skip = i == idx ? off : 0;
        gsize len = std::min<guint64>(iov[i].iov_len - skip, want);
        if (len == 0) continue;
        part[np++] = {static_cast<guint8 *>(iov[i].iov_base) + skip, len};
        want -= len;
      }
      n = qio_channel_readv(p->master, part, np, error);
      if (n > 0) {
        gsize left = static_cast<gsize>(n);
        for (gsize i = 0; i < np && left > 0; i++) {
          gsize len = std::min(left, part[i].iov_len);
          if (p->rx_masked)
            apply_mask(static_cast<guint8 *>(part[i].iov_base), len, p->rx_mask,
                       p->rx_mask_off);
          payload_done(p, len);
          left -= len;
        }
        return static_cast<gssize>(n);
      }
    } else {
      guint8 *buf = p->rx.reserve(kReadChunk);
      n = qio_channel_read(p->master, buf, kReadChunk, error);
      p->rx.commit(n > 0 ? static_cast<gsize>(n) : 0);
      if (n > 0) pulled += static_cast<gsize>(n);
    }
    if (n == QIO_CHANNEL_ERR_BLOCK || n < 0) return n;
    if (n == 0) p->master_eof = true;
  }
}

static gssize websock_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *,
                             gsize, int, GError **error) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(ioc);
  WebsockPrivate *p = ws_priv(wioc);
  if (!check_ready(wioc, error)) return -1;
  std::lock_guard<std::mutex> guard(p->write_lock);
  /* A frame already begun is finished even after a close frame arrived:
   * our close echo has to wait for its end. */
  if (p->tx_remaining == 0 && closing(p)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                _("Channel '%s': the websocket is closing; no more data can be sent"),
                ws_name(wioc));
    return -1;
  }
  while (true) {
    int r = flush_locked(wioc, error);
    if (r != 1) return r;

    bool client = p->role == Role::kClient;
    /* The payload to send now: at most kMaxIov entries, the rest of an
     * open frame, the payload limit, and a client's scratch buffer. */
    guint64 limit = p->tx_remaining ? p->tx_remaining
                                    : std::min<guint64>(p->max_payload, G_MAXSIZE);
    if (client) limit = std::min<guint64>(limit, kClientChunk);
    struct iovec out[kMaxIov + 1];
    gsize nout = 1;
    gsize payload = 0;
    for (gsize i = 0; i < niov && nout <= kMaxIov && payload < limit; i++) {
      gsize len = std::min<guint64>(iov[i].iov_len, limit - payload);
      if (len == 0) continue;
      out[nout++] = {iov[i].iov_base, len};
      payload += len;
    }
    if (payload == 0) return 0;

    guint8 header[kMaxFrameHeader];
    gsize hlen = 0;
    bool new_frame = p->tx_remaining == 0;
    if (new_frame) {
      if (client) new_mask(p->tx_mask);
      p->tx_mask_off = 0;
      hlen = frame_header(header, kOpBinary, payload, client ? p->tx_mask : nullptr);
    }
    out[0] = {header, hlen};
    if (client) {
      /* Masking needs a copy; it is the only one. */
      p->scratch.resize(kClientChunk);
      gsize at = 0;
      for (gsize i = 1; i < nout; i++) {
        mask_copy(p->scratch.data() + at, static_cast<const guint8 *>(out[i].iov_base),
                  out[i].iov_len, p->tx_mask, p->tx_mask_off + at);
        at += out[i].iov_len;
      }
      out[1] = {p->scratch.data(), payload};
      nout = 2;
    }
    gssize n = hlen ? qio_channel_writev(p->master, out, nout, error)
                    : qio_channel_writev(p->master, out + 1, nout - 1, error);
    if (n < 0) return n; /* nothing went out: a new frame stays unopened */
    if (new_frame) p->tx_remaining = payload;
    gsize sent = static_cast<gsize>(n);
    if (sent < hlen) {
      p->tx.append(header + sent, hlen - sent);
      sent = 0;
    } else {
      sent -= hlen;
    }
    p->tx_remaining -= sent;
    p->tx_mask_off += sent;
    if (sent > 0) {
      if (p->tx_remaining == 0) flush_locked(wioc, nullptr); /* control frames waiting */
      return static_cast<gssize>(sent);
    }
    /* Only part of the header went out: the master is full. */
    if (!p->blocking) return QIO_CHANNEL_ERR_BLOCK;
  }
}

static gboolean websock_close(QIOChannel *ioc, GError **error) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(ioc);
  WebsockPrivate *p = ws_priv(wioc);
  if (p->hs == Handshake::kDone) {
    std::lock_guard<std::mutex> guard(p->write_lock);
    /* In the middle of a data frame a close frame cannot be sent. */
    if (p->tx_remaining == 0) queue_close(wioc, QIO_CHANNEL_WEBSOCK_CLOSE_NORMAL);
    /* Best effort: a peer that does not read must not hold up closing. */
    flush_locked(wioc, nullptr);
  }
  return qio_channel_close(p->master, error);
}

static gboolean websock_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  WebsockPrivate *p = ws_priv(QIO_CHANNEL_WEBSOCK(ioc));
  if (!qio_channel_set_blocking(p->master, enabled, error)) return FALSE;
  p->blocking = enabled;
  return TRUE;
}

static gboolean websock_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  return qio_channel_shutdown(ws_priv(QIO_CHANNEL_WEBSOCK(ioc))->master, how, error);
}

static void websock_set_delay(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_delay(ws_priv(QIO_CHANNEL_WEBSOCK(ioc))->master, enabled);
}

static void websock_set_cork(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_cork(ws_priv(QIO_CHANNEL_WEBSOCK(ioc))->master, enabled);
}

/* ---- watches ---------------------------------------------------------- */

namespace {

/* Fires when the master is ready, and also when decoded data (or the end
 * of the stream) is already buffered while the master is idle.  While
 * control frames wait for the master, it also watches for writability
 * so they go out even if the user only reads. */
struct WebsockSource {
  GSource source;
  QIOChannelWebsock *wioc;
  GIOCondition condition;
  GIOCondition master_revents;
  GSource *flusher;
};

gboolean master_ready_cb(QIOChannel *, GIOCondition revents, gpointer data) noexcept {
  auto *ws = static_cast<WebsockSource *>(data);
  ws->master_revents = static_cast<GIOCondition>(ws->master_revents | revents);
  return G_SOURCE_CONTINUE;
}

gboolean master_writable_cb(QIOChannel *, GIOCondition, gpointer data) noexcept {
  try_flush(static_cast<WebsockSource *>(data)->wioc);
  return G_SOURCE_CONTINUE;
}

bool buffered_ready(WebsockSource *ws) {
  return (ws->condition & G_IO_IN) && read_ready(ws->wioc);
}

gboolean websock_source_prepare(GSource *source, gint *timeout) noexcept {
  auto *ws = reinterpret_cast<WebsockSource *>(source);
  WebsockPrivate *p = ws_priv(ws->wioc);
  *timeout = -1;
  bool ready = buffered_ready(ws);
  /* A blocking master would stall the loop: those are flushed by readv. */
  bool pending = !p->blocking && try_flush(ws->wioc);
  if (pending && !ws->flusher) {
    ws->flusher = qio_channel_create_watch(p->master, G_IO_OUT);
    g_source_set_callback(ws->flusher, G_SOURCE_FUNC(master_writable_cb), ws, nullptr);
    g_source_add_child_source(source, ws->flusher);
  } else if (!pending && ws->flusher) {
    g_source_remove_child_source(source, ws->flusher);
    g_clear_pointer(&ws->flusher, g_source_unref);
  }
  return ready;
}

gboolean websock_source_check(GSource *source) noexcept {
  return buffered_ready(reinterpret_cast<WebsockSource *>(source));
}

gboolean websock_source_dispatch(GSource *source, GSourceFunc callback,
                                 gpointer user_data) noexcept {
  auto *ws = reinterpret_cast<WebsockSource *>(source);
  auto revents = static_cast<GIOCondition>(
      (ws->master_revents | (buffered_ready(ws) ? G_IO_IN : 0)) &
      (ws->condition | G_IO_HUP | G_IO_ERR));
  ws->master_revents = static_cast<GIOCondition>(0);
  if (!revents) return G_SOURCE_CONTINUE; /* woken only to flush */
  if (!callback) return G_SOURCE_REMOVE;
  return QIO_CHANNEL_FUNC(callback)(QIO_CHANNEL(ws->wioc), revents, user_data);
}

void websock_source_finalize(GSource *source) noexcept {
  auto *ws = reinterpret_cast<WebsockSource *>(source);
  g_clear_pointer(&ws->flusher, g_source_unref);
  g_object_unref(ws->wioc);
}

GSourceFuncs websock_source_funcs = {
    websock_source_prepare, websock_source_check, websock_source_dispatch,
    websock_source_finalize, nullptr, nullptr,
};

}  // namespace

static GSource *websock_create_watch(QIOChannel *ioc, GIOCondition condition) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(ioc);
  GSource *source = g_source_new(&websock_source_funcs, sizeof(WebsockSource));
  auto *ws = reinterpret_cast<WebsockSource *>(source);
  ws->wioc = QIO_CHANNEL_WEBSOCK(g_object_ref(wioc));
  ws->condition = condition;
  GSource *child = qio_channel_create_watch(ws_priv(wioc)->master, condition);
  g_source_set_callback(child, G_SOURCE_FUNC(master_ready_cb), ws, nullptr);
  g_source_add_child_source(source, child);
  g_source_unref(child);
  return source;
}

/* ---- object ----------------------------------------------------------- */

static void qio_channel_websock_finalize(GObject *object) {
  WebsockPrivate *p = ws_priv(QIO_CHANNEL_WEBSOCK(object));
  g_clear_object(&p->master);
  g_clear_error(&p->hs_error);
  g_clear_error(&p->error);
  p->~WebsockPrivate();
  G_OBJECT_CLASS(qio_channel_websock_parent_class)->finalize(object);
}

static void qio_channel_websock_class_init(QIOChannelWebsockClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_websock_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = websock_readv;
  ioc_class->io_writev = websock_writev;
  ioc_class->io_close = websock_close;
  ioc_class->io_create_watch = websock_create_watch;
  ioc_class->io_set_blocking = websock_set_blocking;
  ioc_class->io_shutdown = websock_shutdown;
  ioc_class->io_set_delay = websock_set_delay;
  ioc_class->io_set_cork = websock_set_cork;
}

static void qio_channel_websock_init(QIOChannelWebsock *wioc) {
  new (ws_priv(wioc)) WebsockPrivate();
}

static QIOChannelWebsock *websock_new(QIOChannel *master, Role role) {
  auto *wioc = QIO_CHANNEL_WEBSOCK(g_object_new(QIO_TYPE_CHANNEL_WEBSOCK, nullptr));
  WebsockPrivate *p = ws_priv(wioc);
  p->master = QIO_CHANNEL(g_object_ref(master));
  p->role = role;
  if (qio_channel_has_feature(master, QIO_CHANNEL_FEATURE_SHUTDOWN))
    qio_channel_set_feature(QIO_CHANNEL(wioc), QIO_CHANNEL_FEATURE_SHUTDOWN);
  g_autofree char *name = g_strdup_printf(
      "%s-%s", qio_channel_get_name(master),
      role == Role::kServer ? "websock-server" : "websock-client");
  qio_channel_set_name(QIO_CHANNEL(wioc), name);
  return wioc;
}

QIOChannelWebsock *qio_channel_websock_new_server(QIOChannel *master) {
  g_return_val_if_fail(QIO_IS_CHANNEL(master), nullptr);
  QIOChannelWebsock *wioc = websock_new(master, Role::kServer);
  ws_priv(wioc)->hs = Handshake::kReadHead;
  return wioc;
}

QIOChannelWebsock *qio_channel_websock_new_client(QIOChannel *master, const char *host,
                                                  const char *path) {
  g_return_val_if_fail(QIO_IS_CHANNEL(master), nullptr);
  /* Both go into the request verbatim: no room for header injection. */
  auto plain = [](const char *str) {
    for (; *str; str++)
      if (static_cast<guchar>(*str) <= ' ' || *str == 0x7f) return false;
    return true;
  };
  g_return_val_if_fail(host && plain(host) && *host, nullptr);
  g_return_val_if_fail(path && path[0] == '/' && plain(path), nullptr);
  QIOChannelWebsock *wioc = websock_new(master, Role::kClient);
  WebsockPrivate *p = ws_priv(wioc);
  p->host = host;
  p->path = path;
  guint8 nonce[16];
  for (gsize i = 0; i < sizeof(nonce); i += 4) new_mask(nonce + i);
  g_autofree char *key = g_base64_encode(nonce, sizeof(nonce));
  p->key = key;
  p->hs = Handshake::kSendRequest;
  return wioc;
}

QIOChannel *qio_channel_websock_get_master(QIOChannelWebsock *wioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), nullptr);
  return ws_priv(wioc)->master;
}

void qio_channel_websock_set_offer_binary(QIOChannelWebsock *wioc, gboolean offer) {
  g_return_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc));
  ws_priv(wioc)->offer_binary = offer;
}

void qio_channel_websock_set_max_payload(QIOChannelWebsock *wioc, gsize max) {
  g_return_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc));
  g_return_if_fail(max > 0);
  ws_priv(wioc)->max_payload = max;
}

void qio_channel_websock_set_handshake_timeout(QIOChannelWebsock *wioc, guint ms) {
  g_return_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc));
  ws_priv(wioc)->handshake_timeout_ms = ms;
}

gsize qio_channel_websock_get_max_payload(QIOChannelWebsock *wioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), 0);
  return ws_priv(wioc)->max_payload;
}

const char *qio_channel_websock_get_protocol(QIOChannelWebsock *wioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), nullptr);
  WebsockPrivate *p = ws_priv(wioc);
  return p->protocol.empty() ? nullptr : p->protocol.c_str();
}

const char *qio_channel_websock_get_path(QIOChannelWebsock *wioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), nullptr);
  WebsockPrivate *p = ws_priv(wioc);
  return p->role == Role::kServer && p->hs == Handshake::kDone ? p->path.c_str() : nullptr;
}

guint qio_channel_websock_get_peer_close_code(QIOChannelWebsock *wioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_WEBSOCK(wioc), 0);
  return ws_priv(wioc)->peer_close_code;
}
