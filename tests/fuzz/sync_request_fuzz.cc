// Fuzzes what samsync-server does with a request's bytes before it touches its store
// (server/sync_server.cc, SyncServer::Handle): SyncMessage::Read with the protocol's
// size and traversal limits, then every field of the request read as the server reads
// it (commits decoded, version vectors checked, cosignature lines parsed), inside
// kj::runCatchingExceptions as the server does, since a pointer of the wrong kind
// throws when it is read. Anything else, a crash or sanitizer report, is a bug.
#include <kj/exception.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "samsync/history.h"
#include "samsync/keys.h"
#include "samsync/note.h"
#include "samsync/sync_protocol.h"

namespace samsync {
namespace {

void ReadRequest(schema::SyncRequest::Reader root) {
  switch (root.which()) {
    case schema::SyncRequest::HELLO:
      break;
    case schema::SyncRequest::PUSH:
      for (auto data : root.getPush()) {
        auto commit = Commit::Decode(std::span<const uint8_t>(data.begin(), data.size()));
        if (commit.ok()) {
          (void)commit->SignatureValid();
          (void)commit->Name();
          (void)commit->district();
        }
      }
      break;
    case schema::SyncRequest::PULL:
      (void)ReadSeen(root.getPull().getHave());
      (void)root.getPull().getMaxCommits();
      (void)root.getPull().getMaxBytes();
      break;
    case schema::SyncRequest::CHECKPOINT:
      (void)root.getCheckpoint();
      break;
    case schema::SyncRequest::COSIGN: {
      auto text = root.getCosign().getLine();
      (void)ParseNoteSignatureLine(std::string_view(text.begin(), text.size()));
      break;
    }
    case schema::SyncRequest::PROVE: {
      auto id = root.getProve().getCommit();
      (void)Bytes32::FromBytes(std::span<const uint8_t>(id.begin(), id.size()), "commit id");
      break;
    }
    case schema::SyncRequest::AUDIT: {
      auto page = root.getAudit();
      (void)(page.getFrom() + page.getSize() + page.getMaxCommits() + page.getMaxBytes());
      break;
    }
  }
}

}  // namespace
}  // namespace samsync

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto request = samsync::SyncMessage<samsync::schema::SyncRequest>::Read(std::span<const uint8_t>(data, size));
  if (!request.ok()) return 0;
  auto root = request->root();
  if (root.getProtocol() != samsync::kSyncProtocol) return 0;
  (void)kj::runCatchingExceptions([&] { samsync::ReadRequest(root); });
  return 0;
}
