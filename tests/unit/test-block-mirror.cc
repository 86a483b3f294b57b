/* GuestDisk's dirty tracking and freeze, and BlockMirror copying a disk
 * that a thread keeps writing to an in-process NBDServer export. */
#include "config.h"

#include "host/block-mirror.h"
#include "nbd/server.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <atomic>
#include <cstring>
#include <thread>

using namespace qio::host;

namespace {

struct TempDir {
  char *path;
  TempDir() : path(g_dir_make_tmp("test-block-mirror-XXXXXX", nullptr)) {}
  ~TempDir() {
    g_autoptr(GDir) dir = g_dir_open(path, 0, nullptr);
    const char *name;
    while (dir && (name = g_dir_read_name(dir))) {
      g_autofree char *file = g_build_filename(path, name, nullptr);
      g_unlink(file);
    }
    g_rmdir(path);
    g_free(path);
  }
  std::string file(const char *name, guint64 size) const {
    g_autofree char *p = g_build_filename(path, name, nullptr);
    FILE *f = fopen(p, "w");
    g_assert_nonnull(f);
    g_assert_cmpint(ftruncate(fileno(f), static_cast<off_t>(size)), ==, 0);
    fclose(f);
    return p;
  }
};

std::string contents(const std::string &path) {
  g_autofree char *data = nullptr;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path.c_str(), &data, &len, nullptr));
  return std::string(data, len);
}

}  // namespace

static void test_dirty_tracking() {
  TempDir dir;
  auto disk = GuestDisk::open("d0", dir.file("d.img", 64 * kGuestBlockSize).c_str(), nullptr);
  g_assert_nonnull(disk);
  g_assert_true(disk->write_block(1, 1, 1, nullptr));
  disk->set_dirty_tracking(true);
  g_assert_true(disk->take_dirty().empty());
  g_assert_true(disk->write_block(9, 1, 2, nullptr));
  g_assert_true(disk->write_block(3, 1, 3, nullptr));
  g_assert_true(disk->write_block(9, 1, 4, nullptr));
  auto dirty = disk->take_dirty();
  g_assert_cmpuint(dirty.size(), ==, 2);
  g_assert_cmpuint(dirty[0], ==, 3);
  g_assert_cmpuint(dirty[1], ==, 9);
  g_assert_true(disk->take_dirty().empty());
  disk->set_dirty_tracking(false);
  g_assert_true(disk->write_block(5, 1, 5, nullptr));
  g_assert_true(disk->take_dirty().empty());

  guint8 buf[kGuestBlockSize];
  g_autoptr(GError) error = nullptr;
  g_assert_true(disk->read(9 * kGuestBlockSize, buf, sizeof buf, &error));
  g_assert_no_error(error);
  std::string image = contents(disk->path());
  g_assert_cmpint(memcmp(buf, image.data() + 9 * kGuestBlockSize, sizeof buf), ==, 0);
  g_assert_false(disk->read(64 * kGuestBlockSize, buf, sizeof buf, &error));
  g_assert_nonnull(strstr(error->message, "d0"));
}

static void test_freeze() {
  TempDir dir;
  auto disk = GuestDisk::open("d0", dir.file("d.img", 8 * kGuestBlockSize).c_str(), nullptr);
  disk->freeze();
  std::atomic<bool> written{false};
  std::thread writer([&] {
    disk->write_block(2, 1, 1, nullptr);
    written = true;
  });
  g_usleep(100 * 1000);
  g_assert_false(written.load());
  disk->thaw();
  writer.join();
  g_assert_true(written.load());
  g_assert_cmpuint(disk->blocks_written(), ==, 1);
}

struct MirrorRun {
  GMainLoop *loop;
  bool ready = false;
  bool done = false;
  bool cancelled = false;
  std::string error;
};

static void run_mirror(const char *mode) {
  TempDir dir;
  const guint64 size = 4 << 20;
  auto disk = GuestDisk::open("d0", dir.file("src.img", size).c_str(), nullptr);
  std::string target = dir.file("dst.img", size);
  g_autoptr(GError) error = nullptr;
  g_autoptr(NBDServer) server = nbd_server_new(nullptr);
  g_autoptr(NBDExport) exp = nbd_export_new("t", target.c_str(), FALSE, &error);
  g_assert_no_error(error);
  g_assert_true(nbd_server_add_export(server, exp, &error));
  g_autofree char *sock = g_build_filename(dir.path, "nbd.sock", nullptr);
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_unix(sock, FALSE);
  g_assert_true(nbd_server_listen(server, addr, &error));
  g_assert_no_error(error);

  /* The "guest" writes blocks the whole time the mirror runs. */
  std::atomic<bool> stop{false};
  std::thread guest([&] {
    for (guint64 g = 1; !stop; g++) {
      disk->write_block((g * 7919) % disk->block_count(), 3, g, nullptr);
      g_usleep(500);
    }
  });

  MirrorRun run;
  run.loop = g_main_loop_new(nullptr, FALSE);
  MirrorConfig config;
  config.job_id = "m0";
  config.target = std::string(g_str_equal(mode, "refused") ? "nbd+unix:///none?socket="
                                                          : "nbd+unix:///t?socket=") + sock;
  std::unique_ptr<BlockMirror> mirror;
  mirror = std::make_unique<BlockMirror>(
      *disk, config, nullptr,
      [&run, mode](BlockMirror &m, const BlockMirror::Progress &at) {
        run.ready = true;
        g_assert_cmpuint(at.offset, ==, at.len);
        g_assert_cmpuint(at.len, >=, 4 << 20);
        g_assert_true(at.status == BlockMirror::Status::Ready);
        if (g_str_equal(mode, "force")) m.cancel(true);
        else g_assert_true(m.complete());
      },
      [&run, &mirror](BlockMirror &, const GError *err, bool cancelled) {
        run.done = true;
        run.cancelled = cancelled;
        if (err) run.error = err->message;
        mirror.reset();
        g_main_loop_quit(run.loop);
      });
  g_assert_false(mirror->complete()); /* not ready yet */
  g_main_loop_run(run.loop);
  g_main_loop_unref(run.loop);
  stop = true;
  guest.join();
  g_assert_true(run.done);
  if (g_str_equal(mode, "refused")) {
    g_assert_false(run.ready);
    g_assert_nonnull(strstr(run.error.c_str(), "m0"));
    g_assert_nonnull(strstr(run.error.c_str(), "none"));
  } else if (g_str_equal(mode, "force")) {
    g_assert_true(run.cancelled);
  } else {
    g_assert_cmpstr(run.error.c_str(), ==, "");
    g_assert_false(run.cancelled);
  }
  nbd_server_shutdown(server);
}

static void test_mirror_complete() { run_mirror("complete"); }
static void test_mirror_force_cancel() { run_mirror("force"); }
static void test_mirror_refused() { run_mirror("refused"); }

/* With the guest quiet after ready, the target equals the source. */
static void test_mirror_exact() {
  TempDir dir;
  const guint64 size = 2 << 20;
  auto disk = GuestDisk::open("d0", dir.file("src.img", size).c_str(), nullptr);
  for (guint64 b = 0; b < disk->block_count(); b += 3) disk->write_block(b, 9, b, nullptr);
  std::string target = dir.file("dst.img", size);
  g_autoptr(NBDServer) server = nbd_server_new(nullptr);
  g_autoptr(NBDExport) exp = nbd_export_new("", target.c_str(), FALSE, nullptr);
  nbd_server_add_export(server, exp, nullptr);
  g_autofree char *sock = g_build_filename(dir.path, "nbd.sock", nullptr);
  g_autoptr(QIOSocketAddress) addr = qio_socket_address_new_unix(sock, FALSE);
  g_assert_true(nbd_server_listen(server, addr, nullptr));
  MirrorConfig config;
  config.job_id = "exact";
  config.target = std::string("nbd+unix:///?socket=") + sock;
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  std::string err;
  std::unique_ptr<BlockMirror> mirror;
  mirror = std::make_unique<BlockMirror>(
      *disk, config, nullptr,
      [&disk](BlockMirror &m, const BlockMirror::Progress &) {
        /* Written after ready: the final pass must carry it. */
        disk->write_block(5, 1, 99, nullptr);
        m.complete();
      },
      [&](BlockMirror &, const GError *e, bool) {
        if (e) err = e->message;
        mirror.reset();
        g_main_loop_quit(loop);
      });
  g_main_loop_run(loop);
  g_main_loop_unref(loop);
  g_assert_cmpstr(err.c_str(), ==, "");
  g_assert_true(contents(disk->path()) == contents(target));
  nbd_server_shutdown(server);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/host/guest-disk/dirty-tracking", test_dirty_tracking);
  g_test_add_func("/host/guest-disk/freeze", test_freeze);
  g_test_add_func("/host/block-mirror/exact", test_mirror_exact);
  g_test_add_func("/host/block-mirror/complete-while-writing", test_mirror_complete);
  g_test_add_func("/host/block-mirror/force-cancel", test_mirror_force_cancel);
  g_test_add_func("/host/block-mirror/unknown-export", test_mirror_refused);
  return g_test_run();
}
