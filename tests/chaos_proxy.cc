#include "chaos_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <sstream>

namespace samsync::testing {
namespace {

// Writes all of `bytes` (blocking); false once the peer is gone.
bool SendAll(int fd, const char* bytes, size_t size) {
  while (size > 0) {
    ssize_t sent = ::send(fd, bytes, size, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}

int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string ChaosCounts::ToString() const {
  std::ostringstream out;
  out << faults() << " faults in " << connections << " connections (" << clean << " clean): " << dropped
      << " dropped at once, " << cut << " cut mid-chunk, " << lost << " chunks lost, " << duplicated
      << " duplicated, " << reordered << " reordered, " << black_holes << " black holes, " << delayed_chunks
      << " chunks delayed; " << chunks << " chunks forwarded";
  return out.str();
}

ChaosProxy::ChaosProxy(uint16_t upstream_port, uint64_t seed, double fault_rate, double delay_rate)
    : upstream_port_(upstream_port), delay_rate_(delay_rate), random_(seed), fault_rate_(fault_rate) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "the chaos proxy cannot listen on 127.0.0.1";
    return;
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ChaosProxy::~ChaosProxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) thread.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void ChaosProxy::SetFaultRate(double fault_rate) {
  std::lock_guard<std::mutex> lock(mutex_);
  fault_rate_ = fault_rate;
  forced_ = false;
}

void ChaosProxy::ForceFate(Fate fate, int at_chunk) {
  std::lock_guard<std::mutex> lock(mutex_);
  forced_ = true;
  forced_fate_ = fate;
  forced_chunk_ = at_chunk;
}

ChaosCounts ChaosProxy::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

void ChaosProxy::AcceptLoop() {
  while (!stop_) {
    pollfd item{listen_fd_, POLLIN, 0};
    if (::poll(&item, 1, 50) <= 0) continue;
    int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    std::lock_guard<std::mutex> lock(mutex_);
    ++counts_.connections;
    threads_.emplace_back([this, client, seed = random_()] { Pump(client, seed); });
  }
}

// One connection: its fate drawn from its own generator (seeded by the proxy's, in the
// order connections arrive), then both directions pumped chunk by chunk.
void ChaosProxy::Pump(int client, uint64_t seed) {
  std::mt19937_64 random(seed);
  Fate fate = Fate::kClean;
  int fault_chunk = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (forced_) {
      fate = forced_fate_;
      fault_chunk = forced_chunk_;
    } else if (std::uniform_real_distribution<double>(0, 1)(random) < fault_rate_) {
      fate = static_cast<Fate>(std::uniform_int_distribution<int>(1, 6)(random));
      // A sync is about fifteen chunks: the CURVE handshake, then requests and replies.
      fault_chunk = std::uniform_int_distribution<int>(0, 12)(random);
    }
    switch (fate) {
      case Fate::kClean: ++counts_.clean; break;
      case Fate::kDrop: ++counts_.dropped; break;
      default: break;  // counted when it happens (the connection may end first)
    }
  }
  if (fate == Fate::kDrop) {
    ::close(client);
    return;
  }
  int server = ConnectLoopback(upstream_port_);
  if (server < 0) {
    ::close(client);
    return;
  }

  std::array<int, 2> fds = {client, server};  // a chunk read from fds[d] goes to fds[1 - d]
  std::array<std::optional<std::string>, 2> held;  // a chunk held back to be reordered
  std::array<std::chrono::steady_clock::time_point, 2> held_since;
  bool black_hole = false;
  int chunk = 0;
  std::vector<char> buffer(64 * 1024);
  auto count = [this](uint64_t ChaosCounts::*field) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++(counts_.*field);
  };
  bool open = true;
  while (open && !stop_) {
    // A held chunk with no successor within 200 ms goes out late: a delay, not a swap.
    for (int d = 0; d < 2 && open; ++d) {
      if (held[d] && std::chrono::steady_clock::now() - held_since[d] > std::chrono::milliseconds(200)) {
        open = SendAll(fds[1 - d], held[d]->data(), held[d]->size());
        held[d].reset();
        count(&ChaosCounts::delayed_chunks);
      }
    }
    std::array<pollfd, 2> items = {pollfd{client, POLLIN, 0}, pollfd{server, POLLIN, 0}};
    if (::poll(items.data(), 2, 20) <= 0) continue;
    for (int d = 0; d < 2 && open; ++d) {
      if (!(items[d].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::recv(fds[d], buffer.data(), buffer.size(), 0);
      if (got <= 0) {
        open = false;
        break;
      }
      if (black_hole) continue;  // read and thrown away, so neither peer blocks
      std::string bytes(buffer.data(), static_cast<size_t>(got));
      int to = fds[1 - d];
      bool fault_here = fate != Fate::kClean && chunk == fault_chunk;
      ++chunk;
      count(&ChaosCounts::chunks);
      if (std::uniform_real_distribution<double>(0, 1)(random) < delay_rate_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 30)(random)));
        count(&ChaosCounts::delayed_chunks);
      }
      if (held[d]) {  // the chunk after a held one: the swap
        open = SendAll(to, bytes.data(), bytes.size()) && SendAll(to, held[d]->data(), held[d]->size());
        held[d].reset();
        count(&ChaosCounts::reordered);
        continue;
      }
      if (!fault_here) {
        open = SendAll(to, bytes.data(), bytes.size());
        continue;
      }
      switch (fate) {
        case Fate::kDuplicate:
          open = SendAll(to, bytes.data(), bytes.size()) && SendAll(to, bytes.data(), bytes.size());
          count(&ChaosCounts::duplicated);
          break;
        case Fate::kReorder:
          if (bytes.size() >= 2) {  // its second half first: two pieces swapped
            size_t half = bytes.size() / 2;
            open = SendAll(to, bytes.data() + half, bytes.size() - half) && SendAll(to, bytes.data(), half);
            count(&ChaosCounts::reordered);
          } else {  // one byte: swapped with the next chunk of its direction
            held[d] = std::move(bytes);
            held_since[d] = std::chrono::steady_clock::now();
          }
          break;
        case Fate::kLose:
          count(&ChaosCounts::lost);
          break;
        case Fate::kCut:
          SendAll(to, bytes.data(), (bytes.size() + 1) / 2);
          count(&ChaosCounts::cut);
          open = false;
          break;
        case Fate::kBlackHole:
          black_hole = true;
          count(&ChaosCounts::black_holes);
          break;
        case Fate::kClean:
        case Fate::kDrop:
          break;
      }
    }
  }
  ::close(client);
  ::close(server);
}

}  // namespace samsync::testing
