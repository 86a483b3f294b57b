#include "config.h"

#include "nbd/server.h"

#include "nbd/error.h"
#include "nbd/protocol.h"
#include "qio/admission.h"
#include "qio/channel-socket.h"
#include "qio/channel-tls.h"
#include "qio/coroutine.h"
#include "qio/error.h"

#include <glib/gi18n-lib.h>

#include <algorithm>
#include <deque>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

constexpr guint32 kBaseAllocationId = 1;
/* Extents per block status reply: enough for sparse images, bounded so a
 * request over a huge fragmented range cannot build a huge reply. */
constexpr gsize kMaxExtents = 2048;
constexpr gsize kDiscardChunk = 64 * 1024;
/* Requests one connection may have in flight, and the bytes they may hold:
 * enough to overlap file and network I/O, bounded against greedy clients. */
constexpr guint kMaxInFlight = 16;
constexpr gsize kMaxBytes = 64 * 1024 * 1024;
/* Idle buffers a connection keeps for its next requests: reusing them
 * spares the page faults of touching fresh memory on every read. */
constexpr gsize kKeepBytes = kMaxBytes;
/* Replies at least this big are written corked. */
constexpr gsize kCorkBytes = 64 * 1024;
/* A reader waiting for at least this much of a payload asks not to be woken
 * before it arrived (qio_channel_set_read_low_water). */
constexpr gsize kLowWaterBytes = 32 * 1024;
/* Threads running file I/O for all connections of a server. */
constexpr int kWorkers = 16;

struct Conn;

/* One request of the transmission phase with its buffer (write payload,
 * read data, or the block status reply). */
struct Job {
  Conn *conn = nullptr;
  NBDRequest req = {};
  guint32 err = 0;   /* NBD error found by validation: no command runs */
  int host_err = 0;  /* errno of the command */
  gsize extents = 0; /* block status extents in data */
  guint8 *data = nullptr;
  gsize capacity = 0;
  gsize charged = 0; /* counted in bytes_in_flight */
  bool from_file = false; /* read data goes out with sendfile, not from data */
  gsize reply_sent = 0;    /* bytes of the reply a worker wrote before the socket filled */
  bool in_map = false;     /* the write payload was received into the export's map */
  const guint8 *src = nullptr; /* read data in the export's map, not in data */
  guint8 hdr[NBD_STRUCTURED_REPLY_HEADER_SIZE + 8]; /* the reply header */
};

void execute(NBDExport *exp, Job *job) noexcept;

/* Runs fn in a connection's context after another thread called
 * g_source_set_ready_time(source, 0): replies went out, the reader ended. */
struct WakeSource {
  GSource source;
  Conn *conn;
  void (*fn)(Conn *conn);
};

GSource *wake_source_new(Conn *conn, const char *name, void (*fn)(Conn *conn),
                         GMainContext *context) {
  static GSourceFuncs funcs = {
      nullptr, nullptr,
      +[](GSource *source, GSourceFunc, gpointer) noexcept -> gboolean {
        g_source_set_ready_time(source, -1);
        auto *wake = reinterpret_cast<WakeSource *>(source);
        wake->fn(wake->conn);
        return G_SOURCE_CONTINUE;
      },
      nullptr, nullptr, nullptr};
  GSource *source = g_source_new(&funcs, sizeof(WakeSource));
  reinterpret_cast<WakeSource *>(source)->conn = conn;
  reinterpret_cast<WakeSource *>(source)->fn = fn;
  g_source_set_name(source, name);
  g_source_attach(source, context);
  return source;
}

/* Waits for a condition of a non-blocking channel in a thread of its own,
 * with one private context and watch for the thread's life:
 * qio_channel_wait() (and so qio_channel_writev_all()) builds both on
 * every wait, which costs more than the I/O of a busy connection. */
struct ThreadWait {
  GMainContext *ctx = g_main_context_new();
  GSource *src;
  bool ready = false;
  ThreadWait(QIOChannel *ioc, GIOCondition condition) : src(qio_channel_create_watch(ioc, condition)) {
    g_source_set_callback(
        src,
        G_SOURCE_FUNC(+[](QIOChannel *, GIOCondition, gpointer data) noexcept -> gboolean {
          static_cast<ThreadWait *>(data)->ready = true;
          return G_SOURCE_CONTINUE;
        }),
        this, nullptr);
    g_source_attach(src, ctx);
  }
  ~ThreadWait() {
    g_source_destroy(src);
    g_source_unref(src);
    g_main_context_unref(ctx);
  }
  ThreadWait(const ThreadWait &) = delete;
  ThreadWait &operator=(const ThreadWait &) = delete;
  void wait() {
    ready = false;
    while (!ready) g_main_context_iteration(ctx, TRUE);
  }
};

/* While a large payload is awaited, the channel need not wake the reader
 * for each packet of it; back to every byte when done (requests are small). */
struct LowWater {
  QIOChannel *ioc;
  bool set = false;
  void expect(gsize bytes) {
    if (bytes < kLowWaterBytes) {
      clear();
      return;
    }
    qio_channel_set_read_low_water(ioc, bytes);
    set = true;
  }
  void clear() {
    if (set) qio_channel_set_read_low_water(ioc, 0);
    set = false;
  }
  ~LowWater() { clear(); }
};

/* Reads @len bytes into @buf, waiting with @w: 1 when done, 0 when the
 * peer closed before the first byte and @eof_ok, else -1 with @error set. */
int read_exact(QIOChannel *ioc, ThreadWait &w, void *buf, gsize len, bool eof_ok,
               GError **error) {
  auto *p = static_cast<guint8 *>(buf);
  gsize done = 0;
  LowWater low_water{ioc};
  while (done < len) {
    gssize n = qio_channel_read(ioc, p + done, len - done, error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      low_water.expect(len - done);
      w.wait();
      continue;
    }
    if (n < 0) return -1;
    if (n == 0) {
      if (done == 0 && eof_ok) return 0;
      g_set_error(error, QIO_ERROR, QIO_ERROR_EOF,
                  _("Channel '%s' was closed by the peer in the middle of a message"),
                  qio_channel_get_name(ioc));
      return -1;
    }
    done += static_cast<gsize>(n);
  }
  return 1;
}

/* Drops the first @done bytes of *@iov (entries and *@niov shrink). */
void consume_iov(struct iovec *&iov, gsize &niov, gsize done) {
  while (niov > 0 && done >= iov->iov_len) {
    done -= iov->iov_len;
    iov++;
    niov--;
  }
  if (niov > 0) {
    iov->iov_base = static_cast<guint8 *>(iov->iov_base) + done;
    iov->iov_len -= done;
  }
}

/* Writes all of @iov (which it consumes), waiting with @w. */
bool write_exact(QIOChannel *ioc, ThreadWait &w, struct iovec *iov, gsize niov, GError **error) {
  while (niov > 0) {
    gssize n = qio_channel_writev(ioc, iov, niov, error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      w.wait();
      continue;
    }
    if (n < 0) return false;
    consume_iov(iov, niov, static_cast<gsize>(n));
  }
  return true;
}

/* Parks the awaiting coroutine in *slot until someone resumes it. */
struct Park {
  std::coroutine_handle<> *slot;
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { *slot = h; }
  void await_resume() noexcept {}
};

}  // namespace

struct NBDServerPrivate {
  GMainContext *context = nullptr;
  QIONetListener *listener = nullptr;
  std::map<std::string, NBDExport *> exports;
  std::vector<std::string> export_order; /* NBD_OPT_LIST in insertion order */
  guint max_connections = 0;
  guint handshake_max_seconds = 10;
  QCryptoTLSCreds *tls_creds = nullptr;
  QCryptoAuthz *tls_authz = nullptr;
  std::list<Conn *> conns;
  GThreadPool *workers = nullptr; /* file I/O of every connection's requests */
};

struct _NBDServer {
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE_WITH_PRIVATE(NBDServer, nbd_server, G_TYPE_OBJECT)

enum { SIGNAL_CLIENT_CLOSED, N_SIGNALS };
static guint signals[N_SIGNALS];

static NBDServerPrivate *server_priv(NBDServer *server) {
  return static_cast<NBDServerPrivate *>(nbd_server_get_instance_private(server));
}

namespace {

/* One client connection. */
struct Conn {
  NBDServer *server;
  QIOChannel *ioc;
  GCancellable *cancel;
  std::string peer;
  NBDExport *exp = nullptr;
  guint16 export_flags = 0;
  bool no_zeroes = false;
  bool tls = false; /* STARTTLS done */
  bool negotiating = true; /* still in the handshake */
  bool evicted = false;    /* cut in the handshake to make room for a newer client */
  bool structured = false;
  bool base_allocation = false;
  std::string meta_export; /* the export SET_META_CONTEXT was for */
  std::vector<guint8> option;
  GMainContext *context = nullptr; /* the one the connection's tasks run in */

  /* Transmission: a reader thread per connection reads the requests and
   * their payloads, blocking (so that the connections of a server receive
   * and decrypt in parallel, not in turn in the context), worker threads
   * run them, and one sender thread writes the replies, blocking, as many
   * at once as are ready: the loop never copies reply data, and a full
   * socket costs no round trip through it.  The context releases the jobs
   * whose replies went out.  Job accounting is under jobs_mutex. */
  GMutex jobs_mutex;
  GCond room_cond; /* the reader waits here for room in flight */
  guint in_flight = 0;
  gsize bytes_in_flight = 0;
  std::vector<Job *> idle_jobs;
  gsize idle_bytes = 0;
  bool broken = false;
  std::coroutine_handle<> waiter; /* transmission() waiting in the context */
  GError *send_error = nullptr;
  GThread *reader_thread = nullptr;
  GSource *reader_done = nullptr; /* wakes transmission() when the reader ends */
  bool reader_ok = true;
  GError *reader_error = nullptr;
  /* Writes into the export under way (a payload being received into the
   * map, a worker writing, trimming or zeroing), under jobs_mutex: a hard
   * removal or a server stop waits for them and lets no new one start, so
   * that nothing lands in the file once it returns. */
  guint writes_under_way = 0;
  bool writes_stopped = false;
  GCond writes_cond;

  /* Shared with the sender thread, under send_mutex. */
  GMutex send_mutex;
  GCond send_cond;
  std::vector<Job *> ready; /* replies to send, in completion order */
  std::vector<Job *> sent;  /* replies gone out, for the context to release */
  bool stop_sender = false;
  bool sender_idle = false; /* waiting on send_cond */
  bool writing = false;     /* a thread is writing replies: nobody else may */
  bool send_dead = false;   /* a write failed: nothing more goes out */
  bool sender_failed = false;
  GError *sender_error = nullptr; /* why the write failed */
  GThread *sender = nullptr;
  GSource *sent_source = nullptr; /* wakes the context for `sent` */
  std::vector<Job *> collecting;  /* the context's side of `sent` */

  Conn(NBDServer *s, QIOChannel *c)
      : server(NBD_SERVER(g_object_ref(s))), ioc(QIO_CHANNEL(g_object_ref(c))),
        cancel(g_cancellable_new()), peer(qio_channel_get_name(c) ? qio_channel_get_name(c) : "?") {
    g_mutex_init(&send_mutex);
    g_cond_init(&send_cond);
    g_mutex_init(&jobs_mutex);
    g_cond_init(&room_cond);
    g_cond_init(&writes_cond);
  }
  ~Conn() {
    for (Job *job : idle_jobs) {
      g_free(job->data);
      delete job;
    }
    g_clear_error(&send_error);
    g_clear_error(&sender_error);
    g_cond_clear(&send_cond);
    g_mutex_clear(&send_mutex);
    g_cond_clear(&room_cond);
    g_cond_clear(&writes_cond);
    g_mutex_clear(&jobs_mutex);
    if (context) g_main_context_unref(context);
    if (exp) g_object_unref(exp);
    qio_channel_close(ioc, nullptr);
    g_object_unref(ioc);
    g_object_unref(cancel);
    g_object_unref(server);
  }

  bool fail(GError **error, const char *message) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL, _("NBD client %s: %s"), peer.c_str(),
                message);
    return false;
  }

  qio::Task<bool> send_rep(guint32 opt, guint32 type, const void *data, gsize len,
                           GError **error) {
    guint8 hdr[NBD_OPTION_REPLY_HEADER_SIZE];
    nbd_put64(hdr, NBD_REP_MAGIC);
    nbd_put32(hdr + 8, opt);
    nbd_put32(hdr + 12, type);
    nbd_put32(hdr + 16, static_cast<guint32>(len));
    struct iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<void *>(data), len}};
    co_return co_await qio::writev_all(ioc, iov, len ? 2 : 1, error, cancel);
  }

  qio::Task<bool> send_rep_error(guint32 opt, guint32 type, const char *message,
                                 GError **error) {
    co_return co_await send_rep(opt, type, message, strlen(message), error);
  }

  /* Reads and drops @len bytes, to skip an option too big to hold. */
  qio::Task<bool> discard(guint64 len, GError **error) {
    guint8 sink[kDiscardChunk];
    while (len > 0) {
      gsize n = static_cast<gsize>(std::min<guint64>(len, sizeof sink));
      if (!co_await qio::read_all(ioc, sink, n, error, cancel)) co_return false;
      len -= n;
    }
    co_return true;
  }

  qio::Task<bool> send_export_info(guint32 opt, NBDExport *e, GArray *infos,
                                   GError **error);
  qio::Task<bool> meta_context(guint32 opt, GError **error);
  qio::Task<bool> starttls(GError **error);
  /* Returns 1 when the client chose an export, 0 to go on, -1 to end
   * (with @error set unless the client aborted). */
  qio::Task<int> option_step(GError **error);
  /* True when the client entered the transmission phase. */
  qio::Task<bool> handshake(GError **error);
  /* Serves requests until NBD_CMD_DISC, the end of file or an error. */
  qio::Task<bool> transmission(GError **error);
  /* In the reader: waits for room for @len more bytes in flight; @alloc
   * says whether the job's buffer must hold them.  NULL when the
   * connection broke meanwhile. */
  Job *take_job(gsize len, bool alloc);
  /* The reader thread's loop; false with @error set on a failure. */
  bool read_requests(GError **error);
  void release_job(Job *job);
  /* False once stop_writes() ran: the write must not start. */
  bool begin_write();
  void end_write();
  /* From the server's context, after the connection was shut down: waits
   * for the writes under way and refuses new ones. */
  void stop_writes();
  /* Hands @job's reply to the sender thread (from any thread). */
  void queue_reply(Job *job);
  /* From a worker or the reader: writes the reply of @job at once when no
   * other reply is waiting, else hands it to the sender thread;
   * @release_here: the caller frees the job, not the context. */
  void reply_now(Job *job, bool release_here = false);
  void start_sender();
  /* Waits for the sender thread after the last reply went out. */
  void stop_sender_thread();
  void send_loop();
  /* Plain sockets send read data from the export's page cache with
   * sendfile: no copy into a buffer and out again. */
  bool send_from_file = false;
  bool send_file_data(Job *job, ThreadWait &writable, GError **error);
  /* In the context: releases the jobs whose replies went out. */
  void collect_sent();
  qio::Task<GError *> serve();
};

qio::Task<bool> Conn::send_export_info(guint32 opt, NBDExport *e, GArray *infos,
                                       GError **error) {
  guint8 info[12];
  nbd_put16(info, NBD_INFO_EXPORT);
  nbd_put64(info + 2, nbd_export_get_size(e));
  nbd_put16(info + 10, export_flags);
  if (!co_await send_rep(opt, NBD_REP_INFO, info, 12, error)) co_return false;
  for (guint i = 0; infos && i < infos->len; i++) {
    guint16 type = g_array_index(infos, guint16, i);
    const char *text = type == NBD_INFO_NAME          ? nbd_export_get_name(e)
                       : type == NBD_INFO_DESCRIPTION ? nbd_export_get_description(e)
                                                      : nullptr;
    if (!text) continue;
    std::vector<guint8> payload(2 + strlen(text));
    nbd_put16(payload.data(), type);
    memcpy(payload.data() + 2, text, payload.size() - 2);
    if (!co_await send_rep(opt, NBD_REP_INFO, payload.data(), payload.size(), error))
      co_return false;
  }
  /* Always sent: clients learn the payload cap and that any alignment works. */
  guint8 bs[14];
  nbd_put16(bs, NBD_INFO_BLOCK_SIZE);
  nbd_put32(bs + 2, 1);
  nbd_put32(bs + 6, 4096);
  nbd_put32(bs + 10, NBD_MAX_PAYLOAD);
  co_return co_await send_rep(opt, NBD_REP_INFO, bs, sizeof bs, error);
}

qio::Task<bool> Conn::meta_context(guint32 opt, GError **error) {
  g_autofree char *name = nullptr;
  g_autoptr(GPtrArray) queries = nullptr;
  g_autoptr(GError) parse_error = nullptr;
  if (!structured)
    co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID,
                                      "negotiate NBD_OPT_STRUCTURED_REPLY first", error);
  if (!nbd_parse_meta_context_request(option.data(), option.size(), &name, &queries,
                                      &parse_error))
    co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID, parse_error->message, error);
  if (!nbd_server_lookup_export(server, name))
    co_return co_await send_rep_error(opt, NBD_REP_ERR_UNKNOWN, "no such export", error);
  bool set = opt == NBD_OPT_SET_META_CONTEXT;
  bool match = false;
  if (queries->len == 0) {
    match = !set; /* an empty LIST lists everything; an empty SET selects nothing */
  }
  for (guint i = 0; i < queries->len; i++) {
    const char *q = static_cast<const char *>(queries->pdata[i]);
    if (strcmp(q, NBD_META_CONTEXT_BASE_ALLOCATION) == 0 || (!set && strcmp(q, "base:") == 0))
      match = true;
  }
  if (set) {
    base_allocation = match;
    meta_export = name;
  }
  if (match) {
    const char *ctx = NBD_META_CONTEXT_BASE_ALLOCATION;
    std::vector<guint8> payload(4 + strlen(ctx));
    nbd_put32(payload.data(), set ? kBaseAllocationId : 0);
    memcpy(payload.data() + 4, ctx, strlen(ctx));
    if (!co_await send_rep(opt, NBD_REP_META_CONTEXT, payload.data(), payload.size(), error))
      co_return false;
  }
  co_return co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, error);
}

qio::Task<bool> Conn::starttls(GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  const guint32 opt = NBD_OPT_STARTTLS;
  if (!priv->tls_creds)
    co_return co_await send_rep_error(opt, NBD_REP_ERR_UNSUP,
                                      "TLS is not configured on this server", error);
  if (tls) co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID, "TLS is already on", error);
  if (!option.empty())
    co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data",
                                      error);
  if (!co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, error)) co_return false;
  g_autoptr(QIOChannelTLS) tioc =
      qio_channel_tls_new_server(ioc, priv->tls_creds, priv->tls_authz, error);
  if (!tioc) co_return false;
  qio_channel_set_name(QIO_CHANNEL(tioc), peer.c_str());
  if (!co_await qio::tls_handshake(tioc, cancel, error)) {
    g_prefix_error(error, _("NBD client %s: TLS handshake failed: "), peer.c_str());
    co_return false;
  }
  g_object_unref(ioc);
  ioc = QIO_CHANNEL(g_steal_pointer(&tioc));
  tls = true;
  /* Nothing agreed in plaintext survives into the TLS session
   * (CVE-2021-3716): the client negotiates again. */
  structured = false;
  base_allocation = false;
  meta_export.clear();
  export_flags = 0;
  co_return true;
}

qio::Task<int> Conn::option_step(GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  guint8 hdr[NBD_OPTION_HEADER_SIZE];
  if (!co_await qio::read_all(ioc, hdr, sizeof hdr, error, cancel)) co_return -1;
  if (nbd_get64(hdr) != NBD_OPTS_MAGIC) {
    fail(error, _("option without the IHAVEOPT magic; disconnecting"));
    co_return -1;
  }
  guint32 opt = nbd_get32(hdr + 8);
  guint32 len = nbd_get32(hdr + 12);
  if (len > NBD_MAX_OPTION_LENGTH) {
    if (opt == NBD_OPT_EXPORT_NAME) {
      fail(error, _("NBD_OPT_EXPORT_NAME longer than an export name can be; disconnecting"));
      co_return -1;
    }
    if (!co_await discard(len, error)) co_return -1;
    co_return co_await send_rep_error(opt, NBD_REP_ERR_TOO_BIG, "option too long", error)
        ? 0
        : -1;
  }
  option.resize(len);
  if (len && !co_await qio::read_all(ioc, option.data(), len, error, cancel)) co_return -1;

  if (priv->tls_creds && !tls && opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
    if (opt == NBD_OPT_EXPORT_NAME) {
      /* No error reply exists for this option: hang up. */
      fail(error, _("NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS on a server that requires "
                    "TLS; disconnecting"));
      co_return -1;
    }
    co_return co_await send_rep_error(opt, NBD_REP_ERR_TLS_REQD,
                                      "TLS is required: send NBD_OPT_STARTTLS first", error)
        ? 0 : -1;
  }

  switch (opt) {
    case NBD_OPT_ABORT:
      /* Best effort: the client may already have closed. */
      co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, nullptr);
      co_return -1;

    case NBD_OPT_EXPORT_NAME: {
      std::string name(reinterpret_cast<const char *>(option.data()), option.size());
      NBDExport *e = name.size() <= NBD_MAX_STRING ? nbd_server_lookup_export(server, name.c_str())
                                                  : nullptr;
      if (!e) {
        /* This option has no error reply: the only answer is to hang up. */
        g_set_error(error, NBD_ERROR, NBD_ERROR_UNKNOWN_EXPORT,
                    _("NBD client %s asked for export '%s', which does not exist"),
                    peer.c_str(), name.c_str());
        co_return -1;
      }
      exp = NBD_EXPORT(g_object_ref(e));
      base_allocation = false; /* NBD_OPT_EXPORT_NAME cannot use meta contexts */
      structured = false;
      guint8 reply[8 + 2 + 124] = {};
      nbd_put64(reply, nbd_export_get_size(e));
      nbd_put16(reply + 8, export_flags);
      gsize n = no_zeroes ? 10 : sizeof reply;
      co_return co_await qio::write_all(ioc, reply, n, error, cancel) ? 1 : -1;
    }

    case NBD_OPT_LIST: {
      if (len)
        co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID,
                                          "NBD_OPT_LIST takes no data", error) ? 0 : -1;
      /* Built before the first reply: exports may come and go while a
       * reply waits for the socket. */
      std::vector<std::vector<guint8>> entries;
      for (const std::string &name : priv->export_order) {
        const char *desc = nbd_export_get_description(priv->exports.at(name));
        std::vector<guint8> &payload = entries.emplace_back(4 + name.size() + strlen(desc));
        nbd_put32(payload.data(), static_cast<guint32>(name.size()));
        memcpy(payload.data() + 4, name.data(), name.size());
        memcpy(payload.data() + 4 + name.size(), desc, strlen(desc));
      }
      for (const std::vector<guint8> &payload : entries)
        if (!co_await send_rep(opt, NBD_REP_SERVER, payload.data(), payload.size(), error))
          co_return -1;
      co_return co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, error) ? 0 : -1;
    }

    case NBD_OPT_STARTTLS:
      co_return co_await starttls(error) ? 0 : -1;

    case NBD_OPT_INFO:
    case NBD_OPT_GO: {
      g_autofree char *name = nullptr;
      g_autoptr(GArray) infos = nullptr;
      g_autoptr(GError) parse_error = nullptr;
      if (!nbd_parse_info_request(option.data(), option.size(), &name, &infos, &parse_error))
        co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID, parse_error->message,
                                          error) ? 0 : -1;
      NBDExport *found = nbd_server_lookup_export(server, name);
      if (!found)
        co_return co_await send_rep_error(opt, NBD_REP_ERR_UNKNOWN, "no such export", error)
            ? 0 : -1;
      /* Held while the replies wait for the socket: the export may be
       * removed meanwhile (this connection is not yet its user). */
      g_autoptr(NBDExport) e = NBD_EXPORT(g_object_ref(found));
      export_flags = nbd_export_get_flags(e);
      if (!nbd_export_get_multi_conn(e) || priv->max_connections == 1)
        export_flags &= static_cast<guint16>(~NBD_FLAG_CAN_MULTI_CONN);
      if (!structured) export_flags &= static_cast<guint16>(~NBD_FLAG_SEND_DF);
      if (!co_await send_export_info(opt, e, infos, error)) co_return -1;
      if (nbd_server_lookup_export(server, name) != e)
        co_return co_await send_rep_error(opt, NBD_REP_ERR_UNKNOWN,
                                          "the export was removed meanwhile", error) ? 0 : -1;
      /* A user from here on: removing the export now cuts this client off. */
      if (opt == NBD_OPT_GO) exp = NBD_EXPORT(g_object_ref(e));
      if (!co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, error)) co_return -1;
      if (opt == NBD_OPT_INFO) co_return 0;
      /* Contexts chosen for another export do not apply to this one. */
      if (meta_export != name) base_allocation = false;
      co_return 1;
    }

    case NBD_OPT_STRUCTURED_REPLY:
      if (len)
        co_return co_await send_rep_error(opt, NBD_REP_ERR_INVALID,
                                          "NBD_OPT_STRUCTURED_REPLY takes no data", error)
            ? 0 : -1;
      structured = true;
      co_return co_await send_rep(opt, NBD_REP_ACK, nullptr, 0, error) ? 0 : -1;

    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
      co_return co_await meta_context(opt, error) ? 0 : -1;

    default:
      co_return co_await send_rep_error(opt, NBD_REP_ERR_UNSUP, "unsupported option", error)
          ? 0 : -1;
  }
}

qio::Task<bool> Conn::handshake(GError **error) {
  guint8 hello[18];
  nbd_put64(hello, NBD_INIT_MAGIC);
  nbd_put64(hello + 8, NBD_OPTS_MAGIC);
  nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  if (!co_await qio::write_all(ioc, hello, sizeof hello, error, cancel)) co_return false;
  guint8 cflags_buf[4];
  if (!co_await qio::read_all(ioc, cflags_buf, 4, error, cancel)) co_return false;
  guint32 cflags = nbd_get32(cflags_buf);
  if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
      (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)))
    co_return fail(error, _("unsupported client flags (only fixed newstyle is served)"));
  no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
  for (;;) {
    int r = co_await option_step(error);
    if (r < 0) co_return false;
    if (r > 0) co_return true;
  }
}

void put_chunk_header(guint8 *h, guint16 flags, guint16 type, guint64 cookie,
                             guint32 length) {
  nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
  nbd_put16(h + 4, flags);
  nbd_put16(h + 6, type);
  nbd_put64(h + 8, cookie);
  nbd_put32(h + 16, length);
}

int block_status_extents(NBDExport *exp, Job *job) noexcept;

/* Runs the command of @job against @exp: in a worker thread, so that the
 * file I/O of one request overlaps the network I/O of the others. */
void execute(NBDExport *exp, Job *job) noexcept {
  const NBDRequest &req = job->req;
  bool fua = req.flags & NBD_CMD_FLAG_FUA;
  switch (req.type) {
    case NBD_CMD_READ:
      job->host_err = nbd_export_read(exp, job->data, req.length, req.offset);
      break;
    case NBD_CMD_WRITE:
      /* Payloads received into the map only come here for FUA. */
      job->host_err = job->in_map ? nbd_export_sync_range(exp, req.offset, req.length)
                                  : nbd_export_write(exp, job->data, req.length, req.offset, fua);
      break;
    case NBD_CMD_FLUSH:
      job->host_err = nbd_export_flush(exp);
      break;
    case NBD_CMD_TRIM:
      job->host_err = nbd_export_trim(exp, req.offset, req.length, fua);
      break;
    case NBD_CMD_WRITE_ZEROES:
      job->host_err = nbd_export_write_zeroes(exp, req.offset, req.length,
                                              !(req.flags & NBD_CMD_FLAG_NO_HOLE),
                                              req.flags & NBD_CMD_FLAG_FAST_ZERO, fua);
      break;
    case NBD_CMD_CACHE:
      job->host_err = nbd_export_cache(exp, req.offset, req.length);
      break;
    case NBD_CMD_BLOCK_STATUS:
      job->host_err = block_status_extents(exp, job);
      break;
  }
}

/* Fills job->data after the chunk header and context id with extents. */
int block_status_extents(NBDExport *exp, Job *job) noexcept {
  const NBDRequest &req = job->req;
  gsize max = (req.flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : kMaxExtents;
  guint8 *p = job->data + NBD_STRUCTURED_REPLY_HEADER_SIZE + 4;
  guint64 offset = req.offset;
  guint64 end = req.offset + req.length;
  gsize n = 0;
  guint32 last_flags = 0;
  while (offset < end && n < max) {
    guint64 len = 0;
    guint32 flags = 0;
    int err = nbd_export_block_status(exp, offset, end - offset, &len, &flags);
    if (err) return err;
    if (len == 0) {
      /* The file changed between the two seeks: call the rest data. */
      len = end - offset;
      flags = 0;
    }
    /* Extent lengths are 32-bit; keep them 4 KiB multiples when split. */
    len = std::min<guint64>(len, G_MAXUINT32 & ~G_GUINT64_CONSTANT(4095));
    if (n > 0 && flags == last_flags && nbd_get32(p - 8) + len <= G_MAXUINT32 - 4095) {
      nbd_put32(p - 8, static_cast<guint32>(nbd_get32(p - 8) + len));
    } else {
      nbd_put32(p, static_cast<guint32>(len));
      nbd_put32(p + 4, flags);
      p += 8;
      n++;
    }
    last_flags = flags;
    offset += len;
  }
  job->extents = n;
  return 0;
}

/* Fills @iov (two entries) with the reply to @job; returns how many. */
gsize reply_iov(Job *job, bool structured, struct iovec *iov) {
  const NBDRequest &req = job->req;
  guint32 err = job->err ? job->err : nbd_errno_from_host(job->host_err);
  bool chunked = structured && (req.type == NBD_CMD_READ || req.type == NBD_CMD_BLOCK_STATUS);
  guint8 *hdr = job->hdr;
  gsize niov = 1;
  if (err && chunked) {
    put_chunk_header(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, req.cookie, 6);
    nbd_put32(hdr + 20, err);
    nbd_put16(hdr + 24, 0);
    iov[0] = {hdr, NBD_STRUCTURED_REPLY_HEADER_SIZE + 6};
  } else if (err || !chunked) {
    nbd_put32(hdr, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(hdr + 4, err);
    nbd_put64(hdr + 8, req.cookie);
    iov[0] = {hdr, NBD_SIMPLE_REPLY_SIZE};
    if (!err && req.type == NBD_CMD_READ && req.length && !job->from_file) {
      iov[1] = {const_cast<guint8 *>(job->src ? job->src : job->data), req.length};
      niov = 2;
    }
  } else if (req.type == NBD_CMD_BLOCK_STATUS) {
    gsize len = 4 + 8 * job->extents;
    put_chunk_header(job->data, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, req.cookie,
                     static_cast<guint32>(len));
    nbd_put32(job->data + NBD_STRUCTURED_REPLY_HEADER_SIZE, kBaseAllocationId);
    iov[0] = {job->data, NBD_STRUCTURED_REPLY_HEADER_SIZE + len};
  } else if (req.length == 0) {
    /* A data chunk must carry data: finish with an empty chunk instead. */
    put_chunk_header(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, req.cookie, 0);
    iov[0] = {hdr, NBD_STRUCTURED_REPLY_HEADER_SIZE};
  } else {
    /* One data chunk for the whole read, so NBD_CMD_FLAG_DF always holds. */
    put_chunk_header(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, req.cookie,
                     8 + req.length);
    nbd_put64(hdr + NBD_STRUCTURED_REPLY_HEADER_SIZE, req.offset);
    iov[0] = {hdr, sizeof job->hdr};
    if (!job->from_file) {
      iov[1] = {const_cast<guint8 *>(job->src ? job->src : job->data), req.length};
      niov = 2;
    }
  }
  return niov;
}

Job *Conn::take_job(gsize len, bool alloc) {
  Job *job;
  g_mutex_lock(&jobs_mutex);
  /* Bound what the requests in flight may hold. */
  while (!broken &&
         (in_flight >= kMaxInFlight || (in_flight > 0 && bytes_in_flight + len > kMaxBytes)))
    g_cond_wait(&room_cond, &jobs_mutex);
  if (broken) {
    g_mutex_unlock(&jobs_mutex);
    return nullptr;
  }
  if (idle_jobs.empty()) {
    job = new Job();
  } else {
    job = idle_jobs.back();
    idle_jobs.pop_back();
  }
  idle_bytes -= job->capacity;
  if (alloc && job->capacity < len) {
    g_free(job->data);
    job->data = static_cast<guint8 *>(g_malloc(len));
    job->capacity = len;
  }
  job->conn = this;
  job->err = 0;
  job->host_err = 0;
  job->extents = 0;
  job->from_file = false;
  job->reply_sent = 0;
  job->in_map = false;
  job->src = nullptr;
  in_flight++;
  bytes_in_flight += len;
  job->charged = len;
  g_mutex_unlock(&jobs_mutex);
  return job;
}

void Conn::release_job(Job *job) {
  g_mutex_lock(&jobs_mutex);
  in_flight--;
  bytes_in_flight -= job->charged;
  /* Keep buffers for the next requests, up to a bound on what idles. */
  if (idle_jobs.size() < kMaxInFlight && idle_bytes + job->capacity <= kKeepBytes) {
    idle_jobs.push_back(job);
    idle_bytes += job->capacity;
  } else {
    g_free(job->data);
    delete job;
  }
  g_cond_signal(&room_cond);
  g_mutex_unlock(&jobs_mutex);
}

bool Conn::begin_write() {
  g_mutex_lock(&jobs_mutex);
  bool ok = !writes_stopped;
  if (ok) writes_under_way++;
  g_mutex_unlock(&jobs_mutex);
  return ok;
}

void Conn::end_write() {
  g_mutex_lock(&jobs_mutex);
  if (--writes_under_way == 0) g_cond_broadcast(&writes_cond);
  g_mutex_unlock(&jobs_mutex);
}

void Conn::stop_writes() {
  g_mutex_lock(&jobs_mutex);
  writes_stopped = true;
  while (writes_under_way > 0) g_cond_wait(&writes_cond, &jobs_mutex);
  g_mutex_unlock(&jobs_mutex);
}

void Conn::queue_reply(Job *job) {
  g_mutex_lock(&send_mutex);
  ready.push_back(job);
  /* A busy sender finds the job when its write returns: no wakeup. */
  if (sender_idle) g_cond_signal(&send_cond);
  g_mutex_unlock(&send_mutex);
}

void Conn::reply_now(Job *job, bool release_here) {
  g_mutex_lock(&send_mutex);
  if (writing || !ready.empty() || send_dead) {
    g_mutex_unlock(&send_mutex);
    queue_reply(job);
    return;
  }
  /* Waking the sender costs more than writing a reply whose data is at
   * hand: non-blocking writes here while the channel takes them; what
   * does not fit goes to the sender, so a client that stops reading never
   * holds this thread. */
  writing = true;
  g_mutex_unlock(&send_mutex);
  struct iovec iov[2];
  gsize niov = reply_iov(job, structured, iov);
  gsize total = 0;
  for (gsize i = 0; i < niov; i++) total += iov[i].iov_len;
  GError *error = nullptr;
  /* Read data over TLS leaves as one record after another: corked, the
   * socket sends them in full segments instead of one by one. */
  bool cork = total >= kCorkBytes;
  if (cork) qio_channel_set_cork(ioc, TRUE);
  gsize written = 0;
  gssize n = 0;
  struct iovec *left = iov;
  for (gsize nleft = niov; nleft > 0;) {
    n = qio_channel_writev(ioc, left, nleft, &error);
    if (n <= 0) break;
    written += static_cast<gsize>(n);
    consume_iov(left, nleft, static_cast<gsize>(n));
  }
  if (cork) qio_channel_set_cork(ioc, FALSE);
  g_mutex_lock(&send_mutex);
  writing = false;
  bool done = written == total;
  if (done && release_here) {
    /* The reader frees the job itself: no trip through the context. */
  } else if (done) {
    sent.push_back(job);
    g_source_set_ready_time(sent_source, 0);
  } else if (n < 0 && n != QIO_CHANNEL_ERR_BLOCK) {
    send_dead = sender_failed = true;
    sender_error = error;
    sent.push_back(job);
    g_source_set_ready_time(sent_source, 0);
  } else {
    /* First in line: the rest of this reply must go out before any other. */
    job->reply_sent = written;
    ready.insert(ready.begin(), job);
  }
  if (!ready.empty() && sender_idle) g_cond_signal(&send_cond);
  g_mutex_unlock(&send_mutex);
  if (done && release_here) release_job(job);
}

void run_job(gpointer data, gpointer) noexcept {
  auto *job = static_cast<Job *>(data);
  guint16 type = job->req.type;
  bool writes = type == NBD_CMD_WRITE || type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES;
  if (!writes) {
    execute(job->conn->exp, job);
  } else if (job->conn->begin_write()) {
    execute(job->conn->exp, job);
    job->conn->end_write();
  } else {
    job->host_err = ESHUTDOWN; /* the export was removed meanwhile */
  }
  /* Read replies carry data: the sender thread writes those. */
  if (job->req.type == NBD_CMD_READ)
    job->conn->queue_reply(job);
  else
    job->conn->reply_now(job);
}

void Conn::send_loop() {
  /* At most kMaxInFlight jobs exist, each with at most two entries. */
  struct iovec iov[2 * kMaxInFlight];
  std::vector<Job *> batch;
  batch.reserve(kMaxInFlight);
  ThreadWait writable(ioc, G_IO_OUT);
  GError *error = nullptr;
  g_mutex_lock(&send_mutex);
  for (;;) {
    while ((ready.empty() || writing) && !stop_sender) {
      sender_idle = true;
      g_cond_wait(&send_cond, &send_mutex);
      sender_idle = false;
    }
    /* Stopping: every job has been released, so no worker writes. */
    if (ready.empty()) break;
    batch.swap(ready);
    writing = true;
    bool failed = send_dead;
    g_mutex_unlock(&send_mutex);
    /* After a failed write nothing more goes out; the jobs still return. */
    bool reported = failed;
    if (!failed) {
      /* Headers and buffers go out together; data from the file follows
       * its header, corked so that the header does not leave alone. */
      bool corked = false;
      gsize niov = 0;
      for (Job *job : batch) {
        gsize first = niov;
        niov += reply_iov(job, structured, iov + niov);
        /* A worker already wrote the start of this reply. */
        for (gsize skip = std::exchange(job->reply_sent, 0); skip > 0; first++) {
          gsize k = std::min(skip, iov[first].iov_len);
          iov[first].iov_base = static_cast<guint8 *>(iov[first].iov_base) + k;
          iov[first].iov_len -= k;
          skip -= k;
        }
        if (!job->from_file) continue;
        if (!corked) qio_channel_set_cork(ioc, TRUE);
        corked = true;
        failed = !write_exact(ioc, writable, iov, niov, &error) ||
                 !send_file_data(job, writable, &error);
        niov = 0;
        if (failed) break;
      }
      if (!failed && niov) failed = !write_exact(ioc, writable, iov, niov, &error);
      if (corked) qio_channel_set_cork(ioc, FALSE);
    }
    g_mutex_lock(&send_mutex);
    writing = false;
    sent.insert(sent.end(), batch.begin(), batch.end());
    batch.clear();
    if (failed && !reported) {
      send_dead = sender_failed = true;
      sender_error = std::exchange(error, nullptr);
    }
    g_source_set_ready_time(sent_source, 0);
  }
  g_mutex_unlock(&send_mutex);
  g_clear_error(&error);
}

bool Conn::send_file_data(Job *job, ThreadWait &writable, GError **error) {
  auto *sioc = QIO_CHANNEL_SOCKET(ioc);
  int fd = nbd_export_get_fd(exp);
  guint64 offset = job->req.offset;
  gsize left = job->req.length;
  while (left > 0) {
    gssize n = qio_channel_socket_sendfile(sioc, fd, &offset, left, error);
    if (n == QIO_CHANNEL_ERR_BLOCK) {
      writable.wait();
      continue;
    }
    if (n < 0) return false;
    if (n == 0) {
      /* The file shrank under us: what is past its end reads as zeroes. */
      static const guint8 zeroes[64 * 1024] = {};
      while (left > 0) {
        gsize z = std::min(left, sizeof zeroes);
        struct iovec iov = {const_cast<guint8 *>(zeroes), z};
        if (!write_exact(ioc, writable, &iov, 1, error)) return false;
        left -= z;
      }
      break;
    }
    left -= static_cast<gsize>(n);
  }
  return true;
}

void Conn::collect_sent() {
  g_mutex_lock(&send_mutex);
  collecting.swap(sent);
  bool failed = std::exchange(sender_failed, false);
  GError *error = std::exchange(sender_error, nullptr);
  g_mutex_unlock(&send_mutex);
  g_mutex_lock(&jobs_mutex);
  bool cut = failed && !broken;
  if (cut) {
    broken = true;
    send_error = std::exchange(error, nullptr);
  }
  g_mutex_unlock(&jobs_mutex);
  if (cut) {
    /* The replies cannot go out: stop reading requests too.  Outside the
     * lock, which the reader and the workers take. */
    g_cancellable_cancel(cancel);
    qio_channel_shutdown(ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr); /* wakes the reader */
  }
  g_clear_error(&error);
  for (Job *job : collecting) release_job(job);
  collecting.clear();
  /* transmission() waits for the last job once the reader has ended. */
  if (waiter && !reader_thread) qio::detail::start_in(context, std::exchange(waiter, {}));
}

void Conn::start_sender() {
  /* Reserved for every job that can exist: the data path allocates nothing. */
  ready.reserve(kMaxInFlight);
  sent.reserve(kMaxInFlight);
  collecting.reserve(kMaxInFlight);
  sent_source = wake_source_new(this, "nbd-replies-sent",
                                +[](Conn *conn) noexcept { conn->collect_sent(); }, context);
  g_autofree char *name = g_strdup_printf("nbd-send-%s", peer.c_str());
  sender = g_thread_new(name, +[](gpointer data) noexcept -> gpointer {
    static_cast<Conn *>(data)->send_loop();
    return nullptr;
  }, this);
}

void Conn::stop_sender_thread() {
  if (!sender) return;
  g_mutex_lock(&send_mutex);
  stop_sender = true;
  g_cond_signal(&send_cond);
  g_mutex_unlock(&send_mutex);
  g_thread_join(std::exchange(sender, nullptr));
  g_source_destroy(sent_source);
  g_clear_pointer(&sent_source, g_source_unref);
}

bool Conn::read_requests(GError **error) {
  guint64 size = nbd_export_get_size(exp);
  GThreadPool *workers = server_priv(server)->workers;
  ThreadWait readable(ioc, G_IO_IN);
  /* Write payloads go straight into the file's pages when it is mapped
   * (one copy instead of two: into a buffer, then pwrite), and reads of a
   * file in memory come straight from its pages. */
  for (;;) {
    guint8 raw[NBD_REQUEST_SIZE];
    int got = read_exact(ioc, readable, raw, sizeof raw, true, error);
    if (got <= 0) return got == 0;
    NBDRequest req;
    if (!nbd_request_decode(raw, &req, error)) return false;
    guint32 err = nbd_request_check(&req, size, export_flags, structured, base_allocation);
    if (req.type == NBD_CMD_WRITE && req.length > NBD_MAX_PAYLOAD) {
      /* The payload cannot be held and skipping it gains nothing: hang up. */
      g_set_error(error, NBD_ERROR, NBD_ERROR_PROTOCOL,
                  _("NBD client %s sent a %u-byte write, above the %u-byte limit; "
                    "disconnecting"),
                  peer.c_str(), req.length, NBD_MAX_PAYLOAD);
      return false;
    }
    if (req.type == NBD_CMD_DISC && !err) return true;
    gsize len = 0;
    if (!err && (req.type == NBD_CMD_READ || req.type == NBD_CMD_WRITE)) len = req.length;
    if (!err && req.type == NBD_CMD_BLOCK_STATUS)
      len = NBD_STRUCTURED_REPLY_HEADER_SIZE + 4 + 8 * kMaxExtents;
    if (req.type == NBD_CMD_WRITE) len = req.length; /* read even when refused */
    bool from_file = send_from_file && !err && req.type == NBD_CMD_READ && req.length;
    /* Looked up per request: a map stops being used once it lost a page. */
    guint8 *map = nullptr;
    const guint8 *read_map = nullptr;
    if (!err && req.length && req.type == NBD_CMD_WRITE) map = nbd_export_get_map(exp);
    if (!err && req.length && req.type == NBD_CMD_READ && !from_file)
      read_map = nbd_export_get_read_map(exp);
    bool in_map = map != nullptr;
    if (read_map) len = 0;
    Job *job = take_job(len, !from_file && !in_map && !read_map);
    if (!job) return true; /* the sender failed: transmission() reports why */
    job->req = req;
    job->err = err;
    job->from_file = from_file;
    job->in_map = in_map;
    if (in_map && !begin_write()) {
      release_job(job);
      return true; /* removed or stopped: transmission() says why */
    }
    if (in_map) nbd_export_populate_map(exp, req.offset, req.length);
    bool received = req.type != NBD_CMD_WRITE || !req.length ||
                    read_exact(ioc, readable, in_map ? map + req.offset : job->data,
                               req.length, false, error) > 0;
    if (in_map) end_write();
    if (!received) {
      release_job(job);
      return false;
    }
    /* A page of the map gone meanwhile may have taken some of the data. */
    if (in_map && !nbd_export_map_intact(exp)) job->host_err = EIO;
    if (read_map) job->src = read_map + req.offset;
    bool data_ready = read_map || (in_map && (job->host_err || !(req.flags & NBD_CMD_FLAG_FUA)));
    /* Data in the page cache needs no worker: the reply goes out now. */
    if (!data_ready && !err && !from_file && req.type == NBD_CMD_READ && req.length)
      data_ready = nbd_export_read_cached(exp, job->data, req.length, req.offset);
    if (data_ready)
      reply_now(job, true);
    else if (err || from_file)
      queue_reply(job); /* nothing to run: the sender reads the file */
    else
      g_thread_pool_push(workers, job, nullptr);
  }
}

qio::Task<bool> Conn::transmission(GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  if (!priv->workers)
    priv->workers = g_thread_pool_new(run_job, nullptr, kWorkers, FALSE, nullptr);
  send_from_file = QIO_IS_CHANNEL_SOCKET(ioc);
  start_sender();
  reader_done = wake_source_new(
      this, "nbd-reader-done",
      +[](Conn *conn) noexcept {
        if (conn->waiter) qio::detail::start_in(conn->context, std::exchange(conn->waiter, {}));
      },
      context);
  g_autofree char *name = g_strdup_printf("nbd-read-%s", peer.c_str());
  reader_thread = g_thread_new(name, +[](gpointer data) noexcept -> gpointer {
    auto *conn = static_cast<Conn *>(data);
    conn->reader_ok = conn->read_requests(&conn->reader_error);
    g_source_set_ready_time(conn->reader_done, 0);
    return nullptr;
  }, this);
  /* The reader thread wakes this when it ends; it ends before any
   * dispatch of reader_done in this context can find nobody waiting. */
  co_await Park{&waiter};
  g_thread_join(std::exchange(reader_thread, nullptr));
  g_source_destroy(reader_done);
  g_clear_pointer(&reader_done, g_source_unref);
  bool ok = reader_ok;
  if (!ok) {
    g_propagate_error(error, std::exchange(reader_error, nullptr));
  } else if (g_cancellable_is_cancelled(cancel) && !broken) {
    /* Cut off (export removed, server shut down): the reader saw an end. */
    g_cancellable_set_error_if_cancelled(cancel, error);
    ok = false;
  }
  /* Let the requests in flight answer before the connection closes. */
  for (;;) {
    g_mutex_lock(&jobs_mutex);
    guint left = in_flight;
    g_mutex_unlock(&jobs_mutex);
    if (!left) break;
    co_await Park{&waiter};
  }
  stop_sender_thread();
  if (send_error) {
    g_clear_error(error);
    g_propagate_error(error, std::exchange(send_error, nullptr));
    ok = false;
  }
  co_return ok;
}

qio::Task<GError *> Conn::serve() {
  GError *error = nullptr;
  context = g_main_context_ref_thread_default();
  guint limit = server_priv(server)->handshake_max_seconds;
  bool ok;
  {
    std::unique_ptr<qio::CancelAfter> timer;
    if (limit) timer = std::make_unique<qio::CancelAfter>(cancel, limit * 1000);
    ok = co_await handshake(&error);
    negotiating = false;
    if (!ok && evicted) {
      g_clear_error(&error);
      g_set_error(&error, NBD_ERROR, NBD_ERROR_POLICY,
                  _("NBD client %s had not finished its handshake when max-connections was "
                    "reached; disconnected to make room for a newer client"),
                  peer.c_str());
    } else if (!ok && timer && timer->expired()) {
      g_clear_error(&error);
      g_set_error(&error, QIO_ERROR, QIO_ERROR_TIMEOUT,
                  _("NBD client %s did not finish the handshake within %u seconds "
                    "(handshake-max-seconds); disconnected"),
                  peer.c_str(), limit);
    }
  }
  /* A handshake that ends without an error (NBD_OPT_ABORT) is clean. */
  if (ok) co_await transmission(&error);
  /* A peer that simply went away during the handshake is not an error. */
  if (error && g_error_matches(error, QIO_ERROR, QIO_ERROR_EOF) && !exp) g_clear_error(&error);
  co_return error;
}

void conn_finished(Conn *conn, GError *error) noexcept {
  NBDServer *server = NBD_SERVER(g_object_ref(conn->server));
  NBDServerPrivate *priv = server_priv(server);
  priv->conns.remove(conn);
  delete conn;
  g_signal_emit(server, signals[SIGNAL_CLIENT_CLOSED], 0, error,
                static_cast<guint>(priv->conns.size()));
  g_clear_error(&error);
  g_object_unref(server);
}

void on_client(QIONetListener *listener, QIOChannelSocket *client, gpointer data) noexcept {
  nbd_server_add_client(NBD_SERVER(data), QIO_CHANNEL(client));
}

}  // namespace

static void nbd_server_dispose(GObject *object) {
  nbd_server_shutdown(NBD_SERVER(object));
  G_OBJECT_CLASS(nbd_server_parent_class)->dispose(object);
}

static void nbd_server_finalize(GObject *object) {
  NBDServerPrivate *priv = server_priv(NBD_SERVER(object));
  for (auto &[name, exp] : priv->exports) g_object_unref(exp);
  g_clear_object(&priv->tls_creds);
  g_clear_object(&priv->tls_authz);
  g_clear_object(&priv->listener);
  if (priv->context) g_main_context_unref(priv->context);
  /* Every connection, and so every job, is gone by now. */
  if (priv->workers) g_thread_pool_free(priv->workers, FALSE, TRUE);
  priv->~NBDServerPrivate();
  G_OBJECT_CLASS(nbd_server_parent_class)->finalize(object);
}

static void nbd_server_class_init(NBDServerClass *klass) {
  G_OBJECT_CLASS(klass)->dispose = nbd_server_dispose;
  G_OBJECT_CLASS(klass)->finalize = nbd_server_finalize;
  signals[SIGNAL_CLIENT_CLOSED] =
      g_signal_new("client-closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, nullptr,
                   nullptr, nullptr, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_UINT);
}

static void nbd_server_init(NBDServer *server) { new (server_priv(server)) NBDServerPrivate(); }

NBDServer *nbd_server_new(GMainContext *context) {
  auto *server = NBD_SERVER(g_object_new(NBD_TYPE_SERVER, nullptr));
  server_priv(server)->context = g_main_context_ref(context ? context : g_main_context_default());
  return server;
}

gboolean nbd_server_add_export(NBDServer *server, NBDExport *exp, GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  std::string name = nbd_export_get_name(exp);
  if (priv->exports.count(name)) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_EXPORT,
                _("An NBD export named '%s' already exists; choose another export name"),
                name.c_str());
    return FALSE;
  }
  priv->exports[name] = NBD_EXPORT(g_object_ref(exp));
  priv->export_order.push_back(name);
  return TRUE;
}

gboolean nbd_server_remove_export(NBDServer *server, const char *name, gboolean hard,
                                  GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  auto it = priv->exports.find(name);
  if (it == priv->exports.end()) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_UNKNOWN_EXPORT,
                _("The NBD server has no export named '%s'; see the names it was given"), name);
    return FALSE;
  }
  NBDExport *exp = it->second;
  guint users = 0;
  for (Conn *conn : priv->conns)
    if (conn->exp == exp) users++;
  if (users && !hard) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_EXPORT,
                _("NBD export '%s' is in use by %u client(s); disconnect them first or "
                  "remove it in hard mode"),
                name, users);
    return FALSE;
  }
  for (Conn *conn : priv->conns) {
    if (conn->exp != exp) continue;
    g_cancellable_cancel(conn->cancel);
    qio_channel_shutdown(conn->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  }
  for (Conn *conn : priv->conns)
    if (conn->exp == exp) conn->stop_writes();
  std::erase(priv->export_order, std::string(name));
  priv->exports.erase(it);
  g_object_unref(exp);
  return TRUE;
}

NBDExport *nbd_server_lookup_export(NBDServer *server, const char *name) {
  NBDServerPrivate *priv = server_priv(server);
  auto it = priv->exports.find(name);
  return it == priv->exports.end() ? nullptr : it->second;
}

void nbd_server_set_max_connections(NBDServer *server, guint max_connections) {
  server_priv(server)->max_connections = max_connections;
}

guint nbd_server_get_max_connections(NBDServer *server) {
  return server_priv(server)->max_connections;
}

void nbd_server_set_handshake_max_seconds(NBDServer *server, guint seconds) {
  server_priv(server)->handshake_max_seconds = seconds;
}

void nbd_server_set_tls(NBDServer *server, QCryptoTLSCreds *creds, QCryptoAuthz *authz) {
  NBDServerPrivate *priv = server_priv(server);
  g_set_object(&priv->tls_creds, creds);
  g_set_object(&priv->tls_authz, authz);
}

gboolean nbd_server_listen(NBDServer *server, QIOSocketAddress *addr, GError **error) {
  NBDServerPrivate *priv = server_priv(server);
  if (!priv->listener) {
    priv->listener = qio_net_listener_new();
    qio_net_listener_set_name(priv->listener, "nbd-server");
  }
  if (!qio_net_listener_open_sync(priv->listener, addr, 16, error)) return FALSE;
  qio_net_listener_set_client_func(priv->listener, on_client, server, nullptr, priv->context);
  return TRUE;
}

QIONetListener *nbd_server_get_listener(NBDServer *server) {
  return server_priv(server)->listener;
}

void nbd_server_add_client(NBDServer *server, QIOChannel *ioc) {
  NBDServerPrivate *priv = server_priv(server);
  guint max = priv->max_connections;
  if (max && qio::make_room(priv->conns, max, [](const Conn *c) { return c->negotiating; }) ==
                 qio::Room::Full) {
    g_autoptr(GError) error = g_error_new(
        NBD_ERROR, NBD_ERROR_POLICY,
        _("NBD client %s refused: %u connections already (max-connections); raise the "
          "limit to serve more clients at once"),
        qio_channel_get_name(ioc), priv->max_connections);
    g_signal_emit(server, signals[SIGNAL_CLIENT_CLOSED], 0, error,
                  static_cast<guint>(priv->conns.size()));
    /* Refused before any byte: the client sees the connection close, after
     * the signal so that whoever watches it knows by then. */
    qio_channel_close(ioc, nullptr);
    return;
  }
  qio_channel_set_blocking(ioc, FALSE, nullptr);
  qio_channel_set_delay(ioc, FALSE);
  auto *conn = new Conn(server, ioc);
  priv->conns.push_back(conn);
  qio::spawn(conn->serve(), [conn](GError *error) { conn_finished(conn, error); },
             priv->context);
}

guint nbd_server_get_n_clients(NBDServer *server) {
  return static_cast<guint>(server_priv(server)->conns.size());
}

void nbd_server_shutdown(NBDServer *server) {
  NBDServerPrivate *priv = server_priv(server);
  if (priv->listener) qio_net_listener_disconnect(priv->listener);
  for (Conn *conn : priv->conns) {
    g_cancellable_cancel(conn->cancel);
    qio_channel_shutdown(conn->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, nullptr);
  }
  for (Conn *conn : priv->conns) conn->stop_writes();
}
