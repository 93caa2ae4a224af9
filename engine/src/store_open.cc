// Creating and opening a store: the header, the key hierarchy, the settings.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "samsync/districts.h"
#include "samsync/schema/local.capnp.h"
#include "store_impl.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kMaxTables = kStoreMaxTables;
constexpr std::string_view kWrongKeyMessage = "wrong passphrase, or not a samsync store";
constexpr uint64_t kPersonIndexPurpose = 1;


// The associated data that binds the wrapped data key to its purpose.
constexpr std::string_view kDataKeyAd = "samsync/1/data-key";

std::vector<uint8_t> ToBytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

// Runs `fn` on the root of a flat message held in `bytes`; fails with `on_error` if the
// bytes do not decode.
template <typename T, typename Fn>
Status ReadMessage(lmdb::Bytes bytes, Status on_error, Fn&& fn) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) return on_error;
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  Status status;
  auto error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1 << 16;
    capnp::FlatArrayMessageReader reader(words, options);
    status = fn(reader.getRoot<T>());
  });
  WipeMemory(words.begin(), words.size() * sizeof(capnp::word));
  if (error != nullptr) return on_error;
  return status;
}

}  // namespace

Result<SecretBytes> ReadKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("cannot read key file " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Invalid("key file " + path + " can be read by others; run: chmod 600 " + path);
  }
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  SecretBytes key(crypto::kKeyBytes);
  size_t written = 0;
  bool ok = text.size() == 2 * crypto::kKeyBytes &&
            sodium_hex2bin(key.data(), key.size(), text.data(), text.size(), nullptr, &written, nullptr) == 0 &&
            written == crypto::kKeyBytes;
  WipeMemory(text.data(), text.size());
  if (!ok) return Status::Invalid("key file " + path + " must hold 64 hexadecimal characters");
  return key;
}

namespace {

// The key-encryption key for a header.
// Wipes every segment of a message that held secrets.
void WipeMessage(capnp::MallocMessageBuilder& message) {
  for (auto segment : message.getSegmentsForOutput()) {
    WipeMemory(const_cast<capnp::word*>(segment.begin()), segment.size() * sizeof(capnp::word));
  }
}

Result<SecretBytes> DeriveKek(const KeySource& key, schema::StoreHeader::Reader header) {
  bool wants_file = header.getKeySource() == schema::StoreHeader::KeySource::KEY_FILE;
  if (wants_file != (key.kind == KeySource::Kind::kKeyFile)) {
    return Status::WrongKey(std::string(kWrongKeyMessage) + " (this store is opened with " +
                            (wants_file ? "a key file" : "a passphrase") + ")");
  }
  if (wants_file) return ReadKeyFile(key.key_file);
  auto salt = header.getSalt();
  return crypto::DeriveFromPassphrase(key.passphrase, {salt.begin(), salt.size()}, header.getOpsLimit(),
                                      header.getMemLimit());
}

}  // namespace

Result<Tables> OpenStoreTables(const lmdb::Txn& txn, bool create) {
  Tables t;
  unsigned flags = create ? MDB_CREATE : 0u;
  struct {
    const char* name;
    MDB_dbi* dbi;
  } all[] = {{"meta", &t.meta},           {"records", &t.records},   {"by_date", &t.by_date},
             {"by_school", &t.by_school}, {"persons", &t.persons}, {"person_log", &t.person_log},
             {"commits", &t.commits},     {"heads", &t.heads},       {"commit_ids", &t.commit_ids},
             {"record_log", &t.record_log}, {"clocks", &t.clocks},     {"conflicts", &t.conflicts},
             {"pending", &t.pending},     {"log", &t.log}};
  for (auto& table : all) {
    int rc = mdb_dbi_open(txn.get(), table.name, flags, table.dbi);
    if (rc == MDB_NOTFOUND) return Status::WrongKey(std::string(kWrongKeyMessage));
    if (rc != 0) return lmdb::ToStatus(rc, "cannot open table " + std::string(table.name));
  }
  return t;
}

KeySource KeySource::Passphrase(SecretBytes passphrase) {
  KeySource source;
  source.kind = Kind::kPassphrase;
  source.passphrase = std::move(passphrase);
  return source;
}

KeySource KeySource::KeyFile(std::string path) {
  KeySource source;
  source.kind = Kind::kKeyFile;
  source.key_file = std::move(path);
  return source;
}

Status CreateKeyFile(const std::string& path) {
  if (fs::exists(path)) return Status::Invalid("key file " + path + " already exists; it is never overwritten");
  SecretBytes key = SecretBytes::Random(crypto::kKeyBytes);
  SecretBytes hex(2 * crypto::kKeyBytes + 1);
  sodium_bin2hex(reinterpret_cast<char*>(hex.data()), hex.size(), key.data(), key.size());
  mode_t old = ::umask(077);
  FILE* file = std::fopen(path.c_str(), "wx");
  ::umask(old);
  if (file == nullptr) return Status::Io("cannot create key file " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(hex.data(), 1, 2 * crypto::kKeyBytes, file) == 2 * crypto::kKeyBytes &&
            std::fputc('\n', file) != EOF && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) return Status::Io("cannot write key file " + path);
  return Status::Ok();
}

Store::Impl::Impl(lmdb::Env e, Tables t, SecretBytes key, const Clock& c)
    : env(std::move(e)), tables(t), data_key(std::move(key)),
      person_index_key(crypto::DeriveSubkey(data_key, kPersonIndexPurpose)), clock(c) {}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::district() const { return impl_->district; }
bool Store::city_wide() const { return impl_->city_wide; }

Result<std::unique_ptr<Store>> Store::Create(const std::string& dir, const KeySource& key,
                                             CreateOptions options, const Clock& clock) {
  std::string district;
  if (options.city_wide) {
    if (!options.district.empty()) return Status::Invalid("a city-wide store belongs to no district");
  } else {
    SAMSYNC_ASSIGN_OR_RETURN(district, CanonicalDistrict(options.district));
  }
  if (options.transparency_log && !options.city_wide) {
    return Status::Invalid("only the city-wide store of the sync server keeps a transparency log");
  }
  if (!options.pseudonym_key.empty() && options.pseudonym_key.size() != crypto::kKeyBytes) {
    return Status::Invalid("the pseudonymisation key must be 32 bytes");
  }
  if (key.kind == KeySource::Kind::kPassphrase && key.passphrase.empty()) {
    return Status::Invalid("the passphrase is empty");
  }
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "data.mdb", ec)) {
    return Status::Invalid(dir + " already holds a store; nothing was changed");
  }
  fs::create_directories(dir, ec);
  if (ec) return Status::Io("cannot create folder " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);

  // The key hierarchy: a random data key, sealed under the key-encryption key.
  capnp::MallocMessageBuilder header_message;
  auto header = header_message.initRoot<schema::StoreHeader>();
  header.setMagic(kStoreMagic);
  header.setFormatVersion(kStoreFormatVersion);
  if (key.kind == KeySource::Kind::kKeyFile) {
    header.setKeySource(schema::StoreHeader::KeySource::KEY_FILE);
  } else {
    uint64_t ops = 0, mem = 0;
    crypto::PasswordHashLimits(options.kdf, ops, mem);
    std::array<uint8_t, crypto_pwhash_SALTBYTES> salt{};
    randombytes_buf(salt.data(), salt.size());
    header.setKeySource(schema::StoreHeader::KeySource::PASSPHRASE);
    header.setSalt(capnp::Data::Reader(salt.data(), salt.size()));
    header.setOpsLimit(ops);
    header.setMemLimit(mem);
  }
  SAMSYNC_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(key, header.asReader()));
  SecretBytes data_key = SecretBytes::Random(crypto::kKeyBytes);
  std::vector<uint8_t> wrapped;
  crypto::Seal(kek, AsBytes(kDataKeyAd), data_key.span(), wrapped);
  header.setWrappedKey(capnp::Data::Reader(wrapped.data(), wrapped.size()));

  SecretBytes pseudonym_key = options.pseudonym_key.empty() ? SecretBytes::Random(crypto::kKeyBytes)
                                                            : std::move(options.pseudonym_key);
  capnp::MallocMessageBuilder settings_message;
  auto settings = settings_message.initRoot<schema::StoreSettings>();
  settings.setDistrict(district);
  settings.setCityWide(options.city_wide);
  settings.setTransparencyLog(options.transparency_log);
  settings.setPseudonymKey(capnp::Data::Reader(pseudonym_key.data(), pseudonym_key.size()));
  settings.setCreatedMs(clock.NowMs());
  std::vector<uint8_t> settings_plain = ToBytes(settings_message);
  WipeMessage(settings_message);

  OpenOptions open_options;
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Env env, lmdb::Env::Open(dir, open_options.map_size_bytes, kMaxTables, false));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(env, false));
  SAMSYNC_ASSIGN_OR_RETURN(Tables tables, OpenStoreTables(txn, true));
  auto impl = std::make_unique<Impl>(std::move(env), tables, std::move(data_key), clock);
  impl->dir = dir;
  impl->district = district;
  impl->city_wide = options.city_wide;
  impl->transparency_log = options.transparency_log;
  impl->pseudonym_key = std::move(pseudonym_key);

  std::vector<uint8_t> header_bytes = ToBytes(header_message);
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.meta, AsBytes("header"), header_bytes));
  std::vector<uint8_t> sealed;
  impl->Seal("meta", AsBytes("settings"), settings_plain, sealed);
  WipeMemory(settings_plain.data(), settings_plain.size());
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.meta, AsBytes("settings"), sealed));

  // The device's own keys: it signs its commits, and later talks to the server.
  impl->device_key = SigningKey::Generate();
  impl->transport_key = TransportKey::Generate();
  capnp::MallocMessageBuilder device_message;
  auto device = device_message.initRoot<schema::DeviceSecrets>();
  device.setSigningSecret(capnp::Data::Reader(impl->device_key->secret().data(), impl->device_key->secret().size()));
  device.setTransportSecret(
      capnp::Data::Reader(impl->transport_key->secret().data(), impl->transport_key->secret().size()));
  std::vector<uint8_t> device_plain = ToBytes(device_message);
  WipeMessage(device_message);
  std::vector<uint8_t> device_sealed;
  impl->Seal("meta", AsBytes("device"), device_plain, device_sealed);
  WipeMemory(device_plain.data(), device_plain.size());
  SAMSYNC_RETURN_IF_ERROR(txn.Put(tables.meta, AsBytes("device"), device_sealed));
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

namespace {

// Rewrites the header of an older format's store with this format's version, the rest
// unchanged: from now on it may hold values an older samsync cannot read.
Status MarkCurrentFormat(Store::Impl& impl) {
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl.env, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto old_bytes, txn.Get(impl.tables.meta, AsBytes("header")));
  if (!old_bytes) return Status::Corruption("the store's header is missing");
  std::vector<uint8_t> header_bytes;
  SAMSYNC_RETURN_IF_ERROR(ReadMessage<schema::StoreHeader>(
      *old_bytes, Status::Corruption("the store's header does not decode"),
      [&](schema::StoreHeader::Reader old) -> Status {
        capnp::MallocMessageBuilder message;
        message.setRoot(old);
        message.getRoot<schema::StoreHeader>().setFormatVersion(kStoreFormatVersion);
        header_bytes = ToBytes(message);
        return Status::Ok();
      }));
  SAMSYNC_RETURN_IF_ERROR(txn.Put(impl.tables.meta, AsBytes("header"), header_bytes));
  return txn.Commit();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const KeySource& key, const Clock& clock,
                                           OpenOptions options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("no store at " + dir + " (create one with: samsync init --district NAME)");
  }
  if (!fs::exists(fs::path(dir) / "data.mdb", ec)) {
    return Status::NotFound(dir + " holds no samsync store (create one with: samsync init --district NAME)");
  }
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Env env,
                           lmdb::Env::Open(dir, options.map_size_bytes, kMaxTables, options.read_only));
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(env, true));
  SAMSYNC_ASSIGN_OR_RETURN(Tables tables, OpenStoreTables(txn, false));
  SAMSYNC_ASSIGN_OR_RETURN(auto header_bytes, txn.Get(tables.meta, AsBytes("header")));
  if (!header_bytes) return Status::WrongKey(std::string(kWrongKeyMessage));

  SecretBytes data_key;
  uint32_t stored_version = 0;
  Status unwrapped = ReadMessage<schema::StoreHeader>(
      *header_bytes, Status::WrongKey(std::string(kWrongKeyMessage)),
      [&](schema::StoreHeader::Reader header) -> Status {
        if (header.getMagic() != kStoreMagic) return Status::WrongKey(std::string(kWrongKeyMessage));
        stored_version = header.getFormatVersion();
        if (stored_version < kOldestStoreFormatVersion || stored_version > kStoreFormatVersion) {
          return Status::Invalid("store format version " + std::to_string(stored_version) +
                                 " is not one this samsync reads (" + std::to_string(kOldestStoreFormatVersion) +
                                 " to " + std::to_string(kStoreFormatVersion) + ")" +
                                 (stored_version > kStoreFormatVersion ? ": a newer samsync wrote it" : ""));
        }
        SAMSYNC_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(key, header));
        auto wrapped = header.getWrappedKey();
        auto opened = crypto::OpenSecret(kek, AsBytes(kDataKeyAd), {wrapped.begin(), wrapped.size()});
        if (!opened.ok()) return Status::WrongKey(std::string(kWrongKeyMessage));
        data_key = std::move(opened).value();
        return Status::Ok();
      });
  SAMSYNC_RETURN_IF_ERROR(unwrapped);

  auto impl = std::make_unique<Impl>(std::move(env), tables, std::move(data_key), clock);
  impl->dir = dir;
  impl->read_only = options.read_only;
  SAMSYNC_ASSIGN_OR_RETURN(auto settings_sealed, txn.Get(tables.meta, AsBytes("settings")));
  if (!settings_sealed) return Status::Corruption("the store's settings are missing");
  auto settings_plain = impl->Open("meta", AsBytes("settings"), *settings_sealed);
  if (!settings_plain.ok()) return Status::Corruption("the store's settings fail authentication");
  SAMSYNC_RETURN_IF_ERROR(ReadMessage<schema::StoreSettings>(
      settings_plain->span(), Status::Corruption("the store's settings do not decode"),
      [&](schema::StoreSettings::Reader settings) -> Status {
        impl->city_wide = settings.getCityWide();
        impl->transparency_log = settings.getTransparencyLog();
        auto district = impl->city_wide ? Result<std::string>(std::string())
                                         : CanonicalDistrict(settings.getDistrict().cStr());
        auto pkey = settings.getPseudonymKey();
        if (!district.ok() || pkey.size() != crypto::kKeyBytes ||
            (impl->city_wide && settings.getDistrict().size() != 0)) {
          return Status::Corruption("the store's settings are invalid");
        }
        impl->district = *district;
        impl->pseudonym_key = SecretBytes::CopyOf({pkey.begin(), pkey.size()});
        return Status::Ok();
      }));
  SAMSYNC_ASSIGN_OR_RETURN(auto device_sealed, txn.Get(tables.meta, AsBytes("device")));
  if (!device_sealed) return Status::Corruption("the store's device keys are missing");
  auto device_plain = impl->Open("meta", AsBytes("device"), *device_sealed);
  if (!device_plain.ok()) return Status::Corruption("the store's device keys fail authentication");
  SAMSYNC_RETURN_IF_ERROR(ReadMessage<schema::DeviceSecrets>(
      device_plain->span(), Status::Corruption("the store's device keys do not decode"),
      [&](schema::DeviceSecrets::Reader device) -> Status {
        auto signing = device.getSigningSecret();
        auto transport = device.getTransportSecret();
        auto signing_key = SigningKey::FromSecret({signing.begin(), signing.size()});
        auto transport_key = TransportKey::FromSecret({transport.begin(), transport.size()});
        if (!signing_key.ok() || !transport_key.ok()) return Status::Corruption("the store's device keys are invalid");
        impl->device_key = std::move(signing_key).value();
        impl->transport_key = std::move(transport_key).value();
        return Status::Ok();
      }));
  // Table handles opened in a transaction close with it unless it commits.
  SAMSYNC_RETURN_IF_ERROR(txn.Commit());
  // A ForgetPerson cut off by a crash may have left the old file (with the erased
  // entry in it) beside the new one. With the environment open here, no ForgetPerson
  // is in its swap (it holds lock.mdb exclusively until its new environment is open).
  if (!options.read_only) SAMSYNC_RETURN_IF_ERROR(RemoveForgetLeftovers(dir));
  if (!options.read_only && stored_version < kStoreFormatVersion) SAMSYNC_RETURN_IF_ERROR(MarkCurrentFormat(*impl));
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Status Store::ChangeKey(const KeySource& new_key) {
  if (impl_->read_only) return Status::Invalid("the store is open read-only; its key cannot be changed");
  if (new_key.kind == KeySource::Kind::kPassphrase && new_key.passphrase.empty()) {
    return Status::Invalid("the new passphrase is empty");
  }
  SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn txn, lmdb::Txn::Begin(impl_->env, true));
  SAMSYNC_ASSIGN_OR_RETURN(auto old_bytes, txn.Get(impl_->tables.meta, AsBytes("header")));
  if (!old_bytes) return Status::Corruption("the store's header is missing");
  // Keep the store's Argon2id cost when it has one; a key-file store turning to a
  // passphrase gets the interactive preset (the `init` default).
  uint64_t ops = 0, mem = 0;
  crypto::PasswordHashLimits(KdfStrength::kInteractive, ops, mem);
  SAMSYNC_RETURN_IF_ERROR(ReadMessage<schema::StoreHeader>(
      *old_bytes, Status::Corruption("the store's header does not decode"),
      [&](schema::StoreHeader::Reader header) -> Status {
        if (header.getKeySource() == schema::StoreHeader::KeySource::PASSPHRASE) {
          ops = header.getOpsLimit();
          mem = header.getMemLimit();
        }
        return Status::Ok();
      }));
  capnp::MallocMessageBuilder header_message;
  auto header = header_message.initRoot<schema::StoreHeader>();
  header.setMagic(kStoreMagic);
  header.setFormatVersion(kStoreFormatVersion);
  if (new_key.kind == KeySource::Kind::kKeyFile) {
    header.setKeySource(schema::StoreHeader::KeySource::KEY_FILE);
  } else {
    std::array<uint8_t, crypto_pwhash_SALTBYTES> salt{};
    randombytes_buf(salt.data(), salt.size());  // a new salt: the old KEK is useless now
    header.setKeySource(schema::StoreHeader::KeySource::PASSPHRASE);
    header.setSalt(capnp::Data::Reader(salt.data(), salt.size()));
    header.setOpsLimit(ops);
    header.setMemLimit(mem);
  }
  SAMSYNC_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(new_key, header.asReader()));
  std::vector<uint8_t> wrapped;
  crypto::Seal(kek, AsBytes(kDataKeyAd), impl_->data_key.span(), wrapped);
  header.setWrappedKey(capnp::Data::Reader(wrapped.data(), wrapped.size()));
  std::vector<uint8_t> header_bytes = ToBytes(header_message);
  txn.Abort();
  // Written with the store held alone and the file compacted afterwards: the old
  // header (the data key wrapped under the old passphrase) must not stay in a free
  // page, where the old passphrase would still unwrap it.
  return RewriteAlone(*impl_, [&](lmdb::Env& env, const Tables& tables) -> Status {
    SAMSYNC_ASSIGN_OR_RETURN(lmdb::Txn write, lmdb::Txn::Begin(env, false));
    SAMSYNC_RETURN_IF_ERROR(write.Put(tables.meta, AsBytes("header"), header_bytes));
    return write.Commit();
  });
}

}  // namespace samsync
