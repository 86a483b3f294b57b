/* The migration stream's building blocks: the hello and the answer, record
 * headers, URIs, page compression and the device state, each with the
 * malformed input a peer could send. */
#include "config.h"

#include "migration/migration-job.h"
#include "migration/migration-stream.h"
#include "migration/migration-transport.h"
#include "migration/page-compressor.h"
#include "qio/channel-buffer.h"
#include "qio/channel-socket.h"
#include "qio/error.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

using namespace qio::migration;

static void test_hello_roundtrip() {
  Hello h;
  h.kind = ChannelKind::Multifd;
  h.index = 3;
  h.channels = 4;
  h.page_size = 4096;
  h.compression = Compression::Zstd;
  h.ram_size = G_GUINT64_CONSTANT(3) << 32;
  guint8 buf[kHelloSize];
  encode_hello(h, buf);
  g_assert_cmpmem(buf, 8, "QIOMIGR\n", 8);
  Hello out;
  g_autoptr(GError) error = nullptr;
  g_assert_true(decode_hello(buf, out, "chan", &error));
  g_assert_no_error(error);
  g_assert_true(out.kind == ChannelKind::Multifd && out.compression == Compression::Zstd);
  g_assert_cmpuint(out.index, ==, 3);
  g_assert_cmpuint(out.channels, ==, 4);
  g_assert_cmpuint(out.ram_size, ==, G_GUINT64_CONSTANT(3) << 32);
}

static void expect_bad_hello(void (*spoil)(guint8 *), const char *needle) {
  guint8 buf[kHelloSize];
  encode_hello(Hello{}, buf);
  spoil(buf);
  Hello out;
  g_autoptr(GError) error = nullptr;
  g_assert_false(decode_hello(buf, out, "chan0", &error));
  g_assert_error(error, QIO_ERROR, QIO_ERROR_PROTOCOL);
  g_assert_nonnull(strstr(error->message, needle));
  g_assert_nonnull(strstr(error->message, "chan0"));
}

static void test_hello_malformed() {
  expect_bad_hello([](guint8 *b) { b[0] = 'X'; }, "bad magic");
  expect_bad_hello([](guint8 *b) { b[11] = 2; }, "stream version 2");
  expect_bad_hello([](guint8 *b) { b[15] = 9; }, "channel kind 9");
  expect_bad_hello([](guint8 *b) { b[31] = 3; }, "compression 3");
}

static QIOChannelBuffer *answer_of(const char *refusal) {
  QIOChannelBuffer *bioc = qio_channel_buffer_new(64);
  g_assert_true(write_answer(QIO_CHANNEL(bioc), refusal, nullptr));
  qio_channel_buffer_rewind(bioc);
  return bioc;
}

static void test_answer() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelBuffer) ok = answer_of(nullptr);
  g_assert_true(read_answer(QIO_CHANNEL(ok), &error));
  g_autoptr(QIOChannelBuffer) no = answer_of("you shall not pass");
  g_assert_false(read_answer(QIO_CHANNEL(no), &error));
  g_assert_nonnull(strstr(error->message, "refused the migration: you shall not pass"));
  g_clear_error(&error);

  /* Another version without a message; an oversized message; garbage. */
  guint8 v2[16] = {'Q', 'I', 'O', 'M', 'I', 'G', 'R', '\n', 0, 0, 0, 2, 0, 0, 0, 0};
  g_autoptr(QIOChannelBuffer) other = qio_channel_buffer_new_with_data(v2, sizeof(v2));
  g_assert_false(read_answer(QIO_CHANNEL(other), &error));
  g_assert_nonnull(strstr(error->message, "version 2, this qiod version 1"));
  g_clear_error(&error);
  guint8 big[16] = {'Q', 'I', 'O', 'M', 'I', 'G', 'R', '\n', 0, 0, 0, 1, 0, 1, 0, 0};
  g_autoptr(QIOChannelBuffer) huge = qio_channel_buffer_new_with_data(big, sizeof(big));
  g_assert_false(read_answer(QIO_CHANNEL(huge), &error));
  g_assert_nonnull(strstr(error->message, "malformed answer"));
  g_clear_error(&error);
  g_autoptr(QIOChannelBuffer) junk = qio_channel_buffer_new_with_data("HTTP/1.1 200 OK\r\n", 16);
  g_assert_false(read_answer(QIO_CHANNEL(junk), &error));
  g_assert_nonnull(strstr(error->message, "bad magic"));
  g_clear_error(&error);
  g_autoptr(QIOChannelBuffer) shortb = qio_channel_buffer_new_with_data("QIOM", 4);
  g_assert_false(read_answer(QIO_CHANNEL(shortb), &error));
  g_assert_nonnull(error);
}

static void test_record() {
  g_autoptr(QIOChannelBuffer) bioc = qio_channel_buffer_new(64);
  g_assert_true(write_record(QIO_CHANNEL(bioc), RecordType::Device, 5,
                             G_GUINT64_CONSTANT(0x1122334455667788), "hello", 5, nullptr));
  gsize len;
  const guint8 *data = qio_channel_buffer_get_data(bioc, &len);
  g_assert_cmpuint(len, ==, kRecordHeaderSize + 5);
  g_assert_cmpuint(data[3], ==, 3); /* big-endian type */
  qio_channel_buffer_rewind(bioc);
  RecordHeader h;
  g_assert_true(read_record(QIO_CHANNEL(bioc), h, nullptr));
  g_assert_true(h.type == RecordType::Device);
  g_assert_cmpuint(h.count, ==, 5);
  g_assert_cmpuint(h.arg, ==, G_GUINT64_CONSTANT(0x1122334455667788));
}

static void test_uri() {
  MigrationUri uri;
  g_autoptr(GError) error = nullptr;
  g_assert_true(migration_uri_parse("tcp:127.0.0.1:4444", uri, &error));
  g_assert_true(uri.kind == MigrationUri::Kind::Tcp && uri.is_socket());
  g_assert_true(uri.host() == "127.0.0.1");
  g_assert_true(migration_uri_parse("tcp:[::1]:4444", uri, &error));
  g_assert_true(uri.host() == "::1");
  g_assert_true(migration_uri_parse("unix:/tmp/x.sock", uri, &error));
  g_assert_true(uri.kind == MigrationUri::Kind::Unix && uri.host().empty());
  g_assert_true(migration_uri_parse("fd:mig", uri, &error));
  g_assert_true(uri.kind == MigrationUri::Kind::Fd && !uri.is_socket());
  g_assert_true(migration_uri_parse("exec:cat > /dev/null", uri, &error));
  g_assert_cmpstr(uri.command.c_str(), ==, "cat > /dev/null");
  MigrationUri copy = uri;
  g_assert_cmpstr(copy.text.c_str(), ==, "exec:cat > /dev/null");
  const char *bad[] = {"", "ftp:host", "tcp:", "tcp:127.0.0.1", "tcp:127.0.0.1:0",
                       "tcp:host:99999", "unix:", "fd:", "exec:", "defer", "tcp:127.0.0.1:x"};
  for (const char *b : bad) {
    g_assert_false(migration_uri_parse(b, uri, &error));
    g_assert_nonnull(error);
    if (*b) g_assert_nonnull(strstr(error->message, b));
    g_clear_error(&error);
  }
}

static void test_compressor(gconstpointer data) {
  auto method = static_cast<Compression>(GPOINTER_TO_UINT(data));
  PageCompressor tx(method), rx(method);
  gsize len = 3 * 4096;
  for (gsize i = 0; i < len; i++) tx.input()[i] = static_cast<guint8>(i * 7 / 4096);
  const guint8 *packed;
  gsize packed_len;
  g_assert_true(tx.compress(len, &packed, &packed_len, nullptr));
  g_assert_cmpuint(packed_len, <, len);
  std::string copy(reinterpret_cast<const char *>(packed), packed_len);
  std::string out(len, '\0');
  g_assert_true(rx.decompress(reinterpret_cast<const guint8 *>(copy.data()), copy.size(),
                              reinterpret_cast<guint8 *>(out.data()), len, "c", nullptr));
  g_assert_cmpmem(out.data(), len, tx.input(), len);
  /* Corrupt data, or data of the wrong length, is refused by name. */
  g_autoptr(GError) error = nullptr;
  copy[copy.size() / 2] ^= 0x55;
  copy[0] ^= 0x55;
  g_assert_false(rx.decompress(reinterpret_cast<const guint8 *>(copy.data()), copy.size(),
                               reinterpret_cast<guint8 *>(out.data()), len, "chan7", &error));
  g_assert_nonnull(strstr(error->message, "chan7"));
  g_clear_error(&error);
  g_assert_true(tx.compress(4096, &packed, &packed_len, nullptr));
  g_assert_false(rx.decompress(packed, packed_len, reinterpret_cast<guint8 *>(out.data()), len,
                               "chan7", &error));
  g_assert_nonnull(strstr(error->message, "12288 bytes"));
}

static std::unique_ptr<qio::host::Guest> small_guest(guint64 seed) {
  qio::host::GuestConfig config;
  config.ram_size = 64 * 4096;
  config.seed = seed;
  return qio::host::Guest::create(config, nullptr);
}

static void test_devices() {
  auto src = small_guest(1), dst = small_guest(2);
  src->workload().set_dirty_rate(123);
  src->serial_input("echo half-typed");
  std::string state = migration_save_devices(*src, true);
  bool running = false;
  g_autoptr(GError) error = nullptr;
  g_assert_true(migration_load_devices(*dst, state, running, &error));
  g_assert_no_error(error);
  g_assert_true(running);
  g_assert_cmpuint(dst->workload().dirty_rate(), ==, 123);
  g_assert_cmpstr(dst->shell().pending_line().c_str(), ==, "echo half-typed");
  g_assert_true(dst->framebuffer().text() == src->framebuffer().text());
  g_assert_cmpint(dst->framebuffer().cursor_col(), ==, src->framebuffer().cursor_col());

  /* A `digest` still hashing at switchover runs again on the destination,
   * then the input that waited behind it. */
  auto busy = small_guest(1), busy_dst = small_guest(1);
  busy->serial_input("\rdigest\recho after\r");
  g_assert_cmpstr(busy->shell().running_command().c_str(), ==, "digest");
  state = migration_save_devices(*busy, true);
  g_assert_true(migration_load_devices(*busy_dst, state, running, &error));
  g_assert_cmpstr(busy_dst->shell().running_command().c_str(), ==, "digest");
  g_assert_true(busy_dst->shell().queued_input() == "echo after\r");
  while (!busy_dst->shell().running_command().empty()) g_main_context_iteration(nullptr, TRUE);
  std::string text = busy_dst->framebuffer().text();
  g_assert_nonnull(strstr(text.c_str(), busy_dst->ram().digest().c_str()));
  g_assert_nonnull(strstr(text.c_str(), "after"));
  while (!busy->shell().running_command().empty()) g_main_context_iteration(nullptr, TRUE);

  const char *bad[] = {"", "[]", "not json", "{}",
                       "{\"cursor-col\":\"x\"}",
                       "{\"cursor-col\":0,\"cursor-row\":0,\"dirty-rate\":0,\"disk-rate\":0,"
                       "\"generation\":0,\"pages-written\":0,\"blocks-written\":0,"
                       "\"serial-line\":\"\",\"console-text\":\"short\",\"disks\":[]}",
                       "{\"cursor-col\":0,\"cursor-row\":0,\"dirty-rate\":0,\"disk-rate\":0,"
                       "\"generation\":0,\"pages-written\":0,\"blocks-written\":0,"
                       "\"serial-line\":\"\",\"console-text\":\"\",\"disks\":[{\"id\":\"d\"}]}",
                       "{\"cursor-col\":0,\"cursor-row\":0,\"dirty-rate\":0,\"disk-rate\":0,"
                       "\"generation\":0,\"pages-written\":0,\"blocks-written\":0,"
                       "\"serial-line\":\"\",\"console-text\":\"\",\"serial-running\":7,"
                       "\"disks\":[]}",
                       "{\"cursor-col\":0,\"cursor-row\":0,\"dirty-rate\":0,\"disk-rate\":0,"
                       "\"generation\":0,\"pages-written\":0,\"blocks-written\":0,"
                       "\"serial-line\":\"\",\"console-text\":\"\",\"serial-queued\":[],"
                       "\"disks\":[]}",
                       "{\"cursor-col\":0,\"cursor-row\":0,\"dirty-rate\":0,\"disk-rate\":0,"
                       "\"generation\":0,\"pages-written\":0,\"blocks-written\":0,"
                       "\"serial-line\":\"\",\"console-text\":\"\","
                       "\"serial-running\":\"echo pwned\",\"disks\":[]}"};
  for (const char *b : bad) {
    g_assert_false(migration_load_devices(*dst, b, running, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
  }
  /* A hostile source nesting 100 000 deep overflowed the stack in
   * json-glib (found by fuzzing). */
  std::string deep = "{\"disks\":" + std::string(100000, '[');
  g_assert_false(migration_load_devices(*dst, deep, running, &error));
  g_assert_nonnull(strstr(error->message, "nested too deep"));
  g_clear_error(&error);
}

/* The source's TCP channels do not wait for ACKs before sending small
 * records (Nagle with delayed ACKs stalled the switch-over by tens of ms). */
static void test_connect_nodelay() {
  g_autoptr(GError) error = nullptr;
  g_autoptr(QIOChannelSocket) listener = qio_channel_socket_new();
  g_autoptr(QIOSocketAddress) any = qio_socket_address_new_inet("127.0.0.1", 0);
  g_assert_true(qio_channel_socket_listen_sync(listener, any, 1, &error));
  g_autoptr(QIOSocketAddress) bound = qio_channel_socket_get_local_address(listener, &error);
  g_autofree char *text =
      g_strdup_printf("tcp:127.0.0.1:%u", qio_socket_address_get_port(bound));
  MigrationUri uri;
  g_assert_true(migration_uri_parse(text, uri, &error));
  g_autoptr(QIOChannel) ioc = migration_connect(uri, "test", nullptr, &error);
  g_assert_no_error(error);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  g_assert_cmpint(getsockopt(qio_channel_socket_get_fd(QIO_CHANNEL_SOCKET(ioc)), IPPROTO_TCP,
                             TCP_NODELAY, &nodelay, &len),
                  ==, 0);
  g_assert_cmpint(nodelay, !=, 0);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, nullptr);
  g_test_add_func("/migration/stream/hello", test_hello_roundtrip);
  g_test_add_func("/migration/stream/hello-malformed", test_hello_malformed);
  g_test_add_func("/migration/stream/answer", test_answer);
  g_test_add_func("/migration/stream/record", test_record);
  g_test_add_func("/migration/uri", test_uri);
  g_test_add_func("/migration/connect-nodelay", test_connect_nodelay);
  g_test_add_data_func("/migration/compressor/zlib",
                       GUINT_TO_POINTER(static_cast<guint>(Compression::Zlib)), test_compressor);
  g_test_add_data_func("/migration/compressor/zstd",
                       GUINT_TO_POINTER(static_cast<guint>(Compression::Zstd)), test_compressor);
  g_test_add_func("/migration/devices", test_devices);
  return g_test_run();
}
