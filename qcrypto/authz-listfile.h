/* QCryptoAuthzListFile (QOM type "authz-listfile"): the rules of an
 * authz-list read from a JSON file (`filename`):
 *   {"policy": "deny",
 *    "rules": [{"match": "CN=alice", "policy": "allow"}, ...]}
 * With `refresh` (default on) the file is watched (GFileMonitor, on the
 * thread-default main context of the thread that completes the object)
 * and re-read when it changes.  A file that cannot be read or parsed at
 * start-up fails the object; one that breaks later denies everyone, with a
 * warning naming the file, until it is fixed. */
#pragma once

#include "qcrypto/authz.h"

G_BEGIN_DECLS

#define QCRYPTO_TYPE_AUTHZ_LIST_FILE (qcrypto_authz_list_file_get_type())
G_DECLARE_FINAL_TYPE(QCryptoAuthzListFile, qcrypto_authz_list_file, QCRYPTO, AUTHZ_LIST_FILE,
                     QCryptoAuthz)

QCryptoAuthzListFile *qcrypto_authz_list_file_new(const char *id, const char *filename,
                                                  gboolean refresh, GError **error);

/* Re-reads the file now (what a change notification does).  On failure
 * the object denies everyone until a later reload succeeds. */
gboolean qcrypto_authz_list_file_reload(QCryptoAuthzListFile *listfile, GError **error);

G_END_DECLS
