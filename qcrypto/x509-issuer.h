/*
 * QCryptoX509Issuer: a certificate authority that makes the files a
 * tls-creds-x509 `dir` holds (qio-pki's engine).  Certificates get the
 * constraints qio's and QEMU's sanity checks ask for: the CA
 * basicConstraints CA:TRUE and keyCertSign; servers and clients CA:FALSE,
 * digitalSignature (and keyEncipherment for RSA), the TLS WWW server or
 * client purpose; servers their DNS and IP subjectAltNames.  Private keys
 * are written readable by their owner only.  It also keeps the CA's
 * certificate revocation list (ca-crl.pem).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  QCRYPTO_X509_KEY_ECDSA_P256,
  QCRYPTO_X509_KEY_RSA_3072,
} QCryptoX509KeyType;

typedef enum {
  QCRYPTO_X509_ROLE_SERVER,
  QCRYPTO_X509_ROLE_CLIENT,
} QCryptoX509Role;

/* What to issue.  @dn is an RFC 4514 distinguished name ("O=Example,CN=vm1");
 * @dns_names and @ip_addresses are NULL-terminated (or NULL) lists. */
typedef struct {
  QCryptoX509Role role;
  const char *dn;
  const char *const *dns_names;
  const char *const *ip_addresses;
  guint days;
  QCryptoX509KeyType key_type;
} QCryptoX509LeafSpec;

typedef struct _QCryptoX509Issuer QCryptoX509Issuer;

/* A new self-signed CA valid for @days. */
QCryptoX509Issuer *qcrypto_x509_issuer_new(const char *dn, guint days, QCryptoX509KeyType key_type,
                                           GError **error);
/* The CA whose ca-cert.pem and ca-key.pem are in @dir. */
QCryptoX509Issuer *qcrypto_x509_issuer_load(const char *dir, GError **error);
void qcrypto_x509_issuer_free(QCryptoX509Issuer *issuer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QCryptoX509Issuer, qcrypto_x509_issuer_free)

/* Files are staged, then written together by commit(), so that a bad
 * request leaves no half-made PKI behind. */

/* Stages ca-cert.pem and ca-key.pem for @dir. */
gboolean qcrypto_x509_issuer_stage_ca(QCryptoX509Issuer *issuer, const char *dir, GError **error);
/* Issues a certificate and key by @spec and stages them for @dir as
 * server-cert.pem and server-key.pem (or client-*), with the CA's
 * certificate as ca-cert.pem, as a tls-creds-x509 object expects them. */
gboolean qcrypto_x509_issuer_stage_issued(QCryptoX509Issuer *issuer, const QCryptoX509LeafSpec *spec,
                                          const char *dir, GError **error);
/* What qcrypto_x509_issuer_stage_crl() did, for the caller to report. */
typedef struct {
  char *revoked_dn;     /* the subject of the certificate revoked, or NULL */
  char *revoked_serial; /* its serial number in hex, or NULL */
  gboolean already;     /* the CRL listed it already */
  guint count;          /* certificates the new CRL lists */
  gint64 next_update;   /* when it must be renewed (seconds since the epoch) */
} QCryptoX509CrlReport;
void qcrypto_x509_crl_report_clear(QCryptoX509CrlReport *report);

/* Stages @dir/ca-crl.pem, the CA's certificate revocation list, valid for
 * @days: what the CRL already in @dir lists (it must be this CA's), and the
 * certificate in the PEM file @cert_path unless NULL (it must be this
 * CA's), under the next CRL number.  commit() replaces the old CRL even
 * without force.  From here to commit() (or free) @dir is locked against
 * other issuers staging its CRL, which wait.  Fills @report (clear it
 * after). */
gboolean qcrypto_x509_issuer_stage_crl(QCryptoX509Issuer *issuer, const char *dir,
                                       const char *cert_path, guint days,
                                       QCryptoX509CrlReport *report, GError **error);
/* Writes what is staged (making directories as needed), after checking
 * that no file is in the way: existing files are replaced only with
 * @force, except an identical ca-cert.pem, which is left as it is.  On
 * failure of those checks nothing is written. */
gboolean qcrypto_x509_issuer_commit(QCryptoX509Issuer *issuer, gboolean force, GError **error);

/* The CA's distinguished name (free it) and its expiry (seconds since the
 * epoch). */
char *qcrypto_x509_issuer_get_dn(QCryptoX509Issuer *issuer);
gint64 qcrypto_x509_issuer_get_expiry(QCryptoX509Issuer *issuer);

G_END_DECLS
