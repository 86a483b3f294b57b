# libqio: channels.  Add one line per file (+=), so that branches merge.
lib_LTLIBRARIES += qio/libqio.la
qioincludedir = $(includedir)/qio-1.0/qio
qioinclude_HEADERS =
qio_libqio_la_SOURCES =
qio_libqio_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
qio_libqio_la_LIBADD = qcrypto/libqcrypto.la $(GLIB_LIBS)
qio_libqio_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -no-undefined

qioinclude_HEADERS += qio/error.h
qio_libqio_la_SOURCES += qio/error.cc
qioinclude_HEADERS += qio/channel.h
qio_libqio_la_SOURCES += qio/channel.cc
qioinclude_HEADERS += qio/channel-watch.h
qio_libqio_la_SOURCES += qio/channel-watch.cc
qioinclude_HEADERS += qio/channel-buffer.h
qio_libqio_la_SOURCES += qio/channel-buffer.cc
