/*
 * QmpListener: a listening address whose clients become QMP sessions of a
 * QmpServer.  Owns the QIONetListener and removes its UNIX socket file
 * when destroyed.
 */
#pragma once

#include "monitor/qmp-server.h"
#include "qio/net-listener.h"

#include <memory>
#include <string>

namespace qio::monitor {

struct QmpListenerConfig {
  std::string address;  /* as qio_socket_address_parse() accepts it */
  bool wait = false;    /* block in open() until a first client connects */
};

class QmpListener {
 public:
  static std::unique_ptr<QmpListener> open(QmpServer &server, const QmpListenerConfig &config,
                                           GError **error);
  ~QmpListener();
  QmpListener(const QmpListener &) = delete;
  QmpListener &operator=(const QmpListener &) = delete;

  /* Stops accepting; clients already connected stay. */
  void disconnect();

 private:
  explicit QmpListener(QmpServer &server);
  void accept(QIOChannelSocket *client);

  QmpServer &server_;
  QIONetListener *listener_;
  std::string unix_path_;
};

}  // namespace qio::monitor
