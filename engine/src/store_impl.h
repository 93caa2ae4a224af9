// Private: the store's tables and how values are sealed in them.
//
// Tables (LMDB named databases) and their keys:
//   meta        "header" → StoreHeader (plain: needed before the key is known)
//               "settings" → sealed StoreSettings
//   records     type tag (1) ‖ record id (16) → sealed Record
//   by_date     type tag (1) ‖ principal date yyyymmdd, big-endian (4) ‖ id (16) → empty
//   by_school   school id (16) ‖ type tag (1) ‖ record id (16) → empty
//   persons     BLAKE2b-128(person-index key, child ref) (16) → sealed Person
//   person_log  time-ordered id (16) → sealed PersonAccess
// A sealed value's associated data is "samsync/1/" ‖ table ‖ 0x00 ‖ key.
#ifndef SAMSYNC_ENGINE_STORE_IMPL_H_
#define SAMSYNC_ENGINE_STORE_IMPL_H_

#include <array>
#include <string>
#include <vector>

#include "crypto.h"
#include "lmdb_env.h"
#include "samsync/store.h"

namespace samsync {

inline constexpr uint32_t kStoreFormatVersion = 1;
inline constexpr char kStoreMagic[] = "samsync-store";

struct Tables {
  MDB_dbi meta = 0, records = 0, by_date = 0, by_school = 0, persons = 0, person_log = 0;
};

class Store::Impl {
 public:
  Impl(lmdb::Env env, Tables tables, SecretBytes data_key, const Clock& clock);

  // Seals / opens a value of `table` stored under `key`.
  void Seal(std::string_view table, lmdb::Bytes key, lmdb::Bytes plain, std::vector<uint8_t>& out) const;
  Result<crypto::PlainBytes> Open(std::string_view table, lmdb::Bytes key, lmdb::Bytes sealed) const;

  Result<std::optional<Record>> ReadRecord(const lmdb::Txn& txn, RecordType type, const RecordId& id) const;
  Result<std::optional<Record>> FindRecord(const lmdb::Txn& txn, const RecordId& id) const;
  Status WriteRecord(lmdb::Txn& txn, const Record& record);
  Status RemoveRecord(lmdb::Txn& txn, const Record& record);
  Status CheckReferences(const lmdb::Txn& txn, const Record& record) const;
  Result<bool> IsReferenced(const lmdb::Txn& txn, const RecordId& school) const;
  bool HasPerson(const lmdb::Txn& txn, const ChildRef& ref) const;
  Status LogPersonAccess(lmdb::Txn& txn, int action, const ChildRef& ref);

  std::array<uint8_t, 16> PersonKey(const ChildRef& ref) const;

  lmdb::Env env;
  Tables tables;
  SecretBytes data_key;
  SecretBytes person_index_key;  // keys the persons table's key hash
  SecretBytes pseudonym_key;     // the city's: derives child references
  std::string district;
  const Clock& clock;
  RecordIdGenerator ids;
  bool read_only = false;
};

}  // namespace samsync

#endif  // SAMSYNC_ENGINE_STORE_IMPL_H_
