#include "config.h"

#include "nbd/export.h"

#include "nbd/error.h"
#include "nbd/map-guard.h"
#include "nbd/protocol.h"

#include <glib/gi18n-lib.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <new>
#include <string>

struct NBDExportPrivate {
  std::string name;
  std::string path;
  std::string description;
  int fd = -1;
  guint64 size = 0;
  /* Writable regular files, and read-only ones in memory: see
   * nbd_export_get_map and nbd_export_get_read_map. */
  guint8 *map = nullptr;
  std::unique_ptr<qio::nbd::MapGuard> map_guard;
  std::atomic<bool> map_loss_reported{false};
  /* One bit per kPopulateUnit of the map whose pages nbd_export_populate_map
   * already mapped writable: walking mapped pages again costs as much as
   * the faults it spares.  Trims and zeroing, which unmap pages, clear
   * their bits; the kernel reclaiming pages only brings back faults. */
  std::unique_ptr<std::atomic<guint64>[]> populated;
  bool read_only = false;
  bool multi_conn = true;
  bool block_device = false;
  bool in_memory = false; /* tmpfs or ramfs: reads never wait for a disk */
  /* The last run of data SEEK_HOLE found, [run_start, run_end): on tmpfs
   * SEEK_HOLE walks the page cache up to the end of the file, so a client
   * asking for block status chunk by chunk (nbdcopy) would scan the whole
   * file again each time.  Calling a range data is always safe, so only
   * this server's trims and zeroing, which make holes, drop it (after the
   * hole exists, with a generation so that a lookup racing them does not
   * store what it saw before). */
  GMutex run_lock;
  guint64 run_start = 0;
  guint64 run_end = 0;
  guint64 run_generation = 0; /* bumped by every drop */
};

struct _NBDExport {
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE_WITH_PRIVATE(NBDExport, nbd_export, G_TYPE_OBJECT)

static NBDExportPrivate *export_priv(NBDExport *exp) {
  return static_cast<NBDExportPrivate *>(nbd_export_get_instance_private(exp));
}

static void nbd_export_finalize(GObject *object) {
  NBDExportPrivate *priv = export_priv(NBD_EXPORT(object));
  priv->map_guard.reset();
  if (priv->map) munmap(priv->map, priv->size);
  if (priv->fd >= 0) close(priv->fd);
  g_mutex_clear(&priv->run_lock);
  priv->~NBDExportPrivate();
  G_OBJECT_CLASS(nbd_export_parent_class)->finalize(object);
}

static void nbd_export_class_init(NBDExportClass *klass) {
  G_OBJECT_CLASS(klass)->finalize = nbd_export_finalize;
}

static void nbd_export_init(NBDExport *exp) {
  new (export_priv(exp)) NBDExportPrivate();
  g_mutex_init(&export_priv(exp)->run_lock);
}

constexpr guint64 kPopulateUnit = 64 * 1024;

/* madvise and msync want a page-aligned start. */
static guint64 page_start(guint64 offset) {
  static const auto page = static_cast<guint64>(sysconf(_SC_PAGESIZE));
  return offset - offset % page;
}

/* Calls @fn(word, mask) for the bits of the units [@first, @last]. */
template <typename Fn>
static void for_each_unit_bits(guint64 first, guint64 last, Fn fn) {
  for (guint64 u = first; u <= last;) {
    guint64 word = u / 64, bit = u % 64;
    guint64 n = std::min<guint64>(64 - bit, last - u + 1);
    guint64 mask = (n == 64 ? ~G_GUINT64_CONSTANT(0) : ((G_GUINT64_CONSTANT(1) << n) - 1)) << bit;
    if (!fn(word, mask)) return;
    u += n;
  }
}

static void forget_populated(NBDExportPrivate *priv, guint64 offset, guint64 len) {
  if (!priv->populated || len == 0) return;
  for_each_unit_bits(offset / kPopulateUnit, (offset + len - 1) / kPopulateUnit,
                     [&](guint64 word, guint64 mask) {
                       priv->populated[word].fetch_and(~mask, std::memory_order_relaxed);
                       return true;
                     });
}

static void forget_data_run(NBDExportPrivate *priv) {
  g_mutex_lock(&priv->run_lock);
  priv->run_start = priv->run_end = 0;
  priv->run_generation++;
  g_mutex_unlock(&priv->run_lock);
}

NBDExport *nbd_export_new(const char *name, const char *path, gboolean read_only,
                          GError **error) {
  if (strlen(name) > NBD_MAX_STRING) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_EXPORT,
                _("Export name for '%s' is longer than %u bytes; choose a shorter name"), path,
                NBD_MAX_STRING);
    return nullptr;
  }
  int fd = g_open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
  if (fd < 0 && errno == EISDIR) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY,
                _("Cannot export '%s': it is not a regular file or block device"), path);
    return nullptr;
  }
  if (fd < 0) {
    int err = errno;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot open '%s' for export '%s': %s; check the path and its permissions "
                  "(or export it read-only)"),
                path, name, g_strerror(err));
    return nullptr;
  }
  struct stat st;
  off_t end = -1;
  if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
    end = lseek(fd, 0, SEEK_END);
  else
    errno = EINVAL;
  if (end < 0) {
    int err = errno;
    close(fd);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("Cannot export '%s': it is not a regular file or block device whose size "
                  "can be read (%s)"),
                path, g_strerror(err));
    return nullptr;
  }
  auto *exp = NBD_EXPORT(g_object_new(NBD_TYPE_EXPORT, nullptr));
  NBDExportPrivate *priv = export_priv(exp);
  priv->name = name;
  priv->path = path;
  priv->fd = fd;
  priv->size = static_cast<guint64>(end);
  priv->read_only = read_only;
  priv->block_device = S_ISBLK(st.st_mode);
  struct statfs fs;
  priv->in_memory = S_ISREG(st.st_mode) && fstatfs(fd, &fs) == 0 &&
                    (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
  if (S_ISREG(st.st_mode) && end > 0 && (!read_only || priv->in_memory)) {
    /* Without a map, reads and writes take the pread/pwrite path: nothing
     * is lost. */
    int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
    void *map = mmap(nullptr, priv->size, prot, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      auto guard = std::make_unique<qio::nbd::MapGuard>(map, priv->size);
      if (guard->ok()) {
        priv->map = static_cast<guint8 *>(map);
        priv->map_guard = std::move(guard);
        gsize words = (priv->size + kPopulateUnit * 64 - 1) / (kPopulateUnit * 64);
        if (!read_only) priv->populated = std::make_unique<std::atomic<guint64>[]>(words);
      } else {
        munmap(map, priv->size);
      }
    }
  }
  return exp;
}

const char *nbd_export_get_name(NBDExport *exp) { return export_priv(exp)->name.c_str(); }
const char *nbd_export_get_path(NBDExport *exp) { return export_priv(exp)->path.c_str(); }
guint64 nbd_export_get_size(NBDExport *exp) { return export_priv(exp)->size; }
gboolean nbd_export_is_read_only(NBDExport *exp) { return export_priv(exp)->read_only; }
int nbd_export_get_fd(NBDExport *exp) { return export_priv(exp)->fd; }
gboolean nbd_export_map_intact(NBDExport *exp) {
  NBDExportPrivate *priv = export_priv(exp);
  if (!priv->map || priv->map_guard->faults() == 0) return TRUE;
  if (!priv->map_loss_reported.exchange(true))
    g_message(_("Export '%s': part of '%s' vanished while the server was using it through "
                "memory (the file shrank, its file system is full or a read failed); the "
                "writes that touched it failed, and the export now uses plain reads and "
                "writes.  Check the file, then re-add the export"),
              priv->name.c_str(), priv->path.c_str());
  return FALSE;
}

guint8 *nbd_export_get_map(NBDExport *exp) {
  NBDExportPrivate *priv = export_priv(exp);
  return !priv->read_only && nbd_export_map_intact(exp) ? priv->map : nullptr;
}

const guint8 *nbd_export_get_read_map(NBDExport *exp) {
  NBDExportPrivate *priv = export_priv(exp);
  return priv->in_memory && nbd_export_map_intact(exp) ? priv->map : nullptr;
}

void nbd_export_populate_map(NBDExport *exp, guint64 offset, guint64 len) {
  NBDExportPrivate *priv = export_priv(exp);
  if (!priv->populated || len == 0) return;
  guint64 first = offset / kPopulateUnit, last = (offset + len - 1) / kPopulateUnit;
  bool done = true;
  for_each_unit_bits(first, last, [&](guint64 word, guint64 mask) {
    done = (priv->populated[word].load(std::memory_order_relaxed) & mask) == mask;
    return done;
  });
  if (done) return;
  guint64 start = page_start(offset);
  /* Only a hint: pages it could not map fault in one by one as before. */
  if (madvise(priv->map + start, offset + len - start, MADV_POPULATE_WRITE) != 0) return;
  /* Only units the range covers whole are mapped whole. */
  guint64 whole_first = (offset + kPopulateUnit - 1) / kPopulateUnit;
  guint64 whole_end = (offset + len) / kPopulateUnit;
  if (whole_first < whole_end)
    for_each_unit_bits(whole_first, whole_end - 1, [&](guint64 word, guint64 mask) {
      priv->populated[word].fetch_or(mask, std::memory_order_relaxed);
      return true;
    });
}

int nbd_export_sync_range(NBDExport *exp, guint64 offset, guint64 len) {
  NBDExportPrivate *priv = export_priv(exp);
  if (!priv->map || len == 0) return 0;
  guint64 start = page_start(offset);
  return msync(priv->map + start, offset + len - start, MS_SYNC) == 0 ? 0 : errno;
}

gboolean nbd_export_set_description(NBDExport *exp, const char *description, GError **error) {
  if (description && strlen(description) > NBD_MAX_STRING) {
    g_set_error(error, NBD_ERROR, NBD_ERROR_EXPORT,
                _("Description of export '%s' is longer than %u bytes; NBD clients refuse it, "
                  "so shorten it"),
                nbd_export_get_name(exp), NBD_MAX_STRING);
    return FALSE;
  }
  export_priv(exp)->description = description ? description : "";
  return TRUE;
}

const char *nbd_export_get_description(NBDExport *exp) {
  return export_priv(exp)->description.c_str();
}

void nbd_export_set_multi_conn(NBDExport *exp, gboolean multi_conn) {
  export_priv(exp)->multi_conn = multi_conn;
}

gboolean nbd_export_get_multi_conn(NBDExport *exp) { return export_priv(exp)->multi_conn; }

guint16 nbd_export_get_flags(NBDExport *exp) {
  NBDExportPrivate *priv = export_priv(exp);
  guint16 flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                  NBD_FLAG_SEND_CACHE | NBD_FLAG_SEND_DF;
  if (priv->read_only)
    flags |= NBD_FLAG_READ_ONLY;
  else
    flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
  if (priv->multi_conn) flags |= NBD_FLAG_CAN_MULTI_CONN;
  return flags;
}

int nbd_export_read(NBDExport *exp, void *buf, gsize len, guint64 offset) {
  int fd = export_priv(exp)->fd;
  auto *p = static_cast<char *>(buf);
  while (len > 0) {
    ssize_t n = pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) {
      /* The file shrank under us: what is past its end reads as zeroes. */
      memset(p, 0, len);
      return 0;
    }
    p += n;
    len -= static_cast<gsize>(n);
    offset += static_cast<guint64>(n);
  }
  return 0;
}

gboolean nbd_export_read_cached(NBDExport *exp, void *buf, gsize len, guint64 offset) {
  NBDExportPrivate *priv = export_priv(exp);
  /* tmpfs refuses RWF_NOWAIT, but its pages are in memory (unless swapped). */
  if (priv->in_memory) return nbd_export_read(exp, buf, len, offset) == 0;
  struct iovec iov = {buf, len};
  /* A short read (past the end, or partly cached) is left to the worker. */
  ssize_t n = preadv2(priv->fd, &iov, 1, static_cast<off_t>(offset), RWF_NOWAIT);
  return n >= 0 && static_cast<gsize>(n) == len;
}

int nbd_export_flush(NBDExport *exp) {
  NBDExportPrivate *priv = export_priv(exp);
  /* What came in through the map, then everything else of the file. */
  int err = nbd_export_sync_range(exp, 0, priv->size);
  if (err) return err;
  return fdatasync(priv->fd) == 0 ? 0 : errno;
}

int nbd_export_write(NBDExport *exp, const void *buf, gsize len, guint64 offset,
                     gboolean fua) {
  int fd = export_priv(exp)->fd;
  auto *p = static_cast<const char *>(buf);
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    len -= static_cast<gsize>(n);
    offset += static_cast<guint64>(n);
  }
  return fua ? nbd_export_flush(exp) : 0;
}

int nbd_export_trim(NBDExport *exp, guint64 offset, guint64 len, gboolean fua) {
  NBDExportPrivate *priv = export_priv(exp);
  if (len > 0 && fallocate(priv->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                           static_cast<off_t>(offset), static_cast<off_t>(len)) < 0) {
    /* A trim is a hint: where holes cannot be punched, nothing happens. */
    if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
  }
  forget_data_run(priv);
  forget_populated(priv, offset, len);
  return fua ? nbd_export_flush(exp) : 0;
}

static int write_zero_buffers(NBDExport *exp, guint64 offset, guint64 len) {
  static const gsize kChunk = 1 << 20;
  g_autofree void *zeroes = g_malloc0(std::min<guint64>(len, kChunk));
  while (len > 0) {
    gsize n = static_cast<gsize>(std::min<guint64>(len, kChunk));
    int err = nbd_export_write(exp, zeroes, n, offset, FALSE);
    if (err) return err;
    offset += n;
    len -= n;
  }
  return 0;
}

int nbd_export_write_zeroes(NBDExport *exp, guint64 offset, guint64 len, gboolean may_trim,
                            gboolean fast, gboolean fua) {
  NBDExportPrivate *priv = export_priv(exp);
  if (len == 0) return fua ? nbd_export_flush(exp) : 0;
  int modes[2] = {may_trim ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : 0,
                  FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
  int err = ENOTSUP;
  for (int mode : modes) {
    if (!mode) continue;
    if (fallocate(priv->fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) {
      err = 0;
      break;
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
  }
  forget_data_run(priv);
  forget_populated(priv, offset, len);
  if (err) {
    if (fast) return ENOTSUP;
    err = write_zero_buffers(exp, offset, len);
    if (err) return err;
  }
  return fua ? nbd_export_flush(exp) : 0;
}

int nbd_export_cache(NBDExport *exp, guint64 offset, guint64 len) {
  return posix_fadvise(export_priv(exp)->fd, static_cast<off_t>(offset),
                       static_cast<off_t>(len), POSIX_FADV_WILLNEED);
}

int nbd_export_block_status(NBDExport *exp, guint64 offset, guint64 max_len, guint64 *len,
                            guint32 *flags) {
  NBDExportPrivate *priv = export_priv(exp);
  guint64 end = std::min(priv->size, offset + max_len);
  g_mutex_lock(&priv->run_lock);
  bool in_run = offset >= priv->run_start && offset < priv->run_end;
  guint64 run_end = priv->run_end;
  guint64 generation = priv->run_generation;
  g_mutex_unlock(&priv->run_lock);
  if (in_run) {
    *len = std::min(end, run_end) - offset;
    *flags = 0;
    return 0;
  }
  off_t data = lseek(priv->fd, static_cast<off_t>(offset), SEEK_DATA);
  if (data < 0 && errno != ENXIO) {
    /* No SEEK_DATA here (or a block device): report everything as data. */
    if (errno == EINVAL || errno == EOPNOTSUPP) {
      *len = end - offset;
      *flags = 0;
      return 0;
    }
    return errno;
  }
  if (data < 0 || static_cast<guint64>(data) > offset) {
    /* A hole up to the next data (ENXIO: up to the end of the file). */
    guint64 stop = data < 0 ? end : std::min(end, static_cast<guint64>(data));
    *len = stop - offset;
    *flags = NBD_STATE_HOLE | NBD_STATE_ZERO;
    return 0;
  }
  off_t hole = lseek(priv->fd, static_cast<off_t>(offset), SEEK_HOLE);
  if (hole < 0) return errno;
  g_mutex_lock(&priv->run_lock);
  /* Not when a hole may have been made since the seeks. */
  if (generation == priv->run_generation) {
    priv->run_start = offset;
    priv->run_end = static_cast<guint64>(hole);
  }
  g_mutex_unlock(&priv->run_lock);
  *len = std::min(end, static_cast<guint64>(hole)) - offset;
  *flags = 0;
  return 0;
}
