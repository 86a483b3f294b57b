# nbd: the NBD protocol (server, exports, client) over qio channels.
# Add one line per file (+=), so that branches merge.
noinst_LTLIBRARIES += nbd/libnbd-qio.la
nbd_libnbd_qio_la_SOURCES =
nbd_libnbd_qio_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
nbd_libnbd_qio_la_LIBADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)

nbd_libnbd_qio_la_SOURCES += nbd/error.h nbd/error.cc
nbd_libnbd_qio_la_SOURCES += nbd/protocol.h nbd/protocol.cc
nbd_libnbd_qio_la_SOURCES += nbd/export.h nbd/export.cc
nbd_libnbd_qio_la_SOURCES += nbd/map-guard.h nbd/map-guard.cc
nbd_libnbd_qio_la_SOURCES += nbd/server.h nbd/server.cc
nbd_libnbd_qio_la_SOURCES += nbd/client.h nbd/client.cc
