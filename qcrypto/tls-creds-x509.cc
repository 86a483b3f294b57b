#include "config.h"

#include "qcrypto/tls-creds-x509.h"
#include "qcrypto/error.h"
#include "qcrypto/tls-creds-priv.h"

#include <glib/gi18n-lib.h>

#include <cstring>
#include <memory>

struct _QCryptoTLSCredsX509 {
  QCryptoTLSCreds parent_instance;
  gboolean sanity_check;
  char *passwordid;
};

G_DEFINE_FINAL_TYPE(QCryptoTLSCredsX509, qcrypto_tls_creds_x509, QCRYPTO_TYPE_TLS_CREDS)

namespace {

enum { PROP_0, PROP_SANITY_CHECK, PROP_PASSWORDID, N_PROPS };

constexpr unsigned kMaxCaCerts = 16;

/* An imported list of certificates, freed as a whole. */
struct CertList {
  gnutls_x509_crt_t *certs = nullptr;
  unsigned count = 0;
  CertList() = default;
  CertList(const CertList &) = delete;
  CertList &operator=(const CertList &) = delete;
  ~CertList() {
    for (unsigned i = 0; i < count; i++) gnutls_x509_crt_deinit(certs[i]);
    gnutls_free(certs);
  }
};

struct X509State : QCryptoTLSCredsState {
  gnutls_certificate_credentials_t cred = nullptr;
  gnutls_x509_trust_list_t trust = nullptr;
  ~X509State() override {
    if (cred) gnutls_certificate_free_credentials(cred);
    if (trust) gnutls_x509_trust_list_deinit(trust, 1);
  }
};

enum class Role { CA, SERVER, CLIENT };

std::string cert_dn(gnutls_x509_crt_t cert) {
  gnutls_datum_t dn = {nullptr, 0};
  if (gnutls_x509_crt_get_dn3(cert, &dn, 0) < 0) return std::string();
  std::string out(reinterpret_cast<char *>(dn.data), dn.size);
  gnutls_free(dn.data);
  return out;
}

char *format_time(time_t t) {
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
  return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* The checks of one certificate, shared by loading (files) and sessions
 * (the peer's certificate): validity period, basicConstraints, keyUsage,
 * key purpose.  @label names the certificate in messages. */
gboolean check_cert(const char *id, const char *label, gnutls_x509_crt_t cert, Role role,
                    GError **error) {
  std::string dn = cert_dn(cert);
  time_t now = time(nullptr);
  time_t start = gnutls_x509_crt_get_activation_time(cert);
  time_t end = gnutls_x509_crt_get_expiration_time(cert);
  if (start == static_cast<time_t>(-1) || start > now) {
    g_autofree char *when = format_time(start);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("TLS credentials '%s': certificate %s (%s) is not active before %s; "
                  "check the clocks or issue a certificate valid from now"),
                id, label, dn.c_str(), when);
    return FALSE;
  }
  if (end == static_cast<time_t>(-1) || end < now) {
    g_autofree char *when = format_time(end);
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("TLS credentials '%s': certificate %s (%s) expired on %s; renew it"), id,
                label, dn.c_str(), when);
    return FALSE;
  }

  unsigned int critical = 0, is_ca = 0;
  int ret = gnutls_x509_crt_get_basic_constraints(cert, &critical, &is_ca, nullptr);
  bool has_bc = ret >= 0;
  if (role == Role::CA && (!has_bc || !is_ca)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("TLS credentials '%s': CA certificate %s (%s) lacks basicConstraints "
                  "CA:TRUE, so it cannot sign certificates; reissue it as a CA"),
                id, label, dn.c_str());
    return FALSE;
  }
  if (role != Role::CA && has_bc && is_ca) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                _("TLS credentials '%s': certificate %s (%s) claims basicConstraints "
                  "CA:TRUE but is used as a server or client certificate; reissue it "
                  "with CA:FALSE"),
                id, label, dn.c_str());
    return FALSE;
  }

  unsigned int usage = 0;
  ret = gnutls_x509_crt_get_key_usage(cert, &usage, &critical);
  if (ret >= 0) {
    if (role == Role::CA && !(usage & GNUTLS_KEY_KEY_CERT_SIGN)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                  _("TLS credentials '%s': CA certificate %s (%s) has a keyUsage%s "
                    "without keyCertSign; reissue it with keyCertSign"),
                  id, label, dn.c_str(), critical ? _(" (critical)") : "");
      return FALSE;
    }
    if (role != Role::CA &&
        !(usage & (GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT))) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                  _("TLS credentials '%s': certificate %s (%s) has a keyUsage%s with "
                    "neither digitalSignature nor keyEncipherment; reissue it with "
                    "digitalSignature"),
                  id, label, dn.c_str(), critical ? _(" (critical)") : "");
      return FALSE;
    }
  }

  if (role == Role::CA) return TRUE;
  const char *want = role == Role::SERVER ? GNUTLS_KP_TLS_WWW_SERVER : GNUTLS_KP_TLS_WWW_CLIENT;
  bool has_purpose = false, found = false, purpose_critical = false;
  for (unsigned i = 0;; i++) {
    char oid[256];
    size_t size = sizeof(oid);
    ret = gnutls_x509_crt_get_key_purpose_oid(cert, i, oid, &size, &critical);
    if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
    if (ret < 0) continue;
    has_purpose = true;
    purpose_critical = critical != 0;
    if (strcmp(oid, want) == 0 || strcmp(oid, GNUTLS_KP_ANY) == 0) found = true;
  }
  if (has_purpose && !found) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                role == Role::SERVER
                    ? _("TLS credentials '%s': certificate %s (%s) has an extendedKeyUsage%s "
                        "without TLS WWW server; reissue it with the tls_www_server purpose")
                    : _("TLS credentials '%s': certificate %s (%s) has an extendedKeyUsage%s "
                        "without TLS WWW client; reissue it with the tls_www_client purpose"),
                id, label, dn.c_str(), purpose_critical ? _(" (critical)") : "");
    return FALSE;
  }
  return TRUE;
}

/* Why a chain failed verification, in words, and the alert telling the peer. */
std::string describe_status(unsigned status, gnutls_alert_description_t *alert) {
  struct Cause {
    unsigned bit;
    const char *text;
    gnutls_alert_description_t alert;
  };
  static const Cause causes[] = {
      {GNUTLS_CERT_REVOKED, N_("certificate revoked by the CA's CRL"),
       GNUTLS_A_CERTIFICATE_REVOKED},
      {GNUTLS_CERT_SIGNER_NOT_FOUND, N_("certificate signed by unknown CA"),
       GNUTLS_A_UNKNOWN_CA},
      {GNUTLS_CERT_SIGNER_NOT_CA, N_("certificate signed by a certificate that is not a CA"),
       GNUTLS_A_UNKNOWN_CA},
      {GNUTLS_CERT_EXPIRED, N_("certificate (or its chain) expired"),
       GNUTLS_A_CERTIFICATE_EXPIRED},
      {GNUTLS_CERT_NOT_ACTIVATED, N_("certificate (or its chain) not yet active"),
       GNUTLS_A_CERTIFICATE_EXPIRED},
      {GNUTLS_CERT_INSECURE_ALGORITHM, N_("certificate signed with an insecure algorithm"),
       GNUTLS_A_BAD_CERTIFICATE},
      {GNUTLS_CERT_SIGNATURE_FAILURE, N_("certificate signature does not verify"),
       GNUTLS_A_BAD_CERTIFICATE},
      {GNUTLS_CERT_PURPOSE_MISMATCH, N_("certificate not meant for this purpose"),
       GNUTLS_A_UNSUPPORTED_CERTIFICATE},
  };
  std::string out;
  *alert = GNUTLS_A_BAD_CERTIFICATE;
  bool first = true;
  for (const auto &cause : causes) {
    if (!(status & cause.bit)) continue;
    if (first) *alert = cause.alert;
    if (!first) out += "; ";
    out += _(cause.text);
    first = false;
  }
  if (out.empty()) {
    gnutls_datum_t text = {nullptr, 0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
      out.assign(reinterpret_cast<char *>(text.data), text.size);
      gnutls_free(text.data);
    }
  }
  return out;
}

/* Verifies @certs (leaf first) against the CAs and CRL of @state and, for a
 * client, against @hostname.  Used for our own certificate at load time and
 * for the peer's during the handshake. */
gboolean verify_chain(const char *id, const char *label, X509State *state,
                      gnutls_x509_crt_t *certs, unsigned count, const char *hostname,
                      gnutls_alert_description_t *alert, GError **error) {
  unsigned status = 0;
  gnutls_typed_vdata_st data = {GNUTLS_DT_DNS_HOSTNAME,
                                reinterpret_cast<unsigned char *>(const_cast<char *>(hostname)),
                                0};
  int ret = gnutls_x509_trust_list_verify_crt2(state->trust, certs, count, &data,
                                               hostname ? 1 : 0, 0, &status, nullptr);
  if (ret < 0) {
    *alert = GNUTLS_A_INTERNAL_ERROR;
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                _("TLS credentials '%s': cannot verify certificate %s: %s"), id, label,
                gnutls_strerror(ret));
    return FALSE;
  }
  if (status == 0) return TRUE;
  std::string dn = cert_dn(certs[0]);
  if (status == (GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER)) {
    *alert = GNUTLS_A_BAD_CERTIFICATE;
    if (g_hostname_is_ip_address(hostname)) {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                  _("TLS credentials '%s': certificate %s (%s) does not match IP address "
                    "%s: an IP address is only matched against the certificate's IP SANs; "
                    "add IP:%s to its subjectAltName or connect by host name"),
                  id, label, dn.c_str(), hostname, hostname);
    } else {
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                  _("TLS credentials '%s': certificate %s (%s) does not match host name "
                    "'%s'; add DNS:%s to its subjectAltName or use the name it carries"),
                  id, label, dn.c_str(), hostname, hostname);
    }
    return FALSE;
  }
  std::string why = describe_status(status & ~GNUTLS_CERT_INVALID, alert);
  g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
              _("TLS credentials '%s': certificate %s (%s) fails verification: %s; "
                "check ca-cert.pem and ca-crl.pem"),
              id, label, dn.c_str(), why.c_str());
  return FALSE;
}

gboolean import_certs(const char *id, const char *path, GBytes *pem, CertList &list,
                      GError **error) {
  gnutls_datum_t datum = qcrypto_tls_datum(pem);
  int ret = gnutls_x509_crt_list_import2(&list.certs, &list.count, &datum,
                                         GNUTLS_X509_FMT_PEM, 0);
  if (ret < 0 || list.count == 0) {
    list.certs = nullptr;
    list.count = 0;
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' holds no valid PEM certificate (%s); "
                  "replace it with a PEM-encoded x509 certificate"),
                id, path, ret < 0 ? gnutls_strerror(ret) : _("empty"));
    return FALSE;
  }
  return TRUE;
}

void remember_certs(QCryptoTLSCredsState *state, const char *path, const CertList &list) {
  for (unsigned i = 0; i < list.count; i++)
    state->certs.push_back(
        {path, cert_dn(list.certs[i]), gnutls_x509_crt_get_expiration_time(list.certs[i])});
}

/* The next updates of the CRLs in @pem, for the expiry warnings (the
 * loader has checked them; a list without a next update never expires). */
void remember_crls(QCryptoTLSCredsState *state, const char *path, const gnutls_datum_t &pem) {
  gnutls_x509_crl_t *crls = nullptr;
  unsigned count = 0;
  if (gnutls_x509_crl_list_import2(&crls, &count, &pem, GNUTLS_X509_FMT_PEM, 0) < 0) return;
  for (unsigned i = 0; i < count; i++) {
    time_t next = gnutls_x509_crl_get_next_update(crls[i]);
    gnutls_datum_t dn = {nullptr, 0};
    if (next != static_cast<time_t>(-1) && gnutls_x509_crl_get_issuer_dn3(crls[i], &dn, 0) >= 0)
      state->certs.push_back({path, std::string(reinterpret_cast<char *>(dn.data), dn.size),
                              next, QCRYPTO_TLS_EXPIRY_CRL});
    gnutls_free(dn.data);
    gnutls_x509_crl_deinit(crls[i]);
  }
  gnutls_free(crls);
}

gboolean load_key(QCryptoTLSCredsX509 *x509, const char *id, const char *path, GBytes *pem,
                  gnutls_x509_privkey_t *key, GError **error) {
  g_autoptr(GBytes) password = nullptr;
  if (x509->passwordid) {
    password = qcrypto_tls_creds_lookup_secret(QCRYPTO_TLS_CREDS(x509), "passwordid",
                                               x509->passwordid, error);
    if (!password) return FALSE;
  }
  g_autofree char *pass = nullptr;
  if (password) {
    gsize len = 0;
    const void *data = g_bytes_get_data(password, &len);
    pass = g_strndup(static_cast<const char *>(data), len);
  }
  gnutls_datum_t datum = qcrypto_tls_datum(pem);
  int ret = gnutls_x509_privkey_init(key);
  if (ret >= 0) ret = gnutls_x509_privkey_import2(*key, &datum, GNUTLS_X509_FMT_PEM, pass, 0);
  if (ret >= 0) return TRUE;
  gnutls_x509_privkey_deinit(*key);
  *key = nullptr;
  bool encrypted = strstr(static_cast<const char *>(g_bytes_get_data(pem, nullptr)),
                          "ENCRYPTED") != nullptr;
  if (encrypted && !pass) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': private key '%s' is encrypted; set passwordid "
                  "to the id of a secret holding its password"),
                id, path);
  } else if (encrypted) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': cannot decrypt private key '%s' with the password "
                  "of secret '%s' (%s); check the secret"),
                id, path, x509->passwordid, gnutls_strerror(ret));
  } else {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' holds no valid PEM private key (%s); "
                  "replace it with a PEM-encoded key"),
                id, path, gnutls_strerror(ret));
  }
  return FALSE;
}

/* Loads @cert_name/@key_name into @state->cred; FALSE with no error when
 * @optional and both are absent. */
gboolean load_identity(QCryptoTLSCredsX509 *x509, X509State *state, const char *cert_name,
                       const char *key_name, Role role, gboolean optional, GError **error) {
  QCryptoTLSCreds *creds = QCRYPTO_TLS_CREDS(x509);
  const char *id = qcrypto_tls_creds_get_id(creds);
  g_autoptr(GBytes) cert_pem = nullptr, key_pem = nullptr;
  g_autofree char *cert_path = nullptr, *key_path = nullptr;
  g_autoptr(GError) local = nullptr;
  gboolean have_cert =
      qcrypto_tls_creds_read_file(creds, cert_name, optional, &cert_pem, &cert_path, &local);
  if (local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  gboolean have_key =
      qcrypto_tls_creds_read_file(creds, key_name, optional, &key_pem, &key_path, &local);
  if (local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  if (!have_cert && !have_key) return TRUE;
  if (!have_cert || !have_key) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' and '%s' go together, but only one of them "
                  "is in '%s'; add the other or remove it"),
                id, cert_name, key_name, qcrypto_tls_creds_get_dir(creds));
    return FALSE;
  }
  CertList chain;
  if (!import_certs(id, cert_path, cert_pem, chain, error)) return FALSE;
  gnutls_x509_privkey_t key = nullptr;
  if (!load_key(x509, id, key_path, key_pem, &key, error)) return FALSE;
  int ret = gnutls_certificate_set_x509_key(state->cred, chain.certs, chain.count, key);
  gnutls_x509_privkey_deinit(key);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_CERTIFICATE,
                ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH
                    ? _("TLS credentials '%s': private key '%s' does not belong to "
                        "certificate '%s' (%s); install the matching pair")
                    : _("TLS credentials '%s': cannot use private key '%s' with "
                        "certificate '%s' (%s)"),
                id, key_path, cert_path, gnutls_strerror(ret));
    return FALSE;
  }
  remember_certs(state, cert_path, chain);
  if (!x509->sanity_check) return TRUE;
  g_autofree char *label = g_strdup_printf("'%s'", cert_path);
  if (!check_cert(id, label, chain.certs[0], role, error)) return FALSE;
  for (unsigned i = 1; i < chain.count; i++)
    if (!check_cert(id, label, chain.certs[i], Role::CA, error)) return FALSE;
  gnutls_alert_description_t alert;
  return verify_chain(id, label, state, chain.certs, chain.count, nullptr, &alert, error);
}

QCryptoTLSCredsState *x509_load(QCryptoTLSCreds *creds, GError **error) {
  auto *x509 = QCRYPTO_TLS_CREDS_X509(creds);
  const char *id = qcrypto_tls_creds_get_id(creds);
  bool server = qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER;
  /* A client that took any server would give its session to whoever sits
   * in the middle. */
  if (!server && !qcrypto_tls_creds_get_verify_peer(creds)) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_INVALID_ARGUMENT,
                _("TLS credentials '%s': verify-peer=off is for servers (not asking clients "
                  "for a certificate); a client always verifies the server's certificate and "
                  "name: remove verify-peer=off, and put the CA that signed the server's "
                  "certificate in ca-cert.pem"),
                id);
    return nullptr;
  }
  std::unique_ptr<X509State> state(new X509State);

  g_autoptr(GBytes) ca_pem = nullptr, crl_pem = nullptr;
  g_autofree char *ca_path = nullptr, *crl_path = nullptr;
  if (!qcrypto_tls_creds_read_file(creds, "ca-cert.pem", FALSE, &ca_pem, &ca_path, error))
    return nullptr;
  CertList cas;
  if (!import_certs(id, ca_path, ca_pem, cas, error)) return nullptr;
  if (cas.count > kMaxCaCerts) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': '%s' holds %u certificates, more than the %u "
                  "allowed; keep only the CAs that sign your peers"),
                id, ca_path, cas.count, kMaxCaCerts);
    return nullptr;
  }
  remember_certs(state.get(), ca_path, cas);
  if (x509->sanity_check) {
    g_autofree char *label = g_strdup_printf("'%s'", ca_path);
    for (unsigned i = 0; i < cas.count; i++)
      if (!check_cert(id, label, cas.certs[i], Role::CA, error)) return nullptr;
  }

  g_autoptr(GError) local = nullptr;
  if (!qcrypto_tls_creds_read_file(creds, "ca-crl.pem", TRUE, &crl_pem, &crl_path, &local) &&
      local) {
    g_propagate_error(error, g_steal_pointer(&local));
    return nullptr;
  }

  int ret = gnutls_certificate_allocate_credentials(&state->cred);
  if (ret >= 0) ret = gnutls_x509_trust_list_init(&state->trust, 0);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FAILED,
                _("TLS credentials '%s': cannot allocate credentials: %s"), id,
                gnutls_strerror(ret));
    return nullptr;
  }
  gnutls_datum_t ca_datum = qcrypto_tls_datum(ca_pem);
  ret = gnutls_certificate_set_x509_trust_mem(state->cred, &ca_datum, GNUTLS_X509_FMT_PEM);
  if (ret >= 0)
    ret = gnutls_x509_trust_list_add_trust_mem(state->trust, &ca_datum, nullptr,
                                               GNUTLS_X509_FMT_PEM, 0, 0);
  if (ret < 0) {
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                _("TLS credentials '%s': cannot use CA certificates '%s': %s"), id, ca_path,
                gnutls_strerror(ret));
    return nullptr;
  }
  if (crl_pem) {
    gnutls_datum_t crl_datum = qcrypto_tls_datum(crl_pem);
    ret = gnutls_certificate_set_x509_crl_mem(state->cred, &crl_datum, GNUTLS_X509_FMT_PEM);
    if (ret >= 0)
      ret = gnutls_x509_trust_list_add_trust_mem(state->trust, nullptr, &crl_datum,
                                                 GNUTLS_X509_FMT_PEM, GNUTLS_TL_VERIFY_CRL, 0);
    if (ret <= 0) {
      /* GnuTLS also drops a CRL past its next update: the likely case. */
      gnutls_x509_crl_t crl = nullptr;
      time_t next = -1;
      if (gnutls_x509_crl_init(&crl) >= 0) {
        if (gnutls_x509_crl_import(crl, &crl_datum, GNUTLS_X509_FMT_PEM) >= 0)
          next = gnutls_x509_crl_get_next_update(crl);
        gnutls_x509_crl_deinit(crl);
      }
      if (next != -1 && next < time(nullptr)) {
        g_autofree char *when = format_time(next);
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                    _("TLS credentials '%s': the revocation list '%s' expired on %s; renew it "
                      "(qio-pki crl CA-DIR, or certtool --generate-crl) and copy it here"),
                    id, crl_path, when);
      } else {
        g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_FILE,
                    _("TLS credentials '%s': '%s' holds no valid CRL signed by a CA of "
                      "ca-cert.pem (%s); replace it with a current list of that CA (removing "
                      "it would un-revoke what it lists)"),
                    id, crl_path, ret < 0 ? gnutls_strerror(ret) : _("no CRL accepted"));
      }
      return nullptr;
    }
    remember_crls(state.get(), crl_path, crl_datum);
  }

  if (!load_identity(x509, state.get(), server ? "server-cert.pem" : "client-cert.pem",
                     server ? "server-key.pem" : "client-key.pem",
                     server ? Role::SERVER : Role::CLIENT, !server, error))
    return nullptr;
  if (!qcrypto_tls_creds_load_dh_params(creds, state.get(), error)) return nullptr;
  if (state->dh) gnutls_certificate_set_dh_params(state->cred, state->dh);
  gnutls_certificate_set_verify_function(state->cred, qcrypto_tls_session_verify_callback);
  return state.release();
}

int x509_apply_to_session(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                          gpointer session_ptr) {
  auto session = static_cast<gnutls_session_t>(session_ptr);
  int ret = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE,
                                   static_cast<X509State *>(state)->cred);
  if (ret < 0) return ret;
  if (qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER)
    gnutls_certificate_server_set_request(
        session, qcrypto_tls_creds_get_verify_peer(creds) ? GNUTLS_CERT_REQUIRE
                                                          : GNUTLS_CERT_IGNORE);
  return 0;
}

gboolean x509_check_peer(QCryptoTLSCreds *creds, QCryptoTLSCredsState *state,
                         gpointer session_ptr, const char *hostname, char **identity,
                         int *alert, GError **error) {
  auto session = static_cast<gnutls_session_t>(session_ptr);
  const char *id = qcrypto_tls_creds_get_id(creds);
  unsigned int n = 0;
  const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
  bool server = qcrypto_tls_creds_get_endpoint(creds) == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER;
  /* Only a server may go without checking (x509_load refuses clients). */
  bool verify = !server || qcrypto_tls_creds_get_verify_peer(creds);
  if (!raw || n == 0) {
    if (!verify) return TRUE;
    *alert = GNUTLS_A_CERTIFICATE_REQUIRED;
    g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                _("TLS credentials '%s': the peer sent no certificate; give it one or "
                  "set verify-peer=off"),
                id);
    return FALSE;
  }
  CertList chain;
  chain.certs = static_cast<gnutls_x509_crt_t *>(gnutls_calloc(n, sizeof(gnutls_x509_crt_t)));
  for (; chain.count < n; chain.count++) {
    int ret = gnutls_x509_crt_init(&chain.certs[chain.count]);
    if (ret >= 0) ret = gnutls_x509_crt_import(chain.certs[chain.count], &raw[chain.count],
                                               GNUTLS_X509_FMT_DER);
    if (ret < 0) {
      if (ret != GNUTLS_E_MEMORY_ERROR) chain.count++;
      *alert = GNUTLS_A_BAD_CERTIFICATE;
      g_set_error(error, QCRYPTO_ERROR, QCRYPTO_ERROR_VERIFY,
                  _("TLS credentials '%s': the peer's certificate cannot be parsed: %s"), id,
                  gnutls_strerror(ret));
      return FALSE;
    }
  }
  *identity = g_strdup(cert_dn(chain.certs[0]).c_str());
  if (!verify) return TRUE;
  const char *label = server ? _("of the client") : _("of the server");
  /* Our own checks first: they name the fault more precisely. */
  if (!check_cert(id, label, chain.certs[0], server ? Role::CLIENT : Role::SERVER, error)) {
    *alert = GNUTLS_A_BAD_CERTIFICATE;
    return FALSE;
  }
  gnutls_alert_description_t why = GNUTLS_A_BAD_CERTIFICATE;
  gboolean ok = verify_chain(id, label, static_cast<X509State *>(state), chain.certs,
                             chain.count, server ? nullptr : hostname, &why, error);
  *alert = why;
  return ok;
}

}  // namespace

static void qcrypto_tls_creds_x509_set_property(GObject *object, guint prop_id,
                                                const GValue *value, GParamSpec *pspec) {
  auto *x509 = QCRYPTO_TLS_CREDS_X509(object);
  switch (prop_id) {
    case PROP_SANITY_CHECK:
      x509->sanity_check = g_value_get_boolean(value);
      break;
    case PROP_PASSWORDID:
      g_free(x509->passwordid);
      x509->passwordid = g_value_dup_string(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_x509_get_property(GObject *object, guint prop_id, GValue *value,
                                                GParamSpec *pspec) {
  auto *x509 = QCRYPTO_TLS_CREDS_X509(object);
  switch (prop_id) {
    case PROP_SANITY_CHECK:
      g_value_set_boolean(value, x509->sanity_check);
      break;
    case PROP_PASSWORDID:
      g_value_set_string(value, x509->passwordid);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void qcrypto_tls_creds_x509_finalize(GObject *object) {
  g_free(QCRYPTO_TLS_CREDS_X509(object)->passwordid);
  G_OBJECT_CLASS(qcrypto_tls_creds_x509_parent_class)->finalize(object);
}

static void qcrypto_tls_creds_x509_class_init(QCryptoTLSCredsX509Class *klass) {
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  object_class->set_property = qcrypto_tls_creds_x509_set_property;
  object_class->get_property = qcrypto_tls_creds_x509_get_property;
  object_class->finalize = qcrypto_tls_creds_x509_finalize;
  QCryptoTLSCredsClass *creds_class = QCRYPTO_TLS_CREDS_CLASS(klass);
  creds_class->load = x509_load;
  creds_class->apply_to_session = x509_apply_to_session;
  creds_class->check_peer = x509_check_peer;

  /* Fixed once created (as QEMU's user-creatable objects): loaded
   * credentials never disagree with their properties; tls-creds-reload
   * rereads the files. */
  auto flags = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                        G_PARAM_STATIC_STRINGS);
  GParamSpec *props[N_PROPS] = {};
  props[PROP_SANITY_CHECK] = g_param_spec_boolean(
      "sanity-check", "Sanity check", "Check the certificates when loading", TRUE, flags);
  props[PROP_PASSWORDID] = g_param_spec_string(
      "passwordid", "Password id", "Secret decrypting the private key", nullptr, flags);
  g_object_class_install_properties(object_class, N_PROPS, props);
}

static void qcrypto_tls_creds_x509_init(QCryptoTLSCredsX509 *x509) {
  x509->sanity_check = TRUE;
}
