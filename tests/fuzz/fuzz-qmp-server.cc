/* The QMP server (monitor/qmp-server) as a client sees it: the input is
 * what one client sends over a socket pair, capabilities negotiation and
 * commands alike, then EOF.  The commands registered cover every argument
 * type, extra arguments, a failing handler and an asynchronous one, so
 * that argument checking and reply ordering are reached.  The server must
 * close the connection once it has read EOF. */
#include "config.h"

#include "monitor/qmp-server.h"
#include "tests/fuzz/fuzz-util.h"

#include <cstddef>
#include <cstdint>

using namespace qio::monitor;

namespace {

constexpr size_t kMaxInput = 16384;

QmpServer *make_server() {
  fuzz::quiet_logs();
  QmpLimits limits;
  limits.max_message = 4096;
  limits.max_depth = 16;
  auto *server = new QmpServer(nullptr, limits);
  server->add_command({"fuzz-all-types",
                       {{"s", QmpArgType::String},
                        {"i", QmpArgType::Int, true},
                        {"b", QmpArgType::Bool, true},
                        {"n", QmpArgType::Number, true},
                        {"o", QmpArgType::Object, true},
                        {"a", QmpArgType::Array, true},
                        {"x", QmpArgType::Any, true}},
                       false,
                       [](JsonObject *, GError **) -> JsonNode * { return qmp_empty_object(); }});
  server->add_command({"fuzz-fails", {{"qom-type", QmpArgType::String}}, true,
                       [](JsonObject *, GError **error) -> JsonNode * {
                         g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "refused");
                         return nullptr;
                       }});
  QmpCommand async{"fuzz-async", {{"v", QmpArgType::Int, true}}, false, nullptr};
  async.async_handler = [](JsonObject *, QmpCompletion done) {
    done(qmp_empty_object(), nullptr);
  };
  server->add_command(async);
  return server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static QmpServer *server = make_server();
  if (size > kMaxInput) return 0;
  fuzz::PeerPair pair;
  server->add_client(QIO_CHANNEL(pair.server));
  fuzz::play_peer(pair.fd, data, size, 5);
  for (int i = 0; i < 100 && server->client_count() > 0; i++)
    g_main_context_iteration(nullptr, FALSE);
  /* A closed session is freed from an idle callback, after its read loop
   * has been resumed once more: run what is pending, or every input would
   * leave one behind (and the fuzzer would report the growth). */
  for (int i = 0; i < 1000 && g_main_context_iteration(nullptr, FALSE); i++) {
  }
  return 0;
}
