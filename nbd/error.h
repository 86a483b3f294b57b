/* nbd error domain: what an NBD peer refused or got wrong. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NBD_ERROR (nbd_error_quark())

typedef enum {
  NBD_ERROR_FAILED,
  NBD_ERROR_PROTOCOL,       /* the peer broke the protocol */
  NBD_ERROR_UNKNOWN_EXPORT, /* the server has no export of that name */
  NBD_ERROR_TLS_REQUIRED,   /* the server insists on TLS first */
  NBD_ERROR_POLICY,         /* the server refused by policy (e.g. authz) */
  NBD_ERROR_UNSUPPORTED,    /* the peer lacks a needed feature */
  NBD_ERROR_INVALID_URI,    /* an nbd:// URI could not be parsed */
  NBD_ERROR_COMMAND,        /* a command failed on the server (NBD errno) */
  NBD_ERROR_EXPORT,         /* an export could not be created */
  NBD_ERROR_SHUTTING_DOWN,  /* the server refused a command as it is going away */
} NBDError;

GQuark nbd_error_quark(void);

G_END_DECLS
