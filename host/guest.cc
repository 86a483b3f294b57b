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

struct DigestJob {
  Guest *guest;
  std::function<void(const Guest::Digests &, GError *)> done;
  Guest::Digests result;
  GError *error = nullptr;
};

}  // namespace

void Guest::digests_async(std::function<void(const Digests &, GError *)> done) {
  auto *job = new DigestJob{this, std::move(done), {}, nullptr};
  {
    std::lock_guard lock(workers_lock_);
    workers_++;
  }
  GTask *task = g_task_new(
      nullptr, nullptr,
      [](GObject *, GAsyncResult *, gpointer data) noexcept {
        std::unique_ptr<DigestJob> job(static_cast<DigestJob *>(data));
        job->done(job->result, job->error);
      },
      job);
  g_task_set_task_data(task, job, nullptr);
  g_task_run_in_thread(task, [](GTask *t, gpointer, gpointer data, GCancellable *) noexcept {
    auto *job = static_cast<DigestJob *>(data);
    Guest *g = job->guest;
    job->result.ram = g->ram_->digest();
    for (const auto &disk : g->disks_) {
      std::string d = disk->digest(job->error ? nullptr : &job->error);
      job->result.disks.push_back(std::move(d));
    }
    {
      std::lock_guard lock(g->workers_lock_);
      g->workers_--;
    }
    g->workers_done_.notify_all();
    g_task_return_boolean(t, TRUE);
  });
  g_object_unref(task);
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
      [g] { return g->ram_->digest(); },
      [g](guint64 rate) { g->workload_->set_dirty_rate(rate); },
  };
  guest->shell_ = std::make_unique<SerialShell>(std::move(backend), [g](std::string_view out) {
    g->framebuffer_.put_text(out);
    if (g->capture_) g->capture_->append(out);
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

std::string Guest::serial_input(std::string_view bytes) {
  std::string out;
  capture_ = &out;
  shell_->input(bytes);
  capture_ = nullptr;
  return out;
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
