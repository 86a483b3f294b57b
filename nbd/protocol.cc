#include "config.h"

#include "nbd/protocol.h"

#include "nbd/error.h"

#include <glib/gi18n-lib.h>

#include <cerrno>
#include <cstring>

gboolean nbd_request_decode(const guint8 *buf, NBDRequest *req, GError **error) {
  guint32 magic = nbd_get32(buf);
  if (magic != NBD_REQUEST_MAGIC) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL,
                _("NBD request has magic 0x%08x instead of 0x%08x; the client is not "
                  "speaking the NBD transmission protocol"),
                magic, NBD_REQUEST_MAGIC);
    return FALSE;
  }
  req->flags = nbd_get16(buf + 4);
  req->type = nbd_get16(buf + 6);
  req->cookie = nbd_get64(buf + 8);
  req->offset = nbd_get64(buf + 16);
  req->length = nbd_get32(buf + 24);
  return TRUE;
}

void nbd_request_encode(const NBDRequest *req, guint8 *buf) {
  nbd_put32(buf, NBD_REQUEST_MAGIC);
  nbd_put16(buf + 4, req->flags);
  nbd_put16(buf + 6, req->type);
  nbd_put64(buf + 8, req->cookie);
  nbd_put64(buf + 16, req->offset);
  nbd_put32(buf + 24, req->length);
}

guint32 nbd_request_check(const NBDRequest *req, guint64 size, guint16 export_flags,
                          gboolean structured, gboolean meta_context) {
  guint16 allowed = 0;
  gboolean writes = FALSE;
  gboolean ranged = TRUE;
  gboolean offered = TRUE;
  switch (req->type) {
    case NBD_CMD_READ:
      allowed = NBD_CMD_FLAG_DF;
      if (req->length > NBD_MAX_PAYLOAD) return NBD_EINVAL;
      break;
    case NBD_CMD_WRITE:
      allowed = NBD_CMD_FLAG_FUA;
      writes = TRUE;
      if (req->length > NBD_MAX_PAYLOAD) return NBD_EINVAL;
      break;
    case NBD_CMD_TRIM:
      offered = (export_flags & NBD_FLAG_SEND_TRIM) != 0;
      allowed = NBD_CMD_FLAG_FUA;
      writes = TRUE;
      break;
    case NBD_CMD_WRITE_ZEROES:
      offered = (export_flags & NBD_FLAG_SEND_WRITE_ZEROES) != 0;
      allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
      writes = TRUE;
      break;
    case NBD_CMD_FLUSH:
      ranged = FALSE;
      break;
    case NBD_CMD_CACHE:
      if (!(export_flags & NBD_FLAG_SEND_CACHE)) return NBD_EINVAL;
      break;
    case NBD_CMD_BLOCK_STATUS:
      if (!structured || !meta_context) return NBD_EINVAL;
      allowed = NBD_CMD_FLAG_REQ_ONE;
      if (req->length == 0) return NBD_EINVAL;
      break;
    case NBD_CMD_DISC:
      ranged = FALSE;
      break;
    default:
      return NBD_EINVAL;
  }
  /* A read-only export offers no trim or zeroing; asked for anyway, they
   * are refused as the writes they are. */
  if (writes && (export_flags & NBD_FLAG_READ_ONLY)) return NBD_EPERM;
  if (!offered) return NBD_EINVAL;
  if (req->flags & ~allowed) return NBD_EINVAL;
  if ((req->flags & NBD_CMD_FLAG_DF) && !structured) return NBD_EINVAL;
  if (ranged) {
    /* offset + length may wrap; compare without adding. */
    if (req->offset > size || req->length > size - req->offset)
      return writes ? NBD_ENOSPC : NBD_EINVAL;
  } else if (req->type == NBD_CMD_FLUSH && (req->offset || req->length)) {
    return NBD_EINVAL;
  }
  return 0;
}

namespace {

/* A bounds-checked cursor over an option payload. */
struct Reader {
  const guint8 *p;
  gsize left;
  bool u16(guint16 *v) {
    if (left < 2) return false;
    *v = nbd_get16(p);
    p += 2;
    left -= 2;
    return true;
  }
  bool u32(guint32 *v) {
    if (left < 4) return false;
    *v = nbd_get32(p);
    p += 4;
    left -= 4;
    return true;
  }
  /* A u32-prefixed string (or one of @n bytes when n is given). */
  bool string(guint32 n, char **out) {
    if (n > left || n > NBD_MAX_STRING) return false;
    if (memchr(p, '\0', n)) return false;
    *out = g_strndup(reinterpret_cast<const char *>(p), n);
    p += n;
    left -= n;
    return true;
  }
};

void set_malformed(GError **error, const char *what, const char *why) {
  g_set_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL,
              _("Malformed %s payload: %s; the peer does not follow the NBD specification"),
              what, why);
}

}  // namespace

gboolean nbd_parse_info_request(const guint8 *data, gsize len, char **name, GArray **infos,
                                GError **error) {
  Reader r{data, len};
  guint32 namelen;
  g_autofree char *n = nullptr;
  if (!r.u32(&namelen)) return set_malformed(error, "NBD_OPT_INFO/GO", _("no name length")), FALSE;
  if (namelen > NBD_MAX_STRING)
    return set_malformed(error, "NBD_OPT_INFO/GO", _("export name longer than 4096 bytes")), FALSE;
  if (!r.string(namelen, &n))
    return set_malformed(error, "NBD_OPT_INFO/GO",
                         _("export name runs past the option or contains NUL")),
           FALSE;
  guint16 count;
  if (!r.u16(&count))
    return set_malformed(error, "NBD_OPT_INFO/GO", _("no information request count")), FALSE;
  if (static_cast<gsize>(count) * 2 != r.left)
    return set_malformed(error, "NBD_OPT_INFO/GO",
                         _("information request count does not match the option length")),
           FALSE;
  GArray *arr = g_array_sized_new(FALSE, FALSE, sizeof(guint16), count);
  for (guint16 i = 0; i < count; i++) {
    guint16 t;
    r.u16(&t);
    g_array_append_val(arr, t);
  }
  *name = g_steal_pointer(&n);
  *infos = arr;
  return TRUE;
}

gboolean nbd_parse_meta_context_request(const guint8 *data, gsize len, char **name,
                                        GPtrArray **queries, GError **error) {
  const char *what = "NBD_OPT_*_META_CONTEXT";
  Reader r{data, len};
  guint32 namelen;
  g_autofree char *n = nullptr;
  if (!r.u32(&namelen)) return set_malformed(error, what, _("no name length")), FALSE;
  if (!r.string(namelen, &n))
    return set_malformed(error, what,
                         _("export name too long, past the option, or containing NUL")),
           FALSE;
  guint32 count;
  if (!r.u32(&count)) return set_malformed(error, what, _("no query count")), FALSE;
  /* Each query takes at least its 4-byte length: bound the count first. */
  if (count > r.left / 4)
    return set_malformed(error, what, _("more queries than the option can hold")), FALSE;
  g_autoptr(GPtrArray) arr = g_ptr_array_new_with_free_func(g_free);
  for (guint32 i = 0; i < count; i++) {
    guint32 qlen;
    char *q = nullptr;
    if (!r.u32(&qlen) || !r.string(qlen, &q))
      return set_malformed(error, what,
                           _("query too long, past the option, or containing NUL")),
             FALSE;
    g_ptr_array_add(arr, q);
  }
  if (r.left != 0)
    return set_malformed(error, what, _("trailing bytes after the last query")), FALSE;
  *name = g_steal_pointer(&n);
  *queries = static_cast<GPtrArray *>(g_steal_pointer(&arr));
  return TRUE;
}

gboolean nbd_parse_rep_server(const guint8 *data, gsize len, char **name, char **description,
                              GError **error) {
  Reader r{data, len};
  guint32 namelen;
  g_autofree char *n = nullptr;
  if (!r.u32(&namelen) || !r.string(namelen, &n))
    return set_malformed(error, "NBD_REP_SERVER",
                         _("export name too long, past the reply, or containing NUL")),
           FALSE;
  char *d = nullptr;
  if (!r.string(static_cast<guint32>(r.left), &d))
    return set_malformed(error, "NBD_REP_SERVER",
                         _("description too long or containing NUL")),
           FALSE;
  *name = g_steal_pointer(&n);
  *description = d;
  return TRUE;
}

GByteArray *nbd_build_info_request(const char *name, const guint16 *infos, gsize ninfos) {
  gsize namelen = strlen(name);
  GByteArray *b = g_byte_array_sized_new(static_cast<guint>(4 + namelen + 2 + 2 * ninfos));
  guint8 tmp[4];
  nbd_put32(tmp, static_cast<guint32>(namelen));
  g_byte_array_append(b, tmp, 4);
  g_byte_array_append(b, reinterpret_cast<const guint8 *>(name), static_cast<guint>(namelen));
  nbd_put16(tmp, static_cast<guint16>(ninfos));
  g_byte_array_append(b, tmp, 2);
  for (gsize i = 0; i < ninfos; i++) {
    nbd_put16(tmp, infos[i]);
    g_byte_array_append(b, tmp, 2);
  }
  return b;
}

GByteArray *nbd_build_meta_context_request(const char *name, const char *const *queries) {
  GByteArray *b = g_byte_array_new();
  guint8 tmp[4];
  auto put_string = [&](const char *s) {
    gsize l = strlen(s);
    nbd_put32(tmp, static_cast<guint32>(l));
    g_byte_array_append(b, tmp, 4);
    g_byte_array_append(b, reinterpret_cast<const guint8 *>(s), static_cast<guint>(l));
  };
  put_string(name);
  guint32 n = queries ? g_strv_length(const_cast<char **>(queries)) : 0;
  nbd_put32(tmp, n);
  g_byte_array_append(b, tmp, 4);
  for (guint32 i = 0; i < n; i++) put_string(queries[i]);
  return b;
}

const char *nbd_option_name(guint32 option) {
  switch (option) {
    case NBD_OPT_EXPORT_NAME: return "NBD_OPT_EXPORT_NAME";
    case NBD_OPT_ABORT: return "NBD_OPT_ABORT";
    case NBD_OPT_LIST: return "NBD_OPT_LIST";
    case NBD_OPT_STARTTLS: return "NBD_OPT_STARTTLS";
    case NBD_OPT_INFO: return "NBD_OPT_INFO";
    case NBD_OPT_GO: return "NBD_OPT_GO";
    case NBD_OPT_STRUCTURED_REPLY: return "NBD_OPT_STRUCTURED_REPLY";
    case NBD_OPT_LIST_META_CONTEXT: return "NBD_OPT_LIST_META_CONTEXT";
    case NBD_OPT_SET_META_CONTEXT: return "NBD_OPT_SET_META_CONTEXT";
    default: return "unknown option";
  }
}

const char *nbd_command_name(guint16 command) {
  switch (command) {
    case NBD_CMD_READ: return "NBD_CMD_READ";
    case NBD_CMD_WRITE: return "NBD_CMD_WRITE";
    case NBD_CMD_DISC: return "NBD_CMD_DISC";
    case NBD_CMD_FLUSH: return "NBD_CMD_FLUSH";
    case NBD_CMD_TRIM: return "NBD_CMD_TRIM";
    case NBD_CMD_CACHE: return "NBD_CMD_CACHE";
    case NBD_CMD_WRITE_ZEROES: return "NBD_CMD_WRITE_ZEROES";
    case NBD_CMD_BLOCK_STATUS: return "NBD_CMD_BLOCK_STATUS";
    default: return "unknown command";
  }
}

const char *nbd_reply_name(guint32 reply) {
  switch (reply) {
    case NBD_REP_ACK: return "NBD_REP_ACK";
    case NBD_REP_SERVER: return "NBD_REP_SERVER";
    case NBD_REP_INFO: return "NBD_REP_INFO";
    case NBD_REP_META_CONTEXT: return "NBD_REP_META_CONTEXT";
    case NBD_REP_ERR_UNSUP: return "NBD_REP_ERR_UNSUP";
    case NBD_REP_ERR_POLICY: return "NBD_REP_ERR_POLICY";
    case NBD_REP_ERR_INVALID: return "NBD_REP_ERR_INVALID";
    case NBD_REP_ERR_PLATFORM: return "NBD_REP_ERR_PLATFORM";
    case NBD_REP_ERR_TLS_REQD: return "NBD_REP_ERR_TLS_REQD";
    case NBD_REP_ERR_UNKNOWN: return "NBD_REP_ERR_UNKNOWN";
    case NBD_REP_ERR_SHUTDOWN: return "NBD_REP_ERR_SHUTDOWN";
    case NBD_REP_ERR_BLOCK_SIZE_REQD: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
    case NBD_REP_ERR_TOO_BIG: return "NBD_REP_ERR_TOO_BIG";
    default: return "unknown reply";
  }
}

const char *nbd_error_name(guint32 nbd_errno) {
  switch (nbd_errno) {
    case NBD_EPERM: return g_strerror(EPERM);
    case NBD_EIO: return g_strerror(EIO);
    case NBD_ENOMEM: return g_strerror(ENOMEM);
    case NBD_EINVAL: return g_strerror(EINVAL);
    case NBD_ENOSPC: return g_strerror(ENOSPC);
    case NBD_EOVERFLOW: return g_strerror(EOVERFLOW);
    case NBD_ENOTSUP: return g_strerror(ENOTSUP);
    case NBD_ESHUTDOWN: return g_strerror(ESHUTDOWN);
    default: return _("unknown NBD error");
  }
}

guint32 nbd_errno_from_host(int host_errno) {
  switch (host_errno) {
    case 0: return 0;
    case EPERM:
    case EROFS:
    case EACCES: return NBD_EPERM;
    case ENOMEM: return NBD_ENOMEM;
    case EINVAL: return NBD_EINVAL;
    case ENOSPC:
    case EFBIG:
    case EDQUOT: return NBD_ENOSPC;
    case EOVERFLOW: return NBD_EOVERFLOW;
    case ENOTSUP: return NBD_ENOTSUP;
    case ESHUTDOWN: return NBD_ESHUTDOWN;
    default: return NBD_EIO;
  }
}
