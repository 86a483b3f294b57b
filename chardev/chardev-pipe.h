/*
 * ChardevPipe: the "pipe" backend.  Reads PATH.in and writes PATH.out
 * when both exist (two FIFOs, as QEMU does), else reads and writes PATH.
 */
#pragma once

#include "chardev/chardev-options.h"
#include "chardev/chardev.h"

#include <memory>

namespace qio::chardev {

class ChardevPipe final : public Chardev {
 public:
  static std::unique_ptr<ChardevPipe> create(ChardevOptions &opts, GMainContext *context,
                                             GError **error);
  bool open(GError **error) override;
  std::string filename() const override { return "pipe:" + path_; }

 private:
  ChardevPipe(const std::string &id, GMainContext *context) : Chardev(id, "pipe", context) {}

  std::string path_;
};

}  // namespace qio::chardev
