/*
 * Chardev: a character device backend (socket, file, pipe, pty, stdio,
 * ringbuf, null) that carries a byte stream between a frontend (the
 * guest's serial port, a monitor) and the outside world.  Everything runs
 * on one GMainContext with non-blocking channels and watches.
 *
 * Backends built on channels hand their connected channels to the base
 * class (set_channels), which reads while the frontend has room and queues
 * output the channel cannot take yet.
 */
#pragma once

#include "chardev/chardev-frontend.h"
#include "qio/channel.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include <array>
#include <functional>
#include <string>
#include <string_view>

namespace qio::chardev {

class Chardev {
 public:
  virtual ~Chardev();
  Chardev(const Chardev &) = delete;
  Chardev &operator=(const Chardev &) = delete;

  const std::string &id() const { return id_; }
  const char *backend() const { return backend_; }

  /* Listens, connects or opens files; called once, after construction. */
  virtual bool open(GError **error) = 0;
  /* Like open(), without holding the loop where that can take long (a
   * client connecting): @done runs in the chardev's context with NULL or
   * the error, which it owns.  By default it runs open() at once. */
  using OpenDone = std::function<void(GError *error)>;
  virtual void open_async(OpenDone done);

  /* One frontend at a time; it receives Opened at once if the backend is
   * already open. */
  virtual bool attach(ChardevFrontend *frontend, GError **error);
  virtual void detach(ChardevFrontend *frontend);
  /* The frontend that receives input (for a mux, the focused one). */
  virtual ChardevFrontend *frontend() const { return frontend_; }

  /* Sends @data to the backend; returns the bytes accepted (bytes written
   * while a socket has no peer are dropped, as on a real serial line). */
  virtual gsize write(std::string_view data);
  /* The frontend calls this when can_read() may have grown again. */
  virtual void accept_input();
  bool is_open() const { return open_; }

  /* QEMU's query-chardev "filename" for this backend. */
  virtual std::string filename() const = 0;
  /* Adds backend-specific members (TLS peer, ring size) to @info. */
  virtual void describe(JsonObject *info) const;

  /* Input that arrived while no frontend was attached: the newest
   * kMaxUnclaimed bytes, for QMP x-chardev-read.  Removes what it returns. */
  std::string take_unclaimed(gsize max);
  static constexpr gsize kMaxUnclaimed = 65536;

  /* Bytes queued for the backend's channel and not yet written. */
  gsize pending_output() const { return out_.size() - out_offset_; }
  static constexpr gsize kMaxQueued = 1 << 20;

 protected:
  Chardev(std::string id, const char *backend, GMainContext *context);

  GMainContext *context() const { return context_; }
  /* Starts carrying bytes over @in (may be null: write-only) and @out
   * (may be null: read-only); references are taken.  Emits Opened. */
  void set_channels(QIOChannel *in, QIOChannel *out);
  /* Stops and releases the channels (closing them unless @close is
   * false); emits Closed if it was open. */
  void drop_channels(bool close = true);
  /* The input channel reached end of file or failed.  The default closes
   * the channels; sockets go back to listening or reconnect. */
  virtual void hangup();
  /* Backends without channels (ringbuf, null) mark themselves open. */
  void set_open(bool open);
  /* Delivers @bytes to the frontend (ringbuf-write, telnet filtering). */
  void deliver(std::string_view bytes);
  /* Transforms input before the frontend sees it (telnet); the default
   * passes it through. */
  virtual void filter_input(std::string_view bytes) { deliver(bytes); }

 private:
  static gboolean on_readable(QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept;
  static gboolean on_writable(QIOChannel *ioc, GIOCondition cond, gpointer data) noexcept;
  void watch_input();
  void watch_output();
  bool flush_output();
  void remove_source(guint &id);

  std::string id_;
  const char *backend_;
  GMainContext *context_;
  ChardevFrontend *frontend_ = nullptr;
  QIOChannel *in_ = nullptr;
  QIOChannel *out_ioc_ = nullptr;
  guint read_watch_ = 0;
  guint write_watch_ = 0;
  std::string out_;
  gsize out_offset_ = 0;
  std::string unclaimed_;
  bool open_ = false;
  /* Large reads keep the per-call cost low on bulk input (a TLS record
   * is up to 16 KiB). */
  std::array<char, 65536> inbuf_;
};

}  // namespace qio::chardev
