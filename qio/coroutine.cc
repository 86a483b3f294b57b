#include "config.h"

#include "qio/coroutine.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <unistd.h>

#include <algorithm>
#include <initializer_list>

namespace qio {
namespace detail {

void resume_in(GMainContext *context, std::coroutine_handle<> h) noexcept {
  g_main_context_push_thread_default(context);
  h.resume();
  g_main_context_pop_thread_default(context);
}

namespace {

struct StartData {
  std::coroutine_handle<> handle;
  GMainContext *context;
  bool started;
};

gboolean start_cb(gpointer data) noexcept {
  auto *start = static_cast<StartData *>(data);
  start->started = true;
  resume_in(start->context, start->handle);
  return G_SOURCE_REMOVE;
}

void start_destroy(gpointer data) noexcept {
  auto *start = static_cast<StartData *>(data);
  /* The context went away before the task could run. */
  if (!start->started) start->handle.destroy();
  g_main_context_unref(start->context);
  delete start;
}

}  // namespace

void start_in(GMainContext *context, std::coroutine_handle<> h) noexcept {
  GMainContext *ctx = g_main_context_ref(context ? context : g_main_context_default());
  auto *start = new StartData{h, ctx, false};
  GSource *source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, start_cb, start, start_destroy);
  g_source_set_static_name(source, "qio task start");
  g_source_attach(source, ctx);
  g_source_unref(source);
}

void Detached::promise_type::unhandled_exception() noexcept {
  try {
    throw;
  } catch (const std::exception &e) {
    g_error(_("An exception escaped a spawned qio task (a bug: catch it in the task): %s"),
            e.what());
  } catch (...) {
    g_error(_("An exception escaped a spawned qio task (a bug: catch it in the task): %s"),
            "?");
  }
}

bool IoOp::check_cancelled() noexcept {
  if (!cancellable_ || !g_cancellable_is_cancelled(cancellable_)) return false;
  cancelled_ = true;
  g_set_error(error_, G_IO_ERROR, G_IO_ERROR_CANCELLED,
              _("I/O on channel '%s' was cancelled"), qio_channel_get_name(ioc_));
  return true;
}

bool IoOp::await_ready() noexcept { return check_cancelled() || step(); }

void IoOp::await_suspend(std::coroutine_handle<> h) noexcept {
  handle_ = h;
  owner_ = context_ ? g_main_context_ref(context_) : g_main_context_ref_thread_default();
  watch_ = qio_channel_create_watch(ioc_, condition_);
  g_source_set_callback(watch_, G_SOURCE_FUNC(on_ready), this, nullptr);
  g_source_attach(watch_, owner_);
  if (cancellable_) {
    cancel_source_ = g_cancellable_source_new(cancellable_);
    g_source_set_callback(cancel_source_, G_SOURCE_FUNC(on_cancelled), this, nullptr);
    g_source_attach(cancel_source_, owner_);
  }
}

void IoOp::detach() noexcept {
  for (GSource **source : {&watch_, &cancel_source_}) {
    if (!*source) continue;
    g_source_destroy(*source);
    g_source_unref(*source);
    *source = nullptr;
  }
}

IoOp::~IoOp() {
  detach();
  if (owner_) g_main_context_unref(owner_);
}

void IoOp::finish() noexcept {
  detach();
  /* Resuming may destroy this awaitable: copy what is needed first. */
  GMainContext *context = g_main_context_ref(owner_);
  resume_in(context, handle_);
  g_main_context_unref(context);
}

gboolean IoOp::on_ready(QIOChannel *, GIOCondition condition, gpointer data) noexcept {
  auto *op = static_cast<IoOp *>(data);
  op->revents_ = condition;
  if (!op->check_cancelled() && !op->step()) return G_SOURCE_CONTINUE;
  op->finish();
  return G_SOURCE_REMOVE;
}

gboolean IoOp::on_cancelled(GCancellable *, gpointer data) noexcept {
  auto *op = static_cast<IoOp *>(data);
  op->check_cancelled();
  op->finish();
  return G_SOURCE_REMOVE;
}

bool IovAll::step() noexcept {
  for (;;) {
    while (index_ < niov_ && iov_[index_].iov_len == offset_) {
      index_++;
      offset_ = 0;
    }
    /* Descriptors to send go out even without data, as in the C helpers. */
    if (index_ == niov_ && !(write_ && fds_.send_nfds)) break;
    /* Whole entries go straight from the caller's array; after a short
     * transfer the rest of the split entry needs an adjusted copy. */
    struct iovec local[64];
    const struct iovec *vec = iov_ + index_;
    gsize n = niov_ - index_;
    if (offset_) {
      n = std::min<gsize>(n, G_N_ELEMENTS(local));
      std::copy(vec, vec + n, local);
      local[0].iov_base = static_cast<char *>(local[0].iov_base) + offset_;
      local[0].iov_len -= offset_;
      vec = local;
    }
    gssize len;
    if (write_) {
      len = qio_channel_writev_full(ioc_, vec, n, fds_.send_fds, fds_.send_nfds, fds_.flags,
                                    error_);
    } else {
      /* Descriptors are taken from the first message that carries some. */
      bool want = fds_.recv_fds && !got_fds_;
      int *new_fds = nullptr;
      gsize new_nfds = 0;
      len = qio_channel_readv_full(ioc_, vec, n, want ? &new_fds : nullptr,
                                   want ? &new_nfds : nullptr, error_);
      if (new_nfds) {
        got_fds_ = new_fds;
        got_nfds_ = new_nfds;
      } else {
        g_free(new_fds);
      }
    }
    if (len == QIO_CHANNEL_ERR_BLOCK) return false;
    if (len < 0) {
      result_ = -1;
      return true;
    }
    if (write_) {
      fds_.send_fds = nullptr;
      fds_.send_nfds = 0;
    }
    if (len == 0 && !write_) {
      if (!moved_ && !got_fds_ && eof_ok_) {
        result_ = 0;
      } else if (!moved_ && !got_fds_) {
        g_set_error(error_, QIO_ERROR, QIO_ERROR_EOF,
                    _("Channel '%s' was closed by the peer before a message arrived"),
                    qio_channel_get_name(ioc_));
        result_ = -1;
      } else {
        g_set_error(error_, QIO_ERROR, QIO_ERROR_EOF,
                    _("Channel '%s' was closed by the peer in the middle of a message"),
                    qio_channel_get_name(ioc_));
        result_ = -1;
      }
      return true;
    }
    moved_ = true;
    auto left = static_cast<gsize>(len);
    while (left > 0) {
      gsize rest = iov_[index_].iov_len - offset_;
      if (left < rest) {
        offset_ += left;
        break;
      }
      left -= rest;
      index_++;
      offset_ = 0;
    }
  }
  result_ = 1;
  return true;
}

int IovAll::await_resume() noexcept {
  int result = cancelled_ ? -1 : result_;
  if (result == 1 && fds_.recv_fds) {
    *fds_.recv_fds = std::exchange(got_fds_, nullptr);
    *fds_.recv_nfds = std::exchange(got_nfds_, 0);
  }
  return result;
}

IovAll::~IovAll() {
  /* Received but not handed over (failure or cancellation): close them. */
  for (gsize i = 0; i < got_nfds_; i++) close(got_fds_[i]);
  g_free(got_fds_);
}

bool ReadSome::step() noexcept {
  gssize len = qio_channel_readv(ioc_, &iov_, 1, error_);
  if (len == QIO_CHANNEL_ERR_BLOCK) return false;
  result_ = len;
  return true;
}

void Sleep::await_suspend(std::coroutine_handle<> h) noexcept {
  handle_ = h;
  owner_ = context_ ? g_main_context_ref(context_) : g_main_context_ref_thread_default();
  source_ = g_timeout_source_new(ms_);
  g_source_set_callback(source_, on_timeout, this, nullptr);
  g_source_attach(source_, owner_);
}

gboolean Sleep::on_timeout(gpointer data) noexcept {
  auto *sleep = static_cast<Sleep *>(data);
  g_source_unref(std::exchange(sleep->source_, nullptr));
  GMainContext *context = g_main_context_ref(sleep->owner_);
  resume_in(context, sleep->handle_);
  g_main_context_unref(context);
  return G_SOURCE_REMOVE;
}

Sleep::~Sleep() {
  if (source_) {
    g_source_destroy(source_);
    g_source_unref(source_);
  }
  if (owner_) g_main_context_unref(owner_);
}

}  // namespace detail

CancelAfter::CancelAfter(GCancellable *cancellable, guint ms) noexcept
    : cancellable_(G_CANCELLABLE(g_object_ref(cancellable))),
      source_(g_timeout_source_new(ms)) {
  g_source_set_callback(source_, on_timeout, this, nullptr);
  g_source_attach(source_, g_main_context_get_thread_default());
}

gboolean CancelAfter::on_timeout(gpointer data) noexcept {
  auto *self = static_cast<CancelAfter *>(data);
  self->expired_ = true;
  g_cancellable_cancel(self->cancellable_);
  return G_SOURCE_REMOVE;
}

CancelAfter::~CancelAfter() {
  g_source_destroy(source_);
  g_source_unref(source_);
  g_object_unref(cancellable_);
}

}  // namespace qio
