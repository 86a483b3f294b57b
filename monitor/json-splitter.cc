#include "config.h"

#include "monitor/json-splitter.h"

namespace qio::monitor {

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool ends_token(char c) {
  return is_space(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == '"' ||
         c == '\'' || c == ',' || c == ':';
}

void JsonSplitter::emit(const MessageFunc &message) {
  message(buf_);
  buf_.clear();
}

bool JsonSplitter::feed(std::string_view data, const MessageFunc &message,
                        const FaultFunc &fault) {
  for (char c : data) {
    if (comment_ == Comment::kSlash) {
      comment_ = c == '*' ? Comment::kBlock : c == '/' ? Comment::kLine : Comment::kNone;
      star_ = false;
      if (comment_ != Comment::kNone) continue;
    } else if (comment_ == Comment::kBlock) {
      if (star_ && c == '/') comment_ = Comment::kNone;
      star_ = c == '*';
      continue;
    } else if (comment_ == Comment::kLine) {
      if (c == '\n') comment_ = Comment::kNone;
      continue;
    }
    if (in_string_) {
      if (!skipping_) buf_.push_back(c);
      /* As json-glib reads them: escapes only in double quotes; in single
       * quotes a backslash is itself (were it taken as an escape here, a
       * quote json-glib sees as the end would hide the brackets after it
       * from the depth limit). */
      if (escape_)
        escape_ = false;
      else if (c == '\\' && quote_ == '"')
        escape_ = true;
      else if (c == quote_) {
        in_string_ = false;
        if (depth_ == 0) emit(message);
      }
    } else if (c == '/') {
      comment_ = Comment::kSlash;
      if (!skipping_) {
        fault(Fault::Comment);
        buf_.clear();
        scalar_ = false;
        skipping_ = depth_ > 0;
      }
    } else if (scalar_ && !ends_token(c)) {
      buf_.push_back(c);
    } else {
      if (scalar_) {
        scalar_ = false;
        emit(message);
      }
      if (c == '{' || c == '[') {
        if (++depth_ > max_depth_ && !skipping_) {
          skipping_ = true;
          buf_.clear();
          fault(Fault::TooDeep);
        }
      } else if (c == '}' || c == ']') {
        if (depth_ == 0) {
          fault(Fault::Unbalanced);
          continue;
        }
        --depth_;
      } else if (c == '"' || c == '\'') {
        in_string_ = true;
        quote_ = c;
      } else if (depth_ == 0 && is_space(c)) {
        continue;
      } else if (depth_ == 0) {
        scalar_ = true;
      }
      if (!skipping_) buf_.push_back(c);
      if (depth_ == 0 && (c == '}' || c == ']')) {
        if (skipping_)
          skipping_ = false;
        else
          emit(message);
      }
    }
    if (buf_.size() > max_size_) {
      buf_.clear();
      depth_ = 0;
      in_string_ = escape_ = scalar_ = skipping_ = false;
      fault(Fault::TooLarge);
      return false;
    }
  }
  return true;
}

}  // namespace qio::monitor
