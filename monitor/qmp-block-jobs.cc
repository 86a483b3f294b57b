#include "config.h"

#include "monitor/qmp-block-jobs.h"
#include "monitor/qmp-error.h"
#include "monitor/qmp-nbd-commands.h"
#include "nbd/client.h"

#include <glib/gi18n-lib.h>

#include <algorithm>

namespace qio::monitor {

/* The fields QEMU's block job events and query-block-jobs share. */
static JsonObject *job_info(const host::BlockMirror &job, const host::BlockMirror::Progress &p) {
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "type", "mirror");
  json_object_set_string_member(o, "device", job.job_id().c_str());
  json_object_set_int_member(o, "len", static_cast<gint64>(p.len));
  json_object_set_int_member(o, "offset", static_cast<gint64>(p.offset));
  json_object_set_int_member(o, "speed", 0);
  return o;
}

JsonNode *BlockJobs::query() const {
  JsonArray *list = json_array_new();
  for (const auto &[id, job] : jobs_) {
    host::BlockMirror::Progress p = job->progress();
    JsonObject *o = job_info(*job, p);
    bool ready = p.status == host::BlockMirror::Status::Ready;
    json_object_set_boolean_member(o, "busy", !ready);
    json_object_set_boolean_member(o, "paused", FALSE);
    json_object_set_boolean_member(o, "ready", ready);
    json_object_set_string_member(o, "io-status", "ok");
    json_object_set_string_member(o, "status",
                                  ready ? "ready"
                                  : p.status == host::BlockMirror::Status::Running ? "running"
                                                                                    : "concluded");
    json_object_set_boolean_member(o, "auto-finalize", TRUE);
    json_object_set_boolean_member(o, "auto-dismiss", TRUE);
    json_array_add_object_element(list, o);
  }
  return qmp_take_array(list);
}

host::BlockMirror *BlockJobs::find(const char *id, GError **error) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_DEVICE_NOT_FOUND,
                _("Block job '%s' not found; see query-block-jobs"), id);
    return nullptr;
  }
  return it->second.get();
}

JsonNode *BlockJobs::drive_mirror(JsonObject *args, GError **error) {
  const char *device = json_object_get_string_member(args, "device");
  const char *target = json_object_get_string_member(args, "target");
  const char *sync = json_object_get_string_member(args, "sync");
  const char *job_id = json_object_get_string_member_with_default(args, "job-id", device);
  const char *format = json_object_get_string_member_with_default(args, "format", "raw");
  const char *mode = json_object_get_string_member_with_default(args, "mode", "existing");
  host::GuestDisk *disk = qmp_find_drive(guest_, device, error);
  if (!disk) return nullptr;
  if (!g_str_equal(sync, "full")) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("drive-mirror of '%s': sync mode '%s' is not supported; use \"full\""), device,
                sync);
    return nullptr;
  }
  if (!g_str_equal(format, "raw")) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("drive-mirror of '%s': target format '%s' is not supported; NBD targets are "
                  "raw"),
                device, format);
    return nullptr;
  }
  if (!g_str_equal(mode, "existing") && !g_str_equal(mode, "absolute-paths")) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("drive-mirror of '%s': mode '%s' is unknown; use \"existing\""), device, mode);
    return nullptr;
  }
  if (jobs_.count(job_id)) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Block job id '%s' is already in use; choose another job-id"), job_id);
    return nullptr;
  }
  for (const auto &[id, job] : jobs_)
    if (&job->disk() == disk) {
      g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                  _("Drive '%s' is already being mirrored by job '%s'; wait for it or cancel it"),
                  device, id.c_str());
      return nullptr;
    }
  if (disk->writable_exports() > 0) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("Drive '%s' has a writable NBD export, whose writes the mirror would miss; "
                  "remove the export (or add it read-only) before mirroring"),
                device);
    return nullptr;
  }
  g_autoptr(QIOSocketAddress) addr = nullptr;
  g_autofree char *export_name = nullptr;
  gboolean tls = FALSE;
  if (!nbd_client_parse_uri(target, &addr, &export_name, &tls, error)) {
    g_prefix_error(error, _("drive-mirror of '%s': the target must be an NBD URI: "), device);
    return nullptr;
  }
  const char *creds_id = json_object_get_string_member_with_default(args, "tls-creds", nullptr);
  g_autoptr(QCryptoTLSCreds) creds = nullptr;
  if (creds_id) {
    creds = qmp_lookup_tls_creds(creds_id, QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT, error);
    if (!creds) return nullptr;
  } else if (tls) {
    g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                _("drive-mirror of '%s': target '%s' uses TLS; give 'tls-creds' (client "
                  "credentials)"),
                device, target);
    return nullptr;
  }
  host::MirrorConfig config;
  if (!qmp_get_count(args, "reconnect-delay", &config.reconnect_delay, error)) return nullptr;
  config.job_id = job_id;
  config.target = target;
  config.tls_creds = creds;
  config.tls_hostname = json_object_get_string_member_with_default(args, "tls-hostname", "");
  disk->set_mirror_job(job_id);
  jobs_[job_id] = std::make_unique<host::BlockMirror>(
      *disk, config, server_.context(),
      [this](host::BlockMirror &job, const host::BlockMirror::Progress &at) {
        server_.emit_event("BLOCK_JOB_READY", qmp_take_object(job_info(job, at)));
      },
      [this](host::BlockMirror &job, const GError *err, bool cancelled) {
        on_done(job, err, cancelled);
      });
  return qmp_empty_object();
}

void BlockJobs::on_done(host::BlockMirror &job, const GError *error, bool cancelled) {
  JsonObject *data = job_info(job, job.progress());
  if (error) {
    json_object_set_string_member(data, "error", error->message);
    g_warning("%s", error->message);
  }
  server_.emit_event(cancelled ? "BLOCK_JOB_CANCELLED" : "BLOCK_JOB_COMPLETED",
                     qmp_take_object(data));
  std::string id = job.job_id();
  /* Waiters of complete_ready() whose last job this was. */
  std::vector<std::shared_ptr<Waiter>> finished;
  for (auto &w : waiters_) {
    auto it = std::find(w->pending.begin(), w->pending.end(), id);
    if (it == w->pending.end()) continue;
    w->pending.erase(it);
    if (error || cancelled) w->ok = false;
    if (w->pending.empty()) finished.push_back(w);
  }
  std::erase_if(waiters_, [](const auto &w) { return w->pending.empty(); });
  job.disk().set_mirror_job("");
  jobs_.erase(id); /* destroys @job */
  for (auto &w : finished) w->done(w->ok);
}

void BlockJobs::complete_ready(std::function<void(bool ok)> done) {
  auto w = std::make_shared<Waiter>();
  w->done = std::move(done);
  for (auto &[id, job] : jobs_)
    if (job->complete()) w->pending.push_back(id);
  if (w->pending.empty()) {
    w->done(true);
    return;
  }
  waiters_.push_back(w);
}

void qmp_register_block_job_commands(QmpServer &server, host::Guest &guest,
                                     std::weak_ptr<BlockJobs> *out) {
  auto jobs = std::make_shared<BlockJobs>(server, guest);
  if (out) *out = jobs;
  server.add_command({"drive-mirror",
                      {{"device", QmpArgType::String},
                       {"target", QmpArgType::String},
                       {"sync", QmpArgType::String},
                       {"job-id", QmpArgType::String, true},
                       {"format", QmpArgType::String, true},
                       {"mode", QmpArgType::String, true},
                       {"tls-creds", QmpArgType::String, true},
                       {"tls-hostname", QmpArgType::String, true},
                       {"reconnect-delay", QmpArgType::Int, true}},
                      false, [jobs](JsonObject *args, GError **error) {
                        return jobs->drive_mirror(args, error);
                      }});
  server.add_command({"query-block-jobs", {}, false,
                      [jobs](JsonObject *, GError **) { return jobs->query(); }});
  server.add_command({"block-job-complete", {{"device", QmpArgType::String}}, false,
                      [jobs](JsonObject *args, GError **error) -> JsonNode * {
                        const char *id = json_object_get_string_member(args, "device");
                        host::BlockMirror *job = jobs->find(id, error);
                        if (!job) return nullptr;
                        if (!job->complete()) {
                          g_set_error(error, QMP_ERROR, QMP_ERROR_GENERIC,
                                      _("Block job '%s' is not ready yet; wait for "
                                        "BLOCK_JOB_READY"),
                                      id);
                          return nullptr;
                        }
                        return qmp_empty_object();
                      }});
  server.add_command({"block-job-cancel",
                      {{"device", QmpArgType::String}, {"force", QmpArgType::Bool, true}}, false,
                      [jobs](JsonObject *args, GError **error) -> JsonNode * {
                        host::BlockMirror *job =
                            jobs->find(json_object_get_string_member(args, "device"), error);
                        if (!job) return nullptr;
                        job->cancel(json_object_get_boolean_member_with_default(
                            args, "force", FALSE));
                        return qmp_empty_object();
                      }});
}

}  // namespace qio::monitor
