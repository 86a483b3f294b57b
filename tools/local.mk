# Programs: add one block per program.

noinst_PROGRAMS += tools/qio-demo
tools_qio_demo_SOURCES = tools/qio-demo.cc
tools_qio_demo_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tools_qio_demo_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)

bin_PROGRAMS += tools/qio-nbd
tools_qio_nbd_SOURCES = tools/qio-nbd.cc
tools_qio_nbd_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
tools_qio_nbd_LDADD = nbd/libnbd-qio.la qom/libqom.la $(JSON_GLIB_LIBS) qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
