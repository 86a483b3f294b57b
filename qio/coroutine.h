/*
 * C++20 coroutine helpers for protocol code on non-blocking channels.
 *
 * A server (NBD, chardev, VNC, QMP) runs on a GMainContext.  Its per-client
 * code is a qio::Task that reads top to bottom; every I/O awaitable first
 * tries the operation and, when the channel would block, suspends on a
 * channel watch attached to the task's context and resumes there.
 *
 *   qio::Task<bool> handshake(QIOChannel *ioc, GCancellable *c, GError **error) {
 *     guint8 magic[8];
 *     if (!co_await qio::read_all(ioc, magic, sizeof magic, error, c)) co_return false;
 *     co_return co_await qio::write_all(ioc, "OK", 2, error, c);
 *   }
 *   qio::spawn(serve(client), [](GError *err) { ... }, server_context);
 *
 * Error model: as in the C API, operations that can fail take a
 * `GError **error` and return a success value (bool, or the byte count /
 * -1 of the channel functions).  The GError storage belongs to the caller,
 * which stays suspended while a callee runs, so pointing into the caller's
 * frame is safe.  A spawned task returns its result (for example a
 * `GError *`, nullptr on success) to the completion callback, which owns it.
 * C++ exceptions travel from a task to the task awaiting it; one escaping a
 * spawned task is a bug and aborts with its message: none crosses a GLib
 * callback.
 *
 * Cancellation: every awaitable takes an optional GCancellable, checked
 * before the first attempt and after every wakeup; cancelling wakes a
 * suspended task, which then fails with G_IO_ERROR_CANCELLED.  To stop a
 * server, cancel its tasks and run the context until they finished: a task
 * suspended when its context is destroyed is never resumed.
 * qio::CancelAfter cancels a GCancellable after a delay, so a server can
 * cap a handshake's duration.
 *
 * Threads: a task and its awaitables belong to one GMainContext, the one
 * the task was spawned on (while a task runs, that context is the thread's
 * default, so awaitables without an explicit context pick it up).
 */
#pragma once

#ifdef __cplusplus

#include "qio/channel-tls.h"
#include "qio/channel-websock.h"
#include "qio/channel.h"

#include <coroutine>
#include <exception>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

namespace qio {

template <typename T = void>
class Task;

namespace detail {

/* Resumes @h with @context pushed as the thread-default context, so that
 * awaitables and GIO calls inside the coroutine attach to it. */
void resume_in(GMainContext *context, std::coroutine_handle<> h) noexcept;

struct PromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr exception;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      return h.promise().continuation;  // symmetric transfer to the awaiter
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U &&v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

/* A lazily started coroutine returning T.  `co_await task` starts it and
 * resumes the awaiting coroutine when it finishes (symmetric transfer: no
 * stack growth along chains of tasks).  Move-only; destroying a Task
 * destroys its coroutine frame, suspended or not. */
template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  explicit Task(Handle h) noexcept : handle_(h) {}
  Task(Task &&other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task &operator=(Task &&other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task &) = delete;
  Task &operator=(const Task &) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool done() const noexcept { return handle_ && handle_.done(); }

  auto operator co_await() noexcept {
    struct Awaiter {
      Handle h;
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
        h.promise().continuation = caller;
        return h;
      }
      T await_resume() { return h.promise().take(); }
    };
    return Awaiter{handle_};
  }

 private:
  Handle handle_;
};

namespace detail {

template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

/* The frame of a spawned task: started from an idle source in its context,
 * destroys itself when it finishes. */
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept;
  };
  std::coroutine_handle<promise_type> handle;
};

/* Starts @h from an idle source in @context (nullptr: the global default);
 * if the context is destroyed first, the frame is destroyed unstarted. */
void start_in(GMainContext *context, std::coroutine_handle<> h) noexcept;

template <typename T, typename F>
Detached drive(Task<T> task, F done) {
  if constexpr (std::is_void_v<T>) {
    co_await task;
    done();
  } else {
    done(co_await task);
  }
}

template <typename T>
Detached drive_discard(Task<T> task) {
  co_await task;
}

/* Shared machinery of the I/O awaitables: try, and when the channel would
 * block, watch it (and the cancellable) in the owning context and retry. */
class IoOp {
 public:
  IoOp(const IoOp &) = delete;
  IoOp &operator=(const IoOp &) = delete;

  bool await_ready() noexcept;
  void await_suspend(std::coroutine_handle<> h) noexcept;

 protected:
  IoOp(QIOChannel *ioc, GIOCondition condition, GMainContext *context,
       GCancellable *cancellable, GError **error) noexcept
      : ioc_(ioc), condition_(condition), context_(context), cancellable_(cancellable),
        error_(error) {}
  ~IoOp();

  /* One attempt; false when it would block on condition_. */
  virtual bool step() noexcept = 0;

  QIOChannel *ioc_;
  GIOCondition condition_;
  GIOCondition revents_ = static_cast<GIOCondition>(0);
  GMainContext *context_;
  GCancellable *cancellable_;
  GError **error_;
  bool cancelled_ = false;

 private:
  bool check_cancelled() noexcept;
  void detach() noexcept;
  static gboolean on_ready(QIOChannel *ioc, GIOCondition condition, gpointer data) noexcept;
  static gboolean on_cancelled(GCancellable *cancellable, gpointer data) noexcept;
  void finish() noexcept;

  GSource *watch_ = nullptr;
  GSource *cancel_source_ = nullptr;
  GMainContext *owner_ = nullptr;
  std::coroutine_handle<> handle_;
};

class WaitIo final : public IoOp {
 public:
  WaitIo(QIOChannel *ioc, GIOCondition condition, GMainContext *context,
         GCancellable *cancellable) noexcept
      : IoOp(ioc, condition, context, cancellable, nullptr) {}
  bool await_ready() noexcept { return false; }
  GIOCondition await_resume() noexcept { return revents_; }

 private:
  bool step() noexcept override { return revents_ != 0; }
};

/* Moves every byte of an iovec array; the caller's array is not modified
 * and nothing is allocated.  Descriptors: a read hands those that arrived
 * to *fds / *nfds (only on success); a write sends them with the first
 * byte. */
struct FdArgs {
  int **recv_fds = nullptr;
  gsize *recv_nfds = nullptr;
  const int *send_fds = nullptr;
  gsize send_nfds = 0;
  int flags = 0;
};

class IovAll final : public IoOp {
 public:
  IovAll(QIOChannel *ioc, bool write, bool eof_ok, const struct iovec *iov, gsize niov,
         GCancellable *cancellable, GError **error, FdArgs fds = {}) noexcept
      : IoOp(ioc, write ? G_IO_OUT : G_IO_IN, nullptr, cancellable, error), iov_(iov),
        niov_(niov), write_(write), eof_ok_(eof_ok), fds_(fds) {
    if (fds_.recv_fds) *fds_.recv_fds = nullptr;
    if (fds_.recv_nfds) *fds_.recv_nfds = 0;
  }
  ~IovAll();
  /* 1 done, 0 clean end of file before the first byte (eof_ok), -1 error. */
  int await_resume() noexcept;

 private:
  bool step() noexcept override;
  const struct iovec *iov_;
  gsize niov_;
  gsize index_ = 0;
  gsize offset_ = 0; /* into iov_[index_] */
  bool write_;
  bool eof_ok_;
  bool moved_ = false;
  int result_ = -1;
  FdArgs fds_;
  int *got_fds_ = nullptr; /* received, not yet handed over */
  gsize got_nfds_ = 0;
};

/* One read that waits until at least one byte or the end of file. */
class ReadSome final : public IoOp {
 public:
  ReadSome(QIOChannel *ioc, void *buf, gsize len, GCancellable *cancellable,
           GError **error) noexcept
      : IoOp(ioc, G_IO_IN, nullptr, cancellable, error), iov_{buf, len} {}
  gssize await_resume() noexcept { return cancelled_ ? -1 : result_; }

 private:
  bool step() noexcept override;
  struct iovec iov_;
  gssize result_ = -1;
};

struct Boolify {
  IovAll op;
  bool await_ready() noexcept { return op.await_ready(); }
  void await_suspend(std::coroutine_handle<> h) noexcept { op.await_suspend(h); }
  bool await_resume() noexcept { return op.await_resume() == 1; }
};

class Sleep {
 public:
  Sleep(guint ms, GMainContext *context) noexcept : ms_(ms), context_(context) {}
  Sleep(const Sleep &) = delete;
  ~Sleep();
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept;
  void await_resume() noexcept {}

 private:
  static gboolean on_timeout(gpointer data) noexcept;
  guint ms_;
  GMainContext *context_;
  GMainContext *owner_ = nullptr;
  GSource *source_ = nullptr;
  std::coroutine_handle<> handle_;
};

}  // namespace detail

/* Starts @task on @context (nullptr: the global default context) from an
 * idle callback, even when called from another thread, and calls @done
 * with its result (no argument for Task<void>) in that context. */
template <typename T, typename F>
  requires(std::is_void_v<T> ? std::is_invocable_v<F> : std::is_invocable_v<F, T>)
void spawn(Task<T> task, F done, GMainContext *context = nullptr) {
  detail::start_in(context, detail::drive(std::move(task), std::move(done)).handle);
}

/* As above, discarding the result. */
template <typename T>
void spawn(Task<T> task, GMainContext *context = nullptr) {
  detail::start_in(context, detail::drive_discard(std::move(task)).handle);
}

/* Runs @context (nullptr: a fresh private one) until @task finishes and
 * returns its result: for tests and for tools' main functions. */
template <typename T>
T block_on(Task<T> task, GMainContext *context = nullptr) {
  GMainContext *ctx = context ? g_main_context_ref(context) : g_main_context_new();
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> result;
  bool finished = false;
  if constexpr (std::is_void_v<T>) {
    spawn(std::move(task), [&finished] { finished = true; }, ctx);
  } else {
    spawn(std::move(task), [&](T value) { result.emplace(std::move(value)); finished = true; },
          ctx);
  }
  g_main_context_push_thread_default(ctx);
  while (!finished) g_main_context_iteration(ctx, TRUE);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

/* Suspends until @condition holds on @ioc (G_IO_HUP / G_IO_ERR always
 * wake), in @context or the current task's context, and returns the
 * conditions that fired; 0 when @cancellable was cancelled.  Store the
 * result before testing it: GCC 12 mishandles `if (co_await wait_io(...))`
 * (see docs/coroutines.md). */
inline detail::WaitIo wait_io(QIOChannel *ioc, GIOCondition condition,
                              GMainContext *context = nullptr,
                              GCancellable *cancellable = nullptr) noexcept {
  return detail::WaitIo(ioc, condition, context, cancellable);
}

/* The coroutine forms of qio_channel_*_all: co_await gives TRUE when every
 * byte moved, FALSE with @error set otherwise (the end of file before all
 * bytes arrived is QIO_ERROR_EOF). */
inline detail::Boolify readv_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                 GError **error, GCancellable *cancellable = nullptr) noexcept {
  return {detail::IovAll(ioc, false, false, iov, niov, cancellable, error)};
}

inline detail::Boolify writev_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                  GError **error, GCancellable *cancellable = nullptr) noexcept {
  return {detail::IovAll(ioc, true, false, iov, niov, cancellable, error)};
}

/* co_await gives 1 when every byte arrived, 0 when the peer closed cleanly
 * before the first byte (no error), -1 with @error set otherwise. */
inline detail::IovAll readv_all_eof(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                    GError **error,
                                    GCancellable *cancellable = nullptr) noexcept {
  return detail::IovAll(ioc, false, true, iov, niov, cancellable, error);
}

/* With file descriptors (channels with QIO_CHANNEL_FEATURE_FD_PASS), as
 * qio_channel_readv_full_all_eof / _readv_full_all / _writev_full_all:
 * received descriptors come back in a g_new() array the caller frees and
 * closes; none are returned when the read fails. */
inline detail::IovAll readv_full_all_eof(QIOChannel *ioc, const struct iovec *iov,
                                         gsize niov, int **fds, gsize *nfds, GError **error,
                                         GCancellable *cancellable = nullptr) noexcept {
  return detail::IovAll(ioc, false, true, iov, niov, cancellable, error, {fds, nfds});
}

inline detail::Boolify readv_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                      int **fds, gsize *nfds, GError **error,
                                      GCancellable *cancellable = nullptr) noexcept {
  return {detail::IovAll(ioc, false, false, iov, niov, cancellable, error, {fds, nfds})};
}

inline detail::Boolify writev_full_all(QIOChannel *ioc, const struct iovec *iov, gsize niov,
                                       const int *fds, gsize nfds, int flags, GError **error,
                                       GCancellable *cancellable = nullptr) noexcept {
  return {detail::IovAll(ioc, true, false, iov, niov, cancellable, error,
                         {nullptr, nullptr, fds, nfds, flags})};
}

}  // namespace qio

/* The single-buffer awaitables keep their iovec inside the awaitable
 * object, which lives in the awaiting coroutine's frame.  The buffer must
 * outlive the co_await. */
namespace qio::detail {

struct BufferAll {
  struct iovec iov;
  IovAll op;
  BufferAll(QIOChannel *ioc, bool write, bool eof_ok, void *buf, gsize len,
            GCancellable *cancellable, GError **error) noexcept
      : iov{buf, len}, op(ioc, write, eof_ok, &iov, 1, cancellable, error) {}
  BufferAll(const BufferAll &) = delete;
  bool await_ready() noexcept { return op.await_ready(); }
  void await_suspend(std::coroutine_handle<> h) noexcept { op.await_suspend(h); }
};

struct BufferAllBool : BufferAll {
  using BufferAll::BufferAll;
  bool await_resume() noexcept { return op.await_resume() == 1; }
};

struct BufferAllEof : BufferAll {
  using BufferAll::BufferAll;
  int await_resume() noexcept { return op.await_resume(); }
};

}  // namespace qio::detail

namespace qio {

inline detail::BufferAllBool read_all(QIOChannel *ioc, void *buf, gsize len, GError **error,
                                      GCancellable *cancellable = nullptr) noexcept {
  return {ioc, false, false, buf, len, cancellable, error};
}

inline detail::BufferAllBool read_all(QIOChannel *ioc, std::span<std::byte> buf,
                                      GError **error,
                                      GCancellable *cancellable = nullptr) noexcept {
  return {ioc, false, false, buf.data(), buf.size(), cancellable, error};
}

inline detail::BufferAllEof read_all_eof(QIOChannel *ioc, void *buf, gsize len,
                                         GError **error,
                                         GCancellable *cancellable = nullptr) noexcept {
  return {ioc, false, true, buf, len, cancellable, error};
}

inline detail::BufferAllBool write_all(QIOChannel *ioc, const void *buf, gsize len,
                                       GError **error,
                                       GCancellable *cancellable = nullptr) noexcept {
  return {ioc, true, false, const_cast<void *>(buf), len, cancellable, error};
}

inline detail::BufferAllBool write_all(QIOChannel *ioc, std::span<const std::byte> buf,
                                       GError **error,
                                       GCancellable *cancellable = nullptr) noexcept {
  return {ioc, true, false, const_cast<std::byte *>(buf.data()), buf.size(), cancellable,
          error};
}

/* Waits until something can be read, then reads once: co_await gives the
 * byte count (at most @len), 0 at the end of file, -1 with @error set. */
inline detail::ReadSome read(QIOChannel *ioc, void *buf, gsize len, GError **error,
                             GCancellable *cancellable = nullptr) noexcept {
  return detail::ReadSome(ioc, buf, len, cancellable, error);
}

namespace detail {

/* Awaits a GIO-style asynchronous operation: @start(callback, data,
 * context) begins it, @finish(result, error) ends it in the callback.
 * The operation must call back before the task is destroyed (cancel it,
 * as servers do when they stop). */
template <typename Start, typename Finish>
class AsyncCall {
 public:
  AsyncCall(Start start, Finish finish, GError **error) noexcept
      : start_(std::move(start)), finish_(std::move(finish)), error_(error) {}
  AsyncCall(const AsyncCall &) = delete;
  ~AsyncCall() {
    if (context_) g_main_context_unref(context_);
  }
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    handle_ = h;
    context_ = g_main_context_ref_thread_default();
    start_(on_done, this, context_);
  }
  bool await_resume() noexcept { return ok_; }

 private:
  static void on_done(GObject *, GAsyncResult *result, gpointer data) noexcept {
    auto *self = static_cast<AsyncCall *>(data);
    self->ok_ = self->finish_(result, self->error_);
    resume_in(self->context_, self->handle_);
  }
  Start start_;
  Finish finish_;
  GError **error_;
  GMainContext *context_ = nullptr;
  std::coroutine_handle<> handle_;
  bool ok_ = false;
};

template <typename Start, typename Finish>
AsyncCall<Start, Finish> async_call(Start start, Finish finish, GError **error) noexcept {
  return AsyncCall<Start, Finish>(std::move(start), std::move(finish), error);
}

}  // namespace detail

/* Runs the TLS handshake of @tioc in the task's context; true when it
 * succeeded. */
inline auto tls_handshake(QIOChannelTLS *tioc, GCancellable *cancellable,
                          GError **error) noexcept {
  return detail::async_call(
      [=](GAsyncReadyCallback cb, gpointer data, GMainContext *context) {
        qio_channel_tls_handshake(tioc, cancellable, cb, data, context);
      },
      [=](GAsyncResult *result, GError **err) {
        return qio_channel_tls_handshake_finish(tioc, result, err) != FALSE;
      },
      error);
}

/* The same for a websocket's opening handshake. */
inline auto websock_handshake(QIOChannelWebsock *wioc, GCancellable *cancellable,
                              GError **error) noexcept {
  return detail::async_call(
      [=](GAsyncReadyCallback cb, gpointer data, GMainContext *context) {
        qio_channel_websock_handshake(wioc, context, cancellable, cb, data);
      },
      [=](GAsyncResult *result, GError **err) {
        return qio_channel_websock_handshake_finish(wioc, result, err) != FALSE;
      },
      error);
}

/* Resumes the task after @ms milliseconds, in @context or the task's. */
inline detail::Sleep sleep(guint ms, GMainContext *context = nullptr) noexcept {
  return detail::Sleep(ms, context);
}

/* Cancels @cancellable after @ms milliseconds in the current thread-default
 * context unless destroyed first: scope a handshake with it and check
 * expired() to tell a time-out from another cancellation. */
class CancelAfter {
 public:
  CancelAfter(GCancellable *cancellable, guint ms) noexcept;
  CancelAfter(const CancelAfter &) = delete;
  CancelAfter &operator=(const CancelAfter &) = delete;
  ~CancelAfter();
  bool expired() const noexcept { return expired_; }

 private:
  static gboolean on_timeout(gpointer data) noexcept;
  GCancellable *cancellable_;
  GSource *source_;
  bool expired_ = false;
};

}  // namespace qio

#endif /* __cplusplus */
