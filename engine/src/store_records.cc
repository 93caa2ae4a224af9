// Records and persons in a store: reads, the write path with its indexes, the
// identity table and its access log.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "samsync/record_fields.h"
#include "samsync/schema/local.capnp.h"
#include "store_impl.h"

namespace samsync {
namespace {

// A commit that failed on an I/O error, named for what it usually is when the disk
// holding the store has no room left: LMDB reports a page write cut short as EIO, or
// ENOSPC. The transaction was aborted: nothing was written.
Status NameFullDisk(Status failed, const std::string& dir) {
  if (failed.code() != Code::kIoError) return failed;
  struct statvfs disk {};
  if (::statvfs(dir.c_str(), &disk) != 0) return failed;
  uint64_t free_bytes = static_cast<uint64_t>(disk.f_bavail) * disk.f_frsize;
  if (free_bytes >= (uint64_t{1} << 20)) return failed;
  return Status::Io("the disk holding the store is full (" + std::to_string(free_bytes / 1024) +
                    " KiB free): nothing was written; free some space and try again (" + failed.message() + ")");
}

using Key17 = std::array<uint8_t, 17>;
using Key21 = std::array<uint8_t, 21>;
using Key33 = std::array<uint8_t, 33>;

uint8_t Tag(RecordType type) { return static_cast<uint8_t>(type); }

Key21 DateKey(RecordType type, Date date, const RecordId& id) {
  Key21 key{};
  key[0] = Tag(type);
  uint32_t n = date.number();
  for (int i = 0; i < 4; ++i) key[1 + i] = static_cast<uint8_t>(n >> (8 * (3 - i)));
  std::memcpy(key.data() + 5, id.bytes.data(), 16);
  return key;
}

Key33 SchoolKey(const RecordId& school, RecordType type, const RecordId& id) {
  Key33 key{};
  std::memcpy(key.data(), school.bytes.data(), 16);
  key[16] = Tag(type);
  std::memcpy(key.data() + 17, id.bytes.data(), 16);
  return key;
}

RecordId IdAt(lmdb::Bytes key, size_t offset) {
  RecordId id;
  std::memcpy(id.bytes.data(), key.data() + offset, 16);
  return id;
}

bool HasPrefix(lmdb::Bytes key, lmdb::Bytes prefix) {
  return key.size() >= prefix.size() && std::memcmp(key.data(), prefix.data(), prefix.size()) == 0;
}

// What an error about one operation starts with: its label, or its position when the
// batch has several and no label was given.
std::string Label(const WriteBatch::Op& op, size_t index, size_t count) {
  if (!op.label.empty() || count == 1) return op.label;
  return "operation " + std::to_string(index + 1);
}

bool Matches(const Record& record, const ListFilter& filter) {
  if (filter.from || filter.to) {
    Date date = IndexDateOf(record);
    if (filter.from && (date.empty() || date < *filter.from)) return false;
    if (filter.to && (date.empty() || date > *filter.to)) return false;
  }
  if (filter.school) {
    auto schools = ReferencedIds(record, RecordType::kSchool);
    if (!std::binary_search(schools.begin(), schools.end(), *filter.school)) {
      return false;
    }
  }
  if (filter.child) {
    auto children = ChildRefsOf(record);
    if (std::find(children.begin(), children.end(), *filter.child) == children.end()) return false;
  }
  return true;
}

}  // namespace

Key17 RecordKey(RecordType type, const RecordId& id) {
  Key17 key{};
  key[0] = Tag(type);
  std::memcpy(key.data() + 1, id.bytes.data(), 16);
  return key;
}

Result<std::optional<Record>> Store::Impl::ReadRecord(const lmdb::Txn& txn, RecordType type,
                                                      const RecordId& id) const {
  Key17 key = RecordKey(type, id);
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(tables.records, key));
  if (!sealed) return std::optional<Record>();
  return DecodeRecord(type, id, key, *sealed);
}

Result<std::optional<Record>> Store::Impl::DecodeRecord(RecordType type, const RecordId& id, lmdb::Bytes key,
                                                        lmdb::Bytes sealed) const {
  auto what = [&] { return std::string(RecordTypeName(type)) + " " + id.ToText(); };
  auto plain = Open("records", key, sealed);
  if (!plain.ok()) {
    return Status::Corruption(what() + " fails authentication: its stored bytes were altered or moved");
  }
  auto record = Record::Decode(plain->span());
  if (!record.ok()) return record.status().WithContext(what());
  if (record->type() != type || record->id() != id) {
    return Status::Corruption(what() + " holds another record");
  }
  return std::optional<Record>(std::move(record).value());
}

Result<std::optional<Record>> Store::Impl::FindRecord(const lmdb::Txn& txn, const RecordId& id) const {
  for (RecordType type : AllRecordTypes()) {
    SAMSYNC_ASSIGN_OR_RETURN(auto record, ReadRecord(txn, type, id));
    if (record) return record;
  }
  return std::optional<Record>();
}

Result<bool> Store::Impl::InHistory(const lmdb::Txn& txn, const RecordId& id) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, tables.record_log));
  SAMSYNC_ASSIGN_OR_RETURN(bool found, cursor.Seek(id.span()));
  return found && cursor.key().size() >= id.bytes.size() &&
         std::memcmp(cursor.key().data(), id.bytes.data(), id.bytes.size()) == 0;
}

Status Store::Impl::WriteRecord(lmdb::Txn& txn, const Record& record, const Record* replaced) {
  SAMSYNC_ASSIGN_OR_RETURN(StateHasher * state, StateIn(txn));
  if (replaced != nullptr) state->Remove(*replaced);
  RecordType type = record.type();
  RecordId id = record.id();
  Key17 key = RecordKey(type, id);
  std::vector<uint8_t> plain = record.Encode();
  state->Add(record, Record::Canonical(plain));
  std::vector<uint8_t> sealed;
  Seal("records", key, plain, sealed);
  WipeMemory(plain.data(), plain.size());
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.records, key, sealed));
  // Only the index entries that change are written: an update that keeps the date and
  // the schools leaves both indexes' pages as they were.
  Date date = IndexDateOf(record);
  Date replaced_date = replaced != nullptr ? IndexDateOf(*replaced) : Date();
  if (date != replaced_date) {
    if (!replaced_date.empty()) SAMSYNC_RETURN_IF_ERROR(txn.Delete(tables.by_date, DateKey(type, replaced_date, id)));
    if (!date.empty()) SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.by_date, DateKey(type, date, id), {}));
  }
  std::vector<RecordId> schools = ReferencedIds(record, RecordType::kSchool);
  std::vector<RecordId> replaced_schools;
  if (replaced != nullptr) replaced_schools = ReferencedIds(*replaced, RecordType::kSchool);
  auto names = [](const std::vector<RecordId>& listed, const RecordId& school) {
    return std::find(listed.begin(), listed.end(), school) != listed.end();
  };
  for (const RecordId& school : replaced_schools) {
    if (names(schools, school)) continue;
    SAMSYNC_RETURN_IF_ERROR(txn.Delete(tables.by_school, SchoolKey(school, type, id)));
  }
  for (const RecordId& school : schools) {
    if (names(replaced_schools, school)) continue;
    SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.by_school, SchoolKey(school, type, id), {}));
  }
  return Status::Ok();
}

Status Store::Impl::RemoveRecord(lmdb::Txn& txn, const Record& record) {
  SAMSYNC_ASSIGN_OR_RETURN(StateHasher * state, StateIn(txn));
  state->Remove(record);
  RecordType type = record.type();
  RecordId id = record.id();
  Date date = IndexDateOf(record);
  if (!date.empty()) SAMSYNC_RETURN_IF_ERROR(txn.Delete(tables.by_date, DateKey(type, date, id)));
  for (const RecordId& school : ReferencedIds(record, RecordType::kSchool)) {
    SAMSYNC_RETURN_IF_ERROR(txn.Delete(tables.by_school, SchoolKey(school, type, id)));
  }
  return txn.Delete(tables.records, RecordKey(type, id));
}

Status Store::Impl::CheckReferences(const lmdb::Txn& txn, const Record& record, std::span<const uint16_t> fields,
                                    HeldReferences& held) const {
  const auto& all = FieldsOf(record.type());
  for (uint16_t ordinal : fields) {
    const FieldInfo& field = all[ordinal];
    if (field.refers_to) {
      for (const RecordId& id : IdsIn(record, field)) {
        RecordKeyBytes key = RecordKey(*field.refers_to, id);
        if (held.records.contains(key)) continue;
        SAMSYNC_ASSIGN_OR_RETURN(auto found, txn.Get(tables.records, key));
        if (!found) {
          return Status::Invalid(field.name + ": no " + std::string(RecordTypeName(*field.refers_to)) + " " +
                                 id.ToText() + " in this store");
        }
        held.records.insert(key);
      }
    } else if (field.kind == FieldKind::kChildRef) {
      for (const ChildRef& ref : IdsIn(record, field)) {
        if (held.children.contains(ref)) continue;
        if (!HasPerson(txn, ref)) {
          return Status::Invalid(field.name + ": no child " + ref.ToText() +
                                 " in this store's identity table (add the child with: samsync person add)");
        }
        held.children.insert(ref);
      }
    }
  }
  return Status::Ok();
}

Result<bool> Store::Impl::IsReferenced(const lmdb::Txn& txn, const RecordId& school) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, tables.by_school));
  SAMSYNC_ASSIGN_OR_RETURN(bool found, cursor.Seek(school.span()));
  return found && HasPrefix(cursor.key(), school.span());
}

std::array<uint8_t, 16> Store::Impl::PersonKey(const ChildRef& ref) const {
  std::array<uint8_t, 16> key{};
  crypto_generichash(key.data(), key.size(), ref.bytes.data(), ref.bytes.size(), person_index_key.data(),
                     person_index_key.size());
  return key;
}

bool Store::Impl::HasPerson(const lmdb::Txn& txn, const ChildRef& ref) const {
  auto found = txn.Get(tables.persons, PersonKey(ref));
  return found.ok() && found->has_value();
}

Status Store::Impl::LogPersonAccess(lmdb::Txn& txn, int action, const ChildRef& ref) {
  capnp::MallocMessageBuilder message;
  auto entry = message.initRoot<schema::PersonAccess>();
  entry.setTimeMs(clock.NowMs());
  entry.setAction(static_cast<schema::PersonAccess::Action>(action));
  entry.setChildRef(capnp::Data::Reader(ref.bytes.data(), ref.bytes.size()));
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  RecordId key = ids.Next(clock);
  std::vector<uint8_t> sealed;
  Seal("person_log", key.span(), words.asBytes(), sealed);
  return txn.Put(tables.person_log, key.span(), sealed, MDB_APPEND);
}

void WriteBatch::Put(Record record, std::string label) {
  ops_.push_back(Op{std::move(record), RecordId(), std::move(label), std::nullopt});
}

void WriteBatch::Delete(const RecordId& id, std::string label) {
  ops_.push_back(Op{std::nullopt, id, std::move(label), std::nullopt});
}

void WriteBatch::Settle(Record record, uint16_t field, std::string label) {
  ops_.push_back(Op{std::move(record), RecordId(), std::move(label), field});
}

Result<Record> Store::Get(const RecordId& id) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(auto record, impl_->FindRecord(txn, id));
  if (!record) return Status::NotFound("no record " + id.ToText());
  return std::move(*record);
}

Status Store::List(RecordType type, const ListFilter& filter,
                   const std::function<bool(const Record&)>& visit) const {
  return ListInto(type, filter, [&](Record& record) { return visit(record); });
}

Status Store::ListInto(RecordType type, const ListFilter& filter, const std::function<bool(Record&)>& visit) const {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  // Choose the narrowest index, then check the rest of the filter on each record.
  MDB_dbi table = impl_->tables.records;
  std::vector<uint8_t> start, prefix;
  size_t id_offset = 1;
  if (filter.school) {
    table = impl_->tables.by_school;
    prefix.assign(filter.school->bytes.begin(), filter.school->bytes.end());
    prefix.push_back(Tag(type));
    start = prefix;
    id_offset = 17;
  } else if (filter.from || filter.to) {
    table = impl_->tables.by_date;
    prefix = {Tag(type)};
    Key21 from = DateKey(type, filter.from.value_or(Date()), RecordId());
    start.assign(from.begin(), from.begin() + 5);
    id_offset = 5;
  } else {
    prefix = {Tag(type)};
    start = prefix;
  }
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, table));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek(start));
  for (; more; ) {
    lmdb::Bytes key = cursor.key();
    if (!HasPrefix(key, prefix) || key.size() != id_offset + 16) break;
    if (table == impl_->tables.by_date && filter.to) {
      uint32_t date = 0;
      for (int i = 0; i < 4; ++i) date = (date << 8) | key[1 + i];
      if (date > filter.to->number()) break;
    }
    RecordId id = IdAt(key, id_offset);
    // Scanning the records table itself, the cursor holds the value already.
    auto record = table == impl_->tables.records ? impl_->DecodeRecord(type, id, key, cursor.value())
                                                 : impl_->ReadRecord(txn, type, id);
    if (!record.ok()) return record.status();
    if (!*record) return Status::Corruption("index entry for missing " + std::string(RecordTypeName(type)) + " " + id.ToText());
    if (Matches(**record, filter) && !visit(**record)) break;
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  return Status::Ok();
}

Result<std::vector<Record>> Store::ListAll(RecordType type, const ListFilter& filter) const {
  std::vector<Record> out;
  SAMSYNC_RETURN_IF_ERROR(ListInto(type, filter, [&](Record& r) {
    out.push_back(std::move(r));
    return true;
  }));
  return out;
}

Result<ApplyResult> Store::Apply(const WriteBatch& batch) {
  if (impl_->read_only) return ReadOnlyRefusal();
  if (impl_->city_wide) return Status::Invalid("the city's store takes commits from the districts; it writes none");
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  ApplyResult result;
  result.ids.reserve(batch.size());

  // The commit this batch becomes: the next in this device's chain, later than every
  // commit held, having seen all of them (so each write replaces what it saw).
  DeviceDirectory devices;
  VersionVector heads;
  SAMSYNC_RETURN_IF_ERROR(impl_->ReadDevices(txn, devices, heads));
  const PublicKey& self = impl_->device_key->public_key();
  SAMSYNC_ASSIGN_OR_RETURN(auto head, impl_->ReadHead(txn, self));
  if (!head) {
    SAMSYNC_ASSIGN_OR_RETURN(uint32_t number, impl_->NextDeviceNumber(txn));
    head = DeviceHead{number, 0, Hash(), 0};
    devices.Add(self, number);
  }
  SAMSYNC_ASSIGN_OR_RETURN(uint64_t last_hlc, impl_->ReadHlc(txn));
  CommitBuilder::Header header;
  header.district = impl_->district;
  header.seq = head->seq + 1;
  header.parent = head->last_id;
  header.hlc = Hlc::Next(std::max(last_hlc, head->last_hlc), impl_->clock.NowMs());
  header.note = batch.note();
  heads.erase(self);
  header.seen = heads;
  CausalPast past;
  past.self = head->number;
  past.self_seq = header.seq;
  for (const auto& [device, seq] : heads) past.others.emplace_back(*devices.Find(device), seq);
  std::sort(past.others.begin(), past.others.end());
  const Dot dot{head->number, header.seq, header.hlc};

  CommitBuilder commit;
  Impl::HeldReferences held;
  std::set<RecordId> written;  // ids this batch has changed: not yet in the history
  for (size_t i = 0; i < batch.ops().size(); ++i) {
    const WriteBatch::Op& op = batch.ops()[i];
    std::string label = Label(op, i, batch.size());
    if (!op.put) {
      held = {};  // what a later op names may be what this one deletes
      SAMSYNC_ASSIGN_OR_RETURN(auto existing, impl_->FindRecord(txn, op.delete_id));
      if (!existing) {
        // A tombstone whose delete discarded concurrent edits is deleted again.
        SAMSYNC_ASSIGN_OR_RETURN(auto tombstone, impl_->FindClock(txn, op.delete_id));
        if (!tombstone || !tombstone->HasConflict()) {
          std::string why = tombstone ? " (it was deleted)" : "";
          return Status::NotFound("no record " + op.delete_id.ToText() + why).WithContext(label);
        }
        MergeDelete(*tombstone, dot, past, devices);
        SAMSYNC_RETURN_IF_ERROR(impl_->WriteClock(txn, op.delete_id, *tombstone, devices).WithContext(label));
        commit.AddDelete(tombstone->type, op.delete_id);
        result.ids.push_back(op.delete_id);
        written.insert(op.delete_id);
        continue;
      }
      if (existing->type() == RecordType::kSchool) {
        SAMSYNC_ASSIGN_OR_RETURN(bool referenced, impl_->IsReferenced(txn, op.delete_id));
        if (referenced) {
          return Status::Invalid("school " + op.delete_id.ToText() +
                                 " is referred to by other records; delete or change those first")
              .WithContext(label);
        }
      }
      SAMSYNC_RETURN_IF_ERROR(impl_->RemoveRecord(txn, *existing).WithContext(label));
      SAMSYNC_ASSIGN_OR_RETURN(auto clock, impl_->ReadClock(txn, existing->type(), op.delete_id));
      if (!clock) clock = RecordClock{existing->type(), {}, false, {}, {}};
      MergeDelete(*clock, dot, past, devices);
      SAMSYNC_RETURN_IF_ERROR(impl_->WriteClock(txn, op.delete_id, *clock, devices).WithContext(label));
      commit.AddDelete(existing->type(), op.delete_id);
      result.ids.push_back(op.delete_id);
      written.insert(op.delete_id);
      continue;
    }
    const Record& given = *op.put;
    RecordId id = given.id();
    std::optional<Record> existing;
    if (id.IsZero()) {
      if (op.settle_field) return Status::Invalid("a conflict can only be settled on an existing record").WithContext(label);
      id = impl_->ids.Next(impl_->clock);
    } else {
      // A new id (none in the history, none written before in this batch) needs no
      // lookup of each type's record and tombstone.
      bool seen = written.contains(id);
      if (!seen) {
        SAMSYNC_ASSIGN_OR_RETURN(seen, impl_->InHistory(txn, id));
      }
      if (seen) {  // most likely as the type the op gives, so that is looked up first
        SAMSYNC_ASSIGN_OR_RETURN(existing, impl_->ReadRecord(txn, given.type(), id));
      }
      if (seen && !existing) {
        SAMSYNC_ASSIGN_OR_RETURN(existing, impl_->FindRecord(txn, id));
      }
      if (existing && existing->type() != given.type()) {
        return Status::Invalid("record " + id.ToText() + " is a " + std::string(RecordTypeName(existing->type())) +
                               ", not a " + std::string(RecordTypeName(given.type())))
            .WithContext(label);
      }
      if (!existing && seen) {
        SAMSYNC_ASSIGN_OR_RETURN(auto tombstone, impl_->FindClock(txn, id));
        if (tombstone) {
          return Status::Invalid("record " + id.ToText() + " was deleted; add it anew to bring it back")
              .WithContext(label);
        }
      }
      if (!existing && op.settle_field) return Status::NotFound("no record " + id.ToText()).WithContext(label);
    }
    result.ids.push_back(id);
    written.insert(id);
    std::vector<uint16_t> changed = ChangedFields(existing ? &*existing : nullptr, given);
    if (op.settle_field && !std::binary_search(changed.begin(), changed.end(), *op.settle_field)) {
      changed.insert(std::lower_bound(changed.begin(), changed.end(), *op.settle_field), *op.settle_field);
    }
    if (changed.empty()) continue;  // the same as stored: nothing to record
    // What is stored is what merging the op gives: this write has seen every value
    // held, so it wins every field it writes (merge.h); the other fields stay.
    Record record = existing ? existing->Clone() : Record(given.type());
    record.set_id(id);
    record.set_district(impl_->district);
    if (existing) {
      CopyFields(given, record, changed);
    } else {
      CopyAllFields(given.reader(), record);  // a new record's write changes every field
    }
    SAMSYNC_RETURN_IF_ERROR(ValidateRecord(record).WithContext(label));
    // Only what this action writes: a record made on another machine may name a child
    // this machine's identity table lacks, or a school deleted there meanwhile.
    SAMSYNC_RETURN_IF_ERROR(impl_->CheckReferences(txn, record, changed, held).WithContext(label));
    SAMSYNC_RETURN_IF_ERROR(impl_->WriteRecord(txn, record, existing ? &*existing : nullptr).WithContext(label));
    std::optional<RecordClock> clock;
    if (existing) {
      SAMSYNC_ASSIGN_OR_RETURN(clock, impl_->ReadClock(txn, record.type(), record.id()));
    }
    if (!clock) clock = RecordClock{record.type(), {}, false, {}, {}};
    clock->fields.resize(FieldsOf(record.type()).size());
    MergeWrite(*clock, changed, dot, past, devices);
    SAMSYNC_RETURN_IF_ERROR(impl_->WriteClock(txn, record.id(), *clock, devices).WithContext(label));
    commit.AddSet(std::move(record), std::move(changed));
  }
  if (commit.op_count() == 0) return result;  // nothing changed; the transaction aborts

  // One action, one commit, in the same transaction as the state it made.
  Commit signed_commit = commit.Sign(*impl_->device_key, header);
  SAMSYNC_RETURN_IF_ERROR(impl_->WriteCommit(txn, signed_commit, head->number));
  SAMSYNC_RETURN_IF_ERROR(impl_->WriteHlc(txn, header.hlc));
  SAMSYNC_RETURN_IF_ERROR(NameFullDisk(txn.Commit(), impl_->dir));
  result.commit_id = signed_commit.id();
  return result;
}

namespace {

// Checks a person and builds its sealed-ready entry; the personnummer is not kept in
// any error message.
Result<std::pair<ChildRef, kj::Array<capnp::word>>> PersonEntry(const SecretBytes& pseudonym_key,
                                                               std::string_view personnummer, std::string_view name) {
  SAMSYNC_ASSIGN_OR_RETURN(std::string digits, NormalisePersonnummer(personnummer));
  std::string_view trimmed = name;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  if (trimmed.empty()) return Status::Invalid("name: is required");
  if (trimmed.size() > 200) return Status::Invalid("name: is longer than 200 characters");
  ChildRef ref = DeriveChildRef(pseudonym_key, digits);
  std::string display = digits.substr(0, 8) + "-" + digits.substr(8);
  WipeMemory(digits.data(), digits.size());

  capnp::MallocMessageBuilder message;
  auto person = message.initRoot<schema::Person>();
  person.setChildRef(capnp::Data::Reader(ref.bytes.data(), ref.bytes.size()));
  person.setPersonnummer(display);
  WipeMemory(display.data(), display.size());
  std::string terminated(trimmed);  // Text::Reader needs a NUL after the text
  person.setName(capnp::Text::Reader(terminated.data(), terminated.size()));
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  for (auto segment : message.getSegmentsForOutput()) {
    WipeMemory(const_cast<capnp::word*>(segment.begin()), segment.size() * sizeof(capnp::word));
  }
  return std::make_pair(ref, std::move(words));
}

}  // namespace

Result<ChildRef> Store::AddPerson(std::string_view personnummer, std::string_view name) {
  SAMSYNC_ASSIGN_OR_RETURN(auto refs, AddPersons({{std::string(personnummer), std::string(name)}}));
  return refs.at(0);
}

Result<std::vector<ChildRef>> Store::AddPersons(const std::vector<std::pair<std::string, std::string>>& persons) {
  if (impl_->read_only) return ReadOnlyRefusal();
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, false));
  std::vector<ChildRef> refs;
  refs.reserve(persons.size());
  std::vector<uint8_t> sealed;
  for (size_t i = 0; i < persons.size(); ++i) {
    auto entry = PersonEntry(impl_->pseudonym_key, persons[i].first, persons[i].second);
    if (!entry.ok()) {
      return persons.size() == 1 ? entry.status() : entry.status().WithContext("person " + std::to_string(i + 1));
    }
    auto& [ref, words] = *entry;
    auto key = impl_->PersonKey(ref);
    sealed.clear();
    impl_->Seal("persons", key, words.asBytes(), sealed);
    WipeMemory(words.begin(), words.size() * sizeof(capnp::word));
    SAMSYNC_RETURN_IF_ERROR(txn.Put(impl_->tables.persons, key, sealed));
    SAMSYNC_RETURN_IF_ERROR(impl_->LogPersonAccess(txn, static_cast<int>(schema::PersonAccess::Action::ADDED), ref));
    refs.push_back(ref);
  }
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  return refs;
}

Result<Person> Store::LookupPerson(const ChildRef& ref) {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, impl_->read_only));
  auto key = impl_->PersonKey(ref);
  SAMSYNC_ASSIGN_OR_RETURN(auto sealed, txn.Get(impl_->tables.persons, key));
  if (!sealed) return Status::NotFound("no child " + ref.ToText() + " in this store's identity table");
  auto plain = impl_->Open("persons", key, *sealed);
  if (!plain.ok()) return Status::Corruption("identity entry " + ref.ToText() + " fails authentication");
  Person person;
  Status decoded = Status::Corruption("identity entry " + ref.ToText() + " does not decode");
  auto words = kj::heapArray<capnp::word>(plain->span().size() / sizeof(capnp::word));
  if (!words.asBytes().size() || plain->span().size() % sizeof(capnp::word) != 0) return decoded;
  std::memcpy(words.begin(), plain->span().data(), plain->span().size());
  auto error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(words);
    auto p = reader.getRoot<schema::Person>();
    person.child_ref = ref;
    person.personnummer = p.getPersonnummer().cStr();
    person.name = p.getName().cStr();
  });
  WipeMemory(words.begin(), words.size() * sizeof(capnp::word));
  if (error != nullptr) return decoded;
  if (!impl_->read_only) {
    SAMSYNC_RETURN_IF_ERROR(
        impl_->LogPersonAccess(txn, static_cast<int>(schema::PersonAccess::Action::LOOKED_UP), ref));
    SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  }
  return person;
}

bool Store::HasPerson(const ChildRef& ref) const {
  auto txn = lmdb::Txn::Begin(impl_->env, true);
  return txn.ok() && impl_->HasPerson(*txn, ref);
}

Result<StoreStats> Store::Stats() const {
  StoreStats stats;
  stats.district = impl_->district;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Cursor cursor, lmdb::Cursor::Open(txn, impl_->tables.records));
  SAMSYNC_ASSIGN_OR_RETURN(bool more, cursor.Seek({}));
  while (more) {
    if (!cursor.key().empty() && cursor.key()[0] < kRecordTypeCount) ++stats.records_by_type[cursor.key()[0]];
    SAMSYNC_ASSIGN_OR_RETURN(more, cursor.Next());
  }
  MDB_stat st{};
  if (mdb_stat(txn.get(), impl_->tables.persons, &st) == 0) stats.persons = st.ms_entries;
  const char* path = nullptr;
  if (mdb_env_get_path(impl_->env.get(), &path) == 0 && path != nullptr) {
    std::error_code ec;
    auto size = std::filesystem::file_size(std::filesystem::path(path) / "data.mdb", ec);
    if (!ec) stats.file_bytes = size;
  }
  return stats;
}

}  // namespace samsync
