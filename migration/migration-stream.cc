#include "config.h"

#include "migration/migration-stream.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <cstring>

namespace qio::migration {

namespace {

void put32(guint8 *p, guint32 v) {
  v = GUINT32_TO_BE(v);
  memcpy(p, &v, 4);
}
void put64(guint8 *p, guint64 v) {
  v = GUINT64_TO_BE(v);
  memcpy(p, &v, 8);
}
guint32 get32(const guint8 *p) {
  guint32 v;
  memcpy(&v, p, 4);
  return GUINT32_FROM_BE(v);
}
guint64 get64(const guint8 *p) {
  guint64 v;
  memcpy(&v, p, 8);
  return GUINT64_FROM_BE(v);
}

/* An answer carries a refusal of at most this many bytes. */
constexpr guint32 kMaxAnswer = 4096;

}  // namespace

void encode_hello(const Hello &h, guint8 out[kHelloSize]) {
  memcpy(out, kStreamMagic, 8);
  put32(out + 8, h.version);
  put32(out + 12, static_cast<guint32>(h.kind));
  put32(out + 16, h.index);
  put32(out + 20, h.channels);
  put32(out + 24, h.page_size);
  put32(out + 28, static_cast<guint32>(h.compression));
  put64(out + 32, h.ram_size);
}

bool decode_hello(const guint8 in[kHelloSize], Hello &h, const char *peer, GError **error) {
  if (memcmp(in, kStreamMagic, 8) != 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Migration channel '%s' does not carry a qio migration stream (bad magic); "
                  "check that the source is a qiod migrating to this URI"),
                peer);
    return false;
  }
  h.version = get32(in + 8);
  if (h.version != kStreamVersion) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Migration channel '%s' uses stream version %u but this qiod reads version "
                  "%u only; run the same qio release on both hosts"),
                peer, h.version, kStreamVersion);
    return false;
  }
  guint32 kind = get32(in + 12);
  guint32 compression = get32(in + 28);
  if (kind > static_cast<guint32>(ChannelKind::Multifd) ||
      compression > static_cast<guint32>(Compression::Zstd)) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Migration channel '%s' sent a malformed hello (channel kind %u, "
                  "compression %u)"),
                peer, kind, compression);
    return false;
  }
  h.kind = static_cast<ChannelKind>(kind);
  h.index = get32(in + 16);
  h.channels = get32(in + 20);
  h.page_size = get32(in + 24);
  h.compression = static_cast<Compression>(compression);
  h.ram_size = get64(in + 32);
  return true;
}

void encode_record(RecordType type, guint32 count, guint64 arg, guint8 out[kRecordHeaderSize]) {
  put32(out, static_cast<guint32>(type));
  put32(out + 4, count);
  put64(out + 8, arg);
}

RecordHeader decode_record(const guint8 in[kRecordHeaderSize]) {
  return {static_cast<RecordType>(get32(in)), get32(in + 4), get64(in + 8)};
}

bool write_record(QIOChannel *ioc, RecordType type, guint32 count, guint64 arg,
                  const void *payload, gsize len, GError **error) {
  guint8 hdr[kRecordHeaderSize];
  encode_record(type, count, arg, hdr);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {const_cast<void *>(payload), len}};
  return qio_channel_writev_all(ioc, iov, len ? 2 : 1, error);
}

bool read_record(QIOChannel *ioc, RecordHeader &header, GError **error) {
  guint8 hdr[kRecordHeaderSize];
  if (!qio_channel_read_all(ioc, hdr, sizeof(hdr), error)) return false;
  header = decode_record(hdr);
  return true;
}

bool write_answer(QIOChannel *ioc, const char *refusal, GError **error) {
  gsize len = refusal ? MIN(strlen(refusal), kMaxAnswer) : 0;
  guint8 hdr[16];
  memcpy(hdr, kStreamMagic, 8);
  put32(hdr + 8, kStreamVersion);
  put32(hdr + 12, static_cast<guint32>(len));
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {const_cast<char *>(refusal), len}};
  return qio_channel_writev_all(ioc, iov, len ? 2 : 1, error);
}

bool read_answer(QIOChannel *ioc, GError **error) {
  guint8 hdr[16];
  const char *name = qio_channel_get_name(ioc);
  if (!qio_channel_read_all(ioc, hdr, sizeof(hdr), error)) {
    g_prefix_error(error, _("The destination did not answer on '%s': "), name);
    return false;
  }
  if (memcmp(hdr, kStreamMagic, 8) != 0) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("The peer on '%s' is not a qiod accepting a migration (bad magic in its "
                  "answer)"),
                name);
    return false;
  }
  guint32 version = get32(hdr + 8), len = get32(hdr + 12);
  if (len > kMaxAnswer) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("The destination on '%s' sent a malformed answer (%u bytes)"), name, len);
    return false;
  }
  if (len == 0 && version == kStreamVersion) return true;
  std::string text(len, '\0');
  if (len && !qio_channel_read_all(ioc, text.data(), len, error)) return false;
  if (len) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL, _("The destination refused the migration: %s"),
                text.c_str());
    return false;
  }
  g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
              _("The destination on '%s' speaks migration stream version %u, this qiod version "
                "%u; run the same qio release on both hosts"),
              name, version, kStreamVersion);
  return false;
}

const char *compression_name(Compression c) {
  switch (c) {
    case Compression::Zlib:
      return "zlib";
    case Compression::Zstd:
      return "zstd";
    case Compression::None:
      break;
  }
  return "none";
}

bool compression_from_name(const char *name, Compression &out) {
  for (auto c : {Compression::None, Compression::Zlib, Compression::Zstd})
    if (g_str_equal(name, compression_name(c))) {
      out = c;
      return true;
    }
  return false;
}

}  // namespace qio::migration
