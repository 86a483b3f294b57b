# migration/: add one line per file (+=).
# Live migration of the synthetic guest over qio channels.
noinst_LTLIBRARIES += migration/libmigration.la
migration_libmigration_la_SOURCES =
migration_libmigration_la_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS) $(JSON_GLIB_CFLAGS) \
	$(ZLIB_CFLAGS) $(ZSTD_CFLAGS)
migration_libmigration_la_LIBADD = monitor/libmonitor.la host/libhost.la qom/libqom.la \
	qio/libqio.la qcrypto/libqcrypto.la $(JSON_GLIB_LIBS) $(GLIB_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS)
migration_libmigration_la_SOURCES += migration/migration-stream.h migration/migration-stream.cc
migration_libmigration_la_SOURCES += migration/migration-transport.h migration/migration-transport.cc
migration_libmigration_la_SOURCES += migration/migration-job.h migration/migration-job.cc
migration_libmigration_la_SOURCES += migration/migration-source.h migration/migration-source.cc
migration_libmigration_la_SOURCES += migration/migration-incoming.h migration/migration-incoming.cc
migration_libmigration_la_SOURCES += migration/main-loop-caller.h migration/main-loop-caller.cc
migration_libmigration_la_SOURCES += migration/migration.h migration/migration.cc
migration_libmigration_la_SOURCES += migration/qmp-migration-commands.h migration/qmp-migration-commands.cc
migration_libmigration_la_SOURCES += migration/page-compressor.h migration/page-compressor.cc
