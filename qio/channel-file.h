/*
 * QIOChannelFile: a channel over a file descriptor that is not a socket:
 * a regular file, a pipe end, a character device or a pty master.
 *
 * readv/writev issue one readv()/writev() on the caller's iovecs; EAGAIN
 * is QIO_CHANNEL_ERR_BLOCK.  Watches poll the descriptor (a regular file
 * is always ready).  Writing to a pipe nobody reads fails with
 * G_IO_ERROR_BROKEN_PIPE: the first file channel makes the process ignore
 * SIGPIPE unless the program installed its own handler.
 */
#pragma once

#include "qio/channel.h"

#include <sys/types.h>

G_BEGIN_DECLS

#define QIO_TYPE_CHANNEL_FILE (qio_channel_file_get_type())
G_DECLARE_FINAL_TYPE(QIOChannelFile, qio_channel_file, QIO, CHANNEL_FILE, QIOChannel)

/* Takes ownership of @fd (closed by qio_channel_close or finalize). */
QIOChannelFile *qio_channel_file_new_fd(int fd);

/* open(2) @path with @flags (O_CLOEXEC is added) and @mode; the error and
 * the channel name carry the path. */
QIOChannelFile *qio_channel_file_new_path(const char *path, int flags, mode_t mode,
                                          GError **error);

/* A pipe: what is written to *@writer is read from *@reader. */
gboolean qio_channel_file_new_pipe(QIOChannelFile **reader, QIOChannelFile **writer,
                                   GError **error);

/* Opens a pseudo-terminal master in raw mode (bytes pass unchanged) and
 * returns the path of its slave in *@slave_name (g_free it).  A read after
 * the last slave user hung up returns end of file. */
QIOChannelFile *qio_channel_file_new_pty(char **slave_name, GError **error);

/* The descriptor, still owned by the channel; -1 once closed. */
int qio_channel_file_get_fd(QIOChannelFile *fioc);

/* lseek(2): returns the new offset, or -1 with @error set. */
off_t qio_channel_file_seek(QIOChannelFile *fioc, off_t offset, int whence, GError **error);

G_END_DECLS
