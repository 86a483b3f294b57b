#include "config.h"

#include "qio/channel-tls.h"
#include "qio/channel-watch.h"
#include "qio/error.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>

#include <algorithm>


struct _QIOChannelTLS {
  QIOChannel parent_instance;
  QIOChannel *master;
  QCryptoTLSSession *session;
  gboolean bye_tried; /* sent, or dropped by a non-blocking master */
};

G_DEFINE_FINAL_TYPE(QIOChannelTLS, qio_channel_tls, QIO_TYPE_CHANNEL)

namespace {

gssize tls_push(const struct iovec *iov, gsize niov, gpointer opaque, GError **error) {
  gssize n = qio_channel_writev(static_cast<QIOChannel *>(opaque), iov, niov, error);
  return n == QIO_CHANNEL_ERR_BLOCK ? QCRYPTO_TLS_SESSION_ERR_BLOCK : n;
}

gssize tls_pull(void *buf, gsize len, gpointer opaque, GError **error) {
  gssize n = qio_channel_read(static_cast<QIOChannel *>(opaque), buf, len, error);
  return n == QIO_CHANNEL_ERR_BLOCK ? QCRYPTO_TLS_SESSION_ERR_BLOCK : n;
}

gssize tls_try_push(const struct iovec *iov, gsize niov, gpointer opaque, GError **error) {
  gssize n = qio_channel_writev_full(static_cast<QIOChannel *>(opaque), iov, niov, nullptr, 0,
                                     QIO_CHANNEL_WRITE_FLAG_DONTWAIT, error);
  return n == QIO_CHANNEL_ERR_BLOCK ? QCRYPTO_TLS_SESSION_ERR_BLOCK : n;
}

QIOChannelTLS *tls_new(QIOChannel *master, QCryptoTLSSession *session) {
  auto *tioc = QIO_CHANNEL_TLS(g_object_new(QIO_TYPE_CHANNEL_TLS, nullptr));
  tioc->master = QIO_CHANNEL(g_object_ref(master));
  tioc->session = session;
  qcrypto_tls_session_set_callbacks(session, tls_push, tls_pull, master);
  if (qio_channel_has_feature(master, QIO_CHANNEL_FEATURE_WRITE_DONTWAIT))
    qcrypto_tls_session_set_try_push(session, tls_try_push);
  if (qio_channel_has_feature(master, QIO_CHANNEL_FEATURE_SHUTDOWN))
    qio_channel_set_feature(QIO_CHANNEL(tioc), QIO_CHANNEL_FEATURE_SHUTDOWN);
  g_autofree char *name = g_strdup_printf("tls-%s", qio_channel_get_name(master));
  qio_channel_set_name(QIO_CHANNEL(tioc), name);
  return tioc;
}

gboolean tls_check_handshaken(QIOChannelTLS *tioc, GError **error) {
  if (qcrypto_tls_session_is_handshaken(tioc->session)) return TRUE;
  g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("Channel '%s': the TLS handshake has not completed; run it before any I/O"),
              qio_channel_get_name(QIO_CHANNEL(tioc)));
  return FALSE;
}

/* The session's messages name its credentials; which connection failed is
 * the channel's name (migration-multifd-1, the NBD client's peer, ...). */
gssize name_channel(QIOChannel *ioc, GError **error) {
  g_prefix_error(error, _("Channel '%s': "), qio_channel_get_name(ioc));
  return -1;
}

gssize tls_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **, gsize *,
                 GError **error) {
  auto *tioc = QIO_CHANNEL_TLS(ioc);
  if (!tls_check_handshaken(tioc, error)) return -1;
  gsize total = 0, i = 0, off = 0;
  while (i < niov) {
    if (off == iov[i].iov_len) {
      i++;
      off = 0;
      continue;
    }
    /* Entries back to back in memory (guest pages in order) are filled by
     * one read, a whole record at a time. */
    char *start = static_cast<char *>(iov[i].iov_base) + off;
    gsize span = iov[i].iov_len - off;
    for (gsize j = i + 1; j < niov && iov[j].iov_base == start + span; j++)
      span += iov[j].iov_len;
    /* Never wait on the transport once something was read: only take what
     * the session holds (a record read ahead may carry no data). */
    gssize n = total > 0 ? qcrypto_tls_session_read_buffered(tioc->session, start, span, error)
                         : qcrypto_tls_session_read(tioc->session, start, span, error);
    if (n == QCRYPTO_TLS_SESSION_ERR_BLOCK)
      return total ? static_cast<gssize>(total) : QIO_CHANNEL_ERR_BLOCK;
    if (n < 0) {
      if (total == 0) return name_channel(ioc, error);
      /* Report the data first; the error comes again on the next call. */
      g_clear_error(error);
      break;
    }
    if (n == 0) break;
    total += static_cast<gsize>(n);
    for (gsize left = static_cast<gsize>(n); left > 0;) {
      gsize step = std::min(left, iov[i].iov_len - off);
      off += step;
      left -= step;
      if (off == iov[i].iov_len && left > 0) {
        i++;
        off = 0;
      }
    }
  }
  return static_cast<gssize>(total);
}

gssize tls_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *, gsize,
                  int, GError **error) {
  auto *tioc = QIO_CHANNEL_TLS(ioc);
  if (!tls_check_handshaken(tioc, error)) return -1;
  gssize n = qcrypto_tls_session_writev(tioc->session, iov, niov, error);
  if (n == -1) return name_channel(ioc, error);
  return n == QCRYPTO_TLS_SESSION_ERR_BLOCK ? QIO_CHANNEL_ERR_BLOCK : n;
}

/* Sends the bye once.  A non-blocking master gets it only if it takes it at
 * once: shutdown and close run in main loops and must not wait for a peer
 * that stopped reading (one such client would stall a whole server); that
 * peer sees the end without close_notify. */
gboolean tls_bye(QIOChannelTLS *tioc, GError **error) {
  if (tioc->bye_tried || !qcrypto_tls_session_is_handshaken(tioc->session)) return TRUE;
  if (qcrypto_tls_session_bye(tioc->session, error) < 0) return FALSE;
  tioc->bye_tried = TRUE;
  return TRUE;
}

/* The bye, then @finish on the master, which runs even when the bye failed
 * (a peer already gone must not keep the transport open); the bye's error
 * is reported after @finish's. */
template <typename Finish>
gboolean bye_then(QIOChannelTLS *tioc, bool bye, Finish finish, GError **error) {
  g_autoptr(GError) bye_error = nullptr;
  gboolean bye_ok = !bye || tls_bye(tioc, &bye_error);
  if (!finish(tioc->master, error)) return FALSE;
  if (!bye_ok) {
    g_propagate_error(error, g_steal_pointer(&bye_error));
    return FALSE;
  }
  return TRUE;
}

gboolean tls_close(QIOChannel *ioc, GError **error) {
  return bye_then(QIO_CHANNEL_TLS(ioc), true, qio_channel_close, error);
}

gboolean tls_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  return bye_then(
      QIO_CHANNEL_TLS(ioc), how & QIO_CHANNEL_SHUTDOWN_WRITE,
      [how](QIOChannel *master, GError **err) { return qio_channel_shutdown(master, how, err); },
      error);
}

gboolean tls_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  return qio_channel_set_blocking(QIO_CHANNEL_TLS(ioc)->master, enabled, error);
}

void tls_set_delay(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_delay(QIO_CHANNEL_TLS(ioc)->master, enabled);
}

void tls_set_cork(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_cork(QIO_CHANNEL_TLS(ioc)->master, enabled);
}

/* What the session may hold already will not cross the master. */
void tls_set_read_low_water(QIOChannel *ioc, gsize bytes) {
  auto *tioc = QIO_CHANNEL_TLS(ioc);
  gsize buffered = qcrypto_tls_session_get_buffered_max(tioc->session);
  qio_channel_set_read_low_water(tioc->master, bytes > buffered ? bytes - buffered : 0);
}

/* GnuTLS may hold decrypted data, which the master's descriptor cannot
 * show. */
gboolean tls_pending(QIOChannel *ioc) noexcept {
  QCryptoTLSSession *session = QIO_CHANNEL_TLS(ioc)->session;
  return qcrypto_tls_session_is_handshaken(session) &&
         qcrypto_tls_session_check_pending(session) > 0;
}

GSource *tls_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_layer_watch(ioc, QIO_CHANNEL_TLS(ioc)->master, condition,
                                        tls_pending);
}

/* The asynchronous handshake: one step per readiness of the master. */
struct HandshakeTask {
  GTask *task;
  GMainContext *context;
  GSource *watch;
  GSource *cancel;
};

void handshake_task_free(HandshakeTask *ht) {
  if (ht->watch) {
    g_source_destroy(ht->watch);
    g_source_unref(ht->watch);
  }
  if (ht->cancel) {
    g_source_destroy(ht->cancel);
    g_source_unref(ht->cancel);
  }
  if (ht->context) g_main_context_unref(ht->context);
  g_object_unref(ht->task);
  g_free(ht);
}

void handshake_step(HandshakeTask *ht);

gboolean handshake_ready(QIOChannel *, GIOCondition, gpointer data) noexcept {
  auto *ht = static_cast<HandshakeTask *>(data);
  g_source_unref(ht->watch);
  ht->watch = nullptr;
  handshake_step(ht);
  return G_SOURCE_REMOVE;
}

gboolean handshake_cancelled(GCancellable *, gpointer data) noexcept {
  auto *ht = static_cast<HandshakeTask *>(data);
  g_task_return_error_if_cancelled(ht->task);
  handshake_task_free(ht);
  return G_SOURCE_REMOVE;
}

void handshake_step(HandshakeTask *ht) {
  auto *tioc = QIO_CHANNEL_TLS(g_task_get_source_object(ht->task));
  GError *error = nullptr;
  QCryptoTLSHandshakeStatus status = qcrypto_tls_session_handshake(tioc->session, &error);
  if (status == QCRYPTO_TLS_HANDSHAKE_FAILED) {
    g_task_return_error(ht->task, error);
    handshake_task_free(ht);
    return;
  }
  if (status == QCRYPTO_TLS_HANDSHAKE_COMPLETE) {
    g_task_return_boolean(ht->task, TRUE);
    handshake_task_free(ht);
    return;
  }
  GIOCondition cond = status == QCRYPTO_TLS_HANDSHAKE_NEEDS_READ ? G_IO_IN : G_IO_OUT;
  ht->watch = qio_channel_create_watch(tioc->master, cond);
  g_source_set_callback(ht->watch, G_SOURCE_FUNC(handshake_ready), ht, nullptr);
  g_source_attach(ht->watch, ht->context);
}

}  // namespace

static void qio_channel_tls_finalize(GObject *object) {
  auto *tioc = QIO_CHANNEL_TLS(object);
  g_clear_object(&tioc->session);
  g_clear_object(&tioc->master);
  G_OBJECT_CLASS(qio_channel_tls_parent_class)->finalize(object);
}

static void qio_channel_tls_class_init(QIOChannelTLSClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_tls_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = tls_readv;
  ioc_class->io_writev = tls_writev;
  ioc_class->io_close = tls_close;
  ioc_class->io_create_watch = tls_create_watch;
  ioc_class->io_set_blocking = tls_set_blocking;
  ioc_class->io_shutdown = tls_shutdown;
  ioc_class->io_set_delay = tls_set_delay;
  ioc_class->io_set_cork = tls_set_cork;
  ioc_class->io_set_read_low_water = tls_set_read_low_water;
}

static void qio_channel_tls_init(QIOChannelTLS *) {}

QIOChannelTLS *qio_channel_tls_new_server(QIOChannel *master, QCryptoTLSCreds *creds,
                                          QCryptoAuthz *authz, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(master), nullptr);
  QCryptoTLSSession *session = qcrypto_tls_session_new(creds, nullptr, authz, error);
  return session ? tls_new(master, session) : nullptr;
}

QIOChannelTLS *qio_channel_tls_new_client(QIOChannel *master, QCryptoTLSCreds *creds,
                                          const char *hostname, GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(master), nullptr);
  QCryptoTLSSession *session = qcrypto_tls_session_new(creds, hostname, nullptr, error);
  return session ? tls_new(master, session) : nullptr;
}

void qio_channel_tls_handshake(QIOChannelTLS *tioc, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data,
                               GMainContext *context) {
  g_return_if_fail(QIO_IS_CHANNEL_TLS(tioc));
  /* GTask delivers the result in the thread-default context at creation. */
  if (context) g_main_context_push_thread_default(context);
  auto *ht = g_new0(HandshakeTask, 1);
  ht->task = g_task_new(tioc, cancellable, callback, user_data);
  g_task_set_source_tag(ht->task, reinterpret_cast<gpointer>(qio_channel_tls_handshake));
  ht->context = context ? g_main_context_ref(context) : g_main_context_ref_thread_default();
  if (context) g_main_context_pop_thread_default(context);
  if (cancellable) {
    ht->cancel = g_cancellable_source_new(cancellable);
    g_source_set_callback(ht->cancel, G_SOURCE_FUNC(handshake_cancelled), ht, nullptr);
    g_source_attach(ht->cancel, ht->context);
  }
  handshake_step(ht);
}

gboolean qio_channel_tls_handshake_finish(QIOChannelTLS *tioc, GAsyncResult *result,
                                          GError **error) {
  g_return_val_if_fail(g_task_is_valid(result, tioc), FALSE);
  return g_task_propagate_boolean(G_TASK(result), error);
}

gboolean qio_channel_tls_handshake_sync(QIOChannelTLS *tioc, GCancellable *cancellable,
                                        GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL_TLS(tioc), FALSE);
  for (;;) {
    if (g_cancellable_set_error_if_cancelled(cancellable, error)) return FALSE;
    QCryptoTLSHandshakeStatus status = qcrypto_tls_session_handshake(tioc->session, error);
    if (status == QCRYPTO_TLS_HANDSHAKE_FAILED) return FALSE;
    if (status == QCRYPTO_TLS_HANDSHAKE_COMPLETE) return TRUE;
    qio_channel_wait(tioc->master,
                     status == QCRYPTO_TLS_HANDSHAKE_NEEDS_READ ? G_IO_IN : G_IO_OUT);
  }
}

QIOChannel *qio_channel_tls_get_master(QIOChannelTLS *tioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_TLS(tioc), nullptr);
  return tioc->master;
}

QCryptoTLSSession *qio_channel_tls_get_session(QIOChannelTLS *tioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_TLS(tioc), nullptr);
  return tioc->session;
}

QCryptoTLSSessionReport *qio_channel_tls_get_report(QIOChannelTLS *tioc) {
  g_return_val_if_fail(QIO_IS_CHANNEL_TLS(tioc), nullptr);
  return qcrypto_tls_session_get_report(tioc->session);
}
