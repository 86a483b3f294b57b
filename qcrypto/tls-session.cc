#include "config.h"

#include "qcrypto/tls-session.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-priv.h"
#include "qcrypto/tls-creds-x509.h"

#include <glib/gi18n-lib.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace {

/* Ciphertext from the transport that GnuTLS has not pulled yet. */
struct ReadAhead {
  static constexpr gsize kSize = 64 * 1024;
  std::vector<char> buf = std::vector<char>(kSize);
  gsize start = 0, end = 0;
  bool eof = false;

  gsize available() const { return end - start; }
  /* Whether a whole TLS record waits here: a read needs no transport. */
  bool has_record() const {
    if (available() < 5) return false;
    auto *hdr = reinterpret_cast<const unsigned char *>(buf.data() + start);
    return available() >= 5 + (static_cast<gsize>(hdr[3]) << 8 | hdr[4]);
  }
};

/* Ciphertext GnuTLS produced, sent to the transport outside GnuTLS. */
struct WriteBehind {
  /* Records are encrypted ahead up to this much, then sent in one write. */
  static constexpr gsize kFlushAt = 64 * 1024;
  std::vector<char> queued;  /* appended under the session lock */
  std::vector<char> sending; /* owned by the thread holding flush_lock */
  gsize sent = 0;            /* bytes of `sending` already written */
  GMutex flush_lock;
  /* Writers holding or waiting for flush_lock (Flush::kWait): they may
   * block in the transport, and they send whatever is queued. */
  std::atomic<int> waiting_writers{0};
  WriteBehind() {
    queued.reserve(kFlushAt + 4 * 17 * 1024);
    sending.reserve(queued.capacity());
    g_mutex_init(&flush_lock);
  }
  ~WriteBehind() { g_mutex_clear(&flush_lock); }
};

}  // namespace

struct _QCryptoTLSSession {
  GObject parent_instance;
  QCryptoTLSCreds *creds;
  QCryptoTLSCredsState *state; /* the state this session started with */
  gnutls_session_t session;
  char *hostname;
  gboolean server;
  QCryptoAuthz *authz;
  QCryptoTLSSessionPushFunc push;
  QCryptoTLSSessionPullFunc pull;
  /* Optional, never waits: records go straight from GnuTLS to the
   * transport when nothing is queued, with no copy. */
  QCryptoTLSSessionPushFunc try_push;
  gpointer opaque;
  /* The transport's last failure when reading (one reader at a time); a
   * flush's failure goes to its own caller, since several threads flush. */
  GError *pull_error;
  /* Whether the read-ahead ran dry during the current GnuTLS call: GnuTLS
   * also answers GNUTLS_E_AGAIN after consuming a post-handshake message
   * (key update), with application data still waiting. */
  gboolean pull_blocked;
  /* Ciphertext read ahead from the transport and written behind GnuTLS,
   * so that GnuTLS never waits for the transport (see lock). */
  ReadAhead *in;
  WriteBehind *out;
  /* Plaintext bytes whose records are queued but not yet written: a write
   * that would block reports them once the retry has flushed them. */
  gsize out_accepted;
  /* Plaintext gathered from small iovec entries into one full record. */
  std::vector<char> *record;
  /* A handshake result (or bye, key update) waiting for its flush. */
  gboolean handshake_result_pending;
  int handshake_result;
  gboolean bye_queued;
  gboolean key_update_queued;
  gboolean renegotiation_refused; /* for the message of what follows */
  gboolean ticket_queued;
  gboolean has_ticket_key;
  /* The peer check runs once: in the verify callback (x509) or after the
   * handshake (PSK, anon). */
  gboolean peer_checked;
  GError *peer_error;
  int peer_alert; /* gnutls_alert_description_t */
  char *peer_identity;
  /* Held while GnuTLS runs: GnuTLS 3.7 frees key epochs on a TLS 1.3 key
   * update that the other direction may still be using, so a reader and a
   * writer thread must not be inside GnuTLS at the same time.  GnuTLS
   * never waits for the transport: push and pull only touch the in and out
   * buffers, and the transport I/O happens outside the lock. */
  GMutex lock;
  gint64 handshake_start;
  gint64 handshake_us;
  gboolean handshaken;
};

G_DEFINE_FINAL_TYPE(QCryptoTLSSession, qcrypto_tls_session, G_TYPE_OBJECT)

namespace {

class SessionLock {
 public:
  explicit SessionLock(QCryptoTLSSession *sess) : lock_(&sess->lock) { g_mutex_lock(lock_); }
  ~SessionLock() { g_mutex_unlock(lock_); }
  SessionLock(const SessionLock &) = delete;
  SessionLock &operator=(const SessionLock &) = delete;

 private:
  GMutex *lock_;
};

const char *session_creds_id(QCryptoTLSSession *sess) {
  return qcrypto_tls_creds_get_id(sess->creds);
}

/* Runs under the session lock.  What the transport does not take at once
 * is queued for session_flush. */
ssize_t session_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt) noexcept {
  auto *sess = static_cast<QCryptoTLSSession *>(ptr);
  WriteBehind *out = sess->out;
  gsize total = 0, taken = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  /* Straight to the transport only behind nothing: a flushing thread owns
   * what was queued before, and the byte order must hold. */
  if (sess->try_push && out->queued.empty() && g_mutex_trylock(&out->flush_lock)) {
    if (out->sent == out->sending.size()) {
      /* A failure queues the records; the flush meets it and reports it. */
      gssize n = sess->try_push(reinterpret_cast<const struct iovec *>(iov),
                                static_cast<gsize>(iovcnt), sess->opaque, nullptr);
      if (n > 0) taken = static_cast<gsize>(n);
    }
    g_mutex_unlock(&out->flush_lock);
  }
  for (int i = 0; i < iovcnt; i++) {
    auto *base = static_cast<const char *>(iov[i].iov_base);
    gsize len = iov[i].iov_len;
    if (taken >= len) {
      taken -= len;
      continue;
    }
    out->queued.insert(out->queued.end(), base + taken, base + len);
    taken = 0;
  }
  return static_cast<ssize_t>(total);
}

enum class Flush {
  kWait,   /* a writer: waits for the flush lock and for the transport */
  /* Unless a writer is flushing (which may be blocked on the transport,
   * and sends what is queued); may wait for the transport. */
  kIfIdle,
  /* A reader: only what the transport takes at once (try_push), the rest
   * stays queued for the next write.  A reader that waits to write can
   * deadlock two peers whose readers both wait with full buffers.  Nothing
   * a reader queues is urgent: GnuTLS sends the key update a peer asks
   * for with our next record, as TLS 1.3 allows. */
  kNoWait,
};

/* Writes the queued ciphertext to the transport, without the session
 * lock: 1 when all is written (or, but for kWait, left to another time),
 * QCRYPTO_TLS_SESSION_ERR_BLOCK, or -1 with @error set. */
gssize session_flush(QCryptoTLSSession *sess, Flush mode, GError **error = nullptr) {
  WriteBehind *out = sess->out;
  QCryptoTLSSessionPushFunc push = mode == Flush::kNoWait ? sess->try_push : sess->push;
  if (mode == Flush::kWait) {
    out->waiting_writers++;
    g_mutex_lock(&out->flush_lock);
  } else if (!push) {
    return 1;
  } else if (!g_mutex_trylock(&out->flush_lock)) {
    if (mode == Flush::kNoWait) return 1;
    /* A holder that only tries the transport lets go at once; a writer that
     * comes meanwhile may block in it, so it is checked for at each try. */
    do {
      if (out->waiting_writers > 0) return 1;
      g_thread_yield();
    } while (!g_mutex_trylock(&out->flush_lock));
  }
  gssize result = 1;
  for (;;) {
    if (out->sent == out->sending.size()) {
      out->sending.clear();
      out->sent = 0;
      g_mutex_lock(&sess->lock);
      std::swap(out->queued, out->sending);
      g_mutex_unlock(&sess->lock);
      if (out->sending.empty()) break;
    }
    if (!push) {
      result = -1;
      break;
    }
    struct iovec iov = {out->sending.data() + out->sent, out->sending.size() - out->sent};
    gssize n = push(&iov, 1, sess->opaque, error);
    if (n < 0) {
      result = n == QCRYPTO_TLS_SESSION_ERR_BLOCK ? n : -1;
      break;
    }
    out->sent += static_cast<gsize>(n);
  }
  if (mode == Flush::kWait) out->waiting_writers--;
  g_mutex_unlock(&out->flush_lock);
  return result;
}

ssize_t session_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len) noexcept {
  auto *sess = static_cast<QCryptoTLSSession *>(ptr);
  ReadAhead *in = sess->in;
  if (in->available() == 0) {
    if (in->eof) return 0;
    sess->pull_blocked = TRUE;
    errno = EAGAIN;
    return -1;
  }
  gsize n = std::min(len, in->available());
  memcpy(buf, in->buf.data() + in->start, n);
  in->start += n;
  if (in->start == in->end) in->start = in->end = 0;
  return static_cast<ssize_t>(n);
}

/* Reads ciphertext from the transport into the read-ahead, without the
 * lock; returns what the transport returned. */
gssize session_fill(QCryptoTLSSession *sess) {
  ReadAhead *in = sess->in;
  if (!sess->pull) return -1;
  if (in->start > 0) {
    memmove(in->buf.data(), in->buf.data() + in->start, in->available());
    in->end -= in->start;
    in->start = 0;
  }
  g_clear_error(&sess->pull_error);
  gssize n = sess->pull(in->buf.data() + in->end, in->buf.size() - in->end, sess->opaque,
                        &sess->pull_error);
  if (n == 0) in->eof = true;
  if (n > 0) in->end += static_cast<gsize>(n);
  return n;
}

/* What a received alert means, and what to do about it. */
const char *alert_hint(gnutls_alert_description_t alert) {
  switch (alert) {
    case GNUTLS_A_UNKNOWN_CA:
      return _("the peer does not trust the CA that signed our certificate; give both "
               "sides the same ca-cert.pem");
    case GNUTLS_A_BAD_CERTIFICATE:
      return _("the peer rejected our certificate; check its host name, SANs and purposes");
    case GNUTLS_A_CERTIFICATE_EXPIRED:
      return _("the peer found our certificate expired or not yet valid; renew it or "
               "check the clocks");
    case GNUTLS_A_CERTIFICATE_REVOKED:
      return _("the peer found our certificate revoked by its CRL; issue a new one");
    case GNUTLS_A_CERTIFICATE_REQUIRED:
      return _("the peer requires a client certificate issued by a CA it trusts; add "
               "client-cert.pem and client-key.pem from that CA");
    case GNUTLS_A_ACCESS_DENIED:
      return _("the peer's authorization policy refused our identity");
    case GNUTLS_A_PROTOCOL_VERSION:
      return _("no TLS version in common (TLS 1.2 is the minimum)");
    case GNUTLS_A_HANDSHAKE_FAILURE:
    case GNUTLS_A_INSUFFICIENT_SECURITY:
      return _("no cipher suite or credential type in common; compare the priority "
               "strings and credential types of both sides");
    case GNUTLS_A_UNKNOWN_PSK_IDENTITY:
      return _("the peer knows no key for our PSK user name; check username and keys.psk");
    case GNUTLS_A_DECRYPT_ERROR:
    case GNUTLS_A_BAD_RECORD_MAC:
      return _("the keys do not match; check that both sides hold the same pre-shared key");
    default:
      return _("see the peer's log for the reason");
  }
}

/* Turns a GnuTLS failure into an error naming the cause; *@transport (taken
 * if set) holds the transport's own failure behind a push or pull error. */
void set_gnutls_error(QCryptoTLSSession *sess, int ret, GError **transport, const char *what,
                      GError **error) {
  const char *id = session_creds_id(sess);
  if ((ret == GNUTLS_E_PUSH_ERROR || ret == GNUTLS_E_PULL_ERROR) && transport && *transport) {
    g_propagate_error(error, *transport);
    *transport = nullptr;
    g_prefix_error(error, _("TLS session (credentials '%s'): %s: "), id, what);
    return;
  }
  if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED) {
    auto alert = gnutls_alert_get(sess->session);
    g_set_error(error, QCRYPTO_ERROR,
                alert == GNUTLS_A_ACCESS_DENIED ? QCRYPTO_ERROR_ACCESS_DENIED
                                                : QCRYPTO_ERROR_HANDSHAKE,
                _("TLS session (credentials '%s'): %s: the peer sent alert '%s': %s"), id,
                what, gnutls_alert_get_name(alert), alert_hint(alert));
    return;
  }
  if (ret == GNUTLS_E_PREMATURE_TERMINATION || ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_PREMATURE_CLOSE,
                _("TLS session (credentials '%s'): %s: the peer closed the connection "
                  "without a TLS bye; the data may be truncated"),
                id, what);
    return;
  }
  if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND || ret == GNUTLS_E_CERTIFICATE_REQUIRED) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                _("TLS session (credentials '%s'): %s: the peer sent no certificate issued "
                  "by a CA of our ca-cert.pem; give it one, or set verify-peer=off"),
                id, what);
    return;
  }
  if (ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                _("TLS session (credentials '%s'): %s: the peer offers only TLS versions "
                  "older than 1.2, which are refused; upgrade the peer"),
                id, what);
    return;
  }
  g_set_error(error, QCRYPTO_ERROR,
              sess->handshaken ? QCRYPTO_ERROR_FAILED : QCRYPTO_ERROR_HANDSHAKE,
              _("TLS session (credentials '%s'): %s: %s"), id, what, gnutls_strerror(ret));
}

/* Verification of the peer and authorization of its identity: one path
 * for every credential type, run once per session. */
gboolean session_check_peer(QCryptoTLSSession *sess) {
  if (sess->peer_checked) return sess->peer_error == nullptr;
  sess->peer_checked = TRUE;
  sess->peer_alert = GNUTLS_A_BAD_CERTIFICATE;
  QCryptoTLSCredsClass *klass = QCRYPTO_TLS_CREDS_GET_CLASS(sess->creds);
  if (!klass->check_peer(sess->creds, sess->state, sess->session, sess->hostname,
                         &sess->peer_identity, &sess->peer_alert, &sess->peer_error))
    return FALSE;
  if (!sess->authz) return TRUE;
  sess->peer_alert = GNUTLS_A_ACCESS_DENIED;
  if (!sess->peer_identity) {
    g_set_error(&sess->peer_error, QCRYPTO_ERROR, QCRYPTO_ERROR_ACCESS_DENIED,
                _("TLS session (credentials '%s'): the peer has no identity to authorize; "
                  "use x509 or PSK credentials with an authz object"),
                session_creds_id(sess));
    return FALSE;
  }
  if (qcrypto_authz_is_allowed(sess->authz, sess->peer_identity, &sess->peer_error))
    return TRUE;
  g_prefix_error(&sess->peer_error, _("TLS session (credentials '%s'): "),
                 session_creds_id(sess));
  return FALSE;
}

}  // namespace

int qcrypto_tls_session_verify_callback(gnutls_session_t session) noexcept {
  auto *sess = static_cast<QCryptoTLSSession *>(gnutls_session_get_ptr(session));
  return sess && session_check_peer(sess) ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

QCryptoTLSCredsState *qcrypto_tls_session_state_of(gnutls_session_t session) noexcept {
  auto *sess = static_cast<QCryptoTLSSession *>(gnutls_session_get_ptr(session));
  return sess ? sess->state : nullptr;
}

static void qcrypto_tls_session_finalize(GObject *object) {
  auto *sess = QCRYPTO_TLS_SESSION(object);
  if (sess->session) gnutls_deinit(sess->session);
  qcrypto_tls_creds_state_unref(sess->state);
  g_clear_object(&sess->creds);
  g_clear_object(&sess->authz);
  g_free(sess->hostname);
  g_free(sess->peer_identity);
  g_clear_error(&sess->pull_error);
  g_clear_error(&sess->peer_error);
  g_mutex_clear(&sess->lock);
  delete sess->in;
  delete sess->out;
  delete sess->record;
  G_OBJECT_CLASS(qcrypto_tls_session_parent_class)->finalize(object);
}

static void qcrypto_tls_session_class_init(QCryptoTLSSessionClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qcrypto_tls_session_finalize;
}

static void qcrypto_tls_session_init(QCryptoTLSSession *sess) {
  g_mutex_init(&sess->lock);
  sess->in = new ReadAhead;
  sess->out = new WriteBehind;
  sess->record = new std::vector<char>;
}

QCryptoTLSSession *qcrypto_tls_session_new(QCryptoTLSCreds *creds, const char *hostname,
                                           QCryptoAuthz *authz, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_CREDS(creds), nullptr);
  const char *id = qcrypto_tls_creds_get_id(creds);
  QCryptoTLSCredsState *state = qcrypto_tls_creds_get_state(creds);
  if (!state) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials '%s' are not complete (not loaded); initialize them "
                  "before starting a session"),
                id ? id : G_OBJECT_TYPE_NAME(creds));
    return nullptr;
  }
  g_autoptr(QCryptoTLSSession) sess =
      QCRYPTO_TLS_SESSION(g_object_new(QCRYPTO_TYPE_TLS_SESSION, nullptr));
  sess->creds = QCRYPTO_TLS_CREDS(g_object_ref(creds));
  sess->state = state;
  sess->server = qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER;
  /* An IPv6 zone ("fe80::1%eth0") names the local interface, not the
   * peer: certificates carry the bare address. */
  const char *zone = hostname && strchr(hostname, ':') ? strchr(hostname, '%') : nullptr;
  sess->hostname = zone ? g_strndup(hostname, static_cast<gsize>(zone - hostname))
                        : g_strdup(hostname);
  hostname = sess->hostname;
  sess->authz = authz ? QCRYPTO_AUTHZ(g_object_ref(authz)) : nullptr;

  unsigned flags = (sess->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK;
  /* A server with a ticket key sends tickets only when asked
   * (qcrypto_tls_session_send_ticket): one the client never reads would
   * make its close reset the connection, losing what it had still queued. */
  if (sess->server) flags |= GNUTLS_NO_AUTO_SEND_TICKET;
#if GNUTLS_VERSION_NUMBER >= 0x030705
  /* TLS 1.2 resumption reuses the first session's master secret, without
   * a fresh key exchange; TLS 1.3 tickets only (older GnuTLS servers may
   * issue TLS 1.2 ones, which our clients never use). */
  flags |= GNUTLS_NO_TICKETS_TLS12;
#endif
  int ret = gnutls_init(&sess->session, flags);
  if (ret < 0) {
    sess->session = nullptr;
  } else {
    ret = gnutls_priority_set(sess->session, state->priority);
    if (ret >= 0) ret = QCRYPTO_TLS_CREDS_GET_CLASS(creds)->apply_to_session(creds, state,
                                                                             sess->session);
    if (ret >= 0 && !sess->server && hostname && !g_hostname_is_ip_address(hostname))
      ret = gnutls_server_name_set(sess->session, GNUTLS_NAME_DNS, hostname, strlen(hostname));
  }
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("TLS credentials '%s' cannot start a session: %s; use x509, PSK or anon "
                  "credentials"),
                id, gnutls_strerror(ret));
    return nullptr;
  }
  gnutls_session_set_ptr(sess->session, sess);
  gnutls_transport_set_ptr(sess->session, sess);
  gnutls_transport_set_vec_push_function(sess->session, session_push);
  gnutls_transport_set_pull_function(sess->session, session_pull);
  return static_cast<QCryptoTLSSession *>(g_steal_pointer(&sess));
}

void qcrypto_tls_session_set_callbacks(QCryptoTLSSession *sess, QCryptoTLSSessionPushFunc push,
                                       QCryptoTLSSessionPullFunc pull, gpointer opaque) {
  g_return_if_fail(QCRYPTO_IS_TLS_SESSION(sess));
  sess->push = push;
  sess->pull = pull;
  sess->opaque = opaque;
}

void qcrypto_tls_session_set_try_push(QCryptoTLSSession *sess, QCryptoTLSSessionPushFunc try_push) {
  g_return_if_fail(QCRYPTO_IS_TLS_SESSION(sess));
  sess->try_push = try_push;
}

QCryptoTLSHandshakeStatus qcrypto_tls_session_handshake(QCryptoTLSSession *sess,
                                                        GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), QCRYPTO_TLS_HANDSHAKE_FAILED);
  if (sess->handshaken) return QCRYPTO_TLS_HANDSHAKE_COMPLETE;
  if (!sess->handshake_start) sess->handshake_start = g_get_monotonic_time();
  int ret;
  g_autoptr(GError) push_error = nullptr;
  for (;;) {
    if (sess->handshake_result_pending) {
      ret = sess->handshake_result;
    } else {
      SessionLock locked(sess);
      sess->pull_blocked = FALSE;
      ret = gnutls_handshake(sess->session);
    }
    /* Our flight goes out before we wait for the peer's. */
    g_clear_error(&push_error);
    gssize flushed = session_flush(sess, Flush::kWait, &push_error);
    if (flushed == QCRYPTO_TLS_SESSION_ERR_BLOCK) {
      sess->handshake_result_pending = ret != GNUTLS_E_AGAIN && ret != GNUTLS_E_INTERRUPTED;
      sess->handshake_result = ret;
      return QCRYPTO_TLS_HANDSHAKE_NEEDS_WRITE;
    }
    sess->handshake_result_pending = FALSE;
    if (flushed < 0 && ret >= 0) ret = GNUTLS_E_PUSH_ERROR;
    if (ret == GNUTLS_E_INTERRUPTED) continue;
    if (ret != GNUTLS_E_AGAIN) break;
    if (!sess->pull_blocked) continue;
    gssize n = session_fill(sess);
    if (n == QCRYPTO_TLS_SESSION_ERR_BLOCK) return QCRYPTO_TLS_HANDSHAKE_NEEDS_READ;
    if (n < 0) {
      ret = GNUTLS_E_PULL_ERROR;
      break;
    }
  }
  {
    SessionLock locked(sess);
    if (ret == 0 && !session_check_peer(sess)) ret = GNUTLS_E_CERTIFICATE_ERROR;
    if (ret >= 0) {
      sess->handshake_us = g_get_monotonic_time() - sess->handshake_start;
      sess->handshaken = TRUE;
      return QCRYPTO_TLS_HANDSHAKE_COMPLETE;
    }
    if (sess->peer_error) {
      /* Tell the peer why, so both ends name the cause. */
      gnutls_alert_send(sess->session, GNUTLS_AL_FATAL,
                        static_cast<gnutls_alert_description_t>(sess->peer_alert));
      g_propagate_error(error, g_error_copy(sess->peer_error));
    } else {
      if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED && ret != GNUTLS_E_PUSH_ERROR &&
          ret != GNUTLS_E_PULL_ERROR && ret != GNUTLS_E_PREMATURE_TERMINATION)
        gnutls_alert_send_appropriate(sess->session, ret);
      set_gnutls_error(sess, ret, ret == GNUTLS_E_PUSH_ERROR ? &push_error : &sess->pull_error,
                       _("handshake failed"), error);
    }
  }
  /* The alert, if no other thread is flushing. */
  session_flush(sess, Flush::kIfIdle);
  return QCRYPTO_TLS_HANDSHAKE_FAILED;
}

gboolean qcrypto_tls_session_is_handshaken(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), FALSE);
  return sess->handshaken;
}

/* @from_transport: may read from the transport; without it, only what the
 * session holds is read, and BLOCK once that is used up. */
static gssize session_read(QCryptoTLSSession *sess, void *buf, gsize len, bool from_transport,
                           GError **error) {
  for (;;) {
    ssize_t ret;
    bool sent_something;
    /* GnuTLS pulls exactly the record it works on, so with nothing read
     * ahead and nothing decrypted it could only answer GNUTLS_E_AGAIN:
     * read from the transport first (one GnuTLS call less per record). */
    bool starved = sess->in->available() == 0 && !sess->in->eof;
    if (starved) {
      SessionLock locked(sess);
      starved = gnutls_record_check_pending(sess->session) == 0;
    }
    if (starved) {
      if (!from_transport) return QCRYPTO_TLS_SESSION_ERR_BLOCK;
      gssize n = session_fill(sess);
      if (n == QCRYPTO_TLS_SESSION_ERR_BLOCK) return QCRYPTO_TLS_SESSION_ERR_BLOCK;
      if (n < 0) {
        set_gnutls_error(sess, GNUTLS_E_PULL_ERROR, &sess->pull_error, _("read failed"), error);
        return -1;
      }
    }
    {
      SessionLock locked(sess);
      sess->pull_blocked = FALSE;
      ret = gnutls_record_recv(sess->session, buf, len);
      sent_something = !sess->out->queued.empty();
    }
    /* What is queued (a writer's records, an alert GnuTLS sent while
     * reading) goes out as far as the transport takes it now. */
    if (sent_something) session_flush(sess, Flush::kNoWait);
    if (ret >= 0) return ret;
    if (ret == GNUTLS_E_AGAIN && sess->pull_blocked) {
      if (!from_transport) return QCRYPTO_TLS_SESSION_ERR_BLOCK;
      gssize n = session_fill(sess);
      if (n == QCRYPTO_TLS_SESSION_ERR_BLOCK) return QCRYPTO_TLS_SESSION_ERR_BLOCK;
      if (n >= 0) continue;
      ret = GNUTLS_E_PULL_ERROR;
    }
    /* TLS 1.2 renegotiation, asked for by either side, is refused with the
     * alert RFC 5746 gives for it; the session goes on as it was. */
    if (ret == GNUTLS_E_REHANDSHAKE) {
      {
        SessionLock locked(sess);
        gnutls_alert_send(sess->session, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
      }
      sess->renegotiation_refused = TRUE;
      session_flush(sess, Flush::kNoWait);
      continue;
    }
    /* Interrupted calls and post-handshake messages (key updates, session
     * tickets) are handled inside GnuTLS: just go on reading. */
    if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED ||
        ret == GNUTLS_E_GOT_APPLICATION_DATA)
      continue;
    set_gnutls_error(sess, static_cast<int>(ret), &sess->pull_error, _("read failed"), error);
    /* A peer that goes on with its handshake after the refusal. */
    if (sess->renegotiation_refused && ret == GNUTLS_E_UNEXPECTED_PACKET)
      g_prefix_error(error, _("the peer asked to renegotiate the TLS session, which qio "
                              "refuses (no_renegotiation alert sent), and did not go on "
                              "without: "));
    return -1;
  }
}

gssize qcrypto_tls_session_read(QCryptoTLSSession *sess, void *buf, gsize len,
                                GError **error) {
  return session_read(sess, buf, len, true, error);
}

gssize qcrypto_tls_session_read_buffered(QCryptoTLSSession *sess, void *buf, gsize len,
                                         GError **error) {
  return session_read(sess, buf, len, false, error);
}

/* How many bytes from entry @i, offset @off, lie back to back in memory
 * (counted up to @enough). */
static gsize contiguous_span(const struct iovec *iov, gsize niov, gsize i, gsize off,
                             gsize enough) {
  const char *end = static_cast<const char *>(iov[i].iov_base) + iov[i].iov_len;
  gsize span = iov[i].iov_len - off;
  for (gsize j = i + 1; j < niov && span < enough && iov[j].iov_base == end; j++) {
    span += iov[j].iov_len;
    end += iov[j].iov_len;
  }
  return span;
}

gssize qcrypto_tls_session_writev(QCryptoTLSSession *sess, const struct iovec *iov,
                                  gsize niov, GError **error) {
  if (sess->out_accepted == 0) {
    std::vector<char> &record = *sess->record;
    {
      SessionLock locked(sess);
      record.resize(gnutls_record_get_max_size(sess->session));
    }
    const gsize record_size = record.size();
    gsize total = 0, i = 0, off = 0;
    /* The lock is taken per record: with records going straight to the
     * transport the queue may stay empty for the whole call, and a reading
     * thread must not wait that long. */
    bool queue_full = false;
    while (i < niov && !queue_full) {
      if (off == iov[i].iov_len) {
        i++;
        off = 0;
        continue;
      }
      const char *data = static_cast<const char *>(iov[i].iov_base) + off;
      gsize len;
      if (contiguous_span(iov, niov, i, off, record_size) >= record_size) {
        /* Large entries, or runs of entries adjacent in memory (guest pages
         * in order), go straight from the caller's memory. */
        len = record_size;
      } else {
        /* Runs of small entries fill one record together. */
        len = 0;
        for (gsize j = i, o = off; j < niov && len < record_size; j++, o = 0) {
          gsize take = std::min(iov[j].iov_len - o, record_size - len);
          memcpy(record.data() + len, static_cast<const char *>(iov[j].iov_base) + o, take);
          len += take;
        }
        data = record.data();
      }
      ssize_t ret;
      {
        SessionLock locked(sess);
        ret = gnutls_record_send(sess->session, data, len);
        queue_full = sess->out->queued.size() >= WriteBehind::kFlushAt;
      }
      if (ret == GNUTLS_E_INTERRUPTED) continue;
      if (ret < 0) {
        if (total > 0) break; /* the error comes again on the next call */
        set_gnutls_error(sess, static_cast<int>(ret), nullptr, _("write failed"), error);
        return -1;
      }
      total += static_cast<gsize>(ret);
      for (gsize done = static_cast<gsize>(ret); done > 0 && i < niov;) {
        gsize step = std::min(done, iov[i].iov_len - off);
        off += step;
        done -= step;
        if (off == iov[i].iov_len) {
          i++;
          off = 0;
        }
      }
    }
    sess->out_accepted = total;
  }
  g_autoptr(GError) push_error = nullptr;
  gssize flushed = session_flush(sess, Flush::kWait, &push_error);
  if (flushed == QCRYPTO_TLS_SESSION_ERR_BLOCK) return flushed;
  if (flushed < 0) {
    sess->out_accepted = 0;
    set_gnutls_error(sess, GNUTLS_E_PUSH_ERROR, &push_error, _("write failed"), error);
    return -1;
  }
  gsize done = sess->out_accepted;
  sess->out_accepted = 0;
  return static_cast<gssize>(done);
}

gssize qcrypto_tls_session_write(QCryptoTLSSession *sess, const void *buf, gsize len,
                                 GError **error) {
  struct iovec iov = {const_cast<void *>(buf), len};
  return qcrypto_tls_session_writev(sess, &iov, 1, error);
}

gsize qcrypto_tls_session_check_pending(QCryptoTLSSession *sess) {
  gsize pending = gnutls_record_check_pending(sess->session);
  /* A whole record read ahead counts too: the transport may stay idle. */
  return pending ? pending : sess->in->has_record() ? 1 : 0;
}

gsize qcrypto_tls_session_get_buffered_max(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), 0);
  /* A record's header and the largest ciphertext GnuTLS takes: TLS 1.2's
   * 2^14 + 2048, plus what %COMPAT allows peers that overfill records. */
  constexpr gsize kMaxRecord = 5 + 16384 + 2048 + 512;
  SessionLock locked(sess);
  return gnutls_record_check_pending(sess->session) + sess->in->available() + kMaxRecord;
}

/* Queues a control message once (bye, key update) and flushes it:
 * 1 sent, 0 would block (call again: only the flush is retried), -1 error. */
template <typename Op>
int session_control(QCryptoTLSSession *sess, gboolean *queued, Op op, const char *what,
                    Flush mode, GError **error) {
  if (!*queued) {
    SessionLock locked(sess);
    int ret = op();
    if (ret < 0) {
      set_gnutls_error(sess, ret, nullptr, what, error);
      return -1;
    }
    *queued = TRUE;
  }
  g_autoptr(GError) push_error = nullptr;
  gssize flushed = session_flush(sess, mode, &push_error);
  if (flushed == QCRYPTO_TLS_SESSION_ERR_BLOCK) return 0;
  if (flushed < 0) {
    set_gnutls_error(sess, GNUTLS_E_PUSH_ERROR, &push_error, what, error);
    return -1;
  }
  return 1;
}

int qcrypto_tls_session_bye(QCryptoTLSSession *sess, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), -1);
  /* Only the write side: the peer may keep its half open.  A writer blocked
   * in the transport holds the flush: the bye then stays queued, or a
   * shutdown meant to wake that writer would wait for it forever. */
  return session_control(
      sess, &sess->bye_queued, [sess] { return gnutls_bye(sess->session, GNUTLS_SHUT_WR); },
      _("bye failed"), Flush::kIfIdle, error);
}

int qcrypto_tls_session_update_keys(QCryptoTLSSession *sess, gboolean request_peer,
                                    GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), -1);
  int ret = session_control(
      sess, &sess->key_update_queued,
      [sess, request_peer] {
        return gnutls_session_key_update(sess->session, request_peer ? GNUTLS_KU_PEER : 0);
      },
      _("key update failed"), Flush::kWait, error);
  if (ret != 0) sess->key_update_queued = FALSE;
  return ret;
}

/* Resumption skips the certificate exchange, so it is worth something
 * only with x509; PSK sessions would also need their user name carried
 * for authz, anon ones have nothing to skip. */
static bool session_resumable(QCryptoTLSSession *sess) {
  return QCRYPTO_IS_TLS_CREDS_X509(sess->creds);
}

/* GBytes owning @datum (GnuTLS memory holding a secret): wiped when freed. */
static GBytes *secret_bytes(gnutls_datum_t datum) {
  auto *owned = new gnutls_datum_t(datum);
  return g_bytes_new_with_free_func(
      owned->data, owned->size,
      +[](gpointer p) noexcept {
        auto *d = static_cast<gnutls_datum_t *>(p);
        gnutls_memset(d->data, 0, d->size);
        gnutls_free(d->data);
        delete d;
      },
      owned);
}

GBytes *qcrypto_tls_session_ticket_key_new(GError **error) {
  gnutls_datum_t key = {nullptr, 0};
  int ret = gnutls_session_ticket_key_generate(&key);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("Cannot generate a TLS session ticket key: %s; check the system's random "
                  "number generator"),
                gnutls_strerror(ret));
    return nullptr;
  }
  return secret_bytes(key);
}

gboolean qcrypto_tls_session_set_ticket_key(QCryptoTLSSession *sess, GBytes *key,
                                            GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess) && key, FALSE);
  g_return_val_if_fail(sess->server && !sess->handshake_start, FALSE);
  if (!session_resumable(sess)) return TRUE;
  gnutls_datum_t datum = qcrypto_tls_datum(key);
  /* GnuTLS keeps a copy. */
  int ret = gnutls_session_ticket_enable_server(sess->session, &datum);
  sess->has_ticket_key = ret >= 0;
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS session (credentials '%s'): cannot use the session ticket key: %s; "
                  "make it with qcrypto_tls_session_ticket_key_new()"),
                session_creds_id(sess), gnutls_strerror(ret));
    return FALSE;
  }
  return TRUE;
}

int qcrypto_tls_session_send_ticket(QCryptoTLSSession *sess, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), -1);
  g_return_val_if_fail(sess->server && sess->handshaken, -1);
  /* TLS 1.2 sessions do not resume (see gnutls_init above). */
  if (!sess->has_ticket_key || gnutls_protocol_get_version(sess->session) != GNUTLS_TLS1_3)
    return 1;
  return session_control(
      sess, &sess->ticket_queued, [sess] { return gnutls_session_ticket_send(sess->session, 1, 0); },
      _("sending a session ticket failed"), Flush::kWait, error);
}

GBytes *qcrypto_tls_session_get_resumption_data(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), nullptr);
  if (sess->server || !sess->handshaken || !session_resumable(sess)) return nullptr;
  SessionLock locked(sess);
  if (gnutls_protocol_get_version(sess->session) != GNUTLS_TLS1_3) return nullptr;
  /* Without a ticket gnutls_session_get_data2 would read from the
   * transport for a round trip (behind our read-ahead) and then return
   * data that cannot resume anything. */
  if (!(gnutls_session_get_flags(sess->session) & GNUTLS_SFLAGS_SESSION_TICKET)) return nullptr;
  gnutls_datum_t data = {nullptr, 0};
  if (gnutls_session_get_data2(sess->session, &data) < 0) return nullptr;
  return secret_bytes(data);
}

gboolean qcrypto_tls_session_set_resumption_data(QCryptoTLSSession *sess, GBytes *data,
                                                 GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess) && data, FALSE);
  g_return_val_if_fail(!sess->server && !sess->handshake_start, FALSE);
  if (!session_resumable(sess)) return TRUE;
  gsize len = 0;
  const void *bytes = g_bytes_get_data(data, &len);
  int ret = gnutls_session_set_data(sess->session, bytes, len);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS session (credentials '%s'): cannot use the resumption data: %s; "
                  "start the session without them"),
                session_creds_id(sess), gnutls_strerror(ret));
    return FALSE;
  }
  return TRUE;
}

gboolean qcrypto_tls_session_is_resumed(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), FALSE);
  SessionLock locked(sess);
  return gnutls_session_is_resumed(sess->session) != 0;
}

void qcrypto_tls_session_report_free(QCryptoTLSSessionReport *report) {
  if (!report) return;
  g_free(report->protocol);
  g_free(report->cipher);
  g_free(report->kx);
  g_free(report->peer_identity);
  g_free(report);
}

QCryptoTLSSessionReport *qcrypto_tls_session_get_report(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), nullptr);
  if (!sess->handshaken) return nullptr;
  /* A reading thread may be taking a key update, which replaces the epoch
   * gnutls_cipher_get() looks at. */
  SessionLock locked(sess);
  auto *report = g_new0(QCryptoTLSSessionReport, 1);
  report->protocol =
      g_strdup(gnutls_protocol_get_name(gnutls_protocol_get_version(sess->session)));
  report->cipher = g_strdup(gnutls_cipher_get_name(gnutls_cipher_get(sess->session)));
  report->kx = g_strdup(gnutls_kx_get_name(gnutls_kx_get(sess->session)));
  report->peer_identity = g_strdup(sess->peer_identity);
  report->handshake_us = sess->handshake_us;
  report->cipher_key_bits =
      static_cast<guint>(gnutls_cipher_get_key_size(gnutls_cipher_get(sess->session)) * 8);
  report->resumed = gnutls_session_is_resumed(sess->session) != 0;
  return report;
}

const char *qcrypto_tls_session_get_peer_identity(QCryptoTLSSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_TLS_SESSION(sess), nullptr);
  return sess->peer_identity;
}
