/*
 * qio-pki: the certificates TLS needs, in one command.  `init` makes a CA,
 * a server certificate and a client certificate in the directory layout
 * tls-creds-x509 reads; `ca`, `server` and `client` make one at a time.
 */
#include "config.h"

#include "qcrypto/error.h"
#include "qcrypto/x509-issuer.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>

#include <algorithm>
#include <string>

namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr guint kCaDays = 3650;
constexpr guint kLeafDays = 365;
constexpr int kMaxDays = 36500;

struct Options {
  char *ca_dir = nullptr;
  char **hostnames = nullptr;
  char **ips = nullptr;
  char *dn = nullptr;
  char *ca_dn = nullptr;
  char *client_dn = nullptr;
  char *days = nullptr; /* NULL: the command's default */
  char *key_type = nullptr;
  gboolean force = FALSE;
  gboolean version = FALSE;
  char **args = nullptr;
  ~Options() {
    g_free(ca_dir);
    g_strfreev(hostnames);
    g_strfreev(ips);
    g_free(dn);
    g_free(ca_dn);
    g_free(client_dn);
    g_free(key_type);
    g_free(days);
    g_strfreev(args);
  }
};

int usage_error(const char *message) {
  g_printerr("qio-pki: %s\n", message);
  g_printerr(_("Try 'qio-pki --help' for more information.\n"));
  return kExitUsage;
}

int failed(const char *what, GError *error) {
  g_printerr("qio-pki: %s: %s\n", what, error->message);
  if (g_error_matches(error, QCRYPTO_ERROR, QCRYPTO_ERROR_EXISTS))
    g_printerr(_("qio-pki: pass --force to replace the files there\n"));
  return kExitFailed;
}

/* RFC 4514 escaping, for a host name put into a default DN. */
std::string dn_escape(const char *value) {
  std::string out;
  for (const char *p = value; *p; p++) {
    if (strchr(",+\"\\<>;=", *p) || ((*p == '#' || *p == ' ') && p == value)) out += '\\';
    out += *p;
  }
  return out;
}

std::string until(gint64 seconds_from_now) {
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autoptr(GDateTime) then = g_date_time_add_seconds(now, static_cast<gdouble>(seconds_from_now));
  g_autofree char *text = g_date_time_format(then, "%Y-%m-%d");
  return text;
}

std::string san_list(const Options &o) {
  std::string out;
  for (char **h = o.hostnames; h && *h; h++) out += std::string(out.empty() ? "" : ", ") + "DNS:" + *h;
  for (char **ip = o.ips; ip && *ip; ip++) out += std::string(out.empty() ? "" : ", ") + "IP:" + *ip;
  return out;
}

void print_ca(QCryptoX509Issuer *ca, const char *dir, guint days) {
  g_autofree char *dn = qcrypto_x509_issuer_get_dn(ca);
  g_print(_("qio-pki: CA \"%s\" in %s, valid until %s; keep ca-key.pem secret\n"), dn, dir,
          until(static_cast<gint64>(days) * 86400).c_str());
}

void print_issued(const Options &o, QCryptoX509Role role, const char *dn, guint days,
                  const char *dir) {
  const bool server = role == QCRYPTO_X509_ROLE_SERVER;
  if (server)
    g_print(_("qio-pki: server certificate \"%s\" for %s in %s, valid until %s\n"), dn,
            san_list(o).c_str(), dir, until(static_cast<gint64>(days) * 86400).c_str());
  else
    g_print(_("qio-pki: client certificate \"%s\" in %s, valid until %s\n"), dn, dir,
            until(static_cast<gint64>(days) * 86400).c_str());
  g_print(_("  use it with: -object tls-creds-x509,id=tls0,dir=%s,endpoint=%s\n"), dir,
          server ? "server" : "client");
}

/* The certificate @arg names: a PEM file, or a directory holding one of
 * server-cert.pem and client-cert.pem.  NULL when ambiguous or absent. */
char *certificate_named(const char *arg) {
  if (!g_file_test(arg, G_FILE_TEST_IS_DIR)) return g_strdup(arg);
  char *found = nullptr;
  for (const char *name : {"server-cert.pem", "client-cert.pem"}) {
    g_autofree char *path = g_build_filename(arg, name, nullptr);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) continue;
    if (found) {
      g_free(found);
      return nullptr;
    }
    found = g_steal_pointer(&path);
  }
  return found;
}

/* Revokes the certificate @arg names (revoke) or renews the CRL (crl),
 * for @days_given days (0: the default). */
int update_crl(const char *ca_dir, const char *arg, guint days_given, GError **error) {
  g_autoptr(QCryptoX509Issuer) ca = qcrypto_x509_issuer_load(ca_dir, error);
  if (!ca) return failed(ca_dir, *error);
  g_autofree char *cert = arg ? certificate_named(arg) : nullptr;
  if (arg && !cert) {
    g_autofree char *msg = g_strdup_printf(
        _("%s holds neither or both of server-cert.pem and client-cert.pem; name the "
          "certificate file"),
        arg);
    return usage_error(msg);
  }
  /* By default a year, or what is left of the CA's life. */
  const gint64 ca_days_left = (qcrypto_x509_issuer_get_expiry(ca) - g_get_real_time() / G_USEC_PER_SEC) / 86400;
  const guint days =
      days_given ? days_given : static_cast<guint>(std::clamp<gint64>(ca_days_left, 1, kLeafDays));
  QCryptoX509CrlReport report;
  if (!qcrypto_x509_issuer_stage_crl(ca, ca_dir, cert, days, &report, error) ||
      !qcrypto_x509_issuer_commit(ca, FALSE, error)) {
    qcrypto_x509_crl_report_clear(&report);
    return failed(ca_dir, *error);
  }
  if (report.revoked_dn)
    g_print(report.already ? _("qio-pki: \"%s\" (serial %s) was revoked already\n")
                           : _("qio-pki: revoked \"%s\" (serial %s)\n"),
            report.revoked_dn, report.revoked_serial);
  g_autofree char *crl = g_build_filename(ca_dir, "ca-crl.pem", nullptr);
  g_print(_("qio-pki: %s, valid until %s; certificates revoked: %u\n"), crl,
          until(static_cast<gint64>(days) * 86400).c_str(), report.count);
  g_print(_("  copy it as ca-crl.pem into every tls-creds-x509 directory that trusts this CA and "
            "reload those credentials (QMP tls-creds-reload); renew it before then with: "
            "qio-pki crl %s\n"),
          ca_dir);
  qcrypto_x509_crl_report_clear(&report);
  return 0;
}

bool stage(const Options &o, QCryptoX509Issuer *ca, QCryptoX509Role role, const char *dn,
           guint days, QCryptoX509KeyType key_type, const char *dir, GError **error) {
  const bool server = role == QCRYPTO_X509_ROLE_SERVER;
  QCryptoX509LeafSpec spec = {role,
                              dn,
                              server ? o.hostnames : nullptr,
                              server ? o.ips : nullptr,
                              days,
                              key_type};
  return qcrypto_x509_issuer_stage_issued(ca, &spec, dir, error);
}

std::string default_server_dn(const Options &o) {
  const char *name = o.hostnames && o.hostnames[0] ? o.hostnames[0] : o.ips && o.ips[0] ? o.ips[0] : "";
  return "CN=" + dn_escape(name);
}

std::string default_ca_dn() { return "CN=" + dn_escape((std::string("qio CA on ") + g_get_host_name()).c_str()); }

std::string default_client_dn() {
  return "CN=" + dn_escape((std::string(g_get_user_name()) + "@" + g_get_host_name()).c_str());
}

}  // namespace

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

  Options o;
  GOptionEntry entries[] = {
      {"ca", 'c', 0, G_OPTION_ARG_FILENAME, &o.ca_dir,
       N_("The CA to sign with: a directory holding ca-cert.pem and ca-key.pem (server, client, "
          "revoke)"),
       N_("DIR")},
      {"hostname", 'n', 0, G_OPTION_ARG_STRING_ARRAY, &o.hostnames,
       N_("A DNS name clients use for the server (init, server); may be repeated"), N_("NAME")},
      {"ip", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.ips,
       N_("An IP address clients use for the server (init, server); may be repeated"),
       N_("ADDRESS")},
      {"dn", 0, 0, G_OPTION_ARG_STRING, &o.dn,
       N_("Subject of the certificate made (with init: the server's), as in RFC 4514, e.g. "
          "\"O=Example,CN=host\""),
       N_("DN")},
      {"ca-dn", 0, 0, G_OPTION_ARG_STRING, &o.ca_dn, N_("With init: subject of the CA"), N_("DN")},
      {"client-dn", 0, 0, G_OPTION_ARG_STRING, &o.client_dn,
       N_("With init: subject of the client certificate (what tls-authz matches)"), N_("DN")},
      {"days", 'd', 0, G_OPTION_ARG_STRING, &o.days,
       N_("Validity in days (default 365; 3650 for the ca command; for a CRL, 365 or what is "
          "left of the CA's)"),
       N_("N")},
      {"key-type", 'k', 0, G_OPTION_ARG_STRING, &o.key_type,
       N_("Key type: ecdsa (P-256, the default) or rsa (3072 bits)"), N_("TYPE")},
      {"force", 'f', 0, G_OPTION_ARG_NONE, &o.force, N_("Replace files that are already there"),
       nullptr},
      {"version", 'V', 0, G_OPTION_ARG_NONE, &o.version, N_("Print the version and exit"),
       nullptr},
      {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o.args, nullptr, nullptr},
      {},
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new(N_("init|ca|server|client|crl DIR, or revoke CERT"));
  g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
  g_option_context_set_summary(
      ctx, _("Makes the certificates for qio's TLS credentials (tls-creds-x509).\n\n"
             "  init DIR    a CA in DIR/ca, a server certificate in DIR/server and a client\n"
             "              certificate in DIR/client (needs --hostname or --ip)\n"
             "  ca DIR      a CA in DIR\n"
             "  server DIR  a server certificate signed by --ca (needs --hostname or --ip)\n"
             "  client DIR  a client certificate signed by --ca\n"
             "  revoke CERT adds the certificate CERT (a PEM file, or a directory holding one\n"
             "              server or client certificate) to the certificate revocation list\n"
             "              of --ca, its ca-crl.pem\n"
             "  crl DIR     renews the CA's certificate revocation list in DIR (it expires)\n\n"
             "Private keys are written readable by their owner only; existing files are\n"
             "replaced only with --force.  Exit status: 0 done, 1 failed, 2 usage."));
  g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
  g_autoptr(GError) error = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) return usage_error(error->message);
  if (o.version) {
    g_print("qio-pki %s\n", PACKAGE_VERSION);
    return 0;
  }
  if (!o.args || !o.args[0])
    return usage_error(_("no command given; use init, ca, server, client, revoke or crl"));
  const std::string command = o.args[0];
  if (command != "init" && command != "ca" && command != "server" && command != "client" &&
      command != "revoke" && command != "crl") {
    g_autofree char *msg = g_strdup_printf(
        _("unknown command '%s'; use init, ca, server, client, revoke or crl"), o.args[0]);
    return usage_error(msg);
  }
  if (!o.args[1] || o.args[2]) {
    g_autofree char *msg = command == "revoke"
                               ? g_strdup(_("revoke takes one certificate"))
                               : g_strdup_printf(_("%s takes one directory"), command.c_str());
    return usage_error(msg);
  }
  const char *dir = o.args[1];
  QCryptoX509KeyType key_type = QCRYPTO_X509_KEY_ECDSA_P256;
  if (o.key_type && g_str_equal(o.key_type, "rsa"))
    key_type = QCRYPTO_X509_KEY_RSA_3072;
  else if (o.key_type && !g_str_equal(o.key_type, "ecdsa"))
    return usage_error(_("--key-type takes ecdsa or rsa"));
  guint64 days_given = 0;
  if (o.days && !g_ascii_string_to_unsigned(o.days, 10, 1, kMaxDays, &days_given, nullptr)) {
    g_autofree char *msg =
        g_strdup_printf(_("--days takes 1 to %d days, not '%s'"), kMaxDays, o.days);
    return usage_error(msg);
  }
  const bool signs = command == "server" || command == "client" || command == "revoke";
  if (signs != (o.ca_dir != nullptr))
    return usage_error(signs ? _("server, client and revoke need --ca DIR, the CA to sign with")
                             : _("--ca goes with server, client and revoke only"));
  const bool lists = command == "revoke" || command == "crl";
  if (lists && (o.dn || o.key_type || o.force))
    return usage_error(_("--dn, --key-type and --force do not go with revoke and crl"));
  const bool names_server = command == "init" || command == "server";
  const bool has_names = (o.hostnames && o.hostnames[0]) || (o.ips && o.ips[0]);
  if (names_server && !has_names)
    return usage_error(_("give the server's names: --hostname NAME and/or --ip ADDRESS"));
  if (!names_server && has_names)
    return usage_error(_("--hostname and --ip go with init and server only"));
  if (command != "init" && (o.ca_dn || o.client_dn))
    return usage_error(_("--ca-dn and --client-dn go with init only"));

  if (lists)
    return update_crl(command == "crl" ? dir : o.ca_dir, command == "revoke" ? dir : nullptr,
                      static_cast<guint>(days_given), &error);
  if (command == "ca") {
    const guint days = o.days ? static_cast<guint>(days_given) : kCaDays;
    std::string dn = o.dn ? o.dn : default_ca_dn();
    g_autoptr(QCryptoX509Issuer) ca = qcrypto_x509_issuer_new(dn.c_str(), days, key_type, &error);
    if (!ca || !qcrypto_x509_issuer_stage_ca(ca, dir, &error) ||
        !qcrypto_x509_issuer_commit(ca, o.force, &error))
      return failed(dir, error);
    print_ca(ca, dir, days);
    return 0;
  }
  const guint days = o.days ? static_cast<guint>(days_given) : kLeafDays;
  if (signs) {
    g_autoptr(QCryptoX509Issuer) ca = qcrypto_x509_issuer_load(o.ca_dir, &error);
    if (!ca) return failed(o.ca_dir, error);
    const QCryptoX509Role role =
        command == "server" ? QCRYPTO_X509_ROLE_SERVER : QCRYPTO_X509_ROLE_CLIENT;
    std::string dn = o.dn ? o.dn
                     : role == QCRYPTO_X509_ROLE_SERVER ? default_server_dn(o)
                                                        : default_client_dn();
    if (!stage(o, ca, role, dn.c_str(), days, key_type, dir, &error) ||
        !qcrypto_x509_issuer_commit(ca, o.force, &error))
      return failed(dir, error);
    print_issued(o, role, dn.c_str(), days, dir);
    return 0;
  }

  g_autofree char *ca_dir = g_build_filename(dir, "ca", nullptr);
  g_autofree char *server_dir = g_build_filename(dir, "server", nullptr);
  g_autofree char *client_dir = g_build_filename(dir, "client", nullptr);
  std::string ca_dn = o.ca_dn ? o.ca_dn : default_ca_dn();
  std::string server_dn = o.dn ? o.dn : default_server_dn(o);
  std::string client_dn = o.client_dn ? o.client_dn : default_client_dn();
  /* A day beyond its certificates, so that they never outlive it. */
  if (days >= static_cast<guint>(kMaxDays))
    return usage_error(_("init gives its CA a day more than its certificates: --days takes at "
                         "most 36499 there"));
  const guint ca_days = std::max(kCaDays, days + 1);
  g_autoptr(QCryptoX509Issuer) ca = qcrypto_x509_issuer_new(ca_dn.c_str(), ca_days, key_type,
                                                            &error);
  if (!ca) return failed(ca_dir, error);
  if (!qcrypto_x509_issuer_stage_ca(ca, ca_dir, &error)) return failed(ca_dir, error);
  if (!stage(o, ca, QCRYPTO_X509_ROLE_SERVER, server_dn.c_str(), days, key_type, server_dir,
             &error))
    return failed(server_dir, error);
  if (!stage(o, ca, QCRYPTO_X509_ROLE_CLIENT, client_dn.c_str(), days, key_type, client_dir,
             &error))
    return failed(client_dir, error);
  if (!qcrypto_x509_issuer_commit(ca, o.force, &error)) return failed(dir, error);
  print_ca(ca, ca_dir, ca_days);
  print_issued(o, QCRYPTO_X509_ROLE_SERVER, server_dn.c_str(), days, server_dir);
  print_issued(o, QCRYPTO_X509_ROLE_CLIENT, client_dn.c_str(), days, client_dir);
  return 0;
}
