/*
 * The qio migration stream, version 1 (docs/migration.md has the full
 * description): a hello on every channel, the destination's answer on the
 * main channel, then records.  Integers are big-endian.  These helpers do
 * blocking I/O on one channel from one migration thread.
 */
#pragma once

#include "qio/channel.h"

#include <glib.h>

#include <cstdint>
#include <string>

namespace qio::migration {

inline constexpr guint32 kStreamVersion = 1;
inline constexpr char kStreamMagic[8] = {'Q', 'I', 'O', 'M', 'I', 'G', 'R', '\n'};
/* RAM pages per record: 512 KiB of 4 KiB pages, well under IOV_MAX iovecs. */
inline constexpr guint32 kPagesPerRecord = 128;

enum class ChannelKind : guint32 { Main = 0, Multifd = 1 };

enum class Compression : guint32 { None = 0, Zlib = 1, Zstd = 2 };

/* Sent by the source first on every channel. */
struct Hello {
  guint32 version = kStreamVersion;
  ChannelKind kind = ChannelKind::Main;
  guint32 index = 0;    /* multifd channel number */
  guint32 channels = 0; /* multifd channel count; 0 without multifd */
  guint32 page_size = 0;
  Compression compression = Compression::None;
  guint64 ram_size = 0;
};
inline constexpr gsize kHelloSize = 8 + 6 * 4 + 8;

enum class RecordType : guint32 {
  Ram = 1,    /* count pages: count u64 page numbers, then the pages */
  Sync = 2,   /* end of round @arg on this channel */
  Device = 3, /* count bytes of JSON device state */
  End = 4,    /* no more records on this channel */
  Done = 5,   /* destination -> source: everything loaded */
  Error = 6,  /* destination -> source: count bytes of message */
  RamCompressed = 7, /* count pages, then @arg bytes of compressed pages */
};

struct RecordHeader {
  RecordType type;
  guint32 count;
  guint64 arg;
};
inline constexpr gsize kRecordHeaderSize = 16;

void encode_hello(const Hello &hello, guint8 out[kHelloSize]);
/* Checks the magic and the version; @peer names the channel in errors. */
bool decode_hello(const guint8 in[kHelloSize], Hello &hello, const char *peer, GError **error);

void encode_record(RecordType type, guint32 count, guint64 arg, guint8 out[kRecordHeaderSize]);
RecordHeader decode_record(const guint8 in[kRecordHeaderSize]);

/* The destination's answer to the main hello: accepted, or a message. */
bool write_answer(QIOChannel *ioc, const char *refusal, GError **error);
/* False with @error set to the destination's refusal (or an I/O error). */
bool read_answer(QIOChannel *ioc, GError **error);

bool write_record(QIOChannel *ioc, RecordType type, guint32 count, guint64 arg,
                  const void *payload, gsize len, GError **error);
bool read_record(QIOChannel *ioc, RecordHeader &header, GError **error);

const char *compression_name(Compression c);
bool compression_from_name(const char *name, Compression &out);

}  // namespace qio::migration
