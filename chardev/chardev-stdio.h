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
  bool open(GError **error) override;
  std::string filename() const override { return "stdio"; }
};

}  // namespace qio::chardev
