/*
 * The RFB "VNC authentication" challenge-response (RFB 6143 section
 * 7.2.2): the server sends 16 random bytes, the client returns them
 * DES-encrypted with the password (its first 8 bytes, each byte's bits
 * mirrored) as the key.  DES is weak, which is why VNC authentication
 * belongs inside TLS (VeNCrypt X509Vnc/TLSVnc); it lives here because only
 * qcrypto/ may use GnuTLS.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QCRYPTO_VNC_AUTH_CHALLENGE_LEN 16

/* Fills @challenge with random bytes from GnuTLS's generator. */
gboolean qcrypto_vnc_auth_challenge(guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                    GError **error);
/* The response a client knowing @password gives to @challenge. */
gboolean qcrypto_vnc_auth_response(const char *password,
                                   const guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                   guint8 response[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                   GError **error);
/* Whether @response answers @challenge for @password, compared in constant
 * time. */
gboolean qcrypto_vnc_auth_check(const char *password,
                                const guint8 challenge[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                const guint8 response[QCRYPTO_VNC_AUTH_CHALLENGE_LEN],
                                GError **error);

G_END_DECLS
