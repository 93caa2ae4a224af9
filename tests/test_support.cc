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
