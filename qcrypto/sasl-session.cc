#include "config.h"

#include "qcrypto/sasl-session.h"
#include "qcrypto/error.h"

#include <glib/gi18n-lib.h>
#include <sasl/sasl.h>

#include <climits>
#include <cstring>

namespace {

enum class State { kNew, kStarted, kDone, kFailed };

/* The receive buffer each side announces: the peer's packets carry at
 * most this much (its SASL_MAXOUTBUF is this less the layer's overhead). */
constexpr unsigned kMaxBufSize = 64 * 1024;
/* Without an external layer: DIGEST-MD5 and GSSAPI qualify, PLAIN and
 * SCRAM (no layer at all) do not. */
constexpr sasl_ssf_t kMinSSF = 56;
/* SASL security-layer packets have a 24-bit length. */
constexpr unsigned kMaxPacket = 0xFFFFFF;
/* Below this, encoding a screen update would take a packet and a system
 * call for every few bytes: a peer could hold the main loop for seconds. */
constexpr unsigned kMinPacket = 1024;

}  // namespace

struct _QCryptoSASLSession {
  GObject parent_instance;
  sasl_conn_t *conn;
  gboolean server;
  /* Names the service and the peer in every message. */
  char *label;
  /* Server: the authenticated user (after DONE); client: who logs in. */
  char *username;
  sasl_secret_t *secret; /* client password; SASL keeps the pointer */
  sasl_callback_t callbacks[3];
  guint external_ssf;
  gboolean props_applied;
  State state;
  char *mech; /* for messages */
  guint ssf;
  gsize maxoutbuf;
  /* Encode and decode may run in two threads; SASL's connection is not
   * thread safe. */
  GMutex layer_lock;
};

G_DEFINE_FINAL_TYPE(QCryptoSASLSession, qcrypto_sasl_session, G_TYPE_OBJECT)

namespace {

/* Cyrus SASL's mutexes are no-ops unless the application gives real ones;
 * sessions are created in several threads. */
void *mutex_alloc() noexcept {
  auto *mutex = g_new(GMutex, 1);
  g_mutex_init(mutex);
  return mutex;
}

int mutex_lock(void *mutex) noexcept {
  g_mutex_lock(static_cast<GMutex *>(mutex));
  return SASL_OK;
}

int mutex_unlock(void *mutex) noexcept {
  g_mutex_unlock(static_cast<GMutex *>(mutex));
  return SASL_OK;
}

void mutex_free(void *mutex) noexcept {
  g_mutex_clear(static_cast<GMutex *>(mutex));
  g_free(mutex);
}

/* SASL logs to syslog by default; its failures reach the caller as
 * GErrors, so its log is only for debugging (G_MESSAGES_DEBUG=all),
 * without its traces of each step. */
int sasl_log(void *, int level, const char *message) noexcept {
  if (level <= SASL_LOG_NOTE) g_debug("Cyrus SASL: %s", message);
  return SASL_OK;
}

template <typename F>
sasl_callback_t callback(unsigned long id, F *func, void *context) {
  /* SASL stores every callback as int (*)(void); void (*)(void) is the
   * generic function pointer the compiler lets us cast through. */
  return {id, reinterpret_cast<int (*)(void)>(reinterpret_cast<void (*)(void)>(func)), context};
}

/* Once per process: sasl_server_init reads qio.conf.  Returns its result. */
int global_init() {
  static gsize once;
  static int result;
  static sasl_callback_t callbacks[2];
  if (g_once_init_enter(&once)) {
    callbacks[0] = callback(SASL_CB_LOG, sasl_log, nullptr);
    callbacks[1] = {SASL_CB_LIST_END, nullptr, nullptr};
    sasl_set_mutex(mutex_alloc, mutex_lock, mutex_unlock, mutex_free);
    result = sasl_server_init(callbacks, "qio");
    if (result == SASL_OK) result = sasl_client_init(callbacks);
    g_once_init_leave(&once, 1);
  }
  return result;
}

gboolean check_init(GError **error) {
  int ret = global_init();
  if (ret == SASL_OK) return TRUE;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
              _("Cyrus SASL cannot start: %s; check qio.conf (in SASL_CONF_PATH, or "
                "/etc/sasl2) and that the mechanism modules are installed "
                "(libsasl2-modules)"),
              sasl_errstring(ret, nullptr, nullptr));
  return FALSE;
}

int client_get_username(void *context, int, const char **result, unsigned *len) noexcept {
  auto *sess = static_cast<QCryptoSASLSession *>(context);
  *result = sess->username;
  if (len) *len = static_cast<unsigned>(strlen(sess->username));
  return SASL_OK;
}

int client_get_password(sasl_conn_t *, void *context, int, sasl_secret_t **secret) noexcept {
  *secret = static_cast<QCryptoSASLSession *>(context)->secret;
  return SASL_OK;
}

/* A SASL failure as a GError naming the service, the peer, the user when
 * known, and what to check. */
void set_sasl_error(QCryptoSASLSession *sess, int ret, GError **error) {
  /* Cyrus's detail may echo what the client sent: no control bytes into
   * logs. */
  g_autofree char *detail = g_strescape(sasl_errdetail(sess->conn), nullptr);
  switch (ret) {
    case SASL_INTERACT:
      /* A client's mechanism asked for what no callback gives (DIGEST-MD5:
       * a realm, when the server offers several). */
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION,
                  _("%s: mechanism '%s' asks for more than a user name and password (a "
                    "realm?); log in as user@realm, or use another mechanism"),
                  sess->label, sess->mech ? sess->mech : "");
      return;
    case SASL_BADAUTH:
    case SASL_NOUSER:
    case SASL_NOVERIFY:
    case SASL_EXPIRED:
    case SASL_DISABLED:
    case SASL_NOAUTHZ:
      if (!sess->server) {
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION,
                    _("%s: authentication as '%s' failed: %s; check the user name and "
                      "password"),
                    sess->label, sess->username ? sess->username : "", detail);
      } else {
        /* The names the client gave, when the mechanism got that far: who
         * logs in, and whom it asked to act as (the same unless it asked). */
        const void *authuser = nullptr, *user = nullptr;
        if (sasl_getprop(sess->conn, SASL_AUTHUSER, &authuser) != SASL_OK) authuser = nullptr;
        if (sasl_getprop(sess->conn, SASL_USERNAME, &user) != SASL_OK) user = nullptr;
        const char *login = static_cast<const char *>(authuser ? authuser : user);
        g_autofree char *name = g_strescape(login ? login : "", nullptr);
        if (authuser && user && strcmp(static_cast<const char *>(authuser),
                                       static_cast<const char *>(user)) != 0) {
          g_autofree char *as = g_strescape(static_cast<const char *>(user), nullptr);
          g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION,
                      _("%s: user '%s' may not act as user '%s': %s; log in as that user "
                        "instead"),
                      sess->label, name, as, detail);
          return;
        }
        /* Cyrus fails protocol errors the same way, before any name. */
        if (!login || !*login) {
          g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION,
                      _("%s: authentication failed before the client named a user: %s; "
                        "check that it speaks the mechanism as this service expects"),
                      sess->label, detail);
          return;
        }
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_AUTHENTICATION,
                    _("%s: authentication of user '%s' failed: %s; check the user name and "
                      "password the client gave, and that the user is in the sasldb named "
                      "by sasldb_path in qio.conf (saslpasswd2 -a qio)"),
                    sess->label, name, detail);
      }
      return;
    case SASL_NOMECH:
    case SASL_TOOWEAK:
    case SASL_ENCRYPT:
      if (sess->external_ssf > 0) {
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                    _("%s: no usable mechanism: %s; compare mech_list in qio.conf with the "
                      "mechanisms the client supports"),
                    sess->label, detail);
      } else {
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                    _("%s: no usable mechanism: %s; without TLS below, only mechanisms "
                      "with a security layer qualify (DIGEST-MD5, GSSAPI in mech_list of "
                      "qio.conf); PLAIN and SCRAM need TLS"),
                    sess->label, detail);
      }
      return;
    case SASL_BADPROT:
    case SASL_BADSERV:
    case SASL_BADPARAM:
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                  _("%s: the peer broke the SASL exchange: %s; check that it speaks SASL "
                    "for this service"),
                  sess->label, detail);
      return;
    default:
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                  _("%s: %s; check qio.conf and the SASL modules installed "
                    "(libsasl2-modules)"),
                  sess->label, detail);
  }
}

/* The security properties go to SASL once, before the first mechanism
 * list or start, so that set_external_ssf may come after construction. */
gboolean apply_props(QCryptoSASLSession *sess, GError **error) {
  if (sess->props_applied) return TRUE;
  sasl_security_properties_t props = {};
  props.maxbufsize = kMaxBufSize;
  /* Anonymous logins give no user for the caller's authorization check. */
  props.security_flags = SASL_SEC_NOANONYMOUS;
  int ret = SASL_OK;
  if (sess->external_ssf > 0) {
    /* The layer below protects the data: no second layer. */
    sasl_ssf_t external = sess->external_ssf;
    ret = sasl_setprop(sess->conn, SASL_SSF_EXTERNAL, &external);
  } else {
    props.min_ssf = kMinSSF;
    props.max_ssf = UINT_MAX; /* the strongest the mechanism has */
  }
  if (ret == SASL_OK) ret = sasl_setprop(sess->conn, SASL_SEC_PROPS, &props);
  if (ret != SASL_OK) {
    set_sasl_error(sess, ret, error);
    return FALSE;
  }
  sess->props_applied = TRUE;
  return TRUE;
}

gboolean check_state(QCryptoSASLSession *sess, State want, GError **error) {
  if (sess->state == want) return TRUE;
  const char *why = sess->state == State::kFailed  ? _("the exchange already failed")
                    : sess->state == State::kDone  ? _("the exchange is already done")
                    : sess->state == State::kNew   ? _("the exchange has not started")
                                                   : _("the exchange has already started");
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
              _("%s: %s; start a new session for each authentication"), sess->label, why);
  return FALSE;
}

/* Peer data SASL cannot take fails the exchange. */
gboolean check_length(QCryptoSASLSession *sess, gsize len, GError **error) {
  if (len <= UINT_MAX) return TRUE;
  sess->state = State::kFailed;
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
              _("%s: the peer sent %zu bytes in one step, more than SASL "
                "takes; check that it speaks SASL for this service"),
              sess->label, len);
  return FALSE;
}

/* Turns SASL's answer to a start or step into ours. */
QCryptoSASLStep finish_step(QCryptoSASLSession *sess, int ret, const char *data, unsigned len,
                            const char **out, gsize *outlen, GError **error) {
  *out = nullptr;
  *outlen = 0;
  if (ret != SASL_OK && ret != SASL_CONTINUE) {
    set_sasl_error(sess, ret, error);
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  *out = data;
  *outlen = len;
  if (ret == SASL_CONTINUE) return QCRYPTO_SASL_STEP_CONTINUE;

  const void *value = nullptr;
  if (sasl_getprop(sess->conn, SASL_SSF, &value) == SASL_OK && value)
    sess->ssf = *static_cast<const sasl_ssf_t *>(value);
  if (sasl_getprop(sess->conn, SASL_MAXOUTBUF, &value) == SASL_OK && value)
    sess->maxoutbuf = *static_cast<const unsigned *>(value);
  /* The peer sets the packet size of the layer (DIGEST-MD5's maxbuf): Cyrus
   * 2.1.28 takes values the protocol forbids, some of which wrap around to
   * 4 GiB.  SASL packets are at most 16 MiB (a 24-bit length). */
  if (sess->ssf > 0 && (sess->maxoutbuf < kMinPacket || sess->maxoutbuf > kMaxPacket)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                _("%s: the peer asked for security-layer packets of %zu bytes, outside %u to "
                  "%u; check that it speaks SASL for this service"),
                sess->label, sess->maxoutbuf, kMinPacket, kMaxPacket);
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  /* SASL fails a server step whose mechanism named no user. */
  if (sess->server && sasl_getprop(sess->conn, SASL_USERNAME, &value) == SASL_OK)
    sess->username = g_strdup(static_cast<const char *>(value));
  /* "bob" and "bob@HOST" are the same sasldb entry when HOST is the
   * default realm: authorization sees one name for one user.  A client's
   * name stays as it logged in. */
  if (sess->server && sess->username) {
    const void *realm = nullptr;
    if (sasl_getprop(sess->conn, SASL_DEFUSERREALM, &realm) != SASL_OK || !realm)
      sasl_getprop(sess->conn, SASL_SERVERFQDN, &realm);
    if (realm) {
      g_autofree char *suffix = g_strconcat("@", static_cast<const char *>(realm), nullptr);
      if (g_str_has_suffix(sess->username, suffix) &&
          strlen(sess->username) > strlen(suffix))
        sess->username[strlen(sess->username) - strlen(suffix)] = '\0';
    }
  }
  sess->state = State::kDone;
  return QCRYPTO_SASL_STEP_DONE;
}

/* Whether @mech is one of the comma separated @list (names are ASCII and
 * case insensitive). */
bool list_has(const char *list, const char *mech) {
  g_auto(GStrv) names = g_strsplit(list, ",", -1);
  for (char **name = names; *name; name++)
    if (g_ascii_strcasecmp(*name, mech) == 0) return true;
  return false;
}

}  // namespace

static void qcrypto_sasl_session_finalize(GObject *object) {
  auto *sess = QCRYPTO_SASL_SESSION(object);
  if (sess->conn) sasl_dispose(&sess->conn);
  if (sess->secret) {
    explicit_bzero(sess->secret->data, sess->secret->len);
    g_free(sess->secret);
  }
  g_free(sess->label);
  g_free(sess->mech);
  g_free(sess->username);
  g_mutex_clear(&sess->layer_lock);
  G_OBJECT_CLASS(qcrypto_sasl_session_parent_class)->finalize(object);
}

static void qcrypto_sasl_session_class_init(QCryptoSASLSessionClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qcrypto_sasl_session_finalize;
}

static void qcrypto_sasl_session_init(QCryptoSASLSession *sess) {
  g_mutex_init(&sess->layer_lock);
}

QCryptoSASLSession *qcrypto_sasl_session_new_server(const char *service, const char *local_addr,
                                                    const char *remote_addr, GError **error) {
  g_return_val_if_fail(service != nullptr, nullptr);
  if (!check_init(error)) return nullptr;
  g_autoptr(QCryptoSASLSession) sess =
      QCRYPTO_SASL_SESSION(g_object_new(QCRYPTO_TYPE_SASL_SESSION, nullptr));
  sess->server = TRUE;
  sess->label = remote_addr
                    ? g_strdup_printf(_("SASL service '%s', client %s"), service, remote_addr)
                    : g_strdup_printf(_("SASL service '%s'"), service);
  /* Success data saves a round trip: the client gets the server's last
   * word with the verdict. */
  int ret = sasl_server_new(service, nullptr, nullptr, local_addr, remote_addr, nullptr,
                            SASL_SUCCESS_DATA, &sess->conn);
  if (ret != SASL_OK) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("%s: cannot create a SASL server: %s; check the addresses (IP;PORT) "
                  "and qio.conf"),
                sess->label, sasl_errstring(ret, nullptr, nullptr));
    return nullptr;
  }
  return static_cast<QCryptoSASLSession *>(g_steal_pointer(&sess));
}

QCryptoSASLSession *qcrypto_sasl_session_new_client(const char *service, const char *server_fqdn,
                                                    const char *local_addr,
                                                    const char *remote_addr,
                                                    const char *username, const char *password,
                                                    GError **error) {
  g_return_val_if_fail(service != nullptr && server_fqdn != nullptr, nullptr);
  if (!check_init(error)) return nullptr;
  g_autoptr(QCryptoSASLSession) sess =
      QCRYPTO_SASL_SESSION(g_object_new(QCRYPTO_TYPE_SASL_SESSION, nullptr));
  sess->label = g_strdup_printf(_("SASL service '%s' on %s"), service, server_fqdn);
  sess->username = g_strdup(username);
  /* Only what was given: a mechanism needing more fails with a clear
   * error instead of prompting. */
  gsize n = 0;
  if (username) sess->callbacks[n++] = callback(SASL_CB_AUTHNAME, client_get_username, sess);
  if (password) {
    gsize len = strlen(password);
    sess->secret = static_cast<sasl_secret_t *>(g_malloc(sizeof(sasl_secret_t) + len));
    sess->secret->len = len;
    memcpy(sess->secret->data, password, len);
    sess->callbacks[n++] = callback(SASL_CB_PASS, client_get_password, sess);
  }
  sess->callbacks[n] = {SASL_CB_LIST_END, nullptr, nullptr};
  int ret = sasl_client_new(service, server_fqdn, local_addr, remote_addr, sess->callbacks, 0,
                            &sess->conn);
  if (ret != SASL_OK) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("%s: cannot create a SASL client: %s; check the addresses (IP;PORT)"),
                sess->label, sasl_errstring(ret, nullptr, nullptr));
    return nullptr;
  }
  return static_cast<QCryptoSASLSession *>(g_steal_pointer(&sess));
}

void qcrypto_sasl_session_set_external_ssf(QCryptoSASLSession *sess, guint ssf) {
  g_return_if_fail(QCRYPTO_IS_SASL_SESSION(sess));
  g_return_if_fail(!sess->props_applied);
  sess->external_ssf = ssf;
}

char *qcrypto_sasl_session_list_mechanisms(QCryptoSASLSession *sess, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess) && sess->server, nullptr);
  if (!apply_props(sess, error)) return nullptr;
  const char *list = nullptr;
  int ret = sasl_listmech(sess->conn, nullptr, "", ",", "", &list, nullptr, nullptr);
  /* An empty list (mech_list names only mechanisms the connection does
   * not allow) would leave every client without a way in, unexplained. */
  if (ret == SASL_OK && (!list || !*list)) ret = SASL_NOMECH;
  if (ret != SASL_OK) {
    set_sasl_error(sess, ret, error);
    return nullptr;
  }
  return g_strdup(list);
}

QCryptoSASLStep qcrypto_sasl_session_server_start(QCryptoSASLSession *sess, const char *mech,
                                                  const char *in, gsize inlen, const char **out,
                                                  gsize *outlen, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess) && sess->server, QCRYPTO_SASL_STEP_FAILED);
  g_return_val_if_fail(mech != nullptr, QCRYPTO_SASL_STEP_FAILED);
  *out = nullptr;
  *outlen = 0;
  if (!check_state(sess, State::kNew, error)) return QCRYPTO_SASL_STEP_FAILED;
  sess->state = State::kStarted;
  sess->mech = g_strdup(mech);
  if (!check_length(sess, inlen, error)) return QCRYPTO_SASL_STEP_FAILED;
  /* SASL answers a mechanism it does not offer with a bare "parameter
   * error": say which one the client chose. */
  g_autofree char *offered = qcrypto_sasl_session_list_mechanisms(sess, error);
  if (!offered) {
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  if (!list_has(offered, mech)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                sess->external_ssf > 0
                    ? _("%s: the client chose mechanism '%s', which is not offered "
                        "(offered: %s); add it to mech_list in qio.conf if it should be")
                    : _("%s: the client chose mechanism '%s', which is not offered "
                        "(offered: %s); without TLS below, only mechanisms with a security "
                        "layer are offered"),
                sess->label, mech, offered);
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  const char *data = nullptr;
  unsigned len = 0;
  int ret = sasl_server_start(sess->conn, mech, in, static_cast<unsigned>(inlen), &data, &len);
  return finish_step(sess, ret, data, len, out, outlen, error);
}

QCryptoSASLStep qcrypto_sasl_session_server_step(QCryptoSASLSession *sess, const char *in,
                                                 gsize inlen, const char **out, gsize *outlen,
                                                 GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess) && sess->server, QCRYPTO_SASL_STEP_FAILED);
  *out = nullptr;
  *outlen = 0;
  if (!check_state(sess, State::kStarted, error)) return QCRYPTO_SASL_STEP_FAILED;
  if (!check_length(sess, inlen, error)) return QCRYPTO_SASL_STEP_FAILED;
  const char *data = nullptr;
  unsigned len = 0;
  int ret = sasl_server_step(sess->conn, in, static_cast<unsigned>(inlen), &data, &len);
  return finish_step(sess, ret, data, len, out, outlen, error);
}

QCryptoSASLStep qcrypto_sasl_session_client_start(QCryptoSASLSession *sess, const char *mechlist,
                                                  const char **mech, const char **out,
                                                  gsize *outlen, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess) && !sess->server,
                       QCRYPTO_SASL_STEP_FAILED);
  g_return_val_if_fail(mechlist != nullptr, QCRYPTO_SASL_STEP_FAILED);
  *mech = nullptr;
  *out = nullptr;
  *outlen = 0;
  if (!check_state(sess, State::kNew, error)) return QCRYPTO_SASL_STEP_FAILED;
  sess->state = State::kStarted;
  if (!apply_props(sess, error)) {
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  sasl_interact_t *interact = nullptr;
  const char *data = nullptr, *chosen = nullptr;
  unsigned len = 0;
  int ret = sasl_client_start(sess->conn, mechlist, &interact, &data, &len, &chosen);
  if (ret == SASL_NOMECH) {
    /* SASL also drops mechanisms whose credentials were not given. */
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_HANDSHAKE,
                sess->external_ssf > 0
                    ? _("%s: none of the server's mechanisms (%s) is usable: %s; each needs "
                        "the credentials it asks for (user name, password) and a module "
                        "installed here (libsasl2-modules)")
                    : _("%s: none of the server's mechanisms (%s) is usable: %s; each needs "
                        "the credentials it asks for (user name, password) and, without TLS "
                        "below, a security layer (PLAIN and SCRAM need TLS)"),
                sess->label, mechlist, sasl_errdetail(sess->conn));
    sess->state = State::kFailed;
    return QCRYPTO_SASL_STEP_FAILED;
  }
  sess->mech = g_strdup(chosen);
  QCryptoSASLStep step = finish_step(sess, ret, data, len, out, outlen, error);
  if (step != QCRYPTO_SASL_STEP_FAILED) *mech = sess->mech;
  return step;
}

QCryptoSASLStep qcrypto_sasl_session_client_step(QCryptoSASLSession *sess, const char *in,
                                                 gsize inlen, const char **out, gsize *outlen,
                                                 GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess) && !sess->server,
                       QCRYPTO_SASL_STEP_FAILED);
  *out = nullptr;
  *outlen = 0;
  if (!check_state(sess, State::kStarted, error)) return QCRYPTO_SASL_STEP_FAILED;
  if (!check_length(sess, inlen, error)) return QCRYPTO_SASL_STEP_FAILED;
  sasl_interact_t *interact = nullptr;
  const char *data = nullptr;
  unsigned len = 0;
  int ret = sasl_client_step(sess->conn, in, static_cast<unsigned>(inlen), &interact, &data, &len);
  return finish_step(sess, ret, data, len, out, outlen, error);
}

const char *qcrypto_sasl_session_get_username(QCryptoSASLSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess), nullptr);
  return sess->state == State::kDone ? sess->username : nullptr;
}

guint qcrypto_sasl_session_get_ssf(QCryptoSASLSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess), 0);
  return sess->ssf;
}

gsize qcrypto_sasl_session_get_maxoutbuf(QCryptoSASLSession *sess) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess), 0);
  return sess->maxoutbuf;
}

namespace {

using LayerFunc = int (*)(sasl_conn_t *, const char *, unsigned, const char **, unsigned *);

gboolean layer_call(QCryptoSASLSession *sess, LayerFunc func, const char *what, const char *in,
                    gsize inlen, const char **out, gsize *outlen, GError **error) {
  *out = nullptr;
  *outlen = 0;
  if (sess->state != State::kDone) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("%s: %s before authentication completed; finish the exchange first"),
                sess->label, what);
    return FALSE;
  }
  const char *data = nullptr;
  unsigned len = 0;
  g_mutex_lock(&sess->layer_lock);
  int ret = func(sess->conn, in, static_cast<unsigned>(inlen), &data, &len);
  if (ret != SASL_OK) {
    /* The detail belongs to this call: read it under the lock. */
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("%s: %s failed: %s; the data was damaged or forged on the way, or the "
                  "peer does not use the security layer"),
                sess->label, what, sasl_errdetail(sess->conn));
  }
  g_mutex_unlock(&sess->layer_lock);
  if (ret != SASL_OK) return FALSE;
  *out = data;
  *outlen = len;
  return TRUE;
}

}  // namespace

gboolean qcrypto_sasl_session_encode(QCryptoSASLSession *sess, const char *in, gsize inlen,
                                     const char **out, gsize *outlen, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess), FALSE);
  if (inlen > sess->maxoutbuf && sess->state == State::kDone) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("%s: cannot encode %zu bytes at once; the limit is %zu (SASL_MAXOUTBUF)"),
                sess->label, inlen, sess->maxoutbuf);
    return FALSE;
  }
  return layer_call(sess, sasl_encode, _("encoding"), in, inlen, out, outlen, error);
}

gboolean qcrypto_sasl_session_decode(QCryptoSASLSession *sess, const char *in, gsize inlen,
                                     const char **out, gsize *outlen, GError **error) {
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(sess), FALSE);
  if (inlen > UINT_MAX) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("%s: cannot decode %zu bytes at once; pass the stream in "
                  "smaller parts"),
                sess->label, inlen);
    return FALSE;
  }
  return layer_call(sess, sasl_decode, _("decoding"), in, inlen, out, outlen, error);
}
