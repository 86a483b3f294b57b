#include "config.h"

#include "qio/socket-task.h"

namespace {

struct SocketTaskData {
  QIOSocketAddress *addr;
  int backlog;
};

void socket_task_data_free(gpointer data) noexcept {
  auto *td = static_cast<SocketTaskData *>(data);
  g_object_unref(td->addr);
  g_free(td);
}

}  // namespace

GTask *qio_socket_task_new(gpointer source, QIOSocketAddress *addr, int backlog,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data, GMainContext *context, gpointer tag) {
  /* GTask completes in the thread-default context current at creation. */
  if (context) g_main_context_push_thread_default(context);
  GTask *task = g_task_new(source, cancellable, callback, user_data);
  if (context) g_main_context_pop_thread_default(context);
  g_task_set_source_tag(task, tag);
  auto *td = g_new0(SocketTaskData, 1);
  td->addr = QIO_SOCKET_ADDRESS(g_object_ref(addr));
  td->backlog = backlog;
  g_task_set_task_data(task, td, socket_task_data_free);
  return task;
}

QIOSocketAddress *qio_socket_task_get_address(GTask *task) {
  return static_cast<SocketTaskData *>(g_task_get_task_data(task))->addr;
}

int qio_socket_task_get_backlog(GTask *task) {
  return static_cast<SocketTaskData *>(g_task_get_task_data(task))->backlog;
}
