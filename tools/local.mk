# Programs: add one block per program.

noinst_PROGRAMS += tools/qio-demo
tools_qio_demo_SOURCES = tools/qio-demo.cc
tools_qio_demo_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tools_qio_demo_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)

bin_PROGRAMS += tools/qio-nbd
tools_qio_nbd_SOURCES = tools/qio-nbd.cc
tools_qio_nbd_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
tools_qio_nbd_LDADD = nbd/libnbd-qio.la qom/libqom.la $(JSON_GLIB_LIBS) qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
bin_PROGRAMS += tools/qiod
tools_qiod_SOURCES = tools/qiod.cc tools/qiod-options.h tools/qiod-options.cc
tools_qiod_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
tools_qiod_LDADD = monitor/libmonitor.la host/libhost.la qom/libqom.la qio/libqio.la \
	qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS)

bin_PROGRAMS += tools/qio-ctl
tools_qio_ctl_SOURCES = tools/qio-ctl.cc tools/qmp-client.h tools/qmp-client.cc
tools_qio_ctl_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
tools_qio_ctl_LDADD = monitor/libmonitor.la qio/libqio.la qcrypto/libqcrypto.la \
	$(JSON_GLIB_LIBS) $(GLIB_LIBS)
tools_qiod_LDADD += migration/libmigration.la
# qiod's chardevs; the libraries they use follow them for the static link.
tools_qiod_LDADD += chardev/libchardev.la monitor/libmonitor.la host/libhost.la qom/libqom.la \
	qio/libqio.la qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS)
# qiod's VNC server; the libraries it uses follow it for the static link.
tools_qiod_LDADD += ui/libui.la monitor/libmonitor.la host/libhost.la qom/libqom.la \
	qio/libqio.la qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS)

bin_PROGRAMS += tools/qio-pki
tools_qio_pki_SOURCES = tools/qio-pki.cc
tools_qio_pki_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tools_qio_pki_LDADD = qcrypto/libqcrypto.la $(GLIB_LIBS)
