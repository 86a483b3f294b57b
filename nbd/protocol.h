/*
 * The NBD wire protocol (fixed newstyle handshake, transmission phase,
 * structured replies): constants, the fixed-size message layouts, and the
 * parsers of the variable-length option payloads.  The parsers are pure
 * functions over byte buffers so that every malformed input can be tested
 * without a connection.  All multi-byte fields are big-endian on the wire.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NBD_DEFAULT_PORT 10809

#define NBD_INIT_MAGIC G_GUINT64_CONSTANT(0x4e42444d41474943)   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC G_GUINT64_CONSTANT(0x49484156454F5054)   /* "IHAVEOPT" */
#define NBD_REP_MAGIC G_GUINT64_CONSTANT(0x0003e889045565a9)
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES NBD_FLAG_NO_ZEROES

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_RESIZE (1u << 9)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT 10u

/* Option replies. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_FLAG_ERROR (1u << 31)
#define NBD_REP_ERR_UNSUP (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8u)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Commands and command flags. */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_CACHE 5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u
#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_NONE 0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_OFFSET_HOLE 2u
#define NBD_REPLY_TYPE_BLOCK_STATUS 5u
#define NBD_REPLY_TYPE_ERROR ((1u << 15) | 1u)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2u)

/* base:allocation status bits. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Error values on the wire (independent of the host's errno numbers). */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

/* Sizes of the fixed-size messages. */
#define NBD_OPTION_HEADER_SIZE 16   /* magic, option, length */
#define NBD_OPTION_REPLY_HEADER_SIZE 20
#define NBD_REQUEST_SIZE 28
#define NBD_SIMPLE_REPLY_SIZE 16
#define NBD_STRUCTURED_REPLY_HEADER_SIZE 20

/* Limits: the spec caps names and queries at 4096 bytes; option payloads
 * above NBD_MAX_OPTION_LENGTH are refused with NBD_REP_ERR_TOO_BIG, and
 * data payloads above NBD_MAX_PAYLOAD are refused (the server advertises it
 * as its maximum block size). */
#define NBD_MAX_STRING 4096u
#define NBD_MAX_OPTION_LENGTH (64u * 1024u)
#define NBD_MAX_PAYLOAD (32u * 1024u * 1024u)

#define NBD_META_CONTEXT_BASE_ALLOCATION "base:allocation"

typedef struct {
  guint16 flags;
  guint16 type;
  guint64 cookie;
  guint64 offset;
  guint32 length;
} NBDRequest;

/* Big-endian field access. */
static inline guint16 nbd_get16(const guint8 *p) { return (guint16)((p[0] << 8) | p[1]); }
static inline guint32 nbd_get32(const guint8 *p) {
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}
static inline guint64 nbd_get64(const guint8 *p) {
  return ((guint64)nbd_get32(p) << 32) | nbd_get32(p + 4);
}
static inline void nbd_put16(guint8 *p, guint16 v) {
  p[0] = (guint8)(v >> 8);
  p[1] = (guint8)v;
}
static inline void nbd_put32(guint8 *p, guint32 v) {
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}
static inline void nbd_put64(guint8 *p, guint64 v) {
  nbd_put32(p, (guint32)(v >> 32));
  nbd_put32(p + 4, (guint32)v);
}

/* Decodes a 28-byte request; a wrong magic is a protocol error. */
gboolean nbd_request_decode(const guint8 *buf, NBDRequest *req, GError **error);
void nbd_request_encode(const NBDRequest *req, guint8 *buf);

/* The NBD error (NBD_E*) a server returns for @req against an export of
 * @size bytes, or 0 when the request may run.  @export_flags are the
 * transmission flags the export advertised; @structured tells whether
 * structured replies were negotiated; @meta_context whether a meta context
 * was selected (needed by BLOCK_STATUS).  Unknown commands and flags,
 * payloads above NBD_MAX_PAYLOAD and ranges beyond the end are refused
 * here, so the command handlers see only valid requests. */
guint32 nbd_request_check(const NBDRequest *req, guint64 size, guint16 export_flags,
                          gboolean structured, gboolean meta_context);

/* The payload of NBD_OPT_INFO / NBD_OPT_GO: export name and the requested
 * NBD_INFO_* types.  On a malformed payload returns FALSE with @error set
 * (the server answers NBD_REP_ERR_INVALID). */
gboolean nbd_parse_info_request(const guint8 *data, gsize len, char **name,
                                GArray **infos, GError **error);

/* The payload of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT:
 * export name and query strings (a GPtrArray of char *). */
gboolean nbd_parse_meta_context_request(const guint8 *data, gsize len, char **name,
                                        GPtrArray **queries, GError **error);

/* The payload of an NBD_REP_SERVER reply (client side). */
gboolean nbd_parse_rep_server(const guint8 *data, gsize len, char **name,
                              char **description, GError **error);

/* Builds the payload of an NBD_OPT_INFO/GO or *_META_CONTEXT request
 * (client side); @queries NULL-terminated, may be NULL. */
GByteArray *nbd_build_info_request(const char *name, const guint16 *infos, gsize ninfos);
GByteArray *nbd_build_meta_context_request(const char *name, const char *const *queries);

/* A name for diagnostics: "NBD_OPT_GO", "NBD_CMD_READ", "NBD_REP_ERR_UNKNOWN". */
const char *nbd_option_name(guint32 option);
const char *nbd_command_name(guint16 command);
const char *nbd_reply_name(guint32 reply);
/* strerror-like text for an NBD_E* value. */
const char *nbd_error_name(guint32 nbd_errno);
/* Maps a host errno to the NBD_E* value to put on the wire. */
guint32 nbd_errno_from_host(int host_errno);

G_END_DECLS
