// The sync server's record of each district's last successful sync session, in the
// city-wide store's meta table:
//   meta  "synced/" ‖ district name (UTF-8) → sealed time in ms since the epoch (8, big-endian)
// It is server bookkeeping, not replicated state: no commit carries it, the state hash
// and Verify do not look at it.

#include "store_impl.h"

namespace samsync {
namespace {

constexpr std::string_view kSyncedPrefix = "synced/";
constexpr size_t kMaxDistrictBytes = 200;

std::string SyncedKey(const std::string& district) { return std::string(kSyncedPrefix) + district; }

}  // namespace

Status Store::RecordDistrictSync(const std::string& district, int64_t time_ms) {
  if (!impl_->city_wide) return Status::Invalid("only the city-wide store records when districts synced");
  if (impl_->read_only) return Status::Invalid("the store was opened read-only");
  if (district.empty() || district.size() > kMaxDistrictBytes) {
    return Status::Invalid("a district name of 1 to " + std::to_string(kMaxDistrictBytes) + " bytes is needed");
  }
  if (time_ms < 0) return Status::Invalid("a sync time before 1970");
  std::string key = SyncedKey(district);
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto stored, txn.Get(impl_->tables.meta, AsBytes(key)));
  if (stored) {
    auto plain = impl_->Open("meta", AsBytes(key), *stored);
    if (!plain.ok() || plain->span().size() != 8) {
      return Status::Corruption("the last sync time of " + district + " fails authentication");
    }
    if (static_cast<int64_t>(GetU64(plain->span().data())) >= time_ms) return Status::Ok();
  }
  uint8_t plain[8];
  PutU64(plain, static_cast<uint64_t>(time_ms));
  std::vector<uint8_t> sealed;
  impl_->Seal("meta", AsBytes(key), plain, sealed);
  SAMSYNC_RETURN_IF_ERROR(txn.Put(impl_->tables.meta, AsBytes(key), sealed));
  return txn.Commit();
}

Result<std::map<std::string, int64_t>> Store::DistrictSyncTimes() const {
  std::map<std::string, int64_t> out;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.meta));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek(AsBytes(kSyncedPrefix)));
  while (more) {
    lmdb::Bytes key = cursor.key();
    std::string_view name(reinterpret_cast<const char*>(key.data()), key.size());
    if (!name.starts_with(kSyncedPrefix)) break;
    auto plain = impl_->Open("meta", key, cursor.value());
    std::string district(name.substr(kSyncedPrefix.size()));
    if (!plain.ok() || plain->span().size() != 8) {
      return Status::Corruption("the last sync time of " + district + " fails authentication");
    }
    out[district] = static_cast<int64_t>(GetU64(plain->span().data()));
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return out;
}

}  // namespace samsync
