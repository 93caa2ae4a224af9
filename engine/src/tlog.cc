#include "samsync/tlog.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <string>

namespace samsync {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// The largest power of two smaller than n (n >= 2): the RFC's k.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// MTH(D[start:start+count]) for a subtree the RFC recursion meets: `start` is a
// multiple of a power of two >= count, so the decomposition of `count` into powers of
// two, largest first, lands on aligned complete subtrees. Reads popcount(count) nodes.
Result<Hash> SubtreeHash(const MerkleNodes& nodes, uint64_t start, uint64_t count) {
  assert(count > 0);
  std::array<Hash, 64> parts;
  size_t n = 0;
  uint64_t position = start;
  for (unsigned level = static_cast<unsigned>(std::bit_width(count)); level-- > 0;) {
    uint64_t width = uint64_t{1} << level;
    if ((count & width) == 0) continue;
    SAMSYNC_ASSIGN_OR_RETURN(parts[n], nodes.Node(level, position >> level));
    ++n;
    position += width;
  }
  Hash hash = parts[n - 1];
  for (size_t i = n - 1; i-- > 0;) hash = MerkleNodeHash(parts[i], hash);
  return hash;
}

// RFC 6962 §2.1.1 PATH(m, D[start:start+n]), appended to `out` deepest first.
Status AppendPath(const MerkleNodes& nodes, uint64_t m, uint64_t start, uint64_t n, std::vector<Hash>& out) {
  if (n == 1) return Status::Ok();
  uint64_t k = SplitPoint(n);
  if (m < k) {
    SAMSYNC_RETURN_IF_ERROR(AppendPath(nodes, m, start, k, out));
    SAMSYNC_ASSIGN_OR_RETURN(Hash right, SubtreeHash(nodes, start + k, n - k));
    out.push_back(right);
  } else {
    SAMSYNC_RETURN_IF_ERROR(AppendPath(nodes, m - k, start + k, n - k, out));
    SAMSYNC_ASSIGN_OR_RETURN(Hash left, SubtreeHash(nodes, start, k));
    out.push_back(left);
  }
  return Status::Ok();
}

// RFC 6962 §2.1.2 SUBPROOF(m, D[start:start+n], b), appended to `out` deepest first.
Status AppendSubproof(const MerkleNodes& nodes, uint64_t m, uint64_t start, uint64_t n, bool b,
                      std::vector<Hash>& out) {
  if (m == n) {
    if (b) return Status::Ok();
    SAMSYNC_ASSIGN_OR_RETURN(Hash whole, SubtreeHash(nodes, start, n));
    out.push_back(whole);
    return Status::Ok();
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    SAMSYNC_RETURN_IF_ERROR(AppendSubproof(nodes, m, start, k, b, out));
    SAMSYNC_ASSIGN_OR_RETURN(Hash right, SubtreeHash(nodes, start + k, n - k));
    out.push_back(right);
  } else {
    SAMSYNC_RETURN_IF_ERROR(AppendSubproof(nodes, m - k, start + k, n - k, false, out));
    SAMSYNC_ASSIGN_OR_RETURN(Hash left, SubtreeHash(nodes, start, k));
    out.push_back(left);
  }
  return Status::Ok();
}

// RFC 9162's "right-shift both fn and sn equally until either LSB(fn) is set or fn is 0".
void ShiftUntilOddOrZero(uint64_t& fn, uint64_t& sn) {
  while (fn != 0 && (fn & 1) == 0) {
    fn >>= 1;
    sn >>= 1;
  }
}

Status ProofFails(std::string message) { return {Code::kBadSignature, std::move(message)}; }

}  // namespace

Hash MerkleLeafHash(std::span<const uint8_t> leaf) {
  Sha256Hasher hasher;
  hasher.Update(std::span<const uint8_t>(&kLeafPrefix, 1));
  hasher.Update(leaf);
  return hasher.Finish();
}

Hash MerkleNodeHash(const Hash& left, const Hash& right) {
  // One call over one buffer: the hot path of every proof check and root recomputation.
  std::array<uint8_t, 65> message;
  message[0] = kNodePrefix;
  std::copy(left.bytes.begin(), left.bytes.end(), message.begin() + 1);
  std::copy(right.bytes.begin(), right.bytes.end(), message.begin() + 33);
  return Sha256(message);
}

Hash MerkleEmptyRoot() { return Sha256({}); }

MerkleNodes::~MerkleNodes() = default;

Status MerkleAppend(uint64_t leaf_index, const Hash& leaf_hash, const MerkleNodes& nodes,
                    const MerkleNodeSink& put) {
  if (leaf_index == UINT64_MAX) return Status::Invalid("the transparency log is full (2^64 - 1 leaves)");
  SAMSYNC_RETURN_IF_ERROR(put(0, leaf_index, leaf_hash));
  Hash hash = leaf_hash;
  uint64_t index = leaf_index;
  unsigned level = 0;
  // While this node is a right child, its parent is complete now.
  while (index & 1) {
    SAMSYNC_ASSIGN_OR_RETURN(Hash left, nodes.Node(level, index - 1));
    hash = MerkleNodeHash(left, hash);
    ++level;
    index >>= 1;
    SAMSYNC_RETURN_IF_ERROR(put(level, index, hash));
  }
  return Status::Ok();
}

Result<Hash> MerkleRoot(const MerkleNodes& nodes, uint64_t size) {
  if (size == 0) return MerkleEmptyRoot();
  return SubtreeHash(nodes, 0, size);
}

Result<std::vector<Hash>> MerkleInclusionProof(const MerkleNodes& nodes, uint64_t index, uint64_t size) {
  if (index >= size) {
    return Status::Invalid("leaf index " + std::to_string(index) + " is not in a tree of " + std::to_string(size) +
                           " leaves");
  }
  std::vector<Hash> proof;
  SAMSYNC_RETURN_IF_ERROR(AppendPath(nodes, index, 0, size, proof));
  return proof;
}

Result<std::vector<Hash>> MerkleConsistencyProof(const MerkleNodes& nodes, uint64_t old_size, uint64_t size) {
  if (old_size == 0) return Status::Invalid("a consistency proof needs an earlier tree of at least one leaf");
  if (old_size > size) {
    return Status::Invalid("the earlier tree size " + std::to_string(old_size) + " is larger than the later tree size " +
                           std::to_string(size));
  }
  std::vector<Hash> proof;
  SAMSYNC_RETURN_IF_ERROR(AppendSubproof(nodes, old_size, 0, size, true, proof));
  return proof;
}

Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size, std::span<const Hash> proof,
                       const Hash& root) {
  // 1. leaf_index must be below tree_size.
  if (index >= size) {
    return Status::Invalid("leaf index " + std::to_string(index) + " is not in a tree of " + std::to_string(size) +
                           " leaves");
  }
  // 2.-3.
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  // 4.
  for (const Hash& p : proof) {
    if (sn == 0) return ProofFails("the inclusion proof has more hashes than a tree of its size needs");
    if ((fn & 1) || fn == sn) {
      r = MerkleNodeHash(p, r);
      if ((fn & 1) == 0) ShiftUntilOddOrZero(fn, sn);
    } else {
      r = MerkleNodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // 5.
  if (sn != 0) return ProofFails("the inclusion proof has fewer hashes than a tree of its size needs");
  if (r != root) return ProofFails("the inclusion proof does not lead to the checkpoint's root");
  return Status::Ok();
}

Status VerifyConsistency(uint64_t old_size, uint64_t size, const Hash& old_root, const Hash& root,
                         std::span<const Hash> proof) {
  if (old_size == 0) return Status::Invalid("a consistency proof needs an earlier tree of at least one leaf");
  if (old_size > size) {
    return Status::Invalid("the earlier tree size " + std::to_string(old_size) + " is larger than the later tree size " +
                           std::to_string(size));
  }
  if (old_size == size) {
    if (!proof.empty()) return ProofFails("a consistency proof between trees of the same size must be empty");
    if (old_root != root) return ProofFails("two checkpoints of the same tree size have different roots");
    return Status::Ok();
  }
  // 1.
  if (proof.empty()) return ProofFails("the consistency proof is empty");
  // 2. If first is an exact power of two, first_hash is prepended to the path: the
  // path is then `old_root` followed by `proof`, read here without copying.
  bool prepend = std::has_single_bit(old_size);
  size_t length = proof.size() + (prepend ? 1 : 0);
  auto path = [&](size_t i) -> const Hash& { return prepend ? (i == 0 ? old_root : proof[i - 1]) : proof[i]; };
  // 3.-4.
  uint64_t fn = old_size - 1;
  uint64_t sn = size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  // 5.
  Hash fr = path(0);
  Hash sr = path(0);
  // 6.
  for (size_t i = 1; i < length; ++i) {
    const Hash& c = path(i);
    if (sn == 0) return ProofFails("the consistency proof has more hashes than its tree sizes need");
    if ((fn & 1) || fn == sn) {
      fr = MerkleNodeHash(c, fr);
      sr = MerkleNodeHash(c, sr);
      if ((fn & 1) == 0) ShiftUntilOddOrZero(fn, sn);
    } else {
      sr = MerkleNodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  // 7.
  if (sn != 0) return ProofFails("the consistency proof has fewer hashes than its tree sizes need");
  if (fr != old_root) return ProofFails("the consistency proof does not lead to the earlier checkpoint's root");
  if (sr != root) return ProofFails("the consistency proof does not lead to the later checkpoint's root");
  return Status::Ok();
}

void MerkleRootBuilder::Add(const Hash& leaf_hash) {
  Hash hash = leaf_hash;
  // Each trailing one bit of the old size is a complete subtree this leaf now pairs with.
  for (uint64_t s = size_; s & 1; s >>= 1) {
    hash = MerkleNodeHash(stack_.back(), hash);
    stack_.pop_back();
  }
  stack_.push_back(hash);
  ++size_;
}

Hash MerkleRootBuilder::Root() const {
  if (stack_.empty()) return MerkleEmptyRoot();
  Hash hash = stack_.back();
  for (size_t i = stack_.size() - 1; i-- > 0;) hash = MerkleNodeHash(stack_[i], hash);
  return hash;
}

MemoryMerkleNodes::~MemoryMerkleNodes() = default;

void MemoryMerkleNodes::Append(const Hash& leaf_hash) {
  Status status = MerkleAppend(size(), leaf_hash, *this, [this](unsigned level, uint64_t index, const Hash& hash) {
    if (level >= levels_.size()) levels_.resize(level + 1);
    assert(levels_[level].size() == index);
    (void)index;
    levels_[level].push_back(hash);
    return Status::Ok();
  });
  // Every left sibling MerkleAppend reads was put by an earlier Append.
  assert(status.ok());
  status.Ignore();
}

Result<Hash> MemoryMerkleNodes::Node(unsigned level, uint64_t index) const {
  if (level >= levels_.size() || index >= levels_[level].size()) {
    return Status::NotFound("Merkle tree node (level " + std::to_string(level) + ", index " + std::to_string(index) +
                            ") is not stored");
  }
  return levels_[level][index];
}

}  // namespace samsync
