# Programs: add one block per program.

noinst_PROGRAMS += tools/qio-demo
tools_qio_demo_SOURCES = tools/qio-demo.cc
tools_qio_demo_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tools_qio_demo_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
