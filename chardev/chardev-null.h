/*
 * ChardevNull: the "null" backend.  Output is discarded, input never
 * arrives; always open.
 */
#pragma once

#include "chardev/chardev-options.h"
#include "chardev/chardev.h"

#include <memory>

namespace qio::chardev {

class ChardevNull final : public Chardev {
 public:
  ChardevNull(const std::string &id, GMainContext *context) : Chardev(id, "null", context) {}
  bool open(GError **error) override;
  std::string filename() const override { return "null"; }
};

}  // namespace qio::chardev
