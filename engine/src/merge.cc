#include "samsync/merge.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string_view>

#include "samsync/record_fields.h"
#include "samsync/schema/local.capnp.h"

namespace samsync {
namespace {

const PublicKey kNoKey{};

uint64_t SeqIn(const std::vector<std::pair<uint32_t, uint64_t>>& vector, uint32_t device) {
  auto it = std::lower_bound(vector.begin(), vector.end(), std::make_pair(device, uint64_t{0}));
  return it != vector.end() && it->first == device ? it->second : 0;
}

// Pointwise maximum of two sorted vectors.
std::vector<std::pair<uint32_t, uint64_t>> Join(const std::vector<std::pair<uint32_t, uint64_t>>& a,
                                                const std::vector<std::pair<uint32_t, uint64_t>>& b) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].first < a[i].first) {
      out.push_back(b[j++]);
    } else {
      out.emplace_back(a[i].first, std::max(a[i].second, b[j].second));
      ++i, ++j;
    }
  }
  return out;
}

bool SeenBy(const std::vector<std::pair<uint32_t, uint64_t>>& vector, const Dot& dot) {
  return SeqIn(vector, dot.device) >= dot.seq;
}

// The past of a commit as a vector that includes its own device.
std::vector<std::pair<uint32_t, uint64_t>> AsVector(const CausalPast& past) {
  return Join(past.others, {{past.self, past.self_seq}});
}

// Drops from a tombstone's fields the writes its deletes saw.
void PruneSeen(RecordClock& clock) {
  for (auto& frontier : clock.fields) {
    std::erase_if(frontier, [&](const Dot& dot) { return SeenBy(clock.delete_seen, dot); });
  }
}

// The new frontier of one field after write `dot`: the writes it did not see, and it,
// latest first.
void AddWrite(std::vector<Dot>& frontier, const Dot& dot, const CausalPast& past, const DeviceDirectory& devices) {
  std::erase_if(frontier, [&](const Dot& old) { return past.Covers(old); });
  frontier.push_back(dot);
  std::sort(frontier.begin(), frontier.end(), [&](const Dot& a, const Dot& b) { return devices.Later(a, b); });
}

Result<RecordId> OpId(capnp::Data::Reader data) {
  if (data.size() != 16) return Status::Corruption("an op holds a record id that is not 16 bytes");
  RecordId id;
  std::memcpy(id.bytes.data(), data.begin(), 16);
  return id;
}

}  // namespace

void DeviceDirectory::Add(const PublicKey& key, uint32_t number) {
  numbers_[key] = number;
  if (keys_.size() < number) keys_.resize(number);
  keys_[number - 1] = key;
}

uint32_t DeviceDirectory::NumberOf(const PublicKey& key) {
  if (auto found = Find(key)) return *found;
  uint32_t number = static_cast<uint32_t>(keys_.size() + 1);
  Add(key, number);
  return number;
}

std::optional<uint32_t> DeviceDirectory::Find(const PublicKey& key) const {
  auto it = numbers_.find(key);
  if (it == numbers_.end()) return std::nullopt;
  return it->second;
}

const PublicKey& DeviceDirectory::KeyOf(uint32_t number) const {
  return number >= 1 && number <= keys_.size() ? keys_[number - 1] : kNoKey;
}

bool DeviceDirectory::Later(const Dot& a, const Dot& b) const {
  if (a.hlc != b.hlc) return a.hlc > b.hlc;
  if (a.device != b.device) return KeyOf(a.device) > KeyOf(b.device);
  return a.seq > b.seq;
}

bool CausalPast::Covers(const Dot& dot) const {
  if (dot.device == self) return dot.seq <= self_seq;
  return SeqIn(others, dot.device) >= dot.seq;
}

CausalPast CausalPast::Of(const Commit& commit, DeviceDirectory& devices) {
  CausalPast past;
  past.self = devices.NumberOf(commit.author());
  past.self_seq = commit.seq();
  for (const auto& [key, seq] : commit.seen()) past.others.emplace_back(devices.NumberOf(key), seq);
  std::sort(past.others.begin(), past.others.end());
  return past;
}

bool RecordClock::HasConflict() const {
  for (const auto& frontier : fields) {
    if (frontier.size() > (deleted ? 0u : 1u)) return true;
  }
  return false;
}

std::vector<uint16_t> RecordClock::ConflictedFields() const {
  std::vector<uint16_t> out;
  if (deleted) return out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].size() > 1) out.push_back(static_cast<uint16_t>(i));
  }
  return out;
}

std::vector<Dot> RecordClock::LostEdits() const {
  std::vector<Dot> out;
  if (!deleted) return out;
  for (const auto& frontier : fields) out.insert(out.end(), frontier.begin(), frontier.end());
  std::sort(out.begin(), out.end(), [](const Dot& a, const Dot& b) {
    return std::make_pair(a.device, a.seq) < std::make_pair(b.device, b.seq);
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<uint8_t> RecordClock::Encode() const {
  capnp::MallocMessageBuilder message(64);  // a clock is small: not the default 8 KiB first segment
  auto root = message.initRoot<schema::RecordClock>();
  root.setType(static_cast<uint8_t>(type));
  root.setDeleted(deleted);
  std::vector<Dot> dots;
  std::vector<uint16_t> field_dots;
  for (const auto& frontier : fields) {
    field_dots.push_back(static_cast<uint16_t>(frontier.size()));
    for (const Dot& dot : frontier) {
      auto it = std::find(dots.begin(), dots.end(), dot);
      if (it == dots.end()) it = dots.insert(dots.end(), dot);
      field_dots.push_back(static_cast<uint16_t>(it - dots.begin()));
    }
  }
  auto out_dots = root.initDots(static_cast<unsigned>(dots.size()));
  for (unsigned i = 0; i < dots.size(); ++i) {
    out_dots[i].setDevice(dots[i].device);
    out_dots[i].setSeq(dots[i].seq);
    out_dots[i].setHlc(dots[i].hlc);
  }
  auto out_fields = root.initFieldDots(static_cast<unsigned>(field_dots.size()));
  for (unsigned i = 0; i < field_dots.size(); ++i) out_fields.set(i, field_dots[i]);
  if (deleted) {
    auto seen = root.initDeleteSeen(static_cast<unsigned>(delete_seen.size()));
    for (unsigned i = 0; i < delete_seen.size(); ++i) {
      seen[i].setDevice(delete_seen[i].first);
      seen[i].setSeq(delete_seen[i].second);
    }
    auto by = root.initDeletedBy();
    by.setDevice(deleted_by.device);
    by.setSeq(deleted_by.seq);
    by.setHlc(deleted_by.hlc);
  }
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

Result<RecordClock> RecordClock::Decode(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return Status::Corruption("a record clock does not decode");
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  RecordClock clock;
  bool ok = false;
  auto error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = words.size() * 2 + 64;
    capnp::FlatArrayMessageReader reader(words, options);
    auto root = reader.getRoot<schema::RecordClock>();
    if (root.getType() >= kRecordTypeCount) return;
    clock.type = static_cast<RecordType>(root.getType());
    clock.deleted = root.getDeleted();
    std::vector<Dot> dots;
    for (auto dot : root.getDots()) dots.push_back(Dot{dot.getDevice(), dot.getSeq(), dot.getHlc()});
    auto field_dots = root.getFieldDots();
    size_t field_count = FieldsOf(clock.type).size();
    unsigned i = 0;
    while (i < field_dots.size()) {
      if (clock.fields.size() == field_count) return;
      unsigned n = field_dots[i++];
      if (n > field_dots.size() - i) return;
      std::vector<Dot> frontier;
      for (unsigned k = 0; k < n; ++k) {
        uint16_t index = field_dots[i++];
        if (index >= dots.size()) return;
        frontier.push_back(dots[index]);
      }
      clock.fields.push_back(std::move(frontier));
    }
    for (auto seen : root.getDeleteSeen()) clock.delete_seen.emplace_back(seen.getDevice(), seen.getSeq());
    auto by = root.getDeletedBy();
    clock.deleted_by = Dot{by.getDevice(), by.getSeq(), by.getHlc()};
    ok = true;
  });
  if (error != nullptr || !ok) return Status::Corruption("a record clock does not decode");
  return clock;
}

namespace {

// Whether `ordinals` (each below `field_count`) name every field of the type.
bool WritesEveryField(std::span<const uint16_t> ordinals, size_t field_count) {
  if (ordinals.size() < field_count) return false;
  std::vector<bool> named(field_count);
  for (uint16_t ordinal : ordinals) named[ordinal] = true;
  return std::find(named.begin(), named.end(), false) == named.end();
}

}  // namespace

Result<MergedRecord> MergeOp(schema::Op::Reader op, const Record* record, const RecordClock* clock, const Dot& dot,
                             const CausalPast& past, const DeviceDirectory& devices) {
  MergedRecord out;
  if (op.isDelete()) {
    auto del = op.getDelete();
    SAMSYNC_ASSIGN_OR_RETURN(RecordId id, OpId(del.getId()));
    if (del.getType() >= kRecordTypeCount) return Status::Corruption("a delete op names no record type");
    auto type = static_cast<RecordType>(del.getType());
    if ((record != nullptr && record->type() != type) || (clock != nullptr && clock->type != type)) {
      return Status::Corruption("a delete op names record " + id.ToText() + " with the wrong type");
    }
    out.clock = clock != nullptr ? *clock : RecordClock{type, {}, false, {}, {}};
    MergeDelete(out.clock, dot, past, devices);
    return out;
  }
  auto set = op.getSet();
  if (static_cast<unsigned>(set.getBody().which()) >= kRecordTypeCount) {
    return Status::Corruption("a set op holds no valid record");
  }
  SAMSYNC_ASSIGN_OR_RETURN(RecordId id, OpId(set.getId()));
  auto type = static_cast<RecordType>(set.getBody().which());
  if ((record != nullptr && record->type() != type) || (clock != nullptr && clock->type != type)) {
    return Status::Corruption("a set op gives record " + id.ToText() + " another type");
  }
  const auto& fields = FieldsOf(type);
  for (uint16_t ordinal : op.getFields()) {
    if (ordinal >= fields.size()) return Status::Corruption("a set op names a field the record type lacks");
  }
  out.clock = clock != nullptr ? *clock : RecordClock{type, {}, false, {}, {}};
  out.clock.fields.resize(fields.size());
  std::vector<uint16_t> written;
  for (uint16_t ordinal : op.getFields()) written.push_back(ordinal);
  std::vector<uint16_t> won = MergeWrite(out.clock, written, dot, past, devices);
  if (out.clock.deleted) return out;
  Record result = record != nullptr ? record->Clone() : Record(type);
  result.set_id(id);
  if (record == nullptr) {  // a record's district never changes
    auto district = set.getDistrict();
    result.set_district(std::string_view(district.cStr(), district.size()));
  }
  if (record == nullptr && WritesEveryField(won, fields.size())) {
    CopyAllFields(set, result);  // a new record, written whole: one copy of its body
  } else {
    CopyFields(set, result, won);
  }
  out.record = std::move(result);
  return out;
}

std::vector<uint16_t> MergeWrite(RecordClock& clock, std::span<const uint16_t> fields, const Dot& dot,
                                 const CausalPast& past, const DeviceDirectory& devices) {
  std::vector<uint16_t> won;
  // On a tombstone, a write the deletes saw is gone; one they did not see is kept.
  if (clock.deleted && SeenBy(clock.delete_seen, dot)) return won;
  for (uint16_t ordinal : fields) {
    std::vector<Dot>& frontier = clock.fields[ordinal];
    AddWrite(frontier, dot, past, devices);
    // The winner is either the previous one or this write (see merge.h).
    if (frontier.front() == dot) won.push_back(ordinal);
  }
  return won;
}

void MergeDelete(RecordClock& clock, const Dot& dot, const CausalPast& past, const DeviceDirectory& devices) {
  std::vector<std::pair<uint32_t, uint64_t>> seen = AsVector(past);
  clock.delete_seen = clock.deleted ? Join(clock.delete_seen, seen) : seen;
  if (!clock.deleted || devices.Later(dot, clock.deleted_by)) clock.deleted_by = dot;
  clock.deleted = true;
  PruneSeen(clock);
}

void HashConflicts(Sha256Hasher& hasher, RecordType type, const RecordId& id, const RecordClock& clock,
                   const DeviceDirectory& devices) {
  if (!clock.HasConflict()) return;
  uint8_t head[2] = {static_cast<uint8_t>(type), static_cast<uint8_t>(clock.deleted)};
  hasher.Update(head);
  hasher.Update(id.span());
  for (size_t ordinal = 0; ordinal < clock.fields.size(); ++ordinal) {
    const auto& frontier = clock.fields[ordinal];
    if (frontier.size() < (clock.deleted ? 1u : 2u)) continue;
    hasher.UpdateU64(ordinal);
    hasher.UpdateU64(frontier.size());
    for (const Dot& dot : frontier) {  // latest first: an order every replica shares
      hasher.Update(devices.KeyOf(dot.device).span());
      hasher.UpdateU64(dot.seq);
    }
  }
}

Status DerivedState::Apply(const Commit& commit) {
  auto fail = [&commit](const std::string& reason) { return Status::Corruption(commit.Name() + ": " + reason); };
  for (const auto& [key, seq] : commit.seen()) {
    auto held = heads_.find(key);
    if (whole_history_ && (held == heads_.end() || held->second < seq)) {
      return fail("claims to have seen seq " + std::to_string(seq) + " of device " + key.ToHex().substr(0, 16) +
                  ", which does not come before it");
    }
  }
  CausalPast past = CausalPast::Of(commit, devices_);
  Dot dot{past.self, commit.seq(), commit.hlc()};
  for (auto op : commit.reader().getOps()) {
    uint8_t tag = op.isSet() ? static_cast<uint8_t>(op.getSet().getBody().which()) : op.getDelete().getType();
    auto id = OpId(op.isSet() ? op.getSet().getId() : op.getDelete().getId());
    if (!id.ok()) return fail(id.status().message());
    Key key{tag, *id};
    auto record = records_.find(key);
    auto clock = clocks_.find(key);
    auto merged = MergeOp(op, record == records_.end() ? nullptr : &record->second,
                          clock == clocks_.end() ? nullptr : &clock->second, dot, past, devices_);
    if (!merged.ok()) return fail(merged.status().message());
    if (merged->record) {
      records_.insert_or_assign(key, std::move(*merged->record));
    } else if (record != records_.end()) {
      records_.erase(record);
    }
    clocks_.insert_or_assign(key, std::move(merged->clock));
  }
  heads_[commit.author()] = commit.seq();
  return Status::Ok();
}

const Record* DerivedState::Find(RecordType type, const RecordId& id) const {
  auto it = records_.find(Key{static_cast<uint8_t>(type), id});
  return it == records_.end() ? nullptr : &it->second;
}

const RecordClock* DerivedState::FindClock(RecordType type, const RecordId& id) const {
  auto it = clocks_.find(Key{static_cast<uint8_t>(type), id});
  return it == clocks_.end() ? nullptr : &it->second;
}

Hash DerivedState::StateHash() const {
  StateHasher hasher;
  for (const auto& [key, record] : records_) hasher.Add(record);
  for (const auto& [key, clock] : clocks_) hasher.AddConflicts(clock.type, key.second, clock, devices_);
  return hasher.Finish();
}

void StateHasher::Add(const Record& record) { Add(record, record.EncodeCanonical()); }

void StateHasher::Add(const Record& record, std::span<const uint8_t> canonical) {
  Combine(RecordElement(record, canonical), true);
}

void StateHasher::Remove(const Record& record) { Combine(RecordElement(record, record.EncodeCanonical()), false); }

void StateHasher::AddConflicts(RecordType type, const RecordId& id, const RecordClock& clock,
                               const DeviceDirectory& devices) {
  if (auto element = ConflictElement(type, id, clock, devices)) Combine(*element, true);
}

std::optional<Hash> StateHasher::ConflictElement(RecordType type, const RecordId& id, const RecordClock& clock,
                                                 const DeviceDirectory& devices) {
  if (!clock.HasConflict()) return std::nullopt;
  Sha256Hasher hasher;
  const uint8_t kind = 'c';
  hasher.Update({&kind, 1});
  HashConflicts(hasher, type, id, clock, devices);
  return hasher.Finish();
}

void StateHasher::AddElement(const Hash& element) { Combine(element, true); }
void StateHasher::RemoveElement(const Hash& element) { Combine(element, false); }

Hash StateHasher::RecordElement(const Record& record, std::span<const uint8_t> canonical) {
  const uint8_t head[2] = {'r', static_cast<uint8_t>(record.type())};
  Sha256Hasher hasher;
  hasher.Update(head);
  hasher.Update(record.id().span());
  hasher.UpdateU64(canonical.size());
  hasher.Update(canonical);
  return hasher.Finish();
}

void StateHasher::Combine(const Hash& element, bool add) {
  // The element's hash keys ChaCha20 (IETF, nonce zero): its keystream is the element's
  // lanes. A key is used for one stream only, so the zero nonce is safe.
  static_assert(crypto_stream_chacha20_ietf_KEYBYTES == sizeof(element.bytes));
  alignas(64) std::array<uint16_t, kLanes> lanes;
  const std::array<uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce{};
  crypto_stream_chacha20_ietf(reinterpret_cast<uint8_t*>(lanes.data()), kBytes, nonce.data(), element.bytes.data());
  if constexpr (std::endian::native != std::endian::little) {
    for (uint16_t& lane : lanes) lane = static_cast<uint16_t>((lane >> 8) | (lane << 8));
  }
  // Plain loops over whole arrays, so that the compiler adds 16 lanes at a time.
  if (add) {
    for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] + lanes[i]);
  } else {
    for (size_t i = 0; i < kLanes; ++i) lanes_[i] = static_cast<uint16_t>(lanes_[i] - lanes[i]);
  }
}

Hash StateHasher::Finish() const {
  static constexpr std::string_view kDomain = "samsync state lthash16 v1";
  std::vector<uint8_t> bytes = Serialize();
  Sha256Hasher outer;
  outer.Update({reinterpret_cast<const uint8_t*>(kDomain.data()), kDomain.size()});
  outer.Update(bytes);
  return outer.Finish();
}

std::vector<uint8_t> StateHasher::Serialize() const {
  std::vector<uint8_t> out(kBytes);
  for (size_t i = 0; i < kLanes; ++i) {
    out[2 * i] = static_cast<uint8_t>(lanes_[i]);
    out[2 * i + 1] = static_cast<uint8_t>(lanes_[i] >> 8);
  }
  return out;
}

std::optional<StateHasher> StateHasher::Deserialize(std::span<const uint8_t> bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  StateHasher state;
  for (size_t i = 0; i < kLanes; ++i) state.lanes_[i] = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return state;
}

}  // namespace samsync
