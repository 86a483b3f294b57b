/* qcrypto_hash: SHA-256 test vectors, agreement with GChecksum, reuse. */
#include "config.h"

#include "qcrypto/hash.h"

#include <string>
#include <vector>

static std::string sha256(const void *data, gsize len) {
  g_autoptr(QCryptoHash) h = qcrypto_hash_new_sha256();
  qcrypto_hash_update(h, data, len);
  g_autofree char *hex = qcrypto_hash_finish_hex(h);
  return hex;
}

static void test_vectors() {
  std::string empty = sha256("", 0), abc = sha256("abc", 3);
  g_assert_cmpstr(empty.c_str(), ==,
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  g_assert_cmpstr(abc.c_str(), ==,
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Fed in uneven pieces, 8 MiB agree with GChecksum; after finish the
 * hash starts again. */
static void test_pieces_and_reuse() {
  std::vector<guint8> data(8 << 20);
  for (gsize i = 0; i < data.size(); i++) data[i] = static_cast<guint8>(i * 2654435761u >> 13);
  g_autoptr(GChecksum) ref = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(ref, data.data(), static_cast<gssize>(data.size()));
  g_autoptr(QCryptoHash) h = qcrypto_hash_new_sha256();
  for (gsize off = 0, step = 1; off < data.size(); off += step, step = step * 3 + 1)
    qcrypto_hash_update(h, data.data() + off, MIN(step, data.size() - off));
  g_autofree char *hex = qcrypto_hash_finish_hex(h);
  g_assert_cmpstr(hex, ==, g_checksum_get_string(ref));
  qcrypto_hash_update(h, "abc", 3);
  g_autofree char *again = qcrypto_hash_finish_hex(h);
  g_assert_cmpstr(again, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/qcrypto/hash/sha256-vectors", test_vectors);
  g_test_add_func("/qcrypto/hash/pieces-and-reuse", test_pieces_and_reuse);
  return g_test_run();
}
