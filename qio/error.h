/* qio error domain: failures that are not a plain system call errno. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QIO_ERROR (qio_error_quark())

typedef enum {
  QIO_ERROR_FAILED,
  QIO_ERROR_NOT_SUPPORTED,   /* the channel type cannot do this */
  QIO_ERROR_EOF,             /* the peer closed before all data arrived */
  QIO_ERROR_INVALID_ADDRESS, /* a socket address string could not be parsed */
  QIO_ERROR_PROTOCOL,        /* the peer broke the protocol */
  QIO_ERROR_TIMEOUT,
  QIO_ERROR_CHILD_EXITED,    /* a command channel's child died */
} QIOError;

GQuark qio_error_quark(void);

G_END_DECLS
