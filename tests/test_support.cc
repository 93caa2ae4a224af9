#include "test_support.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace samsync::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "samsync-test-XXXXXX").string();
  char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TestStore::TestStore(std::string district)
    : dir_(temp_.Sub("store")), key_file_(temp_.Sub("store.key")), clock_(1479211200000) {
  Status made = CreateKeyFile(key_file_);
  EXPECT_TRUE(made.ok()) << made.message();
  CreateOptions options;
  options.district = std::move(district);
  auto store = Store::Create(dir_, KeySource::KeyFile(key_file_), std::move(options), clock_);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (store.ok()) store_ = std::move(store).value();
}

void TestStore::Reopen() {
  store_.reset();
  auto store = Store::Open(dir_, KeySource::KeyFile(key_file_), clock_);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (store.ok()) store_ = std::move(store).value();
}

Record MakeRecord(RecordType type, const std::vector<std::pair<std::string, std::string>>& fields) {
  Record record(type);
  for (const auto& [name, value] : fields) {
    const FieldInfo* field = FindField(type, name);
    EXPECT_NE(field, nullptr) << "no field " << name;
    if (field == nullptr) continue;
    Status set = SetFieldFromText(record, *field, value);
    EXPECT_TRUE(set.ok()) << set.message();
  }
  return record;
}

RecordId PutOrDie(Store& store, Record record) {
  WriteBatch batch;
  batch.Put(std::move(record));
  auto result = store.Apply(batch);
  EXPECT_TRUE(result.ok()) << result.status().message();
  return result.ok() ? result->ids.at(0) : RecordId();
}

RecordId AddSchool(Store& store, std::string name, bool independent) {
  return PutOrDie(store, MakeRecord(RecordType::kSchool, {{"name", std::move(name)},
                                                           {"principal", independent ? "independent" : "municipal"},
                                                           {"forms", "compulsory"}}));
}

std::string MakePersonnummer(std::string_view yyyymmdd, int serial) {
  std::string digits = std::string(yyyymmdd.substr(2)) + std::to_string(100 + serial % 900);
  int sum = 0;
  for (size_t i = 0; i < 9; ++i) {
    int v = (digits[i] - '0') * (i % 2 == 0 ? 2 : 1);
    sum += v > 9 ? v - 9 : v;
  }
  return std::string(yyyymmdd) + "-" + digits.substr(6) + std::to_string((10 - sum % 10) % 10);
}

ChildRef AddChild(Store& store, int n) {
  std::string date = "2008" + std::string(n % 12 + 1 < 10 ? "0" : "") + std::to_string(n % 12 + 1) + "1" +
                     std::to_string(n % 9 + 1);
  auto ref = store.AddPerson(MakePersonnummer(date, n), "Barn " + std::to_string(n));
  EXPECT_TRUE(ref.ok()) << ref.status().message();
  return ref.ok() ? *ref : ChildRef();
}

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

ChildProcess::ChildProcess(const std::string& binary, const std::vector<std::string>& args,
                           const std::vector<std::string>& env, const std::string& input) {
  std::string in_path = io_.Sub("in"), out_path = io_.Sub("out"), err_path = io_.Sub("err");
  std::ofstream(in_path, std::ios::binary) << input;
  std::ofstream(out_path).close();
  std::ofstream(err_path).close();
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<std::string> env_storage = {"PATH=/usr/bin:/bin", "HOME=" + io_.path()};
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // Dies with the test, even when the test itself is killed (no destructor runs then).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int in = ::open(in_path.c_str(), O_RDONLY), out = ::open(out_path.c_str(), O_WRONLY),
        err = ::open(err_path.c_str(), O_WRONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::setsid();  // no controlling terminal: a passphrase prompt cannot hang the test
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  if (pid_ < 0) {
    ADD_FAILURE() << "cannot start " << binary;
    done_ = true;
  }
}

ChildProcess::~ChildProcess() {
  if (!done_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) Reaped(status);
  }
}

void ChildProcess::Reaped(int status) {
  done_ = true;
  if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
}

bool ChildProcess::Running() {
  if (done_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) Reaped(status);
  return !done_;
}

void ChildProcess::Signal(int signal) {
  if (Running()) ::kill(pid_, signal);
}

CommandResult ChildProcess::Wait(int timeout_ms) {
  if (timeout_ms >= 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (Running()) {
      ADD_FAILURE() << "pid " << pid_ << " still running after " << timeout_ms << " ms: killed";
      ::kill(pid_, SIGKILL);
    }
  }
  if (!done_) {
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) Reaped(status);
  }
  result_.out = Out();
  result_.err = Err();
  return result_;
}

std::string ChildProcess::Out() const { return Slurp(io_.Sub("out")); }
std::string ChildProcess::Err() const { return Slurp(io_.Sub("err")); }

CommandResult RunSamsync(const std::vector<std::string>& args, const std::vector<std::string>& env,
                         const std::string& input) {
  return ChildProcess(SAMSYNC_BINARY, args, env, input).Wait();
}

CommandResult RunSamsyncServer(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  return ChildProcess(SAMSYNC_SERVER_BINARY, args, env).Wait();
}

namespace {
std::vector<std::string> ServeArgs(const std::string& data, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"run", "--data", data, "--listen", "tcp://127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}
}  // namespace

SyncServerProcess::SyncServerProcess(const std::string& data, const std::vector<std::string>& extra_args)
    : process_(SAMSYNC_SERVER_BINARY, ServeArgs(data, extra_args), {}) {
  // "samsync-server listening on ENDPOINT\nserver key HEX\n"
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string out = process_.Out();
    std::string endpoint, key;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("samsync-server listening on ", 0) == 0) endpoint = line.substr(28);
      if (line.rfind("server key ", 0) == 0 && line.size() == 11 + 64) key = line.substr(11);
    }
    if (!endpoint.empty() && !key.empty()) {
      endpoint_ = endpoint;
      key_ = key;
      return;
    }
    if (!process_.Running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "samsync-server did not start on " << data << "\nstdout: " << process_.Out()
                << "\nstderr: " << process_.Err();
}

CommandResult SyncServerProcess::Stop() {
  process_.Signal(SIGTERM);
  return process_.Wait(5000);
}

void ExpectOneLineError(const CommandResult& r, int exit_code, const std::string& contains) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind("samsync: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(contains), std::string::npos) << r.err;
}

}  // namespace samsync::testing

// TestCity: the admin's steps, as tests/sync_cli_test.cc takes them.
namespace samsync::testing {

nlohmann::json ParseJsonOrFail(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << text;
  return parsed.is_discarded() ? nlohmann::json::object() : parsed;
}

TestCity::TestCity() : admin_({"SAMSYNC_KEY_FILE=" + dir_.Sub("city.key")}), server_data_(dir_.Sub("server")) {
  CommandResult city = RunSamsync({"city", "init", dir_.Sub("city")}, admin_);
  EXPECT_EQ(city.exit_code, 0) << city.err;
}

TestCity::~TestCity() {
  if (server_ && server_->Running()) server_->Stop();
}

TestCity::Machine TestCity::Enrol(const std::string& name, const std::string& district, const std::string& role) {
  std::string folder = dir_.Sub("store-" + name);
  Machine m{name, district, role, "", "", {"SAMSYNC_STORE=" + folder, "SAMSYNC_KEY_FILE=" + folder + ".key"}};
  // The central office's store is city-wide (it holds every district's commits).
  CommandResult made = Run(m, role == "central" ? std::vector<std::string>{"init", "--city-wide"}
                                                : std::vector<std::string>{"init", "--district", district});
  EXPECT_EQ(made.exit_code, 0) << name << ": " << made.err;
  nlohmann::json me = Json(m, {"whoami"});
  m.device_key = me.value("deviceKey", "");
  m.transport_key = me.value("transportKey", "");
  std::vector<std::string> add = {"roster", "add", "--city", dir_.Sub("city"), "--device-key", m.device_key,
                                  "--transport-key", m.transport_key, "--role", role, "--label", name};
  if (role == "writer") {
    add.push_back("--district");
    add.push_back(district);
  }
  CommandResult added = RunSamsync(add, admin_);
  EXPECT_EQ(added.exit_code, 0) << name << ": " << added.err;
  machines_.push_back(m);
  return m;
}

void TestCity::InitServer() {
  std::string roster = dir_.Sub("city") + "/roster.latest";
  CommandResult made = RunSamsyncServer({"init", "--data", server_data_, "--roster", roster, "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  nlohmann::json keys = ParseJsonOrFail(made.out);
  CommandResult added = RunSamsync({"roster", "add", "--city", dir_.Sub("city"), "--device-key",
                                    keys.value("logKey", ""), "--transport-key", keys.value("serverKey", ""), "--role",
                                    "server", "--label", "sync server"},
                                   admin_);
  ASSERT_EQ(added.exit_code, 0) << added.err;
  CommandResult imported = RunSamsyncServer({"roster", "import", "--data", server_data_, roster});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  for (const Machine& m : machines_) {
    CommandResult installed = Run(m, {"roster", "import", roster});
    ASSERT_EQ(installed.exit_code, 0) << m.name << ": " << installed.err;
  }
}

void TestCity::StartServer() {
  if (server_) {
    logs_ += server_->Log();
    server_.reset();
  }
  server_ = std::make_unique<SyncServerProcess>(server_data_);
  if (server_->ok()) server_key_ = server_->key();
}

void TestCity::StopServer() {
  if (!server_) return;
  CommandResult stopped = server_->Stop();
  EXPECT_EQ(stopped.exit_code, 0) << "the server did not stop cleanly on SIGTERM: " << stopped.err;
  logs_ += stopped.err;
  server_.reset();
}

void TestCity::KillServer() {
  if (!server_) return;
  server_->Kill();
  logs_ += server_->Log();
  server_.reset();
}

uint16_t TestCity::server_port() const {
  if (!server_) return 0;
  const std::string& endpoint = server_->endpoint();
  return static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

std::string TestCity::Logs() const { return logs_ + (server_ ? server_->Log() : ""); }

nlohmann::json TestCity::Json(const Machine& m, std::vector<std::string> args) const {
  args.push_back("--json");
  CommandResult r = Run(m, args);
  EXPECT_EQ(r.exit_code, 0) << m.name << " " << args[0] << ": " << r.err;
  EXPECT_EQ(r.err, "") << m.name << " " << args[0];
  return ParseJsonOrFail(r.out);
}

nlohmann::json TestCity::ServerStatus() const {
  CommandResult r = RunSamsyncServer({"status", "--data", server_data_, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return ParseJsonOrFail(r.out);
}

VersionVector TestCity::ServerHeads() const {
  SystemClock clock;
  OpenOptions options;
  options.read_only = true;
  auto store = Store::Open(server_data_, KeySource::KeyFile(server_data_ + ".key"), clock, options);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return {};
  auto heads = (*store)->Heads();
  EXPECT_TRUE(heads.ok()) << heads.status().message();
  return heads.ok() ? *heads : VersionVector{};
}

std::string TestCity::ServerVerify() const {
  CommandResult r = RunSamsyncServer({"verify", "--data", server_data_});
  if (r.exit_code == 0 && r.out.rfind("verify: ok", 0) == 0) return "";
  return "exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

std::vector<std::string> TestCity::SyncArgs(const std::string& endpoint) const {
  return {"sync", "--server", endpoint.empty() ? server_->endpoint() : endpoint, "--server-key", server_key_};
}

}  // namespace samsync::testing
