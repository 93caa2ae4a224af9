// The sync protocol's messages (schema/sync.capnp): their limits, and reading them
// from untrusted bytes. The sockets live in the binaries (server/, client/); this is
// what both sides agree on.
#ifndef SAMSYNC_SYNC_PROTOCOL_H_
#define SAMSYNC_SYNC_PROTOCOL_H_

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "samsync/history.h"
#include "samsync/schema/sync.capnp.h"
#include "samsync/status.h"

namespace samsync {

inline constexpr uint32_t kSyncProtocol = 1;
// The largest message either side accepts (ZMQ_MAXMSGSIZE): a batch of commits, or
// one commit of a very large import.
inline constexpr int64_t kMaxSyncMessageBytes = int64_t{64} << 20;
// A batch of commits (push or pull): at most this many, and this many bytes unless a
// single commit is larger.
inline constexpr uint32_t kMaxBatchCommits = 1000;
inline constexpr uint64_t kMaxBatchBytes = uint64_t{4} << 20;

// One message read from untrusted bytes: one flat message, within the size limit,
// with bounded traversal. Holds its words.
template <typename Root>
class SyncMessage {
 public:
  // Fails with kInvalidInput when the bytes are not such a message.
  static Result<SyncMessage> Read(std::span<const uint8_t> bytes);
  typename Root::Reader root() const { return reader_->template getRoot<Root>(); }

 private:
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

// A message's bytes, as sent.
std::vector<uint8_t> MessageBytes(capnp::MessageBuilder& message);

// Version vectors in messages. ReadSeen fails with kInvalidInput on a malformed entry
// (a key that is not 32 bytes, seq 0, a device twice).
void WriteSeen(capnp::List<schema::Seen>::Builder out, const VersionVector& vector);
Result<VersionVector> ReadSeen(capnp::List<schema::Seen>::Reader in);

}  // namespace samsync

#endif  // SAMSYNC_SYNC_PROTOCOL_H_
