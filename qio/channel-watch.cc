#include "config.h"

#include "qio/channel-watch.h"

namespace {

struct FdWatch {
  GSource source;
  QIOChannel *ioc;
  GIOCondition condition;
  gpointer tag_read;
  gpointer tag_write; /* only for a pair on two descriptors */
};

GIOCondition fd_watch_revents(FdWatch *watch) {
  unsigned revents = g_source_query_unix_fd(&watch->source, watch->tag_read);
  if (watch->tag_write) revents |= g_source_query_unix_fd(&watch->source, watch->tag_write);
  return static_cast<GIOCondition>(revents & (watch->condition | G_IO_HUP | G_IO_ERR));
}

gboolean fd_watch_check(GSource *source) noexcept {
  return fd_watch_revents(reinterpret_cast<FdWatch *>(source)) != 0;
}

gboolean fd_watch_dispatch(GSource *source, GSourceFunc callback, gpointer user_data) noexcept {
  auto *watch = reinterpret_cast<FdWatch *>(source);
  if (!callback) return G_SOURCE_REMOVE;
  auto func = QIO_CHANNEL_FUNC(callback);
  return func(watch->ioc, fd_watch_revents(watch), user_data);
}

void fd_watch_finalize(GSource *source) noexcept {
  g_object_unref(reinterpret_cast<FdWatch *>(source)->ioc);
}

GSourceFuncs fd_watch_funcs = {
    nullptr, fd_watch_check, fd_watch_dispatch, fd_watch_finalize, nullptr, nullptr,
};

gboolean ready_watch_prepare(GSource *, gint *timeout) noexcept {
  *timeout = -1;
  return TRUE;
}

gboolean ready_watch_check(GSource *) noexcept { return TRUE; }

gboolean ready_watch_dispatch(GSource *source, GSourceFunc callback, gpointer data) noexcept {
  auto *watch = reinterpret_cast<FdWatch *>(source);
  if (!callback) return G_SOURCE_REMOVE;
  return QIO_CHANNEL_FUNC(callback)(
      watch->ioc, static_cast<GIOCondition>(watch->condition & (G_IO_IN | G_IO_OUT)), data);
}

GSourceFuncs ready_watch_funcs = {
    ready_watch_prepare, ready_watch_check, ready_watch_dispatch, fd_watch_finalize,
    nullptr, nullptr,
};

}  // namespace

GSource *qio_channel_create_fd_pair_watch(QIOChannel *ioc, int fd_read, int fd_write,
                                          GIOCondition condition) {
  GSource *source = g_source_new(&fd_watch_funcs, sizeof(FdWatch));
  auto *watch = reinterpret_cast<FdWatch *>(source);
  watch->ioc = QIO_CHANNEL(g_object_ref(ioc));
  watch->condition = condition;
  if (fd_read == fd_write) {
    watch->tag_read = g_source_add_unix_fd(source, fd_read, condition);
    watch->tag_write = nullptr;
  } else {
    watch->tag_read = g_source_add_unix_fd(
        source, fd_read, static_cast<GIOCondition>(condition & ~G_IO_OUT));
    watch->tag_write = g_source_add_unix_fd(
        source, fd_write, static_cast<GIOCondition>(condition & ~(G_IO_IN | G_IO_PRI)));
  }
  return source;
}

GSource *qio_channel_create_fd_watch(QIOChannel *ioc, int fd, GIOCondition condition) {
  return qio_channel_create_fd_pair_watch(ioc, fd, fd, condition);
}

GSource *qio_channel_create_ready_watch(QIOChannel *ioc, GIOCondition condition) {
  /* Same layout as an fd watch, without descriptors. */
  GSource *source = g_source_new(&ready_watch_funcs, sizeof(FdWatch));
  auto *watch = reinterpret_cast<FdWatch *>(source);
  watch->ioc = QIO_CHANNEL(g_object_ref(ioc));
  watch->condition = condition;
  return source;
}

namespace {

struct LayerWatch {
  GSource source;
  QIOChannel *layer;
  QIOChannelPendingFunc pending;
  GIOCondition condition;
  GIOCondition revents; /* what the master reported */
};

bool layer_watch_pending(LayerWatch *watch) {
  return (watch->condition & G_IO_IN) && watch->pending(watch->layer);
}

gboolean layer_watch_prepare(GSource *source, gint *timeout) noexcept {
  *timeout = -1;
  return layer_watch_pending(reinterpret_cast<LayerWatch *>(source));
}

gboolean layer_watch_check(GSource *source) noexcept {
  return layer_watch_pending(reinterpret_cast<LayerWatch *>(source));
}

gboolean layer_watch_dispatch(GSource *source, GSourceFunc callback, gpointer data) noexcept {
  auto *watch = reinterpret_cast<LayerWatch *>(source);
  unsigned cond = watch->revents;
  if (layer_watch_pending(watch)) cond |= G_IO_IN;
  watch->revents = static_cast<GIOCondition>(0);
  if (!callback) return G_SOURCE_REMOVE;
  return QIO_CHANNEL_FUNC(callback)(watch->layer, static_cast<GIOCondition>(cond), data);
}

void layer_watch_finalize(GSource *source) noexcept {
  g_object_unref(reinterpret_cast<LayerWatch *>(source)->layer);
}

GSourceFuncs layer_watch_funcs = {
    layer_watch_prepare, layer_watch_check, layer_watch_dispatch, layer_watch_finalize, nullptr,
    nullptr,
};

/* GLib marks a parent ready with its child and dispatches the child first,
 * so the layer's watch runs in the same iteration and only needs the
 * condition; a ready time would only signal the context's wakeup again. */
gboolean layer_watch_master_ready(QIOChannel *, GIOCondition cond, gpointer data) noexcept {
  auto *watch = static_cast<LayerWatch *>(data);
  watch->revents = static_cast<GIOCondition>(watch->revents | cond);
  return G_SOURCE_CONTINUE;
}

}  // namespace

GSource *qio_channel_create_layer_watch(QIOChannel *layer, QIOChannel *master,
                                        GIOCondition condition, QIOChannelPendingFunc pending) {
  GSource *source = g_source_new(&layer_watch_funcs, sizeof(LayerWatch));
  auto *watch = reinterpret_cast<LayerWatch *>(source);
  watch->layer = QIO_CHANNEL(g_object_ref(layer));
  watch->pending = pending;
  watch->condition = condition;
  GSource *child = qio_channel_create_watch(master, condition);
  g_source_set_callback(child, G_SOURCE_FUNC(layer_watch_master_ready), watch, nullptr);
  /* Its callback cannot recurse; unblocked, its dispatch spares GLib
   * removing and re-adding the descriptor (each a wakeup write). */
  g_source_set_can_recurse(child, TRUE);
  g_source_add_child_source(source, child);
  g_source_unref(child);
  return source;
}
