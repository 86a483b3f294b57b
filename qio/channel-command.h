/*
 * QIOChannelCommand: a child process spoken to through pipes, for `exec:`
 * migration and ssh tunnels.  Reads come from the child's stdout, writes go
 * to its stdin; watches cover both pipes.
 *
 * The child runs in its own process group with stdin (O_RDONLY) or stdout
 * (O_WRONLY) on /dev/null when unused; its stderr is the parent's, so its
 * diagnostics reach the operator unchanged.
 *
 * Exit status: when the child exits with a non-zero status or is killed by
 * a signal qio did not send, the end of its output, a write it no longer
 * reads, and qio_channel_close() fail with QIO_ERROR_CHILD_EXITED naming
 * the command and the status; qio_channel_command_get_exit() reports it.
 *
 * qio_channel_close() closes the pipes, gives the child the close timeout
 * (default 1000 ms) to exit, then sends SIGTERM to its process group, waits
 * the timeout again, then sends SIGKILL and reaps it.  Finalizing an open
 * channel closes it the same way.  Shutdown of the write direction closes
 * the child's stdin (it sees end of file) while its output can still be
 * read.
 */
#pragma once

#include "qio/channel.h"

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_COMMAND (qio_channel_command_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelCommand, qio_channel_command, QIO, CHANNEL_COMMAND,
                     QIOChannel)

/* Starts @argv (searched in PATH) with pipes for @flags: O_RDONLY (read its
 * stdout), O_WRONLY (write its stdin) or O_RDWR (both). */
QIOChannelCommand *qio_channel_command_new_spawn(const char *const *argv, int flags,
                                                 GError **error);

/* TRUE once the child has exited: *@exit_code is its status (-1 when a
 * signal killed it) and *@term_signal the signal (0 when it exited). */
gboolean qio_channel_command_get_exit(QIOChannelCommand *cioc, int *exit_code,
                                      int *term_signal);

/* The process id of the child. */
GPid qio_channel_command_get_pid(QIOChannelCommand *cioc);

/* How long close waits for the child before each of SIGTERM and SIGKILL. */
void qio_channel_command_set_close_timeout(QIOChannelCommand *cioc, guint ms);

G_END_DECLS
