#include "samsync/sync_protocol.h"

#include <kj/exception.h>

#include <cstring>

namespace samsync {

template <typename Root>
Result<SyncMessage<Root>> SyncMessage<Root>::Read(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0 ||
      bytes.size() > static_cast<uint64_t>(kMaxSyncMessageBytes)) {
    return Status::Invalid("the message is not a sync message of an acceptable size");
  }
  SyncMessage message;
  message.words_ = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(message.words_.begin(), bytes.data(), bytes.size());
  bool ok = false;
  auto error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = message.words_.size() * 2 + 1024;
    options.nestingLimit = 16;
    message.reader_ = std::make_unique<capnp::FlatArrayMessageReader>(message.words_, options);
    // Walking the whole message now means a later read of it cannot throw.
    (void)message.reader_->template getRoot<Root>().totalSize();
    ok = true;
  });
  if (error != nullptr || !ok) return Status::Invalid("the message does not decode as a sync message");
  return message;
}

template class SyncMessage<schema::SyncRequest>;
template class SyncMessage<schema::SyncReply>;

std::vector<uint8_t> MessageBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

void WriteSeen(capnp::List<schema::Seen>::Builder out, const VersionVector& vector) {
  unsigned i = 0;
  for (const auto& [device, seq] : vector) {
    out[i].setDevice(capnp::Data::Reader(device.bytes.data(), device.bytes.size()));
    out[i].setSeq(seq);
    ++i;
  }
}

Result<VersionVector> ReadSeen(capnp::List<schema::Seen>::Reader in) {
  VersionVector vector;
  for (auto entry : in) {
    auto device = Bytes32::FromBytes({entry.getDevice().begin(), entry.getDevice().size()}, "device key");
    if (!device.ok()) return Status::Invalid("a version vector names a device key that is not 32 bytes");
    if (entry.getSeq() == 0) return Status::Invalid("a version vector holds seq 0");
    if (!vector.emplace(*device, entry.getSeq()).second) return Status::Invalid("a version vector names a device twice");
  }
  return vector;
}

}  // namespace samsync
