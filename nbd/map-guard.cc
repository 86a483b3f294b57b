#include "config.h"

#include "nbd/map-guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>

namespace qio::nbd {

namespace {

/* The handler may run in any thread at any moment: it reads only these
 * atomics, and a slot's range is published before anyone touches the map
 * and withdrawn after the last access.  @changes is odd while the range
 * changes, so that the handler never pairs one map's begin with another's
 * end when a slot is reused under it. */
struct Slot {
  std::atomic<bool> taken{false};
  std::atomic<guint> changes{0};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
  std::atomic<guint> faults{0};

  void set_range(std::uintptr_t new_begin, std::uintptr_t new_end) {
    changes.fetch_add(1);
    begin.store(new_begin);
    end.store(new_end);
    changes.fetch_add(1);
  }
  /* The range as one whole; begin 0 when the slot guards nothing. */
  void get_range(std::uintptr_t *b, std::uintptr_t *e) const {
    for (;;) {
      guint before = changes.load();
      if (before & 1) continue; /* another thread is between two stores */
      *b = begin.load();
      *e = end.load();
      if (changes.load() == before) return;
    }
  }
};

constexpr int kSlots = 64;
Slot slots[kSlots];
struct sigaction previous_action;
std::uintptr_t page_size;
bool installed = false;

void pass_on(int sig, siginfo_t *info, void *context) {
  if ((previous_action.sa_flags & SA_SIGINFO) && previous_action.sa_sigaction) {
    previous_action.sa_sigaction(sig, info, context);
    return;
  }
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
    previous_action.sa_handler(sig);
    return;
  }
  /* Returning repeats the access, which now ends the process as before. */
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, nullptr);
}

void on_sigbus(int sig, siginfo_t *info, void *context) {
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Slot &slot : slots) {
    std::uintptr_t begin, end;
    slot.get_range(&begin, &end);
    if (!begin || addr < begin || addr >= end) continue;
    std::uintptr_t page = addr & ~(page_size - 1);
    /* Counted first: once the page is replaced another thread can write
     * into it without a fault, and its owner must already see this one. */
    slot.faults.fetch_add(1);
    /* mmap is a plain system call here, safe in a handler in practice. */
    if (mmap(reinterpret_cast<void *>(page), page_size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
      break;
    return;
  }
  pass_on(sig, info, context);
}

bool install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    page_size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    struct sigaction action = {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    installed = sigaction(SIGBUS, &action, &previous_action) == 0;
  });
  return installed;
}

}  // namespace

MapGuard::MapGuard(void *base, gsize len) {
  if (!install_handler()) return;
  for (int i = 0; i < kSlots; i++) {
    bool expected = false;
    if (!slots[i].taken.compare_exchange_strong(expected, true)) continue;
    auto begin = reinterpret_cast<std::uintptr_t>(base);
    slots[i].faults.store(0);
    slots[i].set_range(begin, begin + len);
    slot_ = i;
    return;
  }
}

MapGuard::~MapGuard() {
  if (slot_ < 0) return;
  slots[slot_].set_range(0, 0);
  slots[slot_].taken.store(false);
}

guint MapGuard::faults() const {
  return slot_ < 0 ? 0 : slots[slot_].faults.load();
}

}  // namespace qio::nbd
