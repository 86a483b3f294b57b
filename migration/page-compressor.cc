#include "config.h"

#include "migration/page-compressor.h"
#include "host/guest-ram.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>
#include <zlib.h>
#include <zstd.h>

namespace qio::migration {

namespace {
constexpr gsize kRecordBytes = kPagesPerRecord * host::kGuestPageSize;
}  // namespace

PageCompressor::PageCompressor(Compression method) : method_(method) {
  raw_.resize(kRecordBytes);
  packed_.resize(bound(kRecordBytes));
  if (method_ == Compression::Zstd) {
    zstd_cctx_ = ZSTD_createCCtx();
    zstd_dctx_ = ZSTD_createDCtx();
  }
}

PageCompressor::~PageCompressor() {
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx *>(zstd_cctx_));
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx *>(zstd_dctx_));
}

gsize PageCompressor::bound(gsize len) const {
  return method_ == Compression::Zstd ? ZSTD_compressBound(len) : compressBound(len);
}

bool PageCompressor::compress(gsize len, const guint8 **out, gsize *out_len, GError **error) {
  if (method_ == Compression::Zstd) {
    size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx *>(zstd_cctx_), packed_.data(),
                                 packed_.size(), raw_.data(), len, 1);
    if (ZSTD_isError(n)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, _("zstd compression failed: %s"),
                  ZSTD_getErrorName(n));
      return false;
    }
    *out_len = n;
  } else {
    uLongf n = packed_.size();
    int ret = compress2(packed_.data(), &n, raw_.data(), len, 1);
    if (ret != Z_OK) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED, _("zlib compression failed (error %d)"),
                  ret);
      return false;
    }
    *out_len = n;
  }
  *out = packed_.data();
  return true;
}

bool PageCompressor::decompress(const guint8 *in, gsize in_len, guint8 *out, gsize out_len,
                                const char *channel, GError **error) {
  gsize got = 0;
  bool ok;
  if (method_ == Compression::Zstd) {
    size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx *>(zstd_dctx_), out, out_len, in,
                                   in_len);
    ok = !ZSTD_isError(n);
    got = ok ? n : 0;
  } else {
    uLongf n = out_len;
    ok = uncompress(out, &n, in, in_len) == Z_OK;
    got = n;
  }
  if (!ok || got != out_len) {
    g_set_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL,
                _("Channel '%s' sent %s data that does not decompress to the %llu bytes of its "
                  "pages"),
                channel, compression_name(method_), static_cast<unsigned long long>(out_len));
    return false;
  }
  return true;
}

}  // namespace qio::migration
