# Benchmarks: built by 'make bench'-style targets; add one block per benchmark.

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
