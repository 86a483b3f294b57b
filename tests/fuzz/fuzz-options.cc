/* Option and address text that reaches qiod from its command line, QMP or
 * a file: -object key=value lists (qom/keyval), -vnc, -chardev, socket
 * addresses, NBD and migration URIs, and authz-list rules.  Byte 0 picks
 * the parser, the rest is the text (NUL-terminated, as every caller
 * passes it).  Each parsed result is used the way its caller uses it. */
#include "config.h"

#include "chardev/chardev-options.h"
#include "migration/migration-transport.h"
#include "nbd/client.h"
#include "qcrypto/authz-list-rule.h"
#include "qio/socket-address.h"
#include "qom/keyval.h"
#include "ui/vnc-server.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

enum class Parser : guint8 {
  Keyval,
  Vnc,
  Chardev,
  SocketAddress,
  NbdUri,
  MigrationUri,
  AuthzRules,
  Count
};

void parse_keyval(const char *text, GError **error) {
  if (JsonObject *obj = qom_keyval_parse(text, "qom-type", error)) json_object_unref(obj);
  g_free(qom_keyval_find_id(text));
}

void parse_chardev(const char *text, GError **error) {
  auto opts = qio::chardev::ChardevOptions::parse(text, error);
  if (!opts) return;
  GError *err = nullptr;
  bool server = false;
  guint64 port = 0;
  opts->take_string("path");
  opts->take_bool("server", false, &server, &err);
  g_clear_error(&err);
  opts->take_uint("port", 0, 65535, &port, &err);
  g_clear_error(&err);
  opts->check_all_taken(&err);
  g_clear_error(&err);
}

void parse_socket_address(const char *text, GError **error) {
  QIOSocketAddress *addr = qio_socket_address_parse(text, error);
  if (!addr) return;
  g_free(qio_socket_address_to_string(addr));
  /* No name resolution for inet addresses: that would fuzz the resolver. */
  if (qio_socket_address_get_kind(addr) != QIO_SOCKET_ADDRESS_INET &&
      qio_socket_address_get_kind(addr) != QIO_SOCKET_ADDRESS_FD) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    GError *err = nullptr;
    qio_socket_address_to_native(addr, &ss, &len, &err);
    g_clear_error(&err);
  }
  g_object_unref(addr);
}

void parse_nbd_uri(const char *text, GError **error) {
  QIOSocketAddress *addr = nullptr;
  char *name = nullptr;
  gboolean tls = FALSE;
  if (!nbd_client_parse_uri(text, &addr, &name, &tls, error)) return;
  g_clear_object(&addr);
  g_free(name);
}

void parse_migration_uri(const char *text, GError **error) {
  qio::migration::MigrationUri uri;
  if (qio::migration::migration_uri_parse(text, uri, error)) (void)uri.host();
}

void parse_authz_rules(const char *text, GError **error) {
  QCryptoAuthzListRules *rules = qcrypto_authz_list_rules_parse(text, error);
  if (!rules) return;
  qcrypto_authz_list_rules_decide(rules, QCRYPTO_AUTHZ_LIST_POLICY_DENY, "CN=client,O=qio");
  g_ptr_array_unref(rules);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  auto parser = static_cast<Parser>(data[0] % static_cast<guint8>(Parser::Count));
  std::string text(reinterpret_cast<const char *>(data + 1), size - 1);
  GError *error = nullptr;
  switch (parser) {
    case Parser::Keyval:
      parse_keyval(text.c_str(), &error);
      break;
    case Parser::Vnc: {
      qio::ui::VncConfig config;
      qio::ui::VncConfig::parse(text.c_str(), config, &error);
      break;
    }
    case Parser::Chardev:
      parse_chardev(text.c_str(), &error);
      break;
    case Parser::SocketAddress:
      parse_socket_address(text.c_str(), &error);
      break;
    case Parser::NbdUri:
      parse_nbd_uri(text.c_str(), &error);
      break;
    case Parser::MigrationUri:
      parse_migration_uri(text.c_str(), &error);
      break;
    case Parser::AuthzRules:
      parse_authz_rules(text.c_str(), &error);
      break;
    case Parser::Count:
      break;
  }
  g_clear_error(&error);
  return 0;
}
