/*
 * NBDExport: one named export of an NBD server, backed by a raw file or a
 * block device.  The export owns the descriptor; the I/O functions are
 * plain positional system calls, safe from any thread, and return 0 or a
 * host errno (the server maps it to the NBD error on the wire).
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define NBD_TYPE_EXPORT (nbd_export_get_type())
G_DECLARE_FINAL_TYPE(NBDExport, nbd_export, NBD, EXPORT, GObject)

/* Opens @path (a regular file or a block device) read-write, or read-only
 * when @read_only.  @name is the export name clients ask for. */
NBDExport *nbd_export_new(const char *name, const char *path, gboolean read_only,
                          GError **error);

const char *nbd_export_get_name(NBDExport *exp);
const char *nbd_export_get_path(NBDExport *exp);
guint64 nbd_export_get_size(NBDExport *exp);
gboolean nbd_export_is_read_only(NBDExport *exp);

/* Free text shown by NBD_OPT_LIST / NBD_INFO_DESCRIPTION; at most
 * NBD_MAX_STRING bytes, as for names (clients refuse longer ones). */
gboolean nbd_export_set_description(NBDExport *exp, const char *description, GError **error);
const char *nbd_export_get_description(NBDExport *exp);

/* Whether several connections may write and flush consistently (default
 * TRUE: every connection uses the same descriptor, and a flush syncs all
 * of them). */
void nbd_export_set_multi_conn(NBDExport *exp, gboolean multi_conn);
gboolean nbd_export_get_multi_conn(NBDExport *exp);

/* The export's descriptor (owned by the export), for the server to send
 * read data straight from the page cache with sendfile. */
int nbd_export_get_fd(NBDExport *exp);

/* A writable regular file's contents mapped shared, or NULL (read-only
 * exports, block devices, empty files, when mmap fails, or once the map
 * is no longer intact): a server may receive write payloads straight into
 * it instead of into a buffer it then copies with pwrite.  Data written
 * there is in the page cache as after pwrite; nbd_export_flush() syncs it,
 * nbd_export_sync_range() for FUA.  A page the file no longer backs (it
 * shrank, its file system is full) makes a receive by the kernel fail with
 * EFAULT, and a copy in user space land in a private zero page (MapGuard,
 * no SIGBUS): check nbd_export_map_intact() after every write through the
 * map, and fail the request when it says no. */
guint8 *nbd_export_get_map(NBDExport *exp);
/* The contents mapped for reading, when reading them there is as good as
 * pread: the file is in memory (tmpfs, ramfs), so no read waits for or
 * fails on a disk, and past the end of a file that shrank it reads zeroes,
 * as pread past the end does.  NULL otherwise. */
const guint8 *nbd_export_get_read_map(NBDExport *exp);
/* FALSE once a page of the map had to be replaced: data written through
 * the map since may be lost, so such writes must fail; from then on the
 * getters above give NULL.  Says so once in the log, naming the file. */
gboolean nbd_export_map_intact(NBDExport *exp);
/* Makes the map's pages of [@offset, @offset + @len) writable in one call,
 * before a receive into them (a page fault for every page costs more);
 * nothing for ranges it mapped before. */
void nbd_export_populate_map(NBDExport *exp, guint64 offset, guint64 len);
/* Makes [@offset, @offset + @len) written through the map stable. */
int nbd_export_sync_range(NBDExport *exp, guint64 offset, guint64 len);

/* The NBD_FLAG_* transmission flags this export advertises. */
guint16 nbd_export_get_flags(NBDExport *exp);

/* I/O, ranges already checked by the caller.  Return 0 or an errno. */
int nbd_export_read(NBDExport *exp, void *buf, gsize len, guint64 offset);
/* Like nbd_export_read() when all of the range is in the page cache, so
 * that it cannot block: the server then answers without a trip through a
 * worker thread.  FALSE when it would have to wait for the disk (or the
 * file cannot tell): nbd_export_read() in a worker then. */
gboolean nbd_export_read_cached(NBDExport *exp, void *buf, gsize len, guint64 offset);
/* @fua: the data is on stable storage when this returns. */
int nbd_export_write(NBDExport *exp, const void *buf, gsize len, guint64 offset,
                     gboolean fua);
int nbd_export_flush(NBDExport *exp);
/* Punches a hole (advisory: a file system without hole support ignores it). */
int nbd_export_trim(NBDExport *exp, guint64 offset, guint64 len, gboolean fua);
/* @may_trim: a hole is fine (no NBD_CMD_FLAG_NO_HOLE); @fast: fail with
 * ENOTSUP instead of writing zeroes by hand. */
int nbd_export_write_zeroes(NBDExport *exp, guint64 offset, guint64 len, gboolean may_trim,
                            gboolean fast, gboolean fua);
/* Read-ahead hint. */
int nbd_export_cache(NBDExport *exp, guint64 offset, guint64 len);

/* The allocation status at @offset: sets *@len to the length (at most
 * @max_len) of the run starting at @offset with the same status and
 * *@flags to NBD_STATE_HOLE|NBD_STATE_ZERO for a hole, 0 for data. */
int nbd_export_block_status(NBDExport *exp, guint64 offset, guint64 max_len, guint64 *len,
                            guint32 *flags);

G_END_DECLS
