#include "config.h"

#include "monitor/qmp-error.h"

G_DEFINE_QUARK(qmp-error-quark, qmp_error)

const char *qmp_error_class_name(const GError *error) {
  if (error->domain == QMP_ERROR) {
    switch (static_cast<QmpErrorClass>(error->code)) {
      case QMP_ERROR_COMMAND_NOT_FOUND:
        return "CommandNotFound";
      case QMP_ERROR_DEVICE_NOT_FOUND:
        return "DeviceNotFound";
      case QMP_ERROR_GENERIC:
        break;
    }
  }
  return "GenericError";
}
