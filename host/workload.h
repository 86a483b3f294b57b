/*
 * Workload: the guest's "CPU".  A thread that writes RAM pages at a chosen
 * dirty rate (pages per second) and disk blocks at a chosen disk rate
 * (blocks per second), paced in 10 ms ticks.  Paused by `stop`, resumed by
 * `cont`; a paused workload touches nothing.
 */
#pragma once

#include <glib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace qio::host {

class GuestRam;
class GuestDisk;

class Workload {
 public:
  /* Starts paused; @ram and @disks must outlive the workload. */
  Workload(GuestRam &ram, std::vector<GuestDisk *> disks, guint64 seed);
  ~Workload();
  Workload(const Workload &) = delete;
  Workload &operator=(const Workload &) = delete;

  void set_dirty_rate(guint64 pages_per_s);
  void set_disk_rate(guint64 blocks_per_s);
  guint64 dirty_rate() const;
  guint64 disk_rate() const;
  guint64 seed() const { return seed_; }
  void pause();
  void resume();
  bool paused() const;
  /* What migration carries to the destination's workload. */
  struct Counters {
    guint64 generation = 0;
    guint64 pages_total = 0;
    guint64 blocks_total = 0;
  };
  Counters counters() const;
  void restore_counters(const Counters &counters);

  /* Totals since start, for status reports and tests. */
  guint64 pages_written() const;
  guint64 blocks_written() const;

 private:
  void run();
  void restart_pacing();

  GuestRam &ram_;
  std::vector<GuestDisk *> disks_;
  const guint64 seed_;
  mutable std::mutex lock_;
  std::condition_variable wake_;
  guint64 dirty_rate_ = 0;
  guint64 disk_rate_ = 0;
  bool paused_ = true;
  bool quit_ = false;
  /* Pacing: what was due since the last rate change or resume. */
  std::chrono::steady_clock::time_point epoch_;
  guint64 pages_since_epoch_ = 0;
  guint64 blocks_since_epoch_ = 0;
  guint64 pages_total_ = 0;
  guint64 blocks_total_ = 0;
  guint64 generation_ = 0;
  std::thread thread_;
};

}  // namespace qio::host
