# Unit tests: GLib test programs, one per class.  Add one block per test.
UNIT_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
UNIT_LDADD = qio/libqio.la qcrypto/libqcrypto.la $(GLIB_LIBS)
unit_tests =
check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)

unit_tests += tests/unit/test-channel-buffer
tests_unit_test_channel_buffer_SOURCES = tests/unit/test-channel-buffer.cc
tests_unit_test_channel_buffer_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_buffer_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-guest
tests_unit_test_guest_SOURCES = tests/unit/test-guest.cc
tests_unit_test_guest_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_guest_LDADD = host/libhost.la $(UNIT_LDADD)

unit_tests += tests/unit/test-vnc-tight-encoder
tests_unit_test_vnc_tight_encoder_SOURCES = tests/unit/test-vnc-tight-encoder.cc
tests_unit_test_vnc_tight_encoder_CPPFLAGS = $(UNIT_CPPFLAGS) $(ZLIB_CFLAGS)
tests_unit_test_vnc_tight_encoder_LDADD = ui/libui.la $(UNIT_LDADD) $(ZLIB_LIBS)

unit_tests += tests/unit/test-vnc-auth-throttle
tests_unit_test_vnc_auth_throttle_SOURCES = tests/unit/test-vnc-auth-throttle.cc
tests_unit_test_vnc_auth_throttle_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_vnc_auth_throttle_LDADD = ui/libui.la $(UNIT_LDADD)

unit_tests += tests/unit/test-qmp-server
tests_unit_test_qmp_server_SOURCES = tests/unit/test-qmp-server.cc
tests_unit_test_qmp_server_CPPFLAGS = $(UNIT_CPPFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_qmp_server_LDADD = monitor/libmonitor.la $(UNIT_LDADD) $(JSON_GLIB_LIBS)
# TLS tests make their certificates with GnuTLS in code.
TLS_TEST_HELPERS = tests/unit/crypto-tls-x509-helpers.cc tests/unit/crypto-tls-x509-helpers.h
unit_tests += tests/unit/test-crypto-tlscredsx509
tests_unit_test_crypto_tlscredsx509_SOURCES = tests/unit/test-crypto-tlscredsx509.cc $(TLS_TEST_HELPERS)
tests_unit_test_crypto_tlscredsx509_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_crypto_tlscredsx509_LDADD = qom/libqom.la $(UNIT_LDADD) $(GNUTLS_LIBS) $(JSON_GLIB_LIBS)
unit_tests += tests/unit/test-crypto-x509-issuer
tests_unit_test_crypto_x509_issuer_SOURCES = tests/unit/test-crypto-x509-issuer.cc $(TLS_TEST_HELPERS)
tests_unit_test_crypto_x509_issuer_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_crypto_x509_issuer_LDADD = $(UNIT_LDADD) $(GNUTLS_LIBS)
unit_tests += tests/unit/test-crypto-tlssession
tests_unit_test_crypto_tlssession_SOURCES = tests/unit/test-crypto-tlssession.cc $(TLS_TEST_HELPERS)
tests_unit_test_crypto_tlssession_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_crypto_tlssession_LDADD = $(UNIT_LDADD) $(GNUTLS_LIBS)
unit_tests += tests/unit/test-coroutine
tests_unit_test_coroutine_SOURCES = tests/unit/test-coroutine.cc
tests_unit_test_coroutine_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_coroutine_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-channel-file
tests_unit_test_channel_file_SOURCES = tests/unit/test-channel-file.cc
tests_unit_test_channel_file_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_file_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-channel-null
tests_unit_test_channel_null_SOURCES = tests/unit/test-channel-null.cc
tests_unit_test_channel_null_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_null_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-channel-command
tests_unit_test_channel_command_SOURCES = tests/unit/test-channel-command.cc
tests_unit_test_channel_command_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_command_LDADD = $(UNIT_LDADD)
# Every public header, compiled as C.
unit_tests += tests/unit/test-c-api
tests_unit_test_c_api_SOURCES = tests/unit/test-c-api.c
nodist_tests_unit_test_c_api_SOURCES = tests/unit/public-headers.h
tests_unit_test_c_api_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_c_api_CFLAGS = $(AM_CFLAGS) -std=c99
tests_unit_test_c_api_LDADD = $(UNIT_LDADD)
BUILT_SOURCES += tests/unit/public-headers.h
CLEANFILES += tests/unit/public-headers.h
EXTRA_DIST += tests/unit/gen-public-headers.sh
tests/unit/public-headers.h: Makefile $(srcdir)/tests/unit/gen-public-headers.sh
	$(AM_V_GEN)$(MKDIR_P) tests/unit && \
	$(SHELL) $(srcdir)/tests/unit/gen-public-headers.sh $(qioinclude_HEADERS) $(qcryptoinclude_HEADERS) > $@
unit_tests += tests/unit/test-channel-tls
tests_unit_test_channel_tls_SOURCES = tests/unit/test-channel-tls.cc $(TLS_TEST_HELPERS)
tests_unit_test_channel_tls_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_channel_tls_LDADD = $(UNIT_LDADD) $(GNUTLS_LIBS)

unit_tests += tests/unit/test-channel-websock
tests_unit_test_channel_websock_SOURCES = tests/unit/test-channel-websock.cc $(TLS_TEST_HELPERS)
tests_unit_test_channel_websock_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_channel_websock_LDADD = $(UNIT_LDADD) $(GNUTLS_LIBS)
unit_tests += tests/unit/test-secret
tests_unit_test_secret_SOURCES = tests/unit/test-secret.cc
tests_unit_test_secret_CPPFLAGS = $(UNIT_CPPFLAGS) $(GNUTLS_CFLAGS)
tests_unit_test_secret_LDADD = $(UNIT_LDADD) $(GNUTLS_LIBS)

unit_tests += tests/unit/test-authz
tests_unit_test_authz_SOURCES = tests/unit/test-authz.cc
tests_unit_test_authz_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_authz_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-qom
tests_unit_test_qom_SOURCES = tests/unit/test-qom.cc
tests_unit_test_qom_CPPFLAGS = $(UNIT_CPPFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_qom_LDADD = qom/libqom.la $(UNIT_LDADD) $(JSON_GLIB_LIBS)
unit_tests += tests/unit/test-socket-address
tests_unit_test_socket_address_SOURCES = tests/unit/test-socket-address.cc
tests_unit_test_socket_address_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_socket_address_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-channel-socket
tests_unit_test_channel_socket_SOURCES = tests/unit/test-channel-socket.cc
tests_unit_test_channel_socket_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_socket_LDADD = $(UNIT_LDADD)

unit_tests += tests/unit/test-net-listener
tests_unit_test_net_listener_SOURCES = tests/unit/test-net-listener.cc
tests_unit_test_net_listener_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_net_listener_LDADD = $(UNIT_LDADD)
EXTRA_DIST += tests/unit/assert-mentions.h
unit_tests += tests/unit/test-chardev
tests_unit_test_chardev_SOURCES = tests/unit/test-chardev.cc
tests_unit_test_chardev_CPPFLAGS = $(UNIT_CPPFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_chardev_LDADD = chardev/libchardev.la monitor/libmonitor.la host/libhost.la \
	qom/libqom.la $(UNIT_LDADD) $(JSON_GLIB_LIBS)

unit_tests += tests/unit/test-migration-stream
tests_unit_test_migration_stream_SOURCES = tests/unit/test-migration-stream.cc
tests_unit_test_migration_stream_CPPFLAGS = $(UNIT_CPPFLAGS) $(JSON_GLIB_CFLAGS)
tests_unit_test_migration_stream_LDADD = migration/libmigration.la $(UNIT_LDADD)
unit_tests += tests/unit/test-nbd-protocol
tests_unit_test_nbd_protocol_SOURCES = tests/unit/test-nbd-protocol.cc
tests_unit_test_nbd_protocol_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_nbd_protocol_LDADD = nbd/libnbd-qio.la $(UNIT_LDADD)

unit_tests += tests/unit/test-nbd-map-guard
tests_unit_test_nbd_map_guard_SOURCES = tests/unit/test-nbd-map-guard.cc
tests_unit_test_nbd_map_guard_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_nbd_map_guard_LDADD = nbd/libnbd-qio.la $(UNIT_LDADD)

unit_tests += tests/unit/test-nbd-server
tests_unit_test_nbd_server_SOURCES = tests/unit/test-nbd-server.cc
tests_unit_test_nbd_server_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_nbd_server_LDADD = nbd/libnbd-qio.la $(UNIT_LDADD)
unit_tests += tests/unit/test-crypto-hash
tests_unit_test_crypto_hash_SOURCES = tests/unit/test-crypto-hash.cc
tests_unit_test_crypto_hash_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_crypto_hash_LDADD = $(UNIT_LDADD)
unit_tests += tests/unit/test-block-mirror
tests_unit_test_block_mirror_SOURCES = tests/unit/test-block-mirror.cc
tests_unit_test_block_mirror_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_block_mirror_LDADD = host/libhost.la nbd/libnbd-qio.la $(UNIT_LDADD)
unit_tests += tests/unit/test-log-limiter
tests_unit_test_log_limiter_SOURCES = tests/unit/test-log-limiter.cc
tests_unit_test_log_limiter_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_log_limiter_LDADD = $(UNIT_LDADD)
# SASL tests run the real Cyrus SASL modules with a sasldb made by saslpasswd2.
unit_tests += tests/unit/test-sasl-session
tests_unit_test_sasl_session_SOURCES = tests/unit/test-sasl-session.cc tests/unit/sasl-test-helpers.h
tests_unit_test_sasl_session_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_sasl_session_LDADD = $(UNIT_LDADD)
unit_tests += tests/unit/test-channel-sasl
tests_unit_test_channel_sasl_SOURCES = tests/unit/test-channel-sasl.cc tests/unit/sasl-test-helpers.h
tests_unit_test_channel_sasl_CPPFLAGS = $(UNIT_CPPFLAGS)
tests_unit_test_channel_sasl_LDADD = $(UNIT_LDADD)
