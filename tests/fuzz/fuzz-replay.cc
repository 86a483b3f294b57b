/* The main() of a fuzz harness built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named (a directory: on every
 * file under it, in name order).  `make check` replays each harness's seeds
 * and the inputs of problems fuzzing found this way (test-fuzz-replay.sh),
 * so that the harnesses keep building with the ordinary compiler and the
 * problems stay fixed. */
#include "config.h"

#include <glib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

bool collect(const char *path, std::vector<std::string> &files) {
  if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
    files.emplace_back(path);
    return true;
  }
  GError *error = nullptr;
  GDir *dir = g_dir_open(path, 0, &error);
  if (!dir) {
    fprintf(stderr, "%s\n", error->message);
    g_error_free(error);
    return false;
  }
  std::vector<std::string> names;
  while (const char *name = g_dir_read_name(dir)) names.emplace_back(name);
  g_dir_close(dir);
  std::sort(names.begin(), names.end());
  for (const auto &name : names) {
    g_autofree char *child = g_build_filename(path, name.c_str(), nullptr);
    if (!collect(child, files)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++)
    if (!collect(argv[i], files)) return 2;
  for (const auto &file : files) {
    gchar *contents = nullptr;
    gsize len = 0;
    GError *error = nullptr;
    if (!g_file_get_contents(file.c_str(), &contents, &len, &error)) {
      fprintf(stderr, "%s\n", error->message);
      g_error_free(error);
      return 2;
    }
    /* Before the run, so that a crash names its input. */
    fprintf(stderr, "replaying %s (%zu bytes)\n", file.c_str(), static_cast<size_t>(len));
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(contents), len);
    g_free(contents);
  }
  printf("%zu inputs replayed\n", files.size());
  return 0;
}
