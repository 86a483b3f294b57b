/*
 * ChardevFile: the "file" backend.  The frontend's output is written to
 * path (truncated, or appended to with append=on); there is no input.
 */
#pragma once

#include "chardev/chardev-options.h"
#include "chardev/chardev.h"

#include <memory>

namespace qio::chardev {

class ChardevFile final : public Chardev {
 public:
  static std::unique_ptr<ChardevFile> create(ChardevOptions &opts, GMainContext *context,
                                             GError **error);
  bool open(GError **error) override;
  std::string filename() const override { return "file:" + path_; }

 private:
  ChardevFile(const std::string &id, GMainContext *context) : Chardev(id, "file", context) {}

  std::string path_;
  bool append_ = false;
};

}  // namespace qio::chardev
