# Benchmarks: built by 'make bench'-style targets; add one block per benchmark.

# Pipe throughput of the file, command and coroutine paths: ./tests/bench/bench-pipe [MiB]
noinst_PROGRAMS += tests/bench/bench-pipe
tests_bench_bench_pipe_SOURCES = tests/bench/bench-pipe.cc
tests_bench_bench_pipe_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_bench_bench_pipe_LDADD = qio/libqio.la $(GLIB_LIBS)
noinst_PROGRAMS += tests/bench/bench-channel-socket
tests_bench_bench_channel_socket_SOURCES = tests/bench/bench-channel-socket.cc
tests_bench_bench_channel_socket_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_bench_bench_channel_socket_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)

.PHONY: bench bench-channel-socket
bench: bench-channel-socket
bench-channel-socket: tests/bench/bench-channel-socket
	$(builddir)/tests/bench/bench-channel-socket

EXTRA_DIST += tests/bench/bench-nbd.sh
.PHONY: bench-nbd
bench: bench-nbd
bench-nbd: tools/qio-nbd
	QIO_BUILDDIR=$(abs_top_builddir) $(SHELL) $(srcdir)/tests/bench/bench-nbd.sh
noinst_PROGRAMS += tests/bench/bench-channel-websock
tests_bench_bench_channel_websock_SOURCES = tests/bench/bench-channel-websock.cc
tests_bench_bench_channel_websock_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_bench_bench_channel_websock_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)

.PHONY: bench-channel-websock
bench: bench-channel-websock
bench-channel-websock: tests/bench/bench-channel-websock
	$(builddir)/tests/bench/bench-channel-websock
noinst_PROGRAMS += tests/bench/bench-channel-tls
tests_bench_bench_channel_tls_SOURCES = tests/bench/bench-channel-tls.cc \
	tests/unit/crypto-tls-x509-helpers.cc tests/unit/crypto-tls-x509-helpers.h
tests_bench_bench_channel_tls_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(GNUTLS_CFLAGS)
tests_bench_bench_channel_tls_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS) $(GNUTLS_LIBS)

.PHONY: bench-channel-tls
bench: bench-channel-tls
bench-channel-tls: tests/bench/bench-channel-tls
	$(builddir)/tests/bench/bench-channel-tls
tests_bench_bench_channel_tls_SOURCES += tests/bench/bare-gnutls-stream.h tests/bench/bare-gnutls-stream.cc

# Migration: qiod against QEMU and the raw TCP / bare GnuTLS streams.
noinst_PROGRAMS += tests/bench/bench-stream-baseline
tests_bench_bench_stream_baseline_SOURCES = tests/bench/bench-stream-baseline.cc \
	tests/bench/bare-gnutls-stream.h tests/bench/bare-gnutls-stream.cc \
	tests/unit/crypto-tls-x509-helpers.cc tests/unit/crypto-tls-x509-helpers.h
tests_bench_bench_stream_baseline_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(GNUTLS_CFLAGS)
tests_bench_bench_stream_baseline_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS) \
	$(GNUTLS_LIBS)
EXTRA_DIST += tests/bench/bench-migration.py

.PHONY: bench-migration
bench-migration: tests/bench/bench-stream-baseline tools/qiod
	QIO_BUILDDIR=$(abs_builddir) /usr/bin/python3 $(srcdir)/tests/bench/bench-migration.py

noinst_PROGRAMS += tests/bench/bench-chardev
tests_bench_bench_chardev_SOURCES = tests/bench/bench-chardev.cc \
	tests/unit/crypto-tls-x509-helpers.cc tests/unit/crypto-tls-x509-helpers.h
tests_bench_bench_chardev_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS) \
	$(GNUTLS_CFLAGS)
tests_bench_bench_chardev_LDADD = chardev/libchardev.la monitor/libmonitor.la host/libhost.la \
	qom/libqom.la qio/libqio.la qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS) \
	$(GNUTLS_LIBS)

.PHONY: bench-chardev
bench: bench-chardev
bench-chardev: tests/bench/bench-chardev
	$(builddir)/tests/bench/bench-chardev
EXTRA_DIST += tests/bench/bench-util.h
.PHONY: bench-pipe
bench: bench-pipe
bench-pipe: tests/bench/bench-pipe
	$(builddir)/tests/bench/bench-pipe

# VNC: Tight against Raw per screen of console text (bytes, encoding time).
noinst_PROGRAMS += tests/bench/bench-vnc-tight
tests_bench_bench_vnc_tight_SOURCES = tests/bench/bench-vnc-tight.cc
tests_bench_bench_vnc_tight_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(ZLIB_CFLAGS)
tests_bench_bench_vnc_tight_LDADD = ui/libui.la host/libhost.la qio/libqio.la $(GLIB_LIBS) \
	$(ZLIB_LIBS)

.PHONY: bench-vnc-tight
bench: bench-vnc-tight
bench-vnc-tight: tests/bench/bench-vnc-tight
	$(builddir)/tests/bench/bench-vnc-tight
