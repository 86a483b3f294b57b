/* qom error domain: creating, finding and deleting user-creatable objects. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QOM_ERROR (qom_error_quark())

typedef enum {
  QOM_ERROR_FAILED,
  QOM_ERROR_INVALID_ARGUMENT, /* malformed -object string, unknown key, bad value */
  QOM_ERROR_UNKNOWN_TYPE,     /* no user-creatable type of that name */
  QOM_ERROR_NOT_FOUND,        /* no object with that id */
  QOM_ERROR_EXISTS,           /* an object with that id exists already */
  QOM_ERROR_WRONG_TYPE,       /* the object with that id has another type */
  QOM_ERROR_IN_USE,           /* deletion refused: a consumer holds the object */
} QomError;

GQuark qom_error_quark(void);

G_END_DECLS
