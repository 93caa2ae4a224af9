// A TCP proxy that breaks the network on purpose, for the tests of `samsync sync`
// over a bad link (tests/network_cli_test.cc): it listens on 127.0.0.1 (an ephemeral
// port), forwards every connection to the sync server, and at random (seeded) drops
// connections, delays chunks, duplicates a chunk, swaps two pieces, loses a chunk,
// cuts a connection in the middle of a chunk, or stops forwarding while keeping the
// connection open (a black hole).
//
// ZeroMQ's CURVE frames are encrypted and numbered, so every fault but a delay shows
// up to the peers as a broken handshake, a frame that does not decrypt, or silence:
// ZeroMQ drops the connection and reconnects (through the proxy again, with a new
// fate), and a request lost on the way is what `samsync sync --timeout` is for.
//
// Threads: one accepts, one per connection pumps both directions; all are joined by
// the destructor. The public methods may be called from any thread.
#ifndef SAMSYNC_TESTS_CHAOS_PROXY_H_
#define SAMSYNC_TESTS_CHAOS_PROXY_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace samsync::testing {

// What one connection suffers (one fault at most, at a random chunk of a random
// direction), decided when it is accepted.
enum class Fate {
  kClean,       // forwarded as is (chunks may still be delayed)
  kDrop,        // closed at once, nothing forwarded
  kDuplicate,   // one chunk sent twice
  kReorder,     // one chunk's two halves swapped (a chunk of one byte: sent after the next one)
  kLose,        // one chunk discarded, the connection kept
  kCut,         // half of one chunk forwarded, then both sides closed
  kBlackHole,   // from one chunk on nothing is forwarded; the connection stays open
};

// Faults injected so far (each connection counts once under its fate).
struct ChaosCounts {
  uint64_t connections = 0, clean = 0, dropped = 0, duplicated = 0, reordered = 0, lost = 0, cut = 0,
           black_holes = 0, delayed_chunks = 0, chunks = 0;
  uint64_t faults() const { return dropped + duplicated + reordered + lost + cut + black_holes + delayed_chunks; }
  std::string ToString() const;
};

class ChaosProxy {
 public:
  // Forwards to 127.0.0.1:`upstream_port`. A connection is faulty with probability
  // `fault_rate` (0 to 1); a chunk is delayed (1 to 30 ms) with probability
  // `delay_rate`. Fails the current test if it cannot listen.
  ChaosProxy(uint16_t upstream_port, uint64_t seed, double fault_rate, double delay_rate = 0.1);
  // Closes every connection and joins every thread.
  ~ChaosProxy();
  ChaosProxy(const ChaosProxy&) = delete;
  ChaosProxy& operator=(const ChaosProxy&) = delete;

  // tcp://127.0.0.1:PORT, for `samsync sync --server`.
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // New connections go to this port from now on (a restarted server listens on a new one).
  void SetUpstream(uint16_t port) { upstream_port_ = port; }
  void SetFaultRate(double fault_rate);
  // Every new connection gets `fate` at its chunk number `at_chunk` (counted over both
  // directions, client to server first), in place of a random one; for tests of one
  // fault. Undone by SetFaultRate.
  void ForceFate(Fate fate, int at_chunk);
  ChaosCounts counts() const;

 private:
  void AcceptLoop();
  void Pump(int client, uint64_t seed);

  std::atomic<bool> stop_{false};
  std::atomic<uint16_t> upstream_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  double delay_rate_;

  mutable std::mutex mutex_;  // guards everything below
  std::mt19937_64 random_;
  double fault_rate_;
  bool forced_ = false;
  Fate forced_fate_ = Fate::kClean;
  int forced_chunk_ = 0;
  ChaosCounts counts_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace samsync::testing

#endif  // SAMSYNC_TESTS_CHAOS_PROXY_H_
