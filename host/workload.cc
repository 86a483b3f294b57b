#include "config.h"

#include "host/workload.h"
#include "host/guest-disk.h"
#include "host/guest-ram.h"

namespace qio::host {

using Clock = std::chrono::steady_clock;

/* One tick never writes more than this, so a huge rate cannot starve
 * stop/cont or shutdown of the lock. */
static constexpr guint64 kMaxPerTick = 4096;

Workload::Workload(GuestRam &ram, std::vector<GuestDisk *> disks, guint64 seed)
    : ram_(ram), disks_(std::move(disks)), seed_(seed), epoch_(Clock::now()) {
  thread_ = std::thread([this] { run(); });
}

Workload::~Workload() {
  {
    std::lock_guard guard(lock_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Workload::restart_pacing() {
  epoch_ = Clock::now();
  pages_since_epoch_ = 0;
  blocks_since_epoch_ = 0;
}

void Workload::set_dirty_rate(guint64 pages_per_s) {
  {
    std::lock_guard guard(lock_);
    dirty_rate_ = pages_per_s;
    restart_pacing();
  }
  wake_.notify_all();
}

void Workload::set_disk_rate(guint64 blocks_per_s) {
  {
    std::lock_guard guard(lock_);
    disk_rate_ = blocks_per_s;
    restart_pacing();
  }
  wake_.notify_all();
}

Workload::Counters Workload::counters() const {
  std::lock_guard guard(lock_);
  return {generation_, pages_total_, blocks_total_};
}

void Workload::restore_counters(const Counters &counters) {
  std::lock_guard guard(lock_);
  generation_ = counters.generation;
  pages_total_ = counters.pages_total;
  blocks_total_ = counters.blocks_total;
}

guint64 Workload::dirty_rate() const {
  std::lock_guard guard(lock_);
  return dirty_rate_;
}

guint64 Workload::disk_rate() const {
  std::lock_guard guard(lock_);
  return disk_rate_;
}

void Workload::pause() {
  /* Taking the lock waits for a tick in progress: after pause() returns,
   * RAM and disks stay fixed. */
  std::lock_guard guard(lock_);
  paused_ = true;
}

void Workload::resume() {
  {
    std::lock_guard guard(lock_);
    paused_ = false;
    restart_pacing();
  }
  wake_.notify_all();
}

bool Workload::paused() const {
  std::lock_guard guard(lock_);
  return paused_;
}

guint64 Workload::pages_written() const {
  std::lock_guard guard(lock_);
  return pages_total_;
}

guint64 Workload::blocks_written() const {
  std::lock_guard guard(lock_);
  return blocks_total_;
}

static guint64 due(guint64 rate, Clock::duration elapsed) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  return static_cast<guint64>(static_cast<double>(rate) * static_cast<double>(us) / 1e6);
}

void Workload::run() {
  guint64 rng = seed_ ^ 0x5851F42D4C957F2DULL;
  std::unique_lock guard(lock_);
  while (!quit_) {
    if (paused_ || (dirty_rate_ == 0 && disk_rate_ == 0)) {
      wake_.wait(guard);
      continue;
    }
    auto elapsed = Clock::now() - epoch_;
    guint64 pages = MIN(due(dirty_rate_, elapsed) - MIN(due(dirty_rate_, elapsed),
                                                        pages_since_epoch_), kMaxPerTick);
    for (guint64 i = 0; i < pages; i++)
      ram_.write_page(splitmix64(rng) % ram_.page_count(), seed_, ++generation_);
    pages_since_epoch_ += pages;
    pages_total_ += pages;

    guint64 blocks = MIN(due(disk_rate_, elapsed) - MIN(due(disk_rate_, elapsed),
                                                        blocks_since_epoch_), kMaxPerTick);
    for (guint64 i = 0; i < blocks && !disks_.empty(); i++) {
      GuestDisk *disk = disks_[splitmix64(rng) % disks_.size()];
      if (disk->block_count() == 0) continue;
      /* A failing image (disk full) is reported by query-guest's digest;
       * the workload keeps going on the other disks.  A frozen disk (a
       * mirror's final pass) is skipped, not waited for: this thread holds
       * lock_, which the main loop takes (stop, query-guest), and a
       * stalled mirror target must not reach the main loop. */
      if (disk->write_block(splitmix64(rng) % disk->block_count(), seed_, ++generation_,
                            nullptr, true))
        blocks_total_++;
    }
    blocks_since_epoch_ += blocks;
    wake_.wait_for(guard, std::chrono::milliseconds(10));
  }
}

}  // namespace qio::host
