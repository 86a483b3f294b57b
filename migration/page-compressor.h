/*
 * PageCompressor: multifd-compression for one channel (zlib level 1 or
 * zstd level 1).  A record's pages are gathered into one buffer and
 * compressed in one call; buffers live as long as the channel, so the
 * data path allocates nothing per record.  One per channel thread.
 */
#pragma once

#include "migration/migration-stream.h"

#include <glib.h>

#include <memory>
#include <vector>

namespace qio::migration {

class PageCompressor {
 public:
  explicit PageCompressor(Compression method);
  ~PageCompressor();
  PageCompressor(const PageCompressor &) = delete;
  PageCompressor &operator=(const PageCompressor &) = delete;

  /* The input buffer for @count pages (fill it, then compress()). */
  guint8 *input() { return raw_.data(); }
  /* Compresses the first @len bytes of input(); the result stays valid
   * until the next call.  False with @error set on a library failure. */
  bool compress(gsize len, const guint8 **out, gsize *out_len, GError **error);
  /* The largest compressed size a record of @len bytes may have. */
  gsize bound(gsize len) const;
  /* Decompresses @in into @out, which must come out exactly @out_len long;
   * @channel names the channel in errors. */
  bool decompress(const guint8 *in, gsize in_len, guint8 *out, gsize out_len,
                  const char *channel, GError **error);
  /* A buffer for received compressed data of up to bound(max record). */
  guint8 *receive_buffer() { return packed_.data(); }

 private:
  Compression method_;
  std::vector<guint8> raw_;
  std::vector<guint8> packed_;
  void *zstd_cctx_ = nullptr;
  void *zstd_dctx_ = nullptr;
};

}  // namespace qio::migration
