#include "config.h"
#include "qcrypto/error.h"

G_DEFINE_QUARK(qcrypto-error-quark, qcrypto_error)
