/*
 * qiod's block jobs: drive-mirror to an NBD target, query-block-jobs,
 * block-job-complete, block-job-cancel, and the events BLOCK_JOB_READY,
 * BLOCK_JOB_COMPLETED and BLOCK_JOB_CANCELLED in QEMU's shapes.
 */
#pragma once

#include "host/block-mirror.h"
#include "host/guest.h"
#include "monitor/qmp-server.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qio::monitor {

class BlockJobs {
 public:
  BlockJobs(QmpServer &server, host::Guest &guest) : server_(server), guest_(guest) {}
  BlockJobs(const BlockJobs &) = delete;
  BlockJobs &operator=(const BlockJobs &) = delete;

  /* Completes every ready mirror (for migration's switch-over) and calls
   * @done in the main context once all of them have ended; @ok is false
   * when one failed.  Jobs not ready yet are left alone. */
  void complete_ready(std::function<void(bool ok)> done);
  gsize count() const { return jobs_.size(); }

 private:
  friend void qmp_register_block_job_commands(QmpServer &, host::Guest &,
                                              std::weak_ptr<BlockJobs> *);
  JsonNode *drive_mirror(JsonObject *args, GError **error);
  JsonNode *query() const;
  host::BlockMirror *find(const char *id, GError **error);
  void on_done(host::BlockMirror &job, const GError *error, bool cancelled);

  struct Waiter {
    std::vector<std::string> pending;
    bool ok = true;
    std::function<void(bool)> done;
  };

  QmpServer &server_;
  host::Guest &guest_;
  std::map<std::string, std::unique_ptr<host::BlockMirror>> jobs_;
  std::vector<std::shared_ptr<Waiter>> waiters_;
};

/* Registers the commands; the jobs live as long as @server's command
 * table.  @jobs (may be null) receives them, for complete_ready(). */
void qmp_register_block_job_commands(QmpServer &server, host::Guest &guest,
                                     std::weak_ptr<BlockJobs> *jobs);

}  // namespace qio::monitor
