/* The NBD protocol parsers and the request validator, with a corpus of
 * malformed option payloads and requests. */
#include "config.h"

#include "nbd/error.h"
#include "nbd/protocol.h"

#include <string>
#include <vector>

namespace {

using Bytes = std::vector<guint8>;

void put32(Bytes &b, guint32 v) {
  guint8 t[4];
  nbd_put32(t, v);
  b.insert(b.end(), t, t + 4);
}
void put16(Bytes &b, guint16 v) {
  guint8 t[2];
  nbd_put16(t, v);
  b.insert(b.end(), t, t + 2);
}
void puts_(Bytes &b, const std::string &s) { b.insert(b.end(), s.begin(), s.end()); }

Bytes info_request(guint32 namelen, const std::string &name, guint16 count,
                   std::vector<guint16> infos) {
  Bytes b;
  put32(b, namelen);
  puts_(b, name);
  put16(b, count);
  for (guint16 i : infos) put16(b, i);
  return b;
}

void test_info_valid() {
  Bytes b = info_request(4, "disk", 2, {NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE});
  g_autofree char *name = nullptr;
  g_autoptr(GArray) infos = nullptr;
  g_autoptr(GError) error = nullptr;
  g_assert_true(nbd_parse_info_request(b.data(), b.size(), &name, &infos, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(name, ==, "disk");
  g_assert_cmpuint(infos->len, ==, 2);
  g_assert_cmpuint(g_array_index(infos, guint16, 1), ==, NBD_INFO_BLOCK_SIZE);
  /* The empty name (the default export) with no requests. */
  Bytes e = info_request(0, "", 0, {});
  g_autofree char *name2 = nullptr;
  g_autoptr(GArray) infos2 = nullptr;
  g_assert_true(nbd_parse_info_request(e.data(), e.size(), &name2, &infos2, nullptr));
  g_assert_cmpstr(name2, ==, "");
}

void test_info_malformed() {
  std::vector<Bytes> corpus = {
      {},                                          /* empty */
      {0, 0, 0},                                   /* short length */
      info_request(5, "disk", 0, {}),              /* name past the end */
      info_request(0xffffffff, "disk", 0, {}),     /* huge name length */
      info_request(4097, std::string(4097, 'a'), 0, {}), /* name above 4096 */
      info_request(4, "disk", 3, {1, 2}),          /* count larger than the data */
      info_request(4, "disk", 1, {1, 2}),          /* trailing bytes */
      info_request(4, std::string("di\0k", 4), 0, {}), /* NUL inside the name */
  };
  Bytes no_count;
  put32(no_count, 4);
  puts_(no_count, "disk");
  corpus.push_back(no_count);
  for (gsize i = 0; i < corpus.size(); i++) {
    char *name = nullptr;
    GArray *infos = nullptr;
    g_autoptr(GError) error = nullptr;
    g_test_message("case %zu", i);
    g_assert_false(nbd_parse_info_request(corpus[i].data(), corpus[i].size(), &name, &infos,
                                          &error));
    g_assert_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "Malformed NBD_OPT_INFO/GO"));
    g_assert_null(name);
    g_assert_null(infos);
  }
}

Bytes meta_request(const std::string &name, guint32 count, std::vector<std::string> queries) {
  Bytes b;
  put32(b, static_cast<guint32>(name.size()));
  puts_(b, name);
  put32(b, count);
  for (auto &q : queries) {
    put32(b, static_cast<guint32>(q.size()));
    puts_(b, q);
  }
  return b;
}

void test_meta_valid() {
  Bytes b = meta_request("disk", 2, {"base:allocation", "qemu:dirty-bitmap:x"});
  g_autofree char *name = nullptr;
  g_autoptr(GPtrArray) queries = nullptr;
  g_assert_true(nbd_parse_meta_context_request(b.data(), b.size(), &name, &queries, nullptr));
  g_assert_cmpstr(name, ==, "disk");
  g_assert_cmpuint(queries->len, ==, 2);
  g_assert_cmpstr(static_cast<char *>(queries->pdata[0]), ==, "base:allocation");
  /* What the client builder makes, the server parser reads. */
  const char *const qs[] = {"base:", nullptr};
  g_autoptr(GByteArray) built = nbd_build_meta_context_request("x", qs);
  g_autofree char *name2 = nullptr;
  g_autoptr(GPtrArray) queries2 = nullptr;
  g_assert_true(
      nbd_parse_meta_context_request(built->data, built->len, &name2, &queries2, nullptr));
  g_assert_cmpstr(static_cast<char *>(queries2->pdata[0]), ==, "base:");
}

void test_meta_malformed() {
  Bytes huge_count = meta_request("disk", 0x40000000, {});
  Bytes past = meta_request("disk", 1, {});
  put32(past, 100);
  puts_(past, "base:");
  Bytes trailing = meta_request("disk", 1, {"base:allocation"});
  trailing.push_back(0);
  std::vector<Bytes> corpus = {
      {}, {0, 0, 0, 9, 'a'}, huge_count, past, trailing,
      meta_request("disk", 2, {"base:allocation"}),
      meta_request(std::string("a\0b", 3), 0, {}),
      meta_request("disk", 1, {std::string(5000, 'q')}),
  };
  for (gsize i = 0; i < corpus.size(); i++) {
    char *name = nullptr;
    GPtrArray *queries = nullptr;
    g_autoptr(GError) error = nullptr;
    g_test_message("case %zu", i);
    g_assert_false(nbd_parse_meta_context_request(corpus[i].data(), corpus[i].size(), &name,
                                                  &queries, &error));
    g_assert_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL);
    g_assert_null(name);
    g_assert_null(queries);
  }
}

void test_rep_server() {
  Bytes ok;
  put32(ok, 4);
  puts_(ok, "diskA description");
  g_autofree char *name = nullptr, *desc = nullptr;
  g_assert_true(nbd_parse_rep_server(ok.data(), ok.size(), &name, &desc, nullptr));
  g_assert_cmpstr(name, ==, "disk");
  g_assert_cmpstr(desc, ==, "A description");
  Bytes bad;
  put32(bad, 10);
  puts_(bad, "abc");
  char *n = nullptr, *d = nullptr;
  g_autoptr(GError) error = nullptr;
  g_assert_false(nbd_parse_rep_server(bad.data(), bad.size(), &n, &d, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL);
  g_assert_false(nbd_parse_rep_server(bad.data(), 2, &n, &d, nullptr));
}

void test_request_codec() {
  NBDRequest req = {NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, G_GUINT64_CONSTANT(0x1122334455667788),
                    G_GUINT64_CONSTANT(1) << 40, 4096};
  guint8 raw[NBD_REQUEST_SIZE];
  nbd_request_encode(&req, raw);
  g_assert_cmpuint(raw[0], ==, 0x25);
  NBDRequest back;
  g_assert_true(nbd_request_decode(raw, &back, nullptr));
  g_assert_cmpuint(back.cookie, ==, req.cookie);
  g_assert_cmpuint(back.offset, ==, req.offset);
  g_assert_cmpuint(back.length, ==, 4096);
  g_assert_cmpuint(back.type, ==, NBD_CMD_WRITE);
  raw[0] ^= 1;
  g_autoptr(GError) error = nullptr;
  g_assert_false(nbd_request_decode(raw, &back, &error));
  g_assert_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL);
}

void test_request_check() {
  const guint64 size = 1 << 20;
  const guint16 rw = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                     NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
  const guint16 ro = NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_CACHE;
  struct Case {
    NBDRequest req;
    guint16 flags;
    gboolean structured, meta;
    guint32 want;
  } cases[] = {
      {{0, NBD_CMD_READ, 1, 0, 4096}, rw, FALSE, FALSE, 0},
      {{0, NBD_CMD_READ, 1, size - 1, 1}, rw, FALSE, FALSE, 0},
      {{0, NBD_CMD_READ, 1, size - 1, 2}, rw, FALSE, FALSE, NBD_EINVAL},
      {{0, NBD_CMD_READ, 1, size + 1, 0}, rw, FALSE, FALSE, NBD_EINVAL},
      {{0, NBD_CMD_READ, 1, G_MAXUINT64, 2}, rw, FALSE, FALSE, NBD_EINVAL}, /* wraps */
      {{0, NBD_CMD_READ, 1, 0, NBD_MAX_PAYLOAD + 1}, rw, FALSE, FALSE, NBD_EINVAL},
      {{0, NBD_CMD_WRITE, 1, size - 1, 2}, rw, FALSE, FALSE, NBD_ENOSPC},
      {{0, NBD_CMD_WRITE, 1, 0, 1}, ro, FALSE, FALSE, NBD_EPERM},
      {{NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 1, 0, 1}, rw, FALSE, FALSE, 0},
      {{NBD_CMD_FLAG_REQ_ONE, NBD_CMD_WRITE, 1, 0, 1}, rw, FALSE, FALSE, NBD_EINVAL},
      {{NBD_CMD_FLAG_DF, NBD_CMD_READ, 1, 0, 1}, rw, FALSE, FALSE, NBD_EINVAL},
      {{NBD_CMD_FLAG_DF, NBD_CMD_READ, 1, 0, 1}, rw, TRUE, FALSE, 0},
      {{0, NBD_CMD_TRIM, 1, 0, 4096}, ro, FALSE, FALSE, NBD_EPERM}, /* a write all the same */
      {{0, NBD_CMD_WRITE_ZEROES, 1, 0, 4096}, ro, FALSE, FALSE, NBD_EPERM},
      {{0, NBD_CMD_TRIM, 1, 0, 4096}, static_cast<guint16>(rw & ~NBD_FLAG_SEND_TRIM), FALSE,
       FALSE, NBD_EINVAL}, /* not advertised */
      {{0, NBD_CMD_WRITE_ZEROES, 1, 0, 4096},
       static_cast<guint16>(rw & ~NBD_FLAG_SEND_WRITE_ZEROES), FALSE, FALSE, NBD_EINVAL},
      {{0, NBD_CMD_TRIM, 1, 0, 4096}, rw, FALSE, FALSE, 0},
      {{0, NBD_CMD_TRIM, 1, 0, size + 1}, rw, FALSE, FALSE, NBD_ENOSPC},
      {{NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_WRITE_ZEROES, 1, 0, 9}, rw,
       FALSE, FALSE, 0},
      {{0, NBD_CMD_FLUSH, 1, 0, 0}, rw, FALSE, FALSE, 0},
      {{0, NBD_CMD_FLUSH, 1, 4, 0}, rw, FALSE, FALSE, NBD_EINVAL},
      {{0, NBD_CMD_CACHE, 1, 0, size}, ro, FALSE, FALSE, 0},
      {{0, NBD_CMD_BLOCK_STATUS, 1, 0, 4096}, rw, TRUE, FALSE, NBD_EINVAL}, /* no context */
      {{0, NBD_CMD_BLOCK_STATUS, 1, 0, 4096}, rw, FALSE, TRUE, NBD_EINVAL},
      {{0, NBD_CMD_BLOCK_STATUS, 1, 0, 0}, rw, TRUE, TRUE, NBD_EINVAL},
      {{NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 1, 0, G_MAXUINT32}, rw, TRUE, TRUE,
       NBD_EINVAL},
      {{NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 1, 0, size}, rw, TRUE, TRUE, 0},
      {{0, 42, 1, 0, 0}, rw, TRUE, TRUE, NBD_EINVAL},
      {{0, NBD_CMD_DISC, 1, 0, 0}, rw, FALSE, FALSE, 0},
  };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_test_message("case %zu: %s", i, nbd_command_name(cases[i].req.type));
    g_assert_cmpuint(nbd_request_check(&cases[i].req, size, cases[i].flags, cases[i].structured,
                                       cases[i].meta),
                     ==, cases[i].want);
  }
}

void test_names() {
  g_assert_cmpstr(nbd_option_name(NBD_OPT_GO), ==, "NBD_OPT_GO");
  g_assert_cmpstr(nbd_reply_name(NBD_REP_ERR_TLS_REQD), ==, "NBD_REP_ERR_TLS_REQD");
  g_assert_cmpstr(nbd_command_name(NBD_CMD_BLOCK_STATUS), ==, "NBD_CMD_BLOCK_STATUS");
  g_assert_cmpuint(nbd_errno_from_host(EROFS), ==, NBD_EPERM);
  g_assert_cmpuint(nbd_errno_from_host(EDQUOT), ==, NBD_ENOSPC);
  g_assert_cmpuint(nbd_errno_from_host(EBADF), ==, NBD_EIO);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/nbd/protocol/info/valid", test_info_valid);
  g_test_add_func("/nbd/protocol/info/malformed", test_info_malformed);
  g_test_add_func("/nbd/protocol/meta-context/valid", test_meta_valid);
  g_test_add_func("/nbd/protocol/meta-context/malformed", test_meta_malformed);
  g_test_add_func("/nbd/protocol/rep-server", test_rep_server);
  g_test_add_func("/nbd/protocol/request/codec", test_request_codec);
  g_test_add_func("/nbd/protocol/request/check", test_request_check);
  g_test_add_func("/nbd/protocol/names", test_names);
  return g_test_run();
}
