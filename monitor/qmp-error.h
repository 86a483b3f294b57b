/*
 * The QMP error domain: each code is one of QEMU's wire error classes, so
 * a handler's GError becomes {"error": {"class": ..., "desc": ...}}.
 * Errors of any other domain are sent as GenericError.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QMP_ERROR (qmp_error_quark())

typedef enum {
  QMP_ERROR_GENERIC,           /* GenericError */
  QMP_ERROR_COMMAND_NOT_FOUND, /* CommandNotFound */
  QMP_ERROR_DEVICE_NOT_FOUND,  /* DeviceNotFound */
} QmpErrorClass;

GQuark qmp_error_quark(void);
/* The wire name of @error's class. */
const char *qmp_error_class_name(const GError *error);

G_END_DECLS
