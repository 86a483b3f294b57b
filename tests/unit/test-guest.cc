/* The synthetic guest: RAM, dirty tracking, workload pacing, disks, the
 * serial shell, the font and the framebuffer console. */
#include "config.h"

#include "host/font.h"
#include "host/guest.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <atomic>
#include <bit>
#include <set>
#include <thread>

using namespace qio::host;

static void test_ram_seed() {
  g_autoptr(GError) error = nullptr;
  auto a = GuestRam::create(1 << 20, 7, &error);
  g_assert_no_error(error);
  auto b = GuestRam::create(1 << 20, 7, &error);
  auto c = GuestRam::create(1 << 20, 8, &error);
  g_assert_true(a->digest() == b->digest());
  g_assert_true(a->digest() != c->digest());
  g_assert_cmpuint(a->digest().size(), ==, 64);
  g_assert_cmpuint(a->page_count(), ==, 256);
  g_assert_cmpuint(a->dirty_count(), ==, 0);
  g_assert_cmpuint(a->page_checksum(3), ==, b->page_checksum(3));
  g_assert_cmpuint(a->page_checksum(3), !=, a->page_checksum(4));
}

static void test_ram_bad_size() {
  g_autoptr(GError) error = nullptr;
  g_assert_null(GuestRam::create(0, 1, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);
  g_assert_null(GuestRam::create(4097, 1, &error));
  g_assert_nonnull(strstr(error->message, "4097"));
}

static void test_ram_dirty() {
  auto ram = GuestRam::create(200 * kGuestPageSize, 1, nullptr);
  std::string before = ram->digest();
  guint64 sum = ram->page_checksum(130);
  ram->write_page(130, 1, 1);
  ram->write_page(3, 1, 2);
  ram->write_page(3, 1, 3);
  g_assert_cmpuint(ram->page_checksum(130), !=, sum);
  g_assert_true(ram->digest() != before);
  g_assert_true(ram->is_dirty(130));
  g_assert_false(ram->is_dirty(131));
  g_assert_cmpuint(ram->dirty_count(), ==, 2);
  std::vector<guint64> bitmap;
  g_assert_cmpuint(ram->fetch_and_clear_dirty(bitmap), ==, 2);
  g_assert_cmpuint(bitmap.size(), ==, 4);
  g_assert_cmpuint(bitmap[0], ==, 1u << 3);
  g_assert_cmpuint(bitmap[2], ==, G_GUINT64_CONSTANT(1) << 2);
  g_assert_cmpuint(ram->dirty_count(), ==, 0);
  g_assert_cmpuint(ram->fetch_and_clear_dirty(bitmap), ==, 0);

  /* Copying dirty pages to a second RAM makes the digests equal. */
  auto dst = GuestRam::create(200 * kGuestPageSize, 1, nullptr);
  std::vector<guint8> page(kGuestPageSize);
  ram->write_page(77, 5, 9);
  ram->fetch_and_clear_dirty(bitmap);
  dst->write_page(77, 1, 1);
  ram->read_page(77, page);
  dst->load_page(77, page);
  for (guint64 p : {3, 130}) {
    ram->read_page(p, page);
    dst->load_page(p, page);
  }
  g_assert_true(ram->digest() == dst->digest());
}

/* A writer thread racing fetch-and-clear: every page written is seen in
 * some round, none is lost. */
static void test_ram_dirty_concurrent() {
  auto ram = GuestRam::create(1024 * kGuestPageSize, 1, nullptr);
  std::vector<bool> seen(1024);
  std::thread writer([&] {
    for (guint64 p = 0; p < 1024; p++) ram->write_page(p, 2, p);
  });
  std::vector<guint64> bitmap;
  for (int round = 0; round < 1000; round++) {
    ram->fetch_and_clear_dirty(bitmap);
    for (guint64 p = 0; p < 1024; p++)
      if (bitmap[p / 64] >> (p % 64) & 1) seen[p] = true;
  }
  writer.join();
  ram->fetch_and_clear_dirty(bitmap);
  for (guint64 p = 0; p < 1024; p++) {
    if (bitmap[p / 64] >> (p % 64) & 1) seen[p] = true;
    g_assert_true(seen[p]);
  }
}

static void test_workload_pacing() {
  auto ram = GuestRam::create(4096 * kGuestPageSize, 3, nullptr);
  Workload w(*ram, {}, 3);
  w.set_dirty_rate(2000);
  g_usleep(100000);
  g_assert_cmpuint(w.pages_written(), ==, 0); /* starts paused */
  w.resume();
  g_usleep(300000);
  w.pause();
  guint64 written = w.pages_written();
  /* 0.3 s at 2000 pages/s is 600 pages; the pacing may lag on a loaded
   * machine but never runs ahead of the rate. */
  g_assert_cmpuint(written, >, 0);
  g_assert_cmpuint(written, <=, 2000 * 0.3 * 1.5 + 50);
  g_assert_cmpuint(ram->dirty_count(), >, 0);
  std::string digest = ram->digest();
  g_usleep(100000);
  g_assert_cmpuint(w.pages_written(), ==, written);
  g_assert_true(ram->digest() == digest);
}

static std::string make_image(gsize size) {
  g_autofree char *path = nullptr;
  int fd = g_file_open_tmp("qio-guest-disk-XXXXXX", &path, nullptr);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, static_cast<off_t>(size)), ==, 0);
  g_close(fd, nullptr);
  return path;
}

static void test_disk() {
  std::string path = make_image(64 * kGuestBlockSize);
  g_autoptr(GError) error = nullptr;
  auto disk = GuestDisk::open("d0", path.c_str(), &error);
  g_assert_no_error(error);
  g_assert_cmpuint(disk->block_count(), ==, 64);
  std::string before = disk->digest(&error);
  g_assert_no_error(error);
  g_assert_true(disk->write_block(5, 1, 1, &error));
  std::string after = disk->digest(&error);
  g_assert_true(before != after);
  g_assert_cmpuint(disk->blocks_written(), ==, 1);
  disk.reset();
  g_unlink(path.c_str());

  g_assert_null(GuestDisk::open("d1", "/nonexistent/qio.img", &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "d1"));
  g_assert_nonnull(strstr(error->message, "/nonexistent/qio.img"));
}

/* A frozen disk (a mirror's final pass, whose target may stall) is
 * skipped by the workload, not waited for: the workload's lock, which
 * pause() and the main loop take, stays free. */
static void test_workload_skips_frozen_disk() {
  std::string path = make_image(64 * kGuestBlockSize);
  auto ram = GuestRam::create(64 * kGuestPageSize, 3, nullptr);
  auto disk = GuestDisk::open("d0", path.c_str(), nullptr);
  Workload w(*ram, {disk.get()}, 3);
  w.set_disk_rate(2000);
  disk->freeze();
  w.resume();
  g_usleep(200000);
  std::atomic<bool> paused{false};
  std::thread pauser([&] {
    w.pause();
    paused = true;
  });
  /* Not a speed check: 30 s only tells a stuck pause from a slow machine. */
  for (int i = 0; i < 3000 && !paused; i++) g_usleep(10 * 1000);
  g_assert_true(paused.load());
  pauser.join();
  g_assert_cmpuint(disk->blocks_written(), ==, 0);
  disk->thaw();
  w.resume();
  for (int i = 0; i < 3000 && disk->blocks_written() == 0; i++) g_usleep(10 * 1000);
  w.pause();
  g_assert_cmpuint(disk->blocks_written(), >, 0);
  g_assert_cmpuint(w.blocks_written(), ==, disk->blocks_written());
  disk.reset();
  g_unlink(path.c_str());
}

static void test_guest_stop_cont() {
  std::string path = make_image(32 * kGuestBlockSize);
  GuestConfig config;
  config.ram_size = 2 << 20;
  config.dirty_rate = 5000;
  config.disk_rate = 500;
  config.drives.push_back({"disk0", path});
  g_autoptr(GError) error = nullptr;
  auto guest = Guest::create(config, &error);
  g_assert_no_error(error);
  g_assert_true(guest->running());
  g_assert_false(guest->cont());
  std::string ram0 = guest->ram().digest();
  std::string disk0 = guest->find_disk("disk0")->digest(nullptr);
  g_usleep(200000);
  g_assert_true(guest->stop());
  g_assert_false(guest->stop());
  std::string ram1 = guest->ram().digest();
  std::string disk1 = guest->find_disk("disk0")->digest(nullptr);
  g_assert_true(ram0 != ram1);
  g_assert_true(disk0 != disk1);
  g_usleep(100000);
  g_assert_true(guest->ram().digest() == ram1);
  g_assert_true(guest->find_disk("disk0")->digest(nullptr) == disk1);
  g_assert_null(guest->find_disk("disk1"));

  config.drives.push_back({"disk0", path});
  g_assert_null(Guest::create(config, &error));
  g_assert_nonnull(strstr(error->message, "disk0"));
  guest.reset();
  g_unlink(path.c_str());
}

/* Digests on a worker thread match the synchronous ones; destroying the
 * guest waits for a worker still hashing. */
static void test_guest_digests_async() {
  std::string path = make_image(16 * kGuestBlockSize);
  GuestConfig config;
  config.ram_size = 4 << 20;
  config.drives.push_back({"d0", path});
  auto guest = Guest::create(config, nullptr);
  guest->stop();
  bool done = false;
  Guest::Digests got;
  guest->digests_async([&](const Guest::Digests &d, GError *error) {
    g_assert_no_error(error);
    got = d;
    done = true;
  });
  while (!done) g_main_context_iteration(nullptr, TRUE);
  g_assert_true(got.ram == guest->ram().digest());
  g_assert_cmpuint(got.disks.size(), ==, 1);
  g_assert_true(got.disks[0] == guest->find_disk("d0")->digest(nullptr));
  guest->digests_async([](const Guest::Digests &, GError *) {});
  guest.reset();
  /* The completion still arrives; it must not touch the guest. */
  for (int i = 0; i < 100; i++) g_main_context_iteration(nullptr, FALSE);
  g_unlink(path.c_str());
}

static void test_serial_shell() {
  std::string out;
  guint64 rate = 0;
  SerialShell shell({[] { return std::string("running"); },
                     [](SerialShell::Reply reply) { reply("abc"); }, [&](guint64 r) { rate = r; }},
                    [&](std::string_view s) { out.append(s); });
  shell.input("echo hello world\r");
  g_assert_cmpstr(out.c_str(), ==, "echo hello world\r\nhello world\r\nguest> ");
  out.clear();
  shell.input("status\n");
  g_assert_nonnull(strstr(out.c_str(), "\r\nrunning\r\n"));
  out.clear();
  shell.input("digest\n");
  g_assert_cmpstr(out.c_str(), ==, "digest\r\nabc\r\nguest> ");
  shell.input("dirty 1234\n");
  g_assert_cmpuint(rate, ==, 1234);
  out.clear();
  for (const char *bad : {"dirty\n", "dirty -5\n", "dirty 12x\n", "dirty 99999999999999999999999\n"}) {
    out.clear();
    shell.input(bad);
    g_assert_nonnull(strstr(out.c_str(), "error: usage"));
  }
  g_assert_cmpuint(rate, ==, 1234);
  out.clear();
  shell.input("frobnicate\n");
  g_assert_nonnull(strstr(out.c_str(), "unknown command 'frobnicate'"));
  out.clear();
  shell.input("echo abcd\b\x7f" "X\n");
  g_assert_nonnull(strstr(out.c_str(), "\r\nabX\r\n"));
  out.clear();
  shell.input(std::string(1000, 'a') + "\n");
  g_assert_nonnull(strstr(out.c_str(), "line too long"));
  out.clear();
  shell.input(std::string("\x01\x02\x1b") + "echo ok\n");
  g_assert_nonnull(strstr(out.c_str(), "\r\nok\r\n"));
}

/* A digest whose reply comes later: input waits behind it (up to
 * kMaxQueued bytes), each input()'s Done gets what its own bytes printed,
 * and migration carries the busy command and the waiting input. */
static void test_serial_shell_busy() {
  std::vector<SerialShell::Reply> replies;
  SerialShell::Backend backend{[] { return std::string("running"); },
                               [&](SerialShell::Reply reply) { replies.push_back(reply); },
                               [](guint64) {}};
  std::string out;
  SerialShell shell(backend, [&](std::string_view s) { out.append(s); });
  std::vector<std::string> done;
  auto record = [&](std::string output) { done.push_back(std::move(output)); };
  shell.input("digest\recho a\r", record);
  g_assert_cmpuint(replies.size(), ==, 1);
  g_assert_cmpstr(out.c_str(), ==, "digest\r\n");
  g_assert_cmpstr(shell.running_command().c_str(), ==, "digest");
  shell.input("echo b\r\x01", record);
  g_assert_cmpstr(out.c_str(), ==, "digest\r\n");
  g_assert_cmpuint(done.size(), ==, 0);
  g_assert_true(shell.queued_input() == "echo a\recho b\r");

  /* Saved now, restored into a second shell: it asks for the digest
   * again and then runs what waited. */
  std::vector<SerialShell::Reply> replies2;
  std::string out2;
  SerialShell moved({[] { return std::string("running"); },
                     [&](SerialShell::Reply reply) { replies2.push_back(reply); }, [](guint64) {}},
                    [&](std::string_view s) { out2.append(s); });
  moved.restore("", false, shell.running_command(), shell.queued_input());
  g_assert_cmpuint(replies2.size(), ==, 1);
  g_assert_cmpstr(out2.c_str(), ==, "");
  replies2[0]("def");
  g_assert_cmpstr(out2.c_str(), ==,
                  "def\r\nguest> echo a\r\na\r\nguest> echo b\r\nb\r\nguest> ");
  g_assert_cmpstr(moved.running_command().c_str(), ==, "");

  replies[0]("abc");
  g_assert_cmpstr(out.c_str(), ==,
                  "digest\r\nabc\r\nguest> echo a\r\na\r\nguest> echo b\r\nb\r\nguest> ");
  g_assert_cmpuint(done.size(), ==, 2);
  g_assert_cmpstr(done[0].c_str(), ==, "digest\r\nabc\r\nguest> echo a\r\na\r\nguest> ");
  g_assert_cmpstr(done[1].c_str(), ==, "echo b\r\nb\r\nguest> ");
  g_assert_true(shell.queued_input() == "");

  /* A keystroke flood while busy (chardev, VNC: no Done) keeps kMaxQueued
   * bytes, room() says so, and the listener hears when there is room
   * again; a QMP write (with a Done) is kept whole. */
  int room_calls = 0;
  shell.set_room_listener([&] { room_calls++; });
  g_assert_cmpuint(shell.room(), ==, SerialShell::kMaxQueued);
  shell.input("digest\r" + std::string(3 * SerialShell::kMaxQueued, 'x'));
  for (int i = 0; i < 100000; i++) shell.input("y");
  g_assert_cmpuint(shell.queued_input().size(), ==, SerialShell::kMaxQueued);
  g_assert_cmpuint(shell.queued_input().find('y'), ==, std::string::npos);
  g_assert_cmpuint(shell.room(), ==, 0);
  const std::string qmp_line = "\recho " + std::string(200, 'q') + "\r";
  std::string qmp_write;
  for (int i = 0; i < 30; i++) qmp_write += qmp_line;
  shell.input(qmp_write, record);
  g_assert_cmpuint(shell.queued_input().size(), ==, SerialShell::kMaxQueued + qmp_write.size());
  g_assert_cmpint(room_calls, ==, 0);
  replies[1]("abc");
  g_assert_cmpint(room_calls, ==, 1);
  g_assert_cmpuint(shell.room(), ==, SerialShell::kMaxQueued);
  g_assert_cmpuint(done.size(), ==, 3);
  g_assert_nonnull(strstr(done[2].c_str(), ("\r\n" + std::string(200, 'q') + "\r\n").c_str()));
  gsize answered = 0;
  for (gsize at = 0; (at = done[2].find("\r\n" + std::string(200, 'q') + "\r\n", at)) !=
                     std::string::npos;
       at++)
    answered++;
  g_assert_cmpuint(answered, ==, 30);
  shell.set_room_listener(nullptr);

  /* After restore, the rerun digest's reply belongs to no caller: input
   * typed behind it gets its own output only. */
  std::vector<SerialShell::Reply> replies3;
  SerialShell restored({[] { return std::string("running"); },
                        [&](SerialShell::Reply reply) { replies3.push_back(reply); },
                        [](guint64) {}},
                       [](std::string_view) {});
  restored.restore("ec\x1bho", false, "digest", "");
  g_assert_cmpstr(restored.pending_line().c_str(), ==, "echo");
  std::string after_restore;
  restored.input(" hi\r", [&](std::string output) { after_restore = std::move(output); });
  replies3.at(0)("def");
  g_assert_cmpstr(after_restore.c_str(), ==, " hi\r\nhi\r\nguest> ");
  /* Only a digest is rerun; anything else from a migration stream is not. */
  for (const char *bad : {"echo hi", "digest\x1b]0;x", "status"})
    g_assert_false(SerialShell::valid_running_command(bad));
  g_assert_false(SerialShell::valid_running_command(std::string(300, 'd')));
  for (const char *good : {"", "digest", "digest now"})
    g_assert_true(SerialShell::valid_running_command(good));
  restored.restore("", false, "echo pwned", "");
  g_assert_cmpuint(replies3.size(), ==, 1);
  g_assert_cmpstr(restored.running_command().c_str(), ==, "");

  /* A chardev that stopped reading behind a digest reads again when a
   * migration restores the shell idle. */
  int woken = 0;
  restored.set_room_listener([&] { woken++; });
  restored.input("digest\r" + std::string(SerialShell::kMaxQueued, 'z'));
  g_assert_cmpuint(restored.room(), ==, 0);
  restored.restore("", false);
  g_assert_cmpint(woken, ==, 1);
  g_assert_cmpuint(restored.room(), ==, SerialShell::kMaxQueued);

  /* A reply that arrives after the shell is gone does nothing. */
  SerialShell::Reply late;
  {
    SerialShell gone(backend, [](std::string_view) {});
    gone.input("digest\r");
    late = replies.back();
  }
  late("abc");
}

/* Input in one block and byte by byte gives the same output and state,
 * and a pasted run is echoed with one write. */
static void test_serial_shell_blocks() {
  SerialShell::Backend backend{[] { return std::string("running"); },
                               [](SerialShell::Reply reply) { reply("abc"); }, [](guint64) {}};
  std::string block_out, byte_out;
  int block_writes = 0;
  SerialShell block(backend, [&](std::string_view s) {
    block_out.append(s);
    block_writes++;
  });
  SerialShell bytes(backend, [&](std::string_view s) { byte_out.append(s); });
  GRand *rand = g_rand_new_with_seed(7);
  const char specials[] = {'\r', '\n', '\b', 0x7f, 0x01, 0x1b, static_cast<char>(0xc3), ' '};
  for (int round = 0; round < 200; round++) {
    std::string in;
    gint32 len = g_rand_int_range(rand, 0, 400);
    for (gint32 k = 0; k < len; k++) {
      if (g_rand_int_range(rand, 0, 8) == 0)
        in += specials[g_rand_int_range(rand, 0, sizeof specials)];
      else
        in += static_cast<char>(g_rand_int_range(rand, 'a', 'z' + 1));
    }
    if (round % 10 == 0) in += "echo " + std::string(300, 'q') + "\r"; /* overflow */
    if (round % 10 == 1) in += "\recho round\n";
    if (round % 10 == 2) in += "\rdigest\n";
    block.input(in);
    for (char c : in) bytes.input(std::string_view(&c, 1));
    g_assert_cmpstr(block_out.c_str(), ==, byte_out.c_str());
    g_assert_cmpstr(block.pending_line().c_str(), ==, bytes.pending_line().c_str());
    g_assert_cmpint(block.overflowed(), ==, bytes.overflowed());
  }
  g_rand_free(rand);
  g_assert_nonnull(strstr(block_out.c_str(), "line too long"));
  g_assert_nonnull(strstr(block_out.c_str(), "\r\nround\r\n"));
  g_assert_nonnull(strstr(block_out.c_str(), "\r\nabc\r\nguest> "));
  block.input("\n");
  block_out.clear();
  block_writes = 0;
  block.input("echo pasted");
  g_assert_cmpstr(block_out.c_str(), ==, "echo pasted");
  g_assert_cmpint(block_writes, ==, 1);
}

static int glyph_bits(unsigned char c) {
  int n = 0;
  for (int r = 0; r < kFontHeight; r++) n += std::popcount(font_glyph(c)[r]);
  return n;
}

static void test_font() {
  std::set<std::string> seen;
  for (int c = 0x21; c <= 0x7e; c++) {
    g_assert_cmpint(glyph_bits(static_cast<unsigned char>(c)), >, 0);
    seen.insert(std::string(reinterpret_cast<const char *>(font_glyph(static_cast<unsigned char>(c))),
                            kFontHeight));
  }
  /* Every printable character looks different. */
  g_assert_cmpuint(seen.size(), ==, 0x7e - 0x21 + 1);
  g_assert_cmpint(glyph_bits(' '), ==, 0);
  g_assert_cmpint(glyph_bits(0x01), >, 0);
  g_assert_cmpmem(font_glyph(0x01), kFontHeight, font_glyph(0xff), kFontHeight);
}

static int lit_pixels(const Framebuffer &fb, int col, int row) {
  int n = 0;
  for (int y = 0; y < kFontHeight; y++)
    for (int x = 0; x < kFontWidth; x++)
      n += fb.pixel(col * kFontWidth + x, row * kFontHeight + y) == Framebuffer::kForeground;
  return n;
}

static void test_framebuffer() {
  Framebuffer fb(10, 3);
  g_assert_cmpint(fb.width(), ==, 80);
  g_assert_cmpint(fb.height(), ==, 48);
  Rect r = fb.take_damage();
  g_assert_cmpint(r.width, ==, 80);
  g_assert_true(fb.take_damage().empty());
  fb.put_text("AB");
  g_assert_cmpint(fb.cell(0, 0), ==, 'A');
  g_assert_cmpint(lit_pixels(fb, 0, 0), ==, glyph_bits('A'));
  g_assert_cmpint(lit_pixels(fb, 1, 0), ==, glyph_bits('B'));
  r = fb.take_damage();
  g_assert_cmpint(r.x, ==, 0);
  g_assert_cmpint(r.width, ==, 16);
  g_assert_cmpint(r.height, ==, 16);
  fb.put_text("\b");
  g_assert_cmpint(lit_pixels(fb, 1, 0), ==, 0);
  fb.put_text("\r\nline2\r\nline3\r\nline4");
  /* Scrolled: line2 is now on the first row. */
  g_assert_cmpint(fb.cell(0, 0), ==, 'l');
  g_assert_cmpint(fb.cell(4, 0), ==, '2');
  g_assert_cmpint(fb.cell(4, 2), ==, '4');
  g_assert_cmpint(lit_pixels(fb, 4, 2), ==, glyph_bits('4'));
  g_assert_cmpint(fb.cursor_row(), ==, 2);
  fb.put_text("\r\n0123456789wrap");
  g_assert_cmpint(fb.cell(0, 2), ==, 'w');
  fb.put_text("\tx");
  g_assert_cmpint(fb.cell(8, 2), ==, 'x');
}

static void test_guest_console() {
  GuestConfig config;
  config.ram_size = 1 << 20;
  auto guest = Guest::create(config, nullptr);
  std::string serial;
  guest->set_serial_output([&](std::string_view s) { serial.append(s); });
  guest->serial_input("echo hi\n");
  g_assert_nonnull(strstr(serial.c_str(), "hi\r\nguest> "));
  Framebuffer &fb = guest->framebuffer();
  /* Banner, prompt line with the command, its output, the next prompt. */
  g_assert_cmpint(fb.cell(0, 0), ==, 'q');
  g_assert_cmpint(fb.cell(7, 1), ==, 'e');
  g_assert_cmpint(fb.cell(0, 2), ==, 'h');
  g_assert_cmpint(fb.cursor_row(), ==, 3);

  /* `digest` hashes RAM on a worker: the answer comes from the main loop
   * and is the RAM's SHA-256. */
  guest->stop();
  std::string output;
  bool answered = false;
  guest->serial_input("digest\r", [&](std::string out) {
    output = std::move(out);
    answered = true;
  });
  g_assert_false(answered);
  while (!answered) g_main_context_iteration(nullptr, TRUE);
  std::string expected = "digest\r\n" + guest->ram().digest() + "\r\nguest> ";
  g_assert_cmpstr(output.c_str(), ==, expected.c_str());
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/host/ram/seed", test_ram_seed);
  g_test_add_func("/host/ram/bad-size", test_ram_bad_size);
  g_test_add_func("/host/ram/dirty", test_ram_dirty);
  g_test_add_func("/host/ram/dirty-concurrent", test_ram_dirty_concurrent);
  g_test_add_func("/host/workload/pacing", test_workload_pacing);
  g_test_add_func("/host/disk/write-digest", test_disk);
  g_test_add_func("/host/workload/skips-frozen-disk", test_workload_skips_frozen_disk);
  g_test_add_func("/host/guest/stop-cont", test_guest_stop_cont);
  g_test_add_func("/host/serial-shell", test_serial_shell);
  g_test_add_func("/host/serial-shell-blocks", test_serial_shell_blocks);
  g_test_add_func("/host/serial-shell-busy", test_serial_shell_busy);
  g_test_add_func("/host/guest/digests-async", test_guest_digests_async);
  g_test_add_func("/host/font", test_font);
  g_test_add_func("/host/framebuffer", test_framebuffer);
  g_test_add_func("/host/guest/console", test_guest_console);
  return g_test_run();
}
