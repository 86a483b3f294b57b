/*
 * Drives NBDClient from the interop tests against qemu-nbd, nbdkit and
 * qio-nbd:
 *   nbd-client-check read URI OUT    copies the whole export into OUT
 *   nbd-client-check write URI IN    writes IN over the start of the export (FUA), flushes
 *   nbd-client-check map URI         prints "offset length flags" block status lines
 */
#include "config.h"

#include "nbd/client.h"

#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s read|write|map URI [FILE]\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  g_autoptr(GError) error = nullptr;
  g_autoptr(NBDClient) client = nbd_client_new();
  if (!nbd_client_connect_uri(client, argv[2], &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  guint64 size = nbd_client_get_info(client)->size;
  if (strcmp(mode, "read") == 0 && argc == 4) {
    FILE *out = fopen(argv[3], "wb");
    if (!out) return 1;
    std::vector<guint8> buf(4 << 20);
    for (guint64 off = 0; off < size; off += buf.size()) {
      gsize n = static_cast<gsize>(MIN(buf.size(), size - off));
      if (!nbd_client_read(client, off, buf.data(), n, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
      }
      if (fwrite(buf.data(), 1, n, out) != n) return 1;
    }
    return fclose(out) == 0 ? 0 : 1;
  }
  if (strcmp(mode, "write") == 0 && argc == 4) {
    g_autofree char *data = nullptr;
    gsize len;
    if (!g_file_get_contents(argv[3], &data, &len, &error) ||
        !nbd_client_write(client, 0, data, len, TRUE, &error) ||
        !nbd_client_flush(client, &error)) {
      fprintf(stderr, "%s\n", error->message);
      return 1;
    }
    return 0;
  }
  if (strcmp(mode, "map") == 0) {
    guint64 off = 0;
    while (off < size) {
      guint32 len = static_cast<guint32>(MIN(size - off, G_GUINT64_CONSTANT(1) << 30));
      g_autoptr(GArray) extents = nbd_client_block_status(client, off, len, &error);
      if (!extents) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
      }
      if (extents->len == 0) return 1;
      for (guint i = 0; i < extents->len && off < size; i++) {
        const NBDExtent &e = g_array_index(extents, NBDExtent, i);
        printf("%" G_GUINT64_FORMAT " %u %u\n", off, e.length, e.flags);
        off += e.length;
      }
    }
    return 0;
  }
  fprintf(stderr, "usage: %s read|write|map URI [FILE]\n", argv[0]);
  return 2;
}
