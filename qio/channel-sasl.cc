#include "config.h"

#include "qio/channel-sasl.h"
#include "qio/channel-watch.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

/* Encoded bytes read from the master per call: a whole packet of the
 * largest size both ends announce (64 KiB) and its framing. */
constexpr gsize kReadChunk = 64 * 1024 + 64;

struct Buffers {
  /* Read side: encoded bytes from the master, and decoded bytes the
   * caller has not taken yet. */
  std::vector<char> raw = std::vector<char>(kReadChunk);
  std::vector<char> decoded;
  gsize decoded_off = 0;
  /* Write side: plaintext gathered from small iovec entries into one
   * packet, and the rest of an encoded packet the master did not take.
   * That packet cannot be encoded again (its sequence number is spent),
   * so it is sent first and its plaintext reported by the next write. */
  std::vector<char> gather;
  std::vector<char> unsent;
  gsize unsent_off = 0;
  gsize unsent_plain = 0;

  gsize pending() const { return decoded.size() - decoded_off; }
};

}  // namespace

struct _QIOChannelSASL {
  QIOChannel parent_instance;
  QIOChannel *master;
  QCryptoSASLSession *session;
  gsize maxout; /* plaintext per packet */
  Buffers *buf;
  gboolean blocking;
};

G_DEFINE_FINAL_TYPE(QIOChannelSASL, qio_channel_sasl, QIO_TYPE_CHANNEL)

/* The most plaintext put in one packet, whatever the peer accepts. */
static constexpr gsize kMaxPacketPlaintext = 64 * 1024;

namespace {

/* Copies @len bytes of @data into @iov; returns how many fitted. */
gsize copy_to_iov(const struct iovec *iov, gsize niov, const char *data, gsize len) {
  gsize done = 0;
  for (gsize i = 0; i < niov && done < len; i++) {
    gsize n = std::min(iov[i].iov_len, len - done);
    memcpy(iov[i].iov_base, data + done, n);
    done += n;
  }
  return done;
}

gssize sasl_readv(QIOChannel *ioc, const struct iovec *iov, gsize niov, int **, gsize *,
                  GError **error) {
  auto *sioc = QIO_CHANNEL_SASL(ioc);
  Buffers &b = *sioc->buf;
  if (b.pending() > 0) {
    gsize n = copy_to_iov(iov, niov, b.decoded.data() + b.decoded_off, b.pending());
    b.decoded_off += n;
    if (b.pending() == 0) {
      b.decoded.clear();
      b.decoded_off = 0;
    }
    return static_cast<gssize>(n);
  }
  for (;;) {
    gssize n = qio_channel_read(sioc->master, b.raw.data(), b.raw.size(), error);
    if (n <= 0) return n; /* end of stream, would block, or error */
    const char *out;
    gsize outlen;
    if (!qcrypto_sasl_session_decode(sioc->session, b.raw.data(), static_cast<gsize>(n), &out,
                                     &outlen, error))
      return -1;
    /* Only part of a packet so far (SASL keeps it until the rest comes), or
     * an empty one.  A non-blocking reader gets control back, so a peer
     * streaming empty packets cannot hold its main loop. */
    if (outlen == 0) {
      if (!sioc->blocking) return QIO_CHANNEL_ERR_BLOCK;
      continue;
    }
    gsize copied = copy_to_iov(iov, niov, out, outlen);
    b.decoded.assign(out + copied, out + outlen);
    return static_cast<gssize>(copied);
  }
}

/* Sends what is left of the last packet: 1 when all is out,
 * QIO_CHANNEL_ERR_BLOCK, or -1 with @error. */
gssize flush_unsent(QIOChannelSASL *sioc, GError **error) {
  Buffers &b = *sioc->buf;
  while (b.unsent_off < b.unsent.size()) {
    gssize n = qio_channel_write(sioc->master, b.unsent.data() + b.unsent_off,
                                 b.unsent.size() - b.unsent_off, error);
    if (n < 0) return n;
    b.unsent_off += static_cast<gsize>(n);
  }
  b.unsent.clear();
  b.unsent_off = 0;
  return 1;
}

gssize sasl_writev(QIOChannel *ioc, const struct iovec *iov, gsize niov, const int *, gsize,
                   int, GError **error) {
  auto *sioc = QIO_CHANNEL_SASL(ioc);
  Buffers &b = *sioc->buf;
  if (b.unsent_off < b.unsent.size()) {
    gssize r = flush_unsent(sioc, error);
    if (r < 0) return r;
    gsize done = b.unsent_plain;
    b.unsent_plain = 0;
    return static_cast<gssize>(done);
  }
  gsize total = 0, i = 0, off = 0;
  for (;;) {
    while (i < niov && off == iov[i].iov_len) {
      i++;
      off = 0;
    }
    if (i == niov) break;
    /* One packet's plaintext: straight from the caller's memory when it
     * lies contiguous (a full packet, or all that is left), else gathered
     * from the entries. */
    const char *start = static_cast<const char *>(iov[i].iov_base) + off;
    gsize span = iov[i].iov_len - off;
    gsize j = i + 1;
    for (; j < niov && span < sioc->maxout && iov[j].iov_base == start + span; j++)
      span += iov[j].iov_len;
    bool more = false;
    for (gsize k = j; k < niov && !more; k++) more = iov[k].iov_len > 0;
    const char *data = start;
    gsize len = std::min(span, sioc->maxout);
    if (len < sioc->maxout && more) {
      len = 0;
      for (gsize k = i, o = off; k < niov && len < sioc->maxout; k++, o = 0) {
        gsize take = std::min(iov[k].iov_len - o, sioc->maxout - len);
        memcpy(b.gather.data() + len, static_cast<const char *>(iov[k].iov_base) + o, take);
        len += take;
      }
      data = b.gather.data();
    }
    const char *enc;
    gsize enclen;
    if (!qcrypto_sasl_session_encode(sioc->session, data, len, &enc, &enclen, error)) return -1;
    gsize sent = 0;
    while (sent < enclen) {
      gssize n = qio_channel_write(sioc->master, enc + sent, enclen - sent, error);
      if (n == QIO_CHANNEL_ERR_BLOCK) break;
      if (n < 0) return -1; /* a packet was cut: the stream is lost */
      sent += static_cast<gsize>(n);
    }
    if (sent < enclen) {
      b.unsent.assign(enc + sent, enc + enclen);
      b.unsent_off = 0;
      b.unsent_plain = len;
      return total > 0 ? static_cast<gssize>(total) : QIO_CHANNEL_ERR_BLOCK;
    }
    total += len;
    for (gsize left = len; left > 0;) {
      gsize step = std::min(left, iov[i].iov_len - off);
      off += step;
      left -= step;
      if (off == iov[i].iov_len) {
        i++;
        off = 0;
      }
    }
  }
  return static_cast<gssize>(total);
}

gboolean sasl_close(QIOChannel *ioc, GError **error) {
  return qio_channel_close(QIO_CHANNEL_SASL(ioc)->master, error);
}

gboolean sasl_shutdown(QIOChannel *ioc, QIOChannelShutdown how, GError **error) {
  return qio_channel_shutdown(QIO_CHANNEL_SASL(ioc)->master, how, error);
}

gboolean sasl_set_blocking(QIOChannel *ioc, gboolean enabled, GError **error) {
  auto *sioc = QIO_CHANNEL_SASL(ioc);
  if (!qio_channel_set_blocking(sioc->master, enabled, error)) return FALSE;
  sioc->blocking = enabled;
  return TRUE;
}

void sasl_set_delay(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_delay(QIO_CHANNEL_SASL(ioc)->master, enabled);
}

void sasl_set_cork(QIOChannel *ioc, gboolean enabled) {
  qio_channel_set_cork(QIO_CHANNEL_SASL(ioc)->master, enabled);
}

/* Decoded data may wait here, which the master's descriptor cannot show. */
gboolean sasl_pending(QIOChannel *ioc) noexcept {
  return QIO_CHANNEL_SASL(ioc)->buf->pending() > 0;
}

GSource *sasl_create_watch(QIOChannel *ioc, GIOCondition condition) {
  return qio_channel_create_layer_watch(ioc, QIO_CHANNEL_SASL(ioc)->master, condition,
                                        sasl_pending);
}

}  // namespace

static void qio_channel_sasl_finalize(GObject *object) {
  auto *sioc = QIO_CHANNEL_SASL(object);
  g_clear_object(&sioc->session);
  g_clear_object(&sioc->master);
  delete sioc->buf;
  G_OBJECT_CLASS(qio_channel_sasl_parent_class)->finalize(object);
}

static void qio_channel_sasl_class_init(QIOChannelSASLClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = qio_channel_sasl_finalize;
  QIOChannelClass *ioc_class = QIO_CHANNEL_CLASS(klass);
  ioc_class->io_readv = sasl_readv;
  ioc_class->io_writev = sasl_writev;
  ioc_class->io_close = sasl_close;
  ioc_class->io_create_watch = sasl_create_watch;
  ioc_class->io_set_blocking = sasl_set_blocking;
  ioc_class->io_shutdown = sasl_shutdown;
  ioc_class->io_set_delay = sasl_set_delay;
  ioc_class->io_set_cork = sasl_set_cork;
}

static void qio_channel_sasl_init(QIOChannelSASL *sioc) {
  sioc->buf = new Buffers;
  sioc->blocking = TRUE;
}

QIOChannelSASL *qio_channel_sasl_new(QIOChannel *master, QCryptoSASLSession *session,
                                     GError **error) {
  g_return_val_if_fail(QIO_IS_CHANNEL(master), nullptr);
  g_return_val_if_fail(QCRYPTO_IS_SASL_SESSION(session), nullptr);
  /* The SSF and the packet size are known once the exchange is done. */
  gsize maxout = qcrypto_sasl_session_get_maxoutbuf(session);
  if (qcrypto_sasl_session_get_ssf(session) == 0 || maxout == 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                _("Channel '%s': the SASL session gives no security layer (not authenticated, "
                  "or SSF 0); use the channel without one"),
                qio_channel_get_name(master));
    return nullptr;
  }
  /* The layer starts blocking, as every channel does; a non-blocking master
   * under it would have its reads loop over empty packets. */
  if (!qio_channel_set_blocking(master, TRUE, error)) return nullptr;
  auto *sioc = QIO_CHANNEL_SASL(g_object_new(QIO_TYPE_CHANNEL_SASL, nullptr));
  sioc->master = QIO_CHANNEL(g_object_ref(master));
  sioc->session = QCRYPTO_SASL_SESSION(g_object_ref(session));
  /* Smaller packets are always allowed; the peer's maximum can be 16 MiB. */
  sioc->maxout = MIN(maxout, kMaxPacketPlaintext);
  sioc->buf->gather.resize(sioc->maxout);
  if (qio_channel_has_feature(master, QIO_CHANNEL_FEATURE_SHUTDOWN))
    qio_channel_set_feature(QIO_CHANNEL(sioc), QIO_CHANNEL_FEATURE_SHUTDOWN);
  g_autofree char *name = g_strdup_printf("sasl-%s", qio_channel_get_name(master));
  qio_channel_set_name(QIO_CHANNEL(sioc), name);
  return sioc;
}
