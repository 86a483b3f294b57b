/*
 * The TLS credentials report: query-tls-creds (files loaded, certificate
 * subjects, expiry dates, revocation lists' next updates) and the
 * TLS_CREDS_EXPIRING event.
 */
#pragma once

#include "monitor/qmp-server.h"

namespace qio::monitor {

void qmp_register_tls_commands(QmpServer &server);

/* Emits TLS_CREDS_EXPIRING for every certificate or revocation list of
 * every TLS credentials object that expires within @days days or has
 * expired, once per file, subject and expiry date. */
void qmp_check_tls_expiry(QmpServer &server, guint days);

/* The window qiod warns about: after object-add and once a day. */
inline constexpr guint kExpiryWarningDays = 30;

}  // namespace qio::monitor
