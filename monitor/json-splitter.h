/*
 * JsonSplitter: cuts a byte stream into complete top-level JSON values
 * without parsing them, tracking only brackets, strings (double- or, as
 * QEMU and json-glib accept, single-quoted) and escapes, so
 * that a value split across reads, or several values in one read, come
 * out whole.  Enforces a size limit and a nesting limit before anything
 * reaches a parser.
 */
#pragma once

#include <glib.h>

#include <functional>
#include <string>
#include <string_view>

namespace qio::monitor {

class JsonSplitter {
 public:
  enum class Fault {
    TooLarge,   /* a value exceeded max_size: the stream cannot resync */
    TooDeep,    /* nesting exceeded max_depth: the value is skipped */
    Unbalanced, /* a closing bracket with nothing open: skipped */
    Comment,    /* a comment (not JSON): the value around it is skipped */
  };
  using MessageFunc = std::function<void(std::string_view)>;
  using FaultFunc = std::function<void(Fault)>;

  JsonSplitter(gsize max_size, guint max_depth) : max_size_(max_size), max_depth_(max_depth) {}

  /* Calls @message for each complete value and @fault for each framing
   * fault.  Returns false after TooLarge: the caller must drop the peer. */
  bool feed(std::string_view data, const MessageFunc &message, const FaultFunc &fault);
  /* True while part of a value is buffered. */
  bool pending() const { return depth_ > 0 || in_string_ || scalar_; }

 private:
  void emit(const MessageFunc &message);

  const gsize max_size_;
  const guint max_depth_;
  std::string buf_;
  guint depth_ = 0;
  bool in_string_ = false;
  char quote_ = '"'; /* QEMU also accepts 'single-quoted' strings */
  bool escape_ = false;
  bool scalar_ = false;  /* a bare top-level token such as 42 or true */
  bool skipping_ = false; /* inside a value that was too deep or had a comment */
  /* json-glib reads C and C++ comments, where brackets and quotes do not
   * count: the splitter follows them so that its depth is the parser's,
   * and refuses them, as QEMU does. */
  enum class Comment { kNone, kSlash, kBlock, kLine };
  Comment comment_ = Comment::kNone;
  bool star_ = false; /* the last character of a block comment was '*' */
};

}  // namespace qio::monitor
