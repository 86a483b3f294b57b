/*
 * ChardevSet: qiod's chardevs by id.  Creates them from -chardev strings
 * or QMP chardev-add arguments (choosing the backend class), removes them
 * when no frontend uses them, and describes them for query-chardev.
 */
#pragma once

#include "chardev/chardev-mux.h"
#include "chardev/chardev-options.h"
#include "chardev/chardev.h"

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace qio::chardev {

class ChardevSet {
 public:
  explicit ChardevSet(GMainContext *context = nullptr) : context_(context) {}

  /* Creates and opens the chardev; fails if the id is taken. */
  Chardev *add(ChardevOptions &opts, GError **error);
  /* Like add(), opening with Chardev::open_async (for chardev-add: a
   * client connecting does not hold the loop); the id is taken meanwhile.
   * @done gets the chardev or the error (which it owns); it does not run
   * if the set is destroyed first. */
  using AddDone = std::function<void(Chardev *dev, GError *error)>;
  void add_async(ChardevOptions &opts, AddDone done);
  Chardev *add_from_string(const char *text, GError **error);
  /* Fails when the id is unknown or a frontend is attached.  A chardev
   * add_async() is still opening is dropped, its add failing. */
  bool remove(const std::string &id, GError **error);
  Chardev *find(const std::string &id) const;
  /* Like find(), with an error naming @id when there is none. */
  Chardev *lookup(const std::string &id, GError **error) const;
  /* query-chardev's reply: [{"label", "filename", "frontend-open", ...}]. */
  JsonNode *query() const;
  void clear() { devs_.clear(); }
  /* What mux=on chardevs do on C-a x and C-a s (qiod sets these). */
  MuxActions &mux_actions() { return mux_actions_; }

 private:
  /* Checks the id, takes mux=, creates the backend (unopened). */
  std::unique_ptr<Chardev> prepare(ChardevOptions &opts, GError **error);

  GMainContext *context_;
  MuxActions mux_actions_;
  std::map<std::string, std::unique_ptr<Chardev>> devs_;
  struct Opening {
    std::unique_ptr<Chardev> dev;
    AddDone done;
  };
  std::map<std::string, Opening> opening_; /* add_async() under way */
};

}  // namespace qio::chardev
