/* The NBD wire decoders of nbd/protocol, without a connection: the
 * payloads of NBD_OPT_INFO/GO and of the *_META_CONTEXT options (server
 * side), of an NBD_REP_SERVER reply (client side), and a transmission
 * request header with the export it is checked against.  Byte 0 picks the
 * decoder; the rest is copied to a buffer of exactly its size, so that
 * ASan sees any read past the payload. */
#include "config.h"

#include "nbd/protocol.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

enum class Decoder : guint8 { InfoRequest, MetaContextRequest, RepServer, Request, Count };

void decode_request(const guint8 *buf, size_t len) {
  /* The header, then the export's size, flags and what was negotiated. */
  if (len < NBD_REQUEST_SIZE + 8 + 2 + 1) return;
  NBDRequest req;
  GError *error = nullptr;
  if (nbd_request_decode(buf, &req, &error)) {
    const guint8 *exp = buf + NBD_REQUEST_SIZE;
    guint8 negotiated = exp[10];
    (void)nbd_request_check(&req, nbd_get64(exp), nbd_get16(exp + 8), negotiated & 1,
                            negotiated & 2);
    (void)nbd_command_name(req.type);
    guint8 out[NBD_REQUEST_SIZE];
    nbd_request_encode(&req, out);
  }
  g_clear_error(&error);
  (void)nbd_option_name(nbd_get32(buf));
  (void)nbd_reply_name(nbd_get32(buf + 4));
  (void)nbd_error_name(nbd_get32(buf + 8));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  auto decoder = static_cast<Decoder>(data[0] % static_cast<guint8>(Decoder::Count));
  const size_t len = size - 1;
  /* new[] of the exact size (not a vector, which may round up). */
  auto *buf = new guint8[len ? len : 1];
  memcpy(buf, data + 1, len);
  GError *error = nullptr;
  char *name = nullptr;
  switch (decoder) {
    case Decoder::InfoRequest: {
      GArray *infos = nullptr;
      if (nbd_parse_info_request(buf, len, &name, &infos, &error)) g_array_unref(infos);
      break;
    }
    case Decoder::MetaContextRequest: {
      GPtrArray *queries = nullptr;
      if (nbd_parse_meta_context_request(buf, len, &name, &queries, &error))
        g_ptr_array_unref(queries);
      break;
    }
    case Decoder::RepServer: {
      char *description = nullptr;
      if (nbd_parse_rep_server(buf, len, &name, &description, &error)) g_free(description);
      break;
    }
    case Decoder::Request:
      decode_request(buf, len);
      break;
    case Decoder::Count:
      break;
  }
  g_free(name);
  g_clear_error(&error);
  delete[] buf;
  return 0;
}
