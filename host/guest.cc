#include "config.h"

#include "host/guest.h"
#include "qio/error.h"

#include <gio/gio.h>
#include <glib/gi18n-lib.h>

namespace qio::host {

Guest::~Guest() {
  std::unique_lock lock(workers_lock_);
  workers_done_.wait(lock, [this] { return workers_ == 0; });
}

namespace {

struct WorkerJob {
  std::function<void()> work;
  std::function<void()> done;
  std::weak_ptr<Guest *> guest;
  std::mutex *lock;
  std::condition_variable *finished;
  int *workers;
};

}  // namespace

void Guest::run_in_worker(std::function<void()> work, std::function<void()> done) {
  auto *job = new WorkerJob{std::move(work), std::move(done), self_,
                            &workers_lock_, &workers_done_, &workers_};
  {
    std::lock_guard lock(workers_lock_);
    workers_++;
  }
  GTask *task = g_task_new(
      nullptr, nullptr,
      [](GObject *, GAsyncResult *, gpointer data) noexcept {
        std::unique_ptr<WorkerJob> job(static_cast<WorkerJob *>(data));
        if (!job->guest.expired()) job->done();
      },
      job);
  g_task_set_task_data(task, job, nullptr);
  g_task_run_in_thread(task, [](GTask *t, gpointer, gpointer data, GCancellable *) noexcept {
    auto *job = static_cast<WorkerJob *>(data);
    job->work();
    {
      /* Notified under the lock: once it is released the guest may be
       * destroyed, so nothing of it is touched after. */
      std::lock_guard lock(*job->lock);
      (*job->workers)--;
      job->finished->notify_all();
    }
    g_task_return_boolean(t, TRUE);
  });
  g_object_unref(task);
}

void Guest::digests_async(std::function<void(const Digests &, GError *)> done) {
  struct Result {
    Digests digests;
    GError *error = nullptr;
  };
  auto result = std::make_shared<Result>();
  run_in_worker(
      [this, result] {
        result->digests.ram = ram_->digest();
        for (const auto &disk : disks_)
          result->digests.disks.push_back(disk->digest(result->error ? nullptr : &result->error));
      },
      [result, done = std::move(done)] { done(result->digests, result->error); });
}

void Guest::ram_digest_async(std::function<void(std::string)> done) {
  auto digest = std::make_shared<std::string>();
  run_in_worker([this, digest] { *digest = ram_->digest(); },
                [digest, done = std::move(done)] { done(std::move(*digest)); });
}

std::unique_ptr<Guest> Guest::create(const GuestConfig &config, GError **error) {
  std::unique_ptr<Guest> guest(new Guest());
  guest->ram_ = GuestRam::create(config.ram_size, config.seed, error);
  if (!guest->ram_) return nullptr;
  std::vector<GuestDisk *> disks;
  for (const auto &drive : config.drives) {
    if (guest->find_disk(drive.id)) {
      g_set_error(error, QIO_ERROR, QIO_ERROR_FAILED,
                  _("Drive id '%s' is used twice; give every -drive its own id="),
                  drive.id.c_str());
      return nullptr;
    }
    auto disk = GuestDisk::open(drive.id.c_str(), drive.file.c_str(), error);
    if (!disk) return nullptr;
    disks.push_back(disk.get());
    guest->disks_.push_back(std::move(disk));
  }
  guest->workload_ = std::make_unique<Workload>(*guest->ram_, std::move(disks), config.seed);
  guest->workload_->set_dirty_rate(config.dirty_rate);
  guest->workload_->set_disk_rate(config.disk_rate);

  Guest *g = guest.get();
  SerialShell::Backend backend{
      [g] { return g->status_line(); },
      [g](SerialShell::Reply reply) { g->ram_digest_async(std::move(reply)); },
      [g](guint64 rate) { g->workload_->set_dirty_rate(rate); },
  };
  guest->shell_ = std::make_unique<SerialShell>(std::move(backend), [g](std::string_view out) {
    g->framebuffer_.put_text(out);
    if (g->serial_output_) g->serial_output_(out);
  });
  guest->shell_->start();
  guest->cont();
  return guest;
}

GuestDisk *Guest::find_disk(std::string_view id) const {
  for (const auto &disk : disks_)
    if (disk->id() == id) return disk.get();
  return nullptr;
}

const char *Guest::status() const {
  if (!status_.empty()) return status_.c_str();
  return running_ ? "running" : "paused";
}

bool Guest::stop() {
  if (!running_) return false;
  workload_->pause();
  running_ = false;
  return true;
}

bool Guest::cont() {
  if (running_) return false;
  status_.clear();
  workload_->resume();
  running_ = true;
  return true;
}

void Guest::serial_input(std::string_view bytes, SerialShell::Done done) {
  shell_->input(bytes, std::move(done));
}

void Guest::set_serial_output(std::function<void(std::string_view)> sink) {
  serial_output_ = std::move(sink);
}

std::string Guest::status_line() const {
  g_autofree char *line = g_strdup_printf(
      "%s ram=%" G_GUINT64_FORMAT " dirty-rate=%" G_GUINT64_FORMAT
      " disk-rate=%" G_GUINT64_FORMAT " pages-written=%" G_GUINT64_FORMAT,
      running_ ? "running" : "paused", ram_->size(), workload_->dirty_rate(),
      workload_->disk_rate(), workload_->pages_written());
  return line;
}

}  // namespace qio::host
