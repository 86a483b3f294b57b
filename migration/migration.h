/*
 * Migration: qiod's migration state — the parameters and capabilities
 * set over QMP, the current (or last) outgoing or incoming job, its
 * status for query-migrate, and the MIGRATION events.  Main loop only;
 * the jobs run on their own threads.
 */
#pragma once

#include "host/guest.h"
#include "migration/main-loop-caller.h"
#include "migration/migration-incoming.h"
#include "migration/migration-job.h"
#include "migration/migration-source.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <functional>
#include <memory>

namespace qio::migration {

class Migration {
 public:
  using EventFunc = std::function<void(const char *name, JsonNode *data)>;
  /* @emit sends an event (it takes @data); @incoming_done runs once an
   * incoming migration ends (error NULL on success). */
  Migration(host::Guest &guest, EventFunc emit,
            std::function<void(const GError *error)> incoming_done);
  ~Migration();
  Migration(const Migration &) = delete;
  Migration &operator=(const Migration &) = delete;

  bool migrate(const char *uri, GError **error);
  bool cancel(GError **error);
  bool incoming(const char *uri, GError **error);
  /* -incoming defer: migrate-incoming is allowed once. */
  void set_deferred() { deferred_ = true; }
  /* Migration with storage: the source completes the ready mirrors
   * through @fn once it stopped the guest. */
  void set_complete_mirrors(std::function<void(std::function<void(bool)>)> fn) {
    complete_mirrors_ = std::move(fn);
  }

  JsonNode *query() const;
  bool set_parameters(JsonObject *args, GError **error);
  JsonNode *query_parameters() const;
  bool set_capabilities(JsonArray *caps, GError **error);
  JsonNode *query_capabilities() const;

 private:
  MigrationContext context();
  void status_changed(MigrationStatus status);
  bool busy() const;
  bool refuse_change(bool capabilities, GError **error) const;
  QCryptoTLSCreds *lookup_creds(QCryptoTLSCredsEndpoint endpoint, GError **error);

  host::Guest &guest_;
  EventFunc emit_;
  std::function<void(const GError *)> incoming_done_;
  MigrationParameters params_;
  MigrationCapabilities caps_;
  std::shared_ptr<MigrationStats> stats_;
  std::unique_ptr<MigrationSource> source_;
  std::unique_ptr<MigrationIncoming> incoming_;
  MainLoopCaller main_calls_;
  bool deferred_ = false;
  std::function<void(std::function<void(bool)>)> complete_mirrors_;
};

}  // namespace qio::migration
