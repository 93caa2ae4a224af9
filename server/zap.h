// The ZAP handler (ZeroMQ RFC 27): decides, for each CURVE handshake, whether the
// client's transport key may connect. Only keys of roster entries that are not
// revoked are admitted; anyone else never gets a byte of data. The admitted key (hex)
// becomes the connection's User-Id, which the server reads from every message.
#ifndef SAMSYNC_SERVER_ZAP_H_
#define SAMSYNC_SERVER_ZAP_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "samsync/clock.h"
#include "samsync/roster.h"

namespace samsync::server {

// The roster the handler checks against; the server replaces it when a newer one is
// installed. Thread-safe.
class RosterView {
 public:
  void Set(std::shared_ptr<const Roster> roster);
  std::shared_ptr<const Roster> Get() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Roster> roster_;
};

// Runs the handler on its own thread until destroyed. Must be created before the
// server socket binds (libzmq only asks a handler that exists).
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, const RosterView& roster, const Clock& clock);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

 private:
  void Run();

  zmq::socket_t socket_;
  const RosterView& roster_;
  const Clock& clock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_ZAP_H_
