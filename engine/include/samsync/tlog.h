// The transparency log's Merkle tree: RFC 6962 §2.1 (= RFC 9162 §2.1) over SHA-256.
// Pure computation: no storage, no I/O, no clock.
//
//   leaf hash   MerkleLeafHash(d)      = SHA-256(0x00 || d)
//   node hash   MerkleNodeHash(l, r)   = SHA-256(0x01 || l || r)
//   empty tree  MerkleEmptyRoot()      = SHA-256("")
//   MTH(D[n])   = H(MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n
//
// The log never holds its tree in memory. What is stored (MerkleNodes) is the hash of
// every *complete* subtree: node (level L, index i) covers the 2^L leaves
// [i·2^L, (i+1)·2^L); level 0 are the leaf hashes. A tree of n leaves has 2n - popcount(n)
// of them, and appending one leaf completes 1 + (trailing one bits of its index) of them
// (MerkleAppend). Any other subtree the RFC's recursion meets, D[a:b] with b - a not a
// power of two, is the right-to-left fold of its decomposition into complete subtrees
// (one per set bit of b - a, largest first), so roots and proofs need only stored nodes:
// a root reads popcount(n) <= 64 nodes, a proof at most O(log² n).
//
// Proofs are lists of hashes in the RFC's order (the leaf's sibling first, up to the
// root). The Verify* functions run RFC 9162's algorithms (§2.1.3.2 inclusion, §2.1.4.2
// consistency) step for step; they need no tree, only the proof and the two roots.
//
// Every function may be called from any thread; MerkleNodes implementations say what
// their own thread rules are (an LMDB-backed one lives in its transaction's thread).
#ifndef SAMSYNC_TLOG_H_
#define SAMSYNC_TLOG_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "samsync/keys.h"
#include "samsync/status.h"

namespace samsync {

// SHA-256(0x00 || leaf): the hash of one log entry (for samsync, a commit id's 32
// bytes).
Hash MerkleLeafHash(std::span<const uint8_t> leaf);
// SHA-256(0x01 || left || right).
Hash MerkleNodeHash(const Hash& left, const Hash& right);
// SHA-256 of no bytes: the root of the tree of 0 leaves (RFC 6962 §2.1).
Hash MerkleEmptyRoot();

// Read access to stored complete-subtree hashes.
class MerkleNodes {
 public:
  virtual ~MerkleNodes();
  // The hash of the complete subtree of 2^level leaves starting at leaf index·2^level
  // (level 0: the leaf hashes; level < 64). Fails with kNotFound if that node was
  // never stored (for instance, it is not complete yet); an implementation over
  // storage may fail with its own errors (kCorruption, kIoError), which every function
  // below passes through unchanged.
  virtual Result<Hash> Node(unsigned level, uint64_t index) const = 0;
};

// Receives the nodes MerkleAppend completes. An error stops the append and is
// returned by it (a store that is full, say).
using MerkleNodeSink = std::function<Status(unsigned level, uint64_t index, const Hash& hash)>;

// Appends leaf `leaf_index` (which must be the tree's current size: the caller's
// contract, not checked) with hash `leaf_hash`: puts node (0, leaf_index) and then
// every node this leaf completes, lowest level first — 1 + countr_one(leaf_index) puts.
// For each completed node it reads the left sibling through `nodes`; those are all
// nodes completed by *earlier* appends (leaves < leaf_index), never one put by this
// call, so `nodes` may or may not see this call's own puts (an LMDB write transaction
// does, a staged writer may not). Reads countr_one(leaf_index) nodes. Returns the
// first error of a read or a put; puts already made are the caller's to roll back
// (abort the transaction).
//
// Refinement of the brief: `put` returns Status, and so does MerkleAppend, because a
// put into a store can fail.
Status MerkleAppend(uint64_t leaf_index, const Hash& leaf_hash, const MerkleNodes& nodes,
                    const MerkleNodeSink& put);

// MTH of the first `size` leaves: MerkleEmptyRoot() for 0. Reads popcount(size) nodes.
Result<Hash> MerkleRoot(const MerkleNodes& nodes, uint64_t size);

// RFC 6962 §2.1.1 PATH(index, D[size]): the audit path of leaf `index`, the sibling
// nearest the leaf first; empty for a tree of one leaf. At most ceil(log2 size) <= 64
// hashes (fewer for a leaf in a short right-hand subtree: leaf 4 of 5 needs one).
// Fails with kInvalidInput unless index < size.
Result<std::vector<Hash>> MerkleInclusionProof(const MerkleNodes& nodes, uint64_t index, uint64_t size);

// RFC 6962 §2.1.2 PROOF(old_size, D[size]) = SUBPROOF(old_size, D[size], true): proves
// that the tree of `old_size` leaves is a prefix of the tree of `size`. Empty when the
// sizes are equal. At most 2·64 hashes. Fails with kInvalidInput when old_size is 0
// (the RFC defines proofs for 0 < old_size only: every tree extends the empty one, and
// the verifier refuses such a proof anyway) or old_size > size.
Result<std::vector<Hash>> MerkleConsistencyProof(const MerkleNodes& nodes, uint64_t old_size, uint64_t size);

// RFC 9162 §2.1.3.2: checks that `proof` shows leaf `leaf_hash` at `index` in the tree
// of `size` leaves whose root is `root`. Fails with kInvalidInput when index >= size
// (nothing can be proved), and with kBadSignature when the proof is too long, too short
// or does not lead to `root`, the message saying which.
//
// Note that the algorithm binds the proof to (index, size, root) taken together: a
// size is only meaningful with the root signed for it (a checkpoint), so never take
// the size from one source and the root from another. A proof often verifies for a
// nearby size against the *same* root (leaf 0 of 3 and leaf 0 of 4 have the same path
// shape; so do most leaves of trees of n and n + 1), but not against that other size's
// own root.
Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size, std::span<const Hash> proof,
                       const Hash& root);

// RFC 9162 §2.1.4.2: checks that `proof` shows the tree of `old_size` leaves with root
// `old_root` to be a prefix of the tree of `size` leaves with root `root`. The RFC's
// algorithm is for 0 < old_size < size; for the edges, as transparency-dev/merkle does:
//   old_size == size: the proof must be empty and the roots equal (kBadSignature if not);
//   old_size == 0 or old_size > size: kInvalidInput (nothing to verify; a caller
//     holding a larger old checkpoint than the new one is looking at a rollback).
// Otherwise fails with kBadSignature when the proof is empty, too long, too short, or
// does not lead to one of the two roots, the message saying which. As for
// VerifyInclusion, each size counts only together with the root signed for it.
Status VerifyConsistency(uint64_t old_size, uint64_t size, const Hash& old_root, const Hash& root,
                         std::span<const Hash> proof);

// The root of a growing list of leaves, streaming, in O(log n) memory (a compact
// range: the roots of the complete subtrees of the decomposition of size(), at most
// 64). For an auditor recomputing a checkpoint's root from every leaf, and, by calling
// Root() at an earlier size on the way, an older checkpoint's root too. A value type.
class MerkleRootBuilder {
 public:
  // Amortised O(1) hashes (at most 64).
  void Add(const Hash& leaf_hash);
  uint64_t size() const { return size_; }
  // MTH of the leaves added so far; MerkleEmptyRoot() before the first. popcount(size)
  // - 1 hashes.
  Hash Root() const;

 private:
  std::vector<Hash> stack_;  // complete-subtree roots, largest (leftmost) first
  uint64_t size_ = 0;
};

// A MerkleNodes held in memory, one vector per level: for tests, and for an auditor
// that has a list of leaves (an audit bundle) and wants proofs between two of its
// checkpoints. 32 bytes per node, about 64 bytes per leaf. A value type; one thread at
// a time.
class MemoryMerkleNodes : public MerkleNodes {
 public:
  MemoryMerkleNodes() = default;
  ~MemoryMerkleNodes() override;

  // Appends the next leaf through MerkleAppend.
  void Append(const Hash& leaf_hash);
  // The number of leaves appended.
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }

  Result<Hash> Node(unsigned level, uint64_t index) const override;

 private:
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace samsync

#endif  // SAMSYNC_TLOG_H_
