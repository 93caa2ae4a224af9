// The city admin folder: the sealed root key and the roster versions (see city.h).
#include "samsync/city.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/exception.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "crypto.h"
#include "samsync/schema/city.capnp.h"

namespace samsync {
namespace {

namespace fs = std::filesystem;

constexpr char kCityMagic[] = "samsync-city";
constexpr uint32_t kCityFormatVersion = 1;
constexpr std::string_view kWrongKeyMessage = "wrong passphrase, or not a samsync city folder";
// The associated data that binds the sealed root key to its purpose.
constexpr std::string_view kRootKeyAd = "samsync/1/city-root-key";
constexpr size_t kMaxHeaderBytes = 64 << 10;
constexpr char kHeaderFile[] = "city.header";
constexpr char kRostersFolder[] = "rosters";
constexpr char kLatestFile[] = "roster.latest";

std::span<const uint8_t> AsBytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string Errno() { return std::strerror(errno); }

Status SyncFolder(const fs::path& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::Io("cannot open folder " + folder.string() + ": " + Errno());
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Io("cannot sync folder " + folder.string() + ": " + Errno());
  return Status::Ok();
}

// Writes `bytes` to `path` through a temporary file in the same folder: written,
// fsynced, then renamed (`replace`) or hard-linked (not `replace`: an existing file is
// left alone and kConflict returned), then the folder fsynced. Readers see the old
// file or the new one, never a part.
Status WriteFileDurably(const fs::path& path, std::span<const uint8_t> bytes, mode_t mode, bool replace) {
  std::string temp = path.string() + ".tmp-XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) return Status::Io("cannot create a file in " + path.parent_path().string() + ": " + Errno());
  bool ok = ::fchmod(fd, mode) == 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  std::string error = ok ? "" : Errno();
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(temp.c_str());
    return Status::Io("cannot write " + path.string() + ": " + (error.empty() ? Errno() : error));
  }
  if (replace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      std::string why = Errno();
      ::unlink(temp.c_str());
      return Status::Io("cannot write " + path.string() + ": " + why);
    }
  } else {
    int linked = ::link(temp.c_str(), path.c_str());
    int link_errno = errno;
    ::unlink(temp.c_str());
    if (linked != 0 && link_errno == EEXIST) return Status(Code::kConflict, path.string() + " already exists");
    if (linked != 0) return Status::Io("cannot write " + path.string() + ": " + std::strerror(link_errno));
  }
  return SyncFolder(path.parent_path());
}

// The whole file, refusing one larger than `max_bytes` (kCorruption) before reading it.
Result<std::vector<uint8_t>> ReadBytes(const fs::path& path, size_t max_bytes) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    if (errno == ENOENT) return Status::NotFound(path.string() + " does not exist");
    return Status::Io("cannot read " + path.string() + ": " + Errno());
  }
  struct stat st {};
  if (::fstat(fileno(file), &st) != 0 || static_cast<uint64_t>(st.st_size) > max_bytes) {
    std::fclose(file);
    return Status::Corruption(path.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  bool ok = std::fread(bytes.data(), 1, bytes.size(), file) == bytes.size();
  std::fclose(file);
  if (!ok) return Status::Io("cannot read " + path.string());
  return bytes;
}

// The header, decoded. Holds no secret: the root key in it is sealed.
struct Header {
  std::string city;
  bool key_file = false;
  std::vector<uint8_t> salt;
  uint64_t ops_limit = 0, mem_limit = 0;
  PublicKey root_key;
  std::vector<uint8_t> wrapped_root_key;
};

Result<Header> ReadHeader(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("no city at " + dir + " (create one with: samsync city init " + dir + ")");
  }
  auto bytes = ReadBytes(fs::path(dir) / kHeaderFile, kMaxHeaderBytes);
  if (!bytes.ok() && bytes.status().code() == Code::kNotFound) {
    return Status::NotFound(dir + " holds no samsync city (create one with: samsync city init " + dir + ")");
  }
  if (!bytes.ok()) return bytes.status();
  if (bytes->empty() || bytes->size() % sizeof(capnp::word) != 0) {
    return Status::WrongKey(std::string(kWrongKeyMessage));
  }
  auto words = kj::heapArray<capnp::word>(bytes->size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes->data(), bytes->size());
  Header header;
  Status status;
  auto error = kj::runCatchingExceptions([&] {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 4 * words.size() + 64;
    capnp::FlatArrayMessageReader reader(words, options);
    auto h = reader.getRoot<schema::CityHeader>();
    if (h.getMagic() != kCityMagic) {
      status = Status::WrongKey(std::string(kWrongKeyMessage));
      return;
    }
    if (h.getFormatVersion() != kCityFormatVersion) {
      status = Status::Invalid("city format version " + std::to_string(h.getFormatVersion()) +
                               " is not the one this samsync reads (" + std::to_string(kCityFormatVersion) + ")");
      return;
    }
    auto root = PublicKey::FromBytes({h.getRootKey().begin(), h.getRootKey().size()}, "root key");
    if (!root.ok()) {
      status = Status::Corruption("the city header's root key is " + root.status().message());
      return;
    }
    header.city = std::string(h.getCity().begin(), h.getCity().size());
    header.key_file = h.getKeySource() == schema::CityHeader::KeySource::KEY_FILE;
    header.salt.assign(h.getSalt().begin(), h.getSalt().end());
    header.ops_limit = h.getOpsLimit();
    header.mem_limit = h.getMemLimit();
    header.root_key = *root;
    header.wrapped_root_key.assign(h.getWrappedRootKey().begin(), h.getWrappedRootKey().end());
  });
  if (error != nullptr) return Status::WrongKey(std::string(kWrongKeyMessage));
  SAMSYNC_RETURN_IF_ERROR(status);
  return header;
}

Result<SecretBytes> DeriveKek(const KeySource& key, const Header& header) {
  if (header.key_file != (key.kind == KeySource::Kind::kKeyFile)) {
    return Status::WrongKey(std::string(kWrongKeyMessage) + " (this city is opened with " +
                            (header.key_file ? "a key file" : "a passphrase") + ")");
  }
  if (header.key_file) return ReadKeyFile(key.key_file);
  return crypto::DeriveFromPassphrase(key.passphrase, header.salt, header.ops_limit, header.mem_limit);
}

std::string VersionFileName(uint64_t version) {
  char name[40];
  std::snprintf(name, sizeof name, "%06llu.roster", static_cast<unsigned long long>(version));
  return name;
}

// The number of a version file's name ("000042.roster" → 42); nullopt for anything else
// (temporary files included).
std::optional<uint64_t> VersionOfFileName(const std::string& name) {
  constexpr std::string_view kSuffix = ".roster";
  if (name.size() <= kSuffix.size() || name.size() > kSuffix.size() + 19 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  uint64_t version = 0;
  for (size_t i = 0; i < name.size() - kSuffix.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    version = version * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return version;
}

// The newest roster version in `dir`, checked against `header`.
Result<Roster> ReadNewest(const std::string& dir, const Header& header) {
  fs::path folder = fs::path(dir) / kRostersFolder;
  std::optional<uint64_t> newest;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    auto version = VersionOfFileName(it->path().filename().string());
    if (version && (!newest || *version > *newest)) newest = version;
  }
  if (ec) return Status::Io("cannot list " + folder.string() + ": " + ec.message());
  if (!newest) return Status::Corruption(folder.string() + " holds no roster version");
  fs::path path = folder / VersionFileName(*newest);
  SAMSYNC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(path, kMaxRosterBytes));
  auto roster = Roster::Open(bytes, &header.root_key);
  if (!roster.ok()) return roster.status().WithContext(path.string());
  if (roster->version() != *newest) {
    return Status::Corruption(path.string() + " holds roster version " + std::to_string(roster->version()));
  }
  if (roster->city() != header.city) {
    return Status::Corruption(path.string() + " is a roster of " + roster->city() + ", not of " + header.city);
  }
  return roster;
}

}  // namespace

City::City(std::string dir, SigningKey root, Roster roster, const Clock& clock)
    : dir_(std::move(dir)), root_(std::move(root)), roster_(std::move(roster)), clock_(clock) {}

City::~City() = default;

std::string City::RosterPath(uint64_t version) const {
  return (fs::path(dir_) / kRostersFolder / VersionFileName(version)).string();
}

std::string City::LatestPath() const { return (fs::path(dir_) / kLatestFile).string(); }

Result<std::unique_ptr<City>> City::Create(const std::string& dir, const KeySource& key, std::string_view city_name,
                                           const Clock& clock, KdfStrength kdf) {
  if (key.kind == KeySource::Kind::kPassphrase && key.passphrase.empty()) {
    return Status::Invalid("the passphrase is empty");
  }
  fs::path folder(dir);
  std::error_code ec;
  if (fs::exists(folder / kHeaderFile, ec) || fs::exists(folder / kRostersFolder, ec)) {
    return Status::Invalid(dir + " already holds a city; nothing was changed");
  }
  // Everything that can be refused is checked before anything is written.
  SigningKey root = SigningKey::Generate();
  SAMSYNC_ASSIGN_OR_RETURN(Roster first, Roster::Sign(root, city_name, 1, clock.NowMs(), {}));

  capnp::MallocMessageBuilder message;
  auto header = message.initRoot<schema::CityHeader>();
  header.setMagic(kCityMagic);
  header.setFormatVersion(kCityFormatVersion);
  header.setCity(first.city());
  header.setCreatedMs(clock.NowMs());
  header.setRootKey(capnp::Data::Reader(root.public_key().bytes.data(), 32));
  Header decoded;
  decoded.root_key = root.public_key();
  if (key.kind == KeySource::Kind::kKeyFile) {
    header.setKeySource(schema::CityHeader::KeySource::KEY_FILE);
    decoded.key_file = true;
  } else {
    crypto::PasswordHashLimits(kdf, decoded.ops_limit, decoded.mem_limit);
    decoded.salt.resize(crypto_pwhash_SALTBYTES);
    randombytes_buf(decoded.salt.data(), decoded.salt.size());
    header.setKeySource(schema::CityHeader::KeySource::PASSPHRASE);
    header.setSalt(capnp::Data::Reader(decoded.salt.data(), decoded.salt.size()));
    header.setOpsLimit(decoded.ops_limit);
    header.setMemLimit(decoded.mem_limit);
  }
  SAMSYNC_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(key, decoded));
  std::vector<uint8_t> wrapped;
  crypto::Seal(kek, AsBytes(kRootKeyAd), root.secret().span(), wrapped);
  header.setWrappedRootKey(capnp::Data::Reader(wrapped.data(), wrapped.size()));
  kj::Array<capnp::word> header_words = capnp::messageToFlatArray(message);
  auto header_bytes = header_words.asBytes();

  fs::create_directories(folder, ec);
  if (ec) return Status::Io("cannot create folder " + dir + ": " + ec.message());
  fs::permissions(folder, fs::perms::owner_all, fs::perm_options::replace, ec);
  Status written = WriteFileDurably(folder / kHeaderFile, {header_bytes.begin(), header_bytes.size()}, 0600, false);
  if (written.code() == Code::kConflict) return Status::Invalid(dir + " already holds a city; nothing was changed");
  SAMSYNC_RETURN_IF_ERROR(written);

  auto city = std::unique_ptr<City>(new City(dir, std::move(root), std::move(first), clock));
  if (!fs::create_directory(folder / kRostersFolder, ec) || ec) {
    written = Status::Io("cannot create folder " + (folder / kRostersFolder).string() + ": " + ec.message());
  }
  if (written.ok()) written = WriteFileDurably(city->RosterPath(1), city->roster_.signed_bytes(), 0644, false);
  if (written.ok()) written = WriteFileDurably(city->LatestPath(), city->roster_.signed_bytes(), 0644, true);
  if (!written.ok()) {
    // Leave no half-made city behind: a retry must find the folder as it was.
    fs::remove(city->LatestPath(), ec);
    fs::remove_all(folder / kRostersFolder, ec);
    fs::remove(folder / kHeaderFile, ec);
    return written;
  }
  return city;
}

Result<std::unique_ptr<City>> City::Open(const std::string& dir, const KeySource& key, const Clock& clock) {
  SAMSYNC_ASSIGN_OR_RETURN(Header header, ReadHeader(dir));
  SAMSYNC_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(key, header));
  auto secret = crypto::OpenSecret(kek, AsBytes(kRootKeyAd), header.wrapped_root_key);
  if (!secret.ok()) return Status::WrongKey(std::string(kWrongKeyMessage));
  auto root = SigningKey::FromSecret(secret->span());
  if (!root.ok()) return Status::Corruption("the city's sealed root key is malformed");
  if (root->public_key() != header.root_key) {
    return Status::Corruption("the city header's root public key is not the one of its sealed root key");
  }
  SAMSYNC_ASSIGN_OR_RETURN(Roster roster, ReadNewest(dir, header));
  auto city = std::unique_ptr<City>(new City(dir, std::move(root).value(), std::move(roster), clock));

  // Repair roster.latest if a crash left it behind the newest version file.
  auto latest = ReadBytes(city->LatestPath(), kMaxRosterBytes);
  if (!latest.ok() || *latest != city->roster_.signed_bytes()) {
    SAMSYNC_RETURN_IF_ERROR(WriteFileDurably(city->LatestPath(), city->roster_.signed_bytes(), 0644, true));
  }
  return city;
}

Result<Roster> City::ReadLatestRoster(const std::string& dir) {
  SAMSYNC_ASSIGN_OR_RETURN(Header header, ReadHeader(dir));
  return ReadNewest(dir, header);
}

Status City::Publish(std::vector<RosterEntry> entries) {
  uint64_t version = roster_.version() + 1;
  SAMSYNC_ASSIGN_OR_RETURN(Roster next,
                           Roster::Sign(root_, roster_.city(), version, clock_.NowMs(), std::move(entries)));
  Status written = WriteFileDurably(RosterPath(version), next.signed_bytes(), 0644, false);
  if (written.code() == Code::kConflict) {
    return Status(Code::kConflict, "roster version " + std::to_string(version) +
                                       " was written by another change at the same time; nothing was changed, "
                                       "run the command again");
  }
  SAMSYNC_RETURN_IF_ERROR(written);
  roster_ = std::move(next);
  // The version file is the record; a failure here is repaired by the next Open.
  return WriteFileDurably(LatestPath(), roster_.signed_bytes(), 0644, true);
}

Status City::AddEntry(RosterEntry entry) {
  if (entry.revoked_ms != 0) return Status::Invalid("a new roster entry cannot be revoked already");
  if (entry.added_ms == 0) entry.added_ms = clock_.NowMs();
  auto describe = [](const RosterEntry& e) {
    return std::string(e.revoked_ms != 0 ? "revoked " : "") + std::string(RoleName(e.role)) +
           (e.district.empty() ? "" : " of " + e.district);
  };
  if (const RosterEntry* found = roster_.FindSigningKey(entry.signing_key)) {
    return Status::Invalid("signing key " + entry.signing_key.ToHex() + " is already in the roster (" +
                           describe(*found) + "); a key is never reused");
  }
  if (const RosterEntry* found = roster_.FindTransportKey(entry.transport_key)) {
    return Status::Invalid("transport key " + entry.transport_key.ToHex() + " is already in the roster (" +
                           describe(*found) + "); a key is never reused");
  }
  std::vector<RosterEntry> entries = roster_.entries();
  entries.push_back(std::move(entry));
  return Publish(std::move(entries));
}

Status City::Revoke(const PublicKey& signing_key, int64_t revoked_ms) {
  if (revoked_ms <= 0) return Status::Invalid("a revocation time must be after 1970");
  const RosterEntry* found = roster_.FindSigningKey(signing_key);
  if (found == nullptr) {
    return Status::NotFound("signing key " + signing_key.ToHex() + " is not in the roster (version " +
                            std::to_string(roster_.version()) + ")");
  }
  if (found->revoked_ms != 0) {
    return Status::Invalid("signing key " + signing_key.ToHex() + " is already revoked (roster version " +
                           std::to_string(roster_.version()) + ")");
  }
  std::vector<RosterEntry> entries = roster_.entries();
  for (RosterEntry& entry : entries) {
    if (entry.signing_key == signing_key) entry.revoked_ms = revoked_ms;
  }
  return Publish(std::move(entries));
}

}  // namespace samsync
