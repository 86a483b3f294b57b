/* The QMP byte stream's framing (monitor/json-splitter): byte 0 sets how
 * many bytes each read delivers (1-16), so that values split anywhere;
 * the rest is the stream.  Checks the splitter's promises to the parser
 * behind it: no value it passes on is longer than its size limit, and
 * none that json-glib parses nests deeper than its depth limit. */
#include "config.h"

#include "monitor/json-splitter.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

constexpr gsize kMaxSize = 2048;
constexpr guint kMaxDepth = 8;

guint depth_of(JsonNode *node) {
  guint depth = 0;
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    GList *members = json_object_get_values(json_node_get_object(node));
    for (GList *l = members; l; l = l->next)
      depth = std::max(depth, depth_of(static_cast<JsonNode *>(l->data)));
    g_list_free(members);
    return depth + 1;
  }
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(array); i++)
      depth = std::max(depth, depth_of(json_array_get_element(array, i)));
    return depth + 1;
  }
  return 0;
}

void check_message(std::string_view msg) {
  if (msg.size() > kMaxSize) {
    fprintf(stderr, "the splitter passed a value of %zu bytes (limit %zu)\n", msg.size(),
            kMaxSize);
    abort();
  }
  JsonParser *parser = json_parser_new_immutable();
  if (json_parser_load_from_data(parser, msg.data(), static_cast<gssize>(msg.size()), nullptr)) {
    JsonNode *root = json_parser_get_root(parser);
    guint depth = root ? depth_of(root) : 0;
    if (depth > kMaxDepth) {
      fprintf(stderr, "the splitter passed a value nested %u deep (limit %u)\n", depth,
              kMaxDepth);
      abort();
    }
  }
  g_object_unref(parser);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t chunk = data[0] % 16 + 1;
  std::string_view stream(reinterpret_cast<const char *>(data + 1), size - 1);
  qio::monitor::JsonSplitter splitter(kMaxSize, kMaxDepth);
  for (size_t off = 0; off < stream.size(); off += chunk) {
    if (!splitter.feed(stream.substr(off, chunk), check_message,
                       [](qio::monitor::JsonSplitter::Fault) {}))
      break;
  }
  return 0;
}
