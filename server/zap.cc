#include "zap.h"

#include <string>
#include <vector>
#include <zmq_addon.hpp>

namespace samsync::server {

void RosterView::Set(std::shared_ptr<const Roster> roster) {
  std::lock_guard lock(mutex_);
  roster_ = std::move(roster);
}

std::shared_ptr<const Roster> RosterView::Get() const {
  std::lock_guard lock(mutex_);
  return roster_;
}

ZapHandler::ZapHandler(zmq::context_t& context) : socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
}

void ZapHandler::Answer(const std::function<bool(const PublicKey&)>& admit) {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  // version, request id, domain, address, identity, mechanism, credentials...
  std::string version = request.size() > 0 ? request[0].to_string() : "";
  std::string request_id = request.size() > 1 ? request[1].to_string() : "";
  std::string mechanism = request.size() > 5 ? request[5].to_string() : "";
  std::string status = "400", text = "not admitted", user_id;
  if (version == "1.0" && mechanism == "CURVE" && request.size() == 7 && request[6].size() == 32) {
    auto key = Bytes32::FromBytes({static_cast<const uint8_t*>(request[6].data()), 32});
    if (key.ok() && admit(*key)) {
      status = "200";
      text = "OK";
      user_id = key->ToHex();
    }
  }
  std::vector<zmq::const_buffer> reply = {zmq::buffer(std::string_view("1.0")), zmq::buffer(request_id),
                                          zmq::buffer(status), zmq::buffer(text), zmq::buffer(user_id),
                                          zmq::const_buffer()};
  zmq::send_multipart(socket_, reply);
}

}  // namespace samsync::server
