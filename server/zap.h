// The ZAP handler (ZeroMQ RFC 27): decides, for each CURVE handshake, whether the
// client's transport key may connect. Only keys of roster entries that are not
// revoked are admitted; anyone else never gets a byte of data. The admitted key (hex)
// becomes the connection's User-Id, which the server reads from every message.
//
// The server polls the handler's socket beside its own and answers each handshake on
// its own thread, after reloading the roster from its store: a roster installed while
// the server runs (`samsync-server roster import`, a revocation) holds from the next
// handshake, not only from the next request.
#ifndef SAMSYNC_SERVER_ZAP_H_
#define SAMSYNC_SERVER_ZAP_H_

#include <functional>
#include <memory>
#include <mutex>
#include <zmq.hpp>

#include "samsync/keys.h"
#include "samsync/roster.h"

namespace samsync::server {

// The roster the server checks against; replaced when a newer one is installed.
// Thread-safe.
class RosterView {
 public:
  void Set(std::shared_ptr<const Roster> roster);
  std::shared_ptr<const Roster> Get() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Roster> roster_;
};

// Binds the handler's socket. Must be created before the server socket binds (libzmq
// only asks a handler that exists).
class ZapHandler {
 public:
  explicit ZapHandler(zmq::context_t& context);
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // To poll for requests (ZMQ_POLLIN).
  zmq::socket_t& socket() { return socket_; }
  // Reads the pending request and answers it: a CURVE client is admitted when
  // `admit(its key)` is true. Anything else is refused.
  void Answer(const std::function<bool(const PublicKey&)>& admit);

 private:
  zmq::socket_t socket_;
};

}  // namespace samsync::server

#endif  // SAMSYNC_SERVER_ZAP_H_
