/*
 * ChardevStdio: the "stdio" backend: qiod's standard input and output
 * (for a daemon in the foreground).
 */
#pragma once

#include "chardev/chardev.h"

namespace qio::chardev {

class ChardevStdio final : public Chardev {
 public:
  ChardevStdio(const std::string &id, GMainContext *context) : Chardev(id, "stdio", context) {}
  ~ChardevStdio() override;
  bool open(GError **error) override;
  std::string filename() const override { return "stdio"; }

 private:
  /* The copies share their status flags with whoever started qiod (a
   * shell, a pipe): those made non-blocking are put back as they were. */
  int saved_in_flags_ = -1;
  int saved_out_flags_ = -1;
};

}  // namespace qio::chardev
