# libFuzzer harnesses, one per parser family (docs/testing.md, "Fuzzing").
# With ./configure --enable-fuzzing, `make fuzz` runs each for
# QIO_FUZZ_SECONDS (default 30) over its seeds in tests/fuzz/corpus/NAME/;
# otherwise `make check` replays the seeds (and more) through them.
# Add one block per harness, its name to fuzz_harnesses, and its seeds.
FUZZ_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS)
# -no-install: real executables (no libtool wrapper), to run under gdb.
FUZZ_LDFLAGS_ALL = $(AM_LDFLAGS) $(FUZZ_LDFLAGS) -no-install
FUZZ_LDADD = $(FUZZ_MAIN) qio/libqio.la qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS)
if FUZZING
FUZZ_MAIN =
else
FUZZ_MAIN = tests/fuzz/libfuzz-replay.la
endif
fuzz_harnesses =

fuzz_harnesses += tests/fuzz/fuzz-options
tests_fuzz_fuzz_options_SOURCES = tests/fuzz/fuzz-options.cc
tests_fuzz_fuzz_options_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_options_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_options_LDADD = ui/libui.la chardev/libchardev.la nbd/libnbd-qio.la \
	migration/libmigration.la qom/libqom.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-object-add
tests_fuzz_fuzz_object_add_SOURCES = tests/fuzz/fuzz-object-add.cc
tests_fuzz_fuzz_object_add_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_object_add_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_object_add_LDADD = qom/libqom.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-json-splitter
tests_fuzz_fuzz_json_splitter_SOURCES = tests/fuzz/fuzz-json-splitter.cc
tests_fuzz_fuzz_json_splitter_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_json_splitter_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_json_splitter_LDADD = monitor/libmonitor.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-qmp-server
tests_fuzz_fuzz_qmp_server_SOURCES = tests/fuzz/fuzz-qmp-server.cc
tests_fuzz_fuzz_qmp_server_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_qmp_server_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_qmp_server_LDADD = monitor/libmonitor.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-websock
tests_fuzz_fuzz_websock_SOURCES = tests/fuzz/fuzz-websock.cc
tests_fuzz_fuzz_websock_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_websock_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_websock_LDADD = $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-nbd-protocol
tests_fuzz_fuzz_nbd_protocol_SOURCES = tests/fuzz/fuzz-nbd-protocol.cc
tests_fuzz_fuzz_nbd_protocol_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_nbd_protocol_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_nbd_protocol_LDADD = nbd/libnbd-qio.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-nbd-server
tests_fuzz_fuzz_nbd_server_SOURCES = tests/fuzz/fuzz-nbd-server.cc
tests_fuzz_fuzz_nbd_server_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_nbd_server_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_nbd_server_LDADD = nbd/libnbd-qio.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-nbd-client
tests_fuzz_fuzz_nbd_client_SOURCES = tests/fuzz/fuzz-nbd-client.cc
tests_fuzz_fuzz_nbd_client_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_nbd_client_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_nbd_client_LDADD = nbd/libnbd-qio.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-vnc-pixel-format
tests_fuzz_fuzz_vnc_pixel_format_SOURCES = tests/fuzz/fuzz-vnc-pixel-format.cc
tests_fuzz_fuzz_vnc_pixel_format_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_vnc_pixel_format_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_vnc_pixel_format_LDADD = ui/libui.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-vnc-server
tests_fuzz_fuzz_vnc_server_SOURCES = tests/fuzz/fuzz-vnc-server.cc
tests_fuzz_fuzz_vnc_server_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_vnc_server_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_vnc_server_LDADD = ui/libui.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-vnc-auth
tests_fuzz_fuzz_vnc_auth_SOURCES = tests/fuzz/fuzz-vnc-auth.cc
tests_fuzz_fuzz_vnc_auth_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_vnc_auth_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_vnc_auth_LDADD = ui/libui.la qom/libqom.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-migration-devices
tests_fuzz_fuzz_migration_devices_SOURCES = tests/fuzz/fuzz-migration-devices.cc
tests_fuzz_fuzz_migration_devices_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_migration_devices_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_migration_devices_LDADD = migration/libmigration.la $(FUZZ_LDADD)

fuzz_harnesses += tests/fuzz/fuzz-migration-stream
tests_fuzz_fuzz_migration_stream_SOURCES = tests/fuzz/fuzz-migration-stream.cc
tests_fuzz_fuzz_migration_stream_CPPFLAGS = $(FUZZ_CPPFLAGS)
tests_fuzz_fuzz_migration_stream_LDFLAGS = $(FUZZ_LDFLAGS_ALL)
tests_fuzz_fuzz_migration_stream_LDADD = migration/libmigration.la $(FUZZ_LDADD)

EXTRA_DIST += tests/fuzz/fuzz-util.h tests/fuzz/run-fuzz.sh tests/fuzz/corpus

if FUZZING
noinst_PROGRAMS += $(fuzz_harnesses)
fuzz: $(fuzz_harnesses)
	$(AM_V_at)QIO_FUZZ_SECONDS="$${QIO_FUZZ_SECONDS:-30}" $(SHELL) \
	  $(top_srcdir)/tests/fuzz/run-fuzz.sh "$(top_srcdir)/tests/fuzz/corpus" \
	  $(fuzz_harnesses)
else
fuzz:
	@echo "make fuzz: this build has no fuzzers; configure it with --enable-fuzzing" \
	  "(clang++ with libFuzzer: ../configure --enable-fuzzing CC=clang CXX=clang++)" >&2; exit 1
endif
.PHONY: fuzz
# What `make fuzz` found and learnt (run-fuzz.sh).
clean-local: clean-fuzz
clean-fuzz:
	-rm -rf tests/fuzz/work tests/fuzz/crashes
.PHONY: clean-fuzz

# Without libFuzzer the same harnesses get fuzz-replay.cc's main(), and
# `make check` replays their seeds and the inputs of problems fuzzing found.
if !FUZZING
noinst_LTLIBRARIES += tests/fuzz/libfuzz-replay.la
tests_fuzz_libfuzz_replay_la_SOURCES = tests/fuzz/fuzz-replay.cc
tests_fuzz_libfuzz_replay_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
check_PROGRAMS += $(fuzz_harnesses)
TESTS += tests/fuzz/test-fuzz-replay.sh
endif
EXTRA_DIST += tests/fuzz/test-fuzz-replay.sh
