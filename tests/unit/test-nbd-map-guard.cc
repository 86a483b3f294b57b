/* MapGuard and the export maps it protects: a file that shrinks under a
 * mapping no longer kills the process, the pages it lost read as zeroes,
 * and the export stops trusting its map (writes through it fail). */
#include "config.h"

#include "nbd/export.h"
#include "nbd/map-guard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using qio::nbd::MapGuard;

const gsize kPage = static_cast<gsize>(sysconf(_SC_PAGESIZE));

/* A tmpfs file (memfd) of @pages pages, each filled with its index + 1. */
int filled_memfd(gsize pages) {
  int fd = memfd_create("map-guard-test", MFD_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  std::vector<guint8> page(kPage);
  for (gsize i = 0; i < pages; i++) {
    std::fill(page.begin(), page.end(), static_cast<guint8>(i + 1));
    g_assert_cmpint(pwrite(fd, page.data(), kPage, static_cast<off_t>(i * kPage)), ==, kPage);
  }
  return fd;
}

guint8 *map_shared(int fd, gsize len) {
  void *map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  g_assert_true(map != MAP_FAILED);
  return static_cast<guint8 *>(map);
}

void test_survives_shrink() {
  int fd = filled_memfd(4);
  guint8 *map = map_shared(fd, 4 * kPage);
  {
    MapGuard guard(map, 4 * kPage);
    g_assert_true(guard.ok());
    g_assert_cmpuint(guard.faults(), ==, 0);
    g_assert_cmpuint(map[2 * kPage], ==, 3);
    g_assert_cmpint(ftruncate(fd, static_cast<off_t>(kPage)), ==, 0);
    /* Page 2 is gone: it reads as zeroes, once counted. */
    volatile guint8 *p = map;
    g_assert_cmpuint(p[2 * kPage], ==, 0);
    g_assert_cmpuint(p[2 * kPage + 7], ==, 0);
    g_assert_cmpuint(guard.faults(), ==, 1);
    /* A write into another lost page lands in private memory. */
    p[3 * kPage + 1] = 0x5a;
    g_assert_cmpuint(p[3 * kPage + 1], ==, 0x5a);
    g_assert_cmpuint(guard.faults(), ==, 2);
    /* The page the file still has is still the file's. */
    p[5] = 0x77;
    guint8 b = 0;
    g_assert_cmpint(pread(fd, &b, 1, 5), ==, 1);
    g_assert_cmpuint(b, ==, 0x77);
    g_assert_cmpuint(guard.faults(), ==, 2);
  }
  munmap(map, 4 * kPage);
  close(fd);
}

void test_unguarded_fault_still_kills() {
  if (g_test_subprocess()) {
    /* The handler is installed, but this range has no guard (any more). */
    int fd = filled_memfd(2);
    guint8 *map = map_shared(fd, 2 * kPage);
    { MapGuard guard(map, 2 * kPage); }
    g_assert_cmpint(ftruncate(fd, 0), ==, 0);
    volatile guint8 *p = map;
    g_print("read %u\n", p[kPage]);
    return;
  }
  g_test_trap_subprocess(nullptr, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();
  /* Died at the access: not before it on a failed assertion, not after.
   * (Under ASan the death is reported as "ERROR: AddressSanitizer: BUS".) */
  g_test_trap_assert_stderr_unmatched("*assertion failed*");
  g_test_trap_assert_stdout_unmatched("*read*");
}

void test_slots_run_out_and_come_back() {
  std::vector<std::unique_ptr<MapGuard>> guards;
  std::vector<guint8> area(128);
  for (;;) {
    auto guard = std::make_unique<MapGuard>(area.data() + guards.size(), 1);
    if (!guard->ok()) break;
    guards.push_back(std::move(guard));
    g_assert_cmpuint(guards.size(), <=, 64);
  }
  g_assert_cmpuint(guards.size(), ==, 64);
  guards.pop_back();
  MapGuard again(area.data() + 100, 1);
  g_assert_true(again.ok());
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

void test_export_stops_trusting_its_map() {
  int fd = filled_memfd(8);
  g_autoptr(GError) error = nullptr;
  std::string path = fd_path(fd);
  NBDExport *exp = nbd_export_new("disk", path.c_str(), FALSE, &error);
  g_assert_no_error(error);
  guint8 *map = nbd_export_get_map(exp);
  g_assert_nonnull(map);
  g_assert_true(nbd_export_get_read_map(exp) == map); /* memfd is tmpfs */
  g_assert_true(nbd_export_map_intact(exp));
  g_assert_cmpint(ftruncate(fd, static_cast<off_t>(2 * kPage)), ==, 0);
  memset(map + 4 * kPage, 0xee, kPage); /* as a receive into the map would */
  g_assert_false(nbd_export_map_intact(exp));
  g_assert_null(nbd_export_get_map(exp));
  g_assert_null(nbd_export_get_read_map(exp));
  /* Plain positional I/O goes on: a write past the new end grows the file. */
  std::vector<guint8> data(kPage, 0x42), back(kPage);
  g_assert_cmpint(nbd_export_write(exp, data.data(), kPage, 4 * kPage, FALSE), ==, 0);
  g_assert_cmpint(nbd_export_read(exp, back.data(), kPage, 4 * kPage), ==, 0);
  g_assert_true(back == data);
  g_object_unref(exp);
  close(fd);
}

void test_read_only_export_maps_memory_files_only() {
  int fd = filled_memfd(2);
  g_autoptr(GError) error = nullptr;
  std::string path = fd_path(fd);
  NBDExport *exp = nbd_export_new("ro", path.c_str(), TRUE, &error);
  g_assert_no_error(error);
  g_assert_null(nbd_export_get_map(exp)); /* nothing writes through it */
  const guint8 *map = nbd_export_get_read_map(exp);
  g_assert_nonnull(map);
  g_assert_cmpuint(map[kPage + 3], ==, 2);
  g_object_unref(exp);
  close(fd);
}

}  // namespace

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/nbd/map-guard/survives-shrink", test_survives_shrink);
  g_test_add_func("/nbd/map-guard/unguarded-fault-still-kills", test_unguarded_fault_still_kills);
  g_test_add_func("/nbd/map-guard/slots-run-out-and-come-back",
                  test_slots_run_out_and_come_back);
  g_test_add_func("/nbd/map-guard/export-stops-trusting-its-map",
                  test_export_stops_trusting_its_map);
  g_test_add_func("/nbd/map-guard/read-only-export-maps-memory-files-only",
                  test_read_only_export_maps_memory_files_only);
  return g_test_run();
}
