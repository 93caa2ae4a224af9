// The transparency log's Merkle tree (tlog.h): the published RFC 6962 vectors
// reproduced exactly, then every tree of 1..300 leaves, every proof in them, and every
// proof broken a bit at a time.
#include "samsync/tlog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace samsync {
namespace {

using nlohmann::json;

// --- Helpers that speak the tree's language -------------------------------------------

std::vector<uint8_t> Bytes(const std::string& hex) {
  EXPECT_EQ(hex.size() % 2, 0u) << hex;
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

Hash H(const std::string& hex) {
  auto hash = Hash::FromHex(hex, "test hash");
  EXPECT_TRUE(hash.ok()) << hex;
  return hash.ok() ? *hash : Hash{};
}

// A probe's hash field, which may be malformed on purpose (empty, or not 32 bytes).
std::optional<Hash> MaybeHash(const std::string& hex) {
  if (hex.size() != 64) return std::nullopt;
  return H(hex);
}

std::vector<Hash> Hashes(const json& list) {
  std::vector<Hash> out;
  for (const json& hex : list) out.push_back(H(hex.get<std::string>()));
  return out;
}

std::vector<std::string> Hex(const std::vector<Hash>& hashes) {
  std::vector<std::string> out;
  for (const Hash& hash : hashes) out.push_back(hash.ToHex());
  return out;
}

Hash FlipBit(Hash hash, size_t bit) {
  hash.bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  return hash;
}

// A distinct leaf hash per index.
Hash LeafAt(uint64_t i) {
  uint8_t bytes[8];
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<uint8_t>(i >> (8 * k));
  return MerkleLeafHash(bytes);
}

// RFC 6962 §2.1 MTH, straight from the definition: the reference the stored-node
// implementation is held to.
Hash NaiveRoot(std::span<const Hash> leaves) {
  if (leaves.empty()) return MerkleEmptyRoot();
  if (leaves.size() == 1) return leaves[0];
  size_t k = std::bit_floor(leaves.size() - 1);
  return MerkleNodeHash(NaiveRoot(leaves.first(k)), NaiveRoot(leaves.subspan(k)));
}

json LoadVectors(const std::string& file) {
  std::string path = std::string(SAMSYNC_VECTORS_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read the test vectors " << path;
    return json::object();
  }
  return json::parse(in);
}

const json& Rfc6962() {
  static const json vectors = LoadVectors("rfc6962.json");
  return vectors;
}

// A MerkleNodes that counts reads (the O(log² n) bound) and can hide nodes.
class CountingNodes : public MerkleNodes {
 public:
  explicit CountingNodes(const MerkleNodes& inner) : inner_(inner) {}
  Result<Hash> Node(unsigned level, uint64_t index) const override {
    ++reads;
    return inner_.Node(level, index);
  }
  mutable uint64_t reads = 0;

 private:
  const MerkleNodes& inner_;
};

// Nodes of an enormous tree, made up (not consistent with one another): enough to count
// reads and proof lengths at sizes near 2^64, where no real tree fits in memory.
class SyntheticNodes : public MerkleNodes {
 public:
  Result<Hash> Node(unsigned level, uint64_t index) const override {
    ++reads;
    if (level >= 64) return Status::Invalid("level out of range");
    Sha256Hasher hasher;
    hasher.UpdateU64(level);
    hasher.UpdateU64(index);
    return hasher.Finish();
  }
  mutable uint64_t reads = 0;
};

// A tree of 300 distinct leaves, shared by the exhaustive tests (a tree's nodes hold
// every smaller tree's nodes too).
constexpr uint64_t kMaxSize = 300;

struct Tree300 {
  std::vector<Hash> leaves;
  MemoryMerkleNodes nodes;
  std::vector<Hash> roots;  // roots[n] = MTH of the first n leaves
  Tree300() {
    for (uint64_t i = 0; i < kMaxSize; ++i) {
      leaves.push_back(LeafAt(i));
      nodes.Append(leaves.back());
    }
    for (uint64_t n = 0; n <= kMaxSize; ++n) roots.push_back(NaiveRoot(std::span<const Hash>(leaves).first(n)));
  }
};

const Tree300& Tree() {
  static const Tree300 tree;
  return tree;
}

// --- Published vectors -----------------------------------------------------------------

TEST(MerkleVectorsTest, HasherVectors) {
  const json& v = Rfc6962();
  ASSERT_TRUE(v.contains("hasher_vectors"));
  int checked = 0;
  for (const json& vector : v["hasher_vectors"]) {
    SCOPED_TRACE(vector["desc"].get<std::string>());
    std::string fn = vector["fn"];
    if (fn == "empty_root") {
      EXPECT_EQ(MerkleEmptyRoot().ToHex(), vector["want"]);
    } else if (fn == "leaf") {
      EXPECT_EQ(MerkleLeafHash(Bytes(vector["input_hex"])).ToHex(), vector["want"]);
    } else if (fn == "node") {
      // The vector's children are 4-byte strings; MerkleNodeHash takes 32-byte hashes
      // only, so the formula is checked on the bytes, and MerkleNodeHash against it.
      std::vector<uint8_t> message{0x01};
      for (uint8_t b : Bytes(vector["left_hex"])) message.push_back(b);
      for (uint8_t b : Bytes(vector["right_hex"])) message.push_back(b);
      EXPECT_EQ(Sha256(message).ToHex(), vector["want"]);
      Hash left = LeafAt(1), right = LeafAt(2);
      std::vector<uint8_t> node{0x01};
      node.insert(node.end(), left.bytes.begin(), left.bytes.end());
      node.insert(node.end(), right.bytes.begin(), right.bytes.end());
      EXPECT_EQ(MerkleNodeHash(left, right), Sha256(node));
    } else {
      ADD_FAILURE() << "unknown hasher vector " << fn;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(MerkleVectorsTest, LeafHashesNodesAndRootsOfEverySize) {
  const json& v = Rfc6962();
  ASSERT_EQ(v["leaves"].size(), 8u);
  MemoryMerkleNodes nodes;
  MerkleRootBuilder builder;
  EXPECT_EQ(MerkleRoot(nodes, 0)->ToHex(), v["roots_by_size"][0]);
  EXPECT_EQ(builder.Root().ToHex(), v["roots_by_size"][0]);
  for (size_t i = 0; i < 8; ++i) {
    Hash leaf = MerkleLeafHash(Bytes(v["leaves"][i]));
    EXPECT_EQ(leaf.ToHex(), v["leaf_hashes"][i]) << "leaf " << i;
    nodes.Append(leaf);
    builder.Add(leaf);
    auto root = MerkleRoot(nodes, i + 1);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(root->ToHex(), v["roots_by_size"][i + 1]) << "size " << i + 1;
    EXPECT_EQ(builder.Root().ToHex(), v["roots_by_size"][i + 1]) << "size " << i + 1;
    EXPECT_EQ(builder.size(), i + 1);
  }
  const json& levels = v["node_hashes_by_level"];
  ASSERT_EQ(levels.size(), 4u);
  for (unsigned level = 0; level < levels.size(); ++level) {
    for (uint64_t index = 0; index < levels[level].size(); ++index) {
      auto node = nodes.Node(level, index);
      ASSERT_TRUE(node.ok()) << node.status().message();
      EXPECT_EQ(node->ToHex(), levels[level][index]) << "level " << level << " index " << index;
    }
    // Nothing beyond the complete subtrees is stored.
    EXPECT_EQ(nodes.Node(level, levels[level].size()).status().code(), Code::kNotFound);
  }
}

// The tree of the 8 published leaves.
MemoryMerkleNodes PublishedTree() {
  MemoryMerkleNodes nodes;
  for (const json& leaf : Rfc6962()["leaves"]) nodes.Append(MerkleLeafHash(Bytes(leaf)));
  return nodes;
}

void CheckInclusion(const MemoryMerkleNodes& nodes, const json& vector) {
  uint64_t index = vector["leaf_index"], size = vector["tree_size"];
  SCOPED_TRACE("leaf " + std::to_string(index) + " of " + std::to_string(size));
  auto proof = MerkleInclusionProof(nodes, index, size);
  ASSERT_TRUE(proof.ok()) << proof.status().message();
  EXPECT_EQ(Hex(*proof), vector["proof"].get<std::vector<std::string>>());
  auto root = MerkleRoot(nodes, size);
  ASSERT_TRUE(root.ok());
  if (vector.contains("root")) {
    EXPECT_EQ(root->ToHex(), vector["root"]);
  }
  auto leaf = nodes.Node(0, index);
  ASSERT_TRUE(leaf.ok());
  if (vector.contains("leaf_hash")) {
    EXPECT_EQ(leaf->ToHex(), vector["leaf_hash"]);
  }
  Status verified = VerifyInclusion(*leaf, index, size, Hashes(vector["proof"]), *root);
  EXPECT_TRUE(verified.ok()) << verified.message();
}

void CheckConsistency(const MemoryMerkleNodes& nodes, const json& vector) {
  uint64_t old_size = vector["size1"], size = vector["size2"];
  SCOPED_TRACE("sizes " + std::to_string(old_size) + " to " + std::to_string(size));
  auto proof = MerkleConsistencyProof(nodes, old_size, size);
  ASSERT_TRUE(proof.ok()) << proof.status().message();
  EXPECT_EQ(Hex(*proof), vector["proof"].get<std::vector<std::string>>());
  auto old_root = MerkleRoot(nodes, old_size);
  auto root = MerkleRoot(nodes, size);
  ASSERT_TRUE(old_root.ok() && root.ok());
  if (vector.contains("root1")) {
    EXPECT_EQ(old_root->ToHex(), vector["root1"]);
  }
  if (vector.contains("root2")) {
    EXPECT_EQ(root->ToHex(), vector["root2"]);
  }
  Status verified = VerifyConsistency(old_size, size, *old_root, *root, Hashes(vector["proof"]));
  EXPECT_TRUE(verified.ok()) << verified.message();
}

TEST(MerkleVectorsTest, PublishedInclusionProofs) {
  MemoryMerkleNodes nodes = PublishedTree();
  ASSERT_EQ(Rfc6962()["inclusion_proofs"].size(), 5u);
  for (const json& vector : Rfc6962()["inclusion_proofs"]) {
    CheckInclusion(nodes, vector);
    EXPECT_EQ(MerkleLeafHash(Bytes(vector["leaf_input"])).ToHex(), vector["leaf_hash"]);
  }
}

TEST(MerkleVectorsTest, PublishedConsistencyProofs) {
  MemoryMerkleNodes nodes = PublishedTree();
  ASSERT_EQ(Rfc6962()["consistency_proofs"].size(), 5u);
  for (const json& vector : Rfc6962()["consistency_proofs"]) CheckConsistency(nodes, vector);
}

TEST(MerkleVectorsTest, EveryProofOfTheTreesOfOneToEightLeaves) {
  MemoryMerkleNodes nodes = PublishedTree();
  const json& derived = Rfc6962()["derived_exhaustive"];
  ASSERT_EQ(derived["inclusion"].size(), 36u);
  ASSERT_EQ(derived["consistency"].size(), 36u);
  for (const json& vector : derived["inclusion"]) CheckInclusion(nodes, vector);
  for (const json& vector : derived["consistency"]) CheckConsistency(nodes, vector);
}

// Our roots are typed Hash values, so a probe's malformed root (empty, or the ASCII
// "don't care 1") cannot be passed as it is. Since a verifier only ever compares roots,
// a malformed one is replaced by a stand-in 32-byte value derived from its bytes: equal
// roots stay equal and unequal ones unequal. Malformed leaf hashes and proof hashes are
// refused where they are decoded (transparency-dev's policy (1): a hash is 32 bytes).
Hash RootOrStandIn(const std::string& hex) {
  if (auto hash = MaybeHash(hex)) return *hash;
  std::vector<uint8_t> bytes = Bytes(hex);
  std::string marker = "stand-in for a malformed root: ";
  bytes.insert(bytes.begin(), marker.begin(), marker.end());
  return Sha256(bytes);
}

TEST(MerkleVectorsTest, TransparencyDevInclusionProbes) {
  const json& probes = Rfc6962()["probes"]["inclusion"];
  ASSERT_EQ(probes.size(), 98u);
  int accepted = 0;
  for (const json& probe : probes) {
    SCOPED_TRACE(probe["file"].get<std::string>());
    bool rejected = false;
    std::optional<Hash> leaf = MaybeHash(probe["leaf_hash"]);
    std::vector<Hash> proof;
    for (const json& hex : probe["proof"]) {
      std::optional<Hash> hash = MaybeHash(hex);
      if (!hash) rejected = true;
      else proof.push_back(*hash);
    }
    if (!leaf) rejected = true;
    if (!rejected) {
      Status status = VerifyInclusion(*leaf, probe["leaf_index"], probe["tree_size"], proof, RootOrStandIn(probe["root"]));
      rejected = !status.ok();
      if (rejected) {
        EXPECT_FALSE(status.message().empty());
      }
    }
    EXPECT_EQ(rejected, probe["want_err"].get<bool>());
    if (!rejected) ++accepted;
  }
  EXPECT_EQ(accepted, 6);
}

TEST(MerkleVectorsTest, TransparencyDevConsistencyProbes) {
  const json& probes = Rfc6962()["probes"]["consistency"];
  ASSERT_EQ(probes.size(), 98u);
  int accepted = 0;
  for (const json& probe : probes) {
    SCOPED_TRACE(probe["file"].get<std::string>());
    bool rejected = false;
    std::vector<Hash> proof;
    for (const json& hex : probe["proof"]) {
      std::optional<Hash> hash = MaybeHash(hex);
      if (!hash) rejected = true;
      else proof.push_back(*hash);
    }
    if (!rejected) {
      Status status = VerifyConsistency(probe["size1"], probe["size2"], RootOrStandIn(probe["root1"]),
                                        RootOrStandIn(probe["root2"]), proof);
      rejected = !status.ok();
    }
    EXPECT_EQ(rejected, probe["want_err"].get<bool>());
    if (!rejected) ++accepted;
  }
  EXPECT_EQ(accepted, 6);
}

// Google's Argon 2020 CT log at 961,984,013 leaves: 64-bit sizes, 30-hash proofs.
TEST(MerkleVectorsTest, RealCertificateTransparencyProofs) {
  const json& ct = Rfc6962()["real_world_ct"];
  const json& inclusion = ct["inclusion"];
  Hash leaf = MerkleLeafHash(Bytes(inclusion["leaf_input"]));
  EXPECT_EQ(leaf.ToHex(), inclusion["leaf_hash"]);
  std::vector<Hash> proof = Hashes(inclusion["proof"]);
  Hash root = H(inclusion["root"]);
  uint64_t index = inclusion["leaf_index"], size = inclusion["tree_size"];
  Status status = VerifyInclusion(leaf, index, size, proof, root);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(VerifyInclusion(leaf, index + 1, size, proof, root).ok());
  EXPECT_FALSE(VerifyInclusion(leaf, index, size, proof, FlipBit(root, 200)).ok());
  for (size_t j = 0; j < proof.size(); ++j) {
    std::vector<Hash> broken = proof;
    broken[j] = FlipBit(broken[j], j * 8 + 3);
    EXPECT_FALSE(VerifyInclusion(leaf, index, size, broken, root).ok()) << "proof[" << j << "]";
  }

  const json& consistency = ct["consistency"];
  std::vector<Hash> cproof = Hashes(consistency["proof"]);
  Hash root1 = H(consistency["root1"]), root2 = H(consistency["root2"]);
  uint64_t size1 = consistency["size1"], size2 = consistency["size2"];
  status = VerifyConsistency(size1, size2, root1, root2, cproof);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(VerifyConsistency(size1, size2, FlipBit(root1, 0), root2, cproof).ok());
  EXPECT_FALSE(VerifyConsistency(size1, size2, root1, FlipBit(root2, 255), cproof).ok());
  for (size_t j = 0; j < cproof.size(); ++j) {
    std::vector<Hash> broken = cproof;
    broken[j] = FlipBit(broken[j], j * 8 + 5);
    EXPECT_FALSE(VerifyConsistency(size1, size2, root1, root2, broken).ok()) << "proof[" << j << "]";
  }
}

// --- Every tree of 1..300 leaves -------------------------------------------------------

TEST(MerkleTreeTest, RootsAgreeWithTheDefinitionForEverySize) {
  const Tree300& tree = Tree();
  MerkleRootBuilder builder;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    builder.Add(tree.leaves[n - 1]);
    auto stored = MerkleRoot(tree.nodes, n);
    ASSERT_TRUE(stored.ok()) << stored.status().message();
    EXPECT_EQ(*stored, tree.roots[n]) << "size " << n;
    EXPECT_EQ(builder.Root(), tree.roots[n]) << "size " << n;
  }
  // A tree grown only to n stores exactly its complete subtrees, and gives the same root.
  for (uint64_t n : {1, 2, 3, 5, 64, 255, 256, 257}) {
    MemoryMerkleNodes small;
    for (uint64_t i = 0; i < n; ++i) small.Append(tree.leaves[i]);
    EXPECT_EQ(*MerkleRoot(small, n), tree.roots[n]);
    uint64_t stored = 0;
    for (unsigned level = 0; level < 64; ++level) {
      for (uint64_t index = 0; small.Node(level, index).ok(); ++index) ++stored;
    }
    EXPECT_EQ(stored, 2 * n - static_cast<uint64_t>(std::popcount(n))) << "size " << n;
  }
}

// Every proof of every pair of sizes is generated and verified. Breaking them is what
// costs (libsodium's SHA-256 is ~0.5 µs, a check ~10 of them), so the mutations run on
// every pair of the trees up to 64 leaves, every pair of ten sizes around powers of two
// and the end, and one pair in 16 (varying with n) of the rest: about 6,700 of 45,150.
bool Mutate(uint64_t n, uint64_t m) {
  for (uint64_t size : {100, 127, 128, 129, 200, 255, 256, 257, 299, 300}) {
    if (n == size) return true;
  }
  return n <= 64 || (m * 7 + n) % 16 == 0;
}

// Sizes for which every bit of every proof hash is flipped in turn; for the others one
// bit per hash, a different one each time (so each of the 256 positions is hit often).
bool FlipEveryBit(uint64_t n) { return n <= 9 || n == 64; }

TEST(MerkleTreeTest, EveryInclusionProofVerifiesAndEveryChangeBreaksIt) {
  const Tree300& tree = Tree();
  uint64_t proofs = 0, mutated = 0, flips = 0, same_root_other_size_accepted = 0;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    const Hash& root = tree.roots[n];
    for (uint64_t i = 0; i < n; ++i) {
      auto generated = MerkleInclusionProof(tree.nodes, i, n);
      ASSERT_TRUE(generated.ok()) << generated.status().message();
      const std::vector<Hash>& proof = *generated;
      const Hash& leaf = tree.leaves[i];
      ASSERT_TRUE(VerifyInclusion(leaf, i, n, proof, root).ok()) << "leaf " << i << " of " << n;
      // ceil(log2 n) hashes, fewer for a leaf in a short right-hand subtree.
      ASSERT_LE(proof.size(), static_cast<size_t>(std::bit_width(n - 1))) << "leaf " << i << " of " << n;
      ASSERT_EQ(proof.empty(), n == 1);
      ++proofs;
      if (!Mutate(n, i)) continue;
      ++mutated;

      // One bit of a proof hash, of the leaf, of the root.
      for (size_t j = 0; j < proof.size(); ++j) {
        std::vector<Hash> broken = proof;
        if (FlipEveryBit(n)) {
          for (size_t bit = 0; bit < 256; ++bit) {
            broken[j] = FlipBit(proof[j], bit);
            ASSERT_FALSE(VerifyInclusion(leaf, i, n, broken, root).ok()) << "leaf " << i << " of " << n << " proof[" << j << "] bit " << bit;
            ++flips;
          }
        } else {
          broken[j] = FlipBit(proof[j], (n * 31 + i * 7 + j * 13) % 256);
          ASSERT_FALSE(VerifyInclusion(leaf, i, n, broken, root).ok()) << "leaf " << i << " of " << n << " proof[" << j << "]";
          ++flips;
        }
      }
      size_t bit = (n * 17 + i) % 256;
      ASSERT_FALSE(VerifyInclusion(FlipBit(leaf, bit), i, n, proof, root).ok());
      ASSERT_FALSE(VerifyInclusion(leaf, i, n, proof, FlipBit(root, bit)).ok());

      // Another index of the same tree.
      if (i + 1 < n) {
        ASSERT_FALSE(VerifyInclusion(leaf, i + 1, n, proof, root).ok()) << "leaf " << i << " of " << n;
      }
      if (i > 0) {
        ASSERT_FALSE(VerifyInclusion(leaf, i - 1, n, proof, root).ok()) << "leaf " << i << " of " << n;
      }
      ASSERT_FALSE(VerifyInclusion(leaf, n, n, proof, root).ok());
      // Another size, with that size's root (a checkpoint binds the two).
      if (n + 1 <= kMaxSize) {
        ASSERT_FALSE(VerifyInclusion(leaf, i, n + 1, proof, tree.roots[n + 1]).ok()) << "leaf " << i << " of " << n;
      }
      if (i < n - 1) {
        ASSERT_FALSE(VerifyInclusion(leaf, i, n - 1, proof, tree.roots[n - 1]).ok()) << "leaf " << i << " of " << n;
      }
      // Another size with this size's root may verify: see VerifyInclusion's comment.
      if (VerifyInclusion(leaf, i, n + 1, proof, root).ok()) ++same_root_other_size_accepted;
      // A proof one hash short or one hash long.
      if (!proof.empty()) {
        ASSERT_FALSE(VerifyInclusion(leaf, i, n, std::span(proof).first(proof.size() - 1), root).ok());
      }
      std::vector<Hash> longer = proof;
      longer.push_back(root);
      ASSERT_FALSE(VerifyInclusion(leaf, i, n, longer, root).ok());
    }
  }
  EXPECT_EQ(proofs, kMaxSize * (kMaxSize + 1) / 2);
  EXPECT_GT(mutated, 6500u);
  std::cout << "[          ] " << proofs << " inclusion proofs verified, " << mutated << " broken " << flips
            << " times by a bit of a proof hash, and each by a bit of the leaf and of the root, another index, another "
               "size with its root, a hash fewer and a hash more; "
            << same_root_other_size_accepted
            << " of those also verify as size n+1 against the size-n root\n";
}

TEST(MerkleTreeTest, RegressionLeafZeroOfThreeAlsoVerifiesAsLeafZeroOfFourAgainstTheSameRoot) {
  // RFC 9162's verifier only checks that the proof leads to the root for the shape the
  // size implies; leaf 0 has the path shape (right, right) in trees of 3 and 4 leaves.
  // Harmless for us: the size is never taken apart from the root signed with it.
  const Tree300& tree = Tree();
  std::vector<Hash> proof = *MerkleInclusionProof(tree.nodes, 0, 3);
  EXPECT_TRUE(VerifyInclusion(tree.leaves[0], 0, 4, proof, tree.roots[3]).ok());
  EXPECT_FALSE(VerifyInclusion(tree.leaves[0], 0, 4, proof, tree.roots[4]).ok());
}

TEST(MerkleTreeTest, EveryConsistencyProofVerifiesAndEveryChangeBreaksIt) {
  const Tree300& tree = Tree();
  uint64_t proofs = 0, mutated = 0, flips = 0, same_roots_other_size_accepted = 0;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    for (uint64_t m = 1; m <= n; ++m) {
      auto generated = MerkleConsistencyProof(tree.nodes, m, n);
      ASSERT_TRUE(generated.ok()) << generated.status().message();
      const std::vector<Hash>& proof = *generated;
      const Hash& old_root = tree.roots[m];
      const Hash& root = tree.roots[n];
      ASSERT_TRUE(VerifyConsistency(m, n, old_root, root, proof).ok()) << m << " to " << n;
      ASSERT_EQ(proof.empty(), m == n);
      ASSERT_LE(proof.size(), 2u * static_cast<size_t>(std::bit_width(n)));
      ++proofs;
      if (!Mutate(n, m)) continue;
      ++mutated;

      for (size_t j = 0; j < proof.size(); ++j) {
        std::vector<Hash> broken = proof;
        if (FlipEveryBit(n)) {
          for (size_t bit = 0; bit < 256; ++bit) {
            broken[j] = FlipBit(proof[j], bit);
            ASSERT_FALSE(VerifyConsistency(m, n, old_root, root, broken).ok()) << m << " to " << n << " proof[" << j << "] bit " << bit;
            ++flips;
          }
        } else {
          broken[j] = FlipBit(proof[j], (n * 29 + m * 11 + j * 5) % 256);
          ASSERT_FALSE(VerifyConsistency(m, n, old_root, root, broken).ok()) << m << " to " << n << " proof[" << j << "]";
          ++flips;
        }
      }
      size_t bit = (n * 13 + m) % 256;
      ASSERT_FALSE(VerifyConsistency(m, n, FlipBit(old_root, bit), root, proof).ok()) << m << " to " << n;
      ASSERT_FALSE(VerifyConsistency(m, n, old_root, FlipBit(root, bit), proof).ok()) << m << " to " << n;

      // Other sizes, each with its own root.
      for (uint64_t other : {m - 1, m + 1}) {
        if (other >= 1 && other <= kMaxSize) {
          ASSERT_FALSE(VerifyConsistency(other, n, tree.roots[other], root, proof).ok()) << m << "->" << other << " to " << n;
        }
      }
      for (uint64_t other : {n - 1, n + 1}) {
        if (other >= 1 && other <= kMaxSize) {
          ASSERT_FALSE(VerifyConsistency(m, other, old_root, tree.roots[other], proof).ok()) << m << " to " << n << "->" << other;
        }
      }
      if (m < n && VerifyConsistency(m, n + 1, old_root, root, proof).ok()) ++same_roots_other_size_accepted;
      // One hash short, one hash long.
      if (!proof.empty()) {
        ASSERT_FALSE(VerifyConsistency(m, n, old_root, root, std::span(proof).first(proof.size() - 1)).ok());
      }
      std::vector<Hash> longer = proof;
      longer.push_back(root);
      ASSERT_FALSE(VerifyConsistency(m, n, old_root, root, longer).ok()) << m << " to " << n;
    }
  }
  EXPECT_EQ(proofs, kMaxSize * (kMaxSize + 1) / 2);
  EXPECT_GT(mutated, 6500u);
  std::cout << "[          ] " << proofs << " consistency proofs verified, " << mutated << " broken " << flips
            << " times by a bit of a proof hash, and each by a bit of either root, another size with its root (either "
               "size), a hash fewer and a hash more; "
            << same_roots_other_size_accepted
            << " of those also verify as m to n+1 against the size-n root\n";
}

// --- Bounds, edges and errors ----------------------------------------------------------

TEST(MerkleTreeTest, ReadsAreLogSquaredAndProofsLogarithmic) {
  const Tree300& tree = Tree();
  CountingNodes counting(tree.nodes);
  uint64_t worst_inclusion = 0, worst_consistency = 0;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    uint64_t log = static_cast<uint64_t>(std::bit_width(n));
    counting.reads = 0;
    ASSERT_TRUE(MerkleRoot(counting, n).ok());
    EXPECT_EQ(counting.reads, static_cast<uint64_t>(std::popcount(n)));
    for (uint64_t i = 0; i < n; ++i) {
      counting.reads = 0;
      ASSERT_TRUE(MerkleInclusionProof(counting, i, n).ok());
      EXPECT_LE(counting.reads, log * log) << i << " of " << n;
      worst_inclusion = std::max(worst_inclusion, counting.reads);
    }
    for (uint64_t m = 1; m <= n; ++m) {
      counting.reads = 0;
      ASSERT_TRUE(MerkleConsistencyProof(counting, m, n).ok());
      EXPECT_LE(counting.reads, log * log) << m << " to " << n;
      worst_consistency = std::max(worst_consistency, counting.reads);
    }
  }
  std::cout << "[          ] most node reads for one proof up to 300 leaves: inclusion " << worst_inclusion
            << ", consistency " << worst_consistency << "\n";

  // Near 2^64 leaves, against made-up nodes: still bounded, no overflow.
  SyntheticNodes synthetic;
  for (uint64_t size : {uint64_t{961984013}, (uint64_t{1} << 40) + 12345, UINT64_MAX - 1, UINT64_MAX}) {
    synthetic.reads = 0;
    ASSERT_TRUE(MerkleRoot(synthetic, size).ok());
    EXPECT_EQ(synthetic.reads, static_cast<uint64_t>(std::popcount(size)));
    for (uint64_t index : {uint64_t{0}, size / 3, size - 1}) {
      synthetic.reads = 0;
      auto proof = MerkleInclusionProof(synthetic, index, size);
      ASSERT_TRUE(proof.ok());
      EXPECT_LE(proof->size(), 64u);
      EXPECT_LE(synthetic.reads, 64u * 64u);
    }
    for (uint64_t old_size : {uint64_t{1}, size / 2, size - 1}) {
      synthetic.reads = 0;
      auto proof = MerkleConsistencyProof(synthetic, old_size, size);
      ASSERT_TRUE(proof.ok());
      EXPECT_LE(proof->size(), 128u);
      EXPECT_LE(synthetic.reads, 64u * 64u);
    }
  }
}

TEST(MerkleTreeTest, EmptyAndSingleLeafTrees) {
  MemoryMerkleNodes nodes;
  EXPECT_EQ(MerkleRoot(nodes, 0)->ToHex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(MerkleInclusionProof(nodes, 0, 0).status().code(), Code::kInvalidInput);
  EXPECT_EQ(MerkleConsistencyProof(nodes, 0, 0).status().code(), Code::kInvalidInput);
  Hash empty = MerkleEmptyRoot();
  EXPECT_EQ(VerifyInclusion(LeafAt(0), 0, 0, {}, empty).code(), Code::kInvalidInput);
  // RFC 9162 defines consistency for 0 < old size only; every tree extends the empty one.
  Status from_empty = VerifyConsistency(0, 0, empty, empty, {});
  EXPECT_EQ(from_empty.code(), Code::kInvalidInput);
  EXPECT_EQ(from_empty.message(), "a consistency proof needs an earlier tree of at least one leaf");

  nodes.Append(LeafAt(0));
  EXPECT_EQ(*MerkleRoot(nodes, 1), LeafAt(0));
  EXPECT_TRUE(MerkleInclusionProof(nodes, 0, 1)->empty());
  EXPECT_TRUE(VerifyInclusion(LeafAt(0), 0, 1, {}, LeafAt(0)).ok());
  EXPECT_FALSE(VerifyInclusion(LeafAt(1), 0, 1, {}, LeafAt(0)).ok());
  EXPECT_TRUE(MerkleConsistencyProof(nodes, 1, 1)->empty());
  EXPECT_TRUE(VerifyConsistency(1, 1, LeafAt(0), LeafAt(0), {}).ok());
  EXPECT_EQ(VerifyConsistency(0, 1, empty, LeafAt(0), {}).code(), Code::kInvalidInput);
}

TEST(MerkleTreeTest, FailuresNameTheirCause) {
  const Tree300& tree = Tree();
  std::vector<Hash> proof = *MerkleInclusionProof(tree.nodes, 5, 10);
  Status status = VerifyInclusion(tree.leaves[5], 10, 10, proof, tree.roots[10]);
  EXPECT_EQ(status.code(), Code::kInvalidInput);
  EXPECT_EQ(status.message(), "leaf index 10 is not in a tree of 10 leaves");
  status = VerifyInclusion(tree.leaves[5], 5, 10, proof, tree.roots[9]);
  EXPECT_EQ(status.code(), Code::kBadSignature);
  EXPECT_EQ(status.message(), "the inclusion proof does not lead to the checkpoint's root");
  status = VerifyInclusion(tree.leaves[5], 5, 10, std::span(proof).first(2), tree.roots[10]);
  EXPECT_EQ(status.message(), "the inclusion proof has fewer hashes than a tree of its size needs");
  std::vector<Hash> longer = proof;
  longer.push_back(proof[0]);
  status = VerifyInclusion(tree.leaves[5], 5, 10, longer, tree.roots[10]);
  EXPECT_EQ(status.message(), "the inclusion proof has more hashes than a tree of its size needs");

  std::vector<Hash> consistency = *MerkleConsistencyProof(tree.nodes, 6, 10);
  status = VerifyConsistency(6, 10, tree.roots[5], tree.roots[10], consistency);
  EXPECT_EQ(status.code(), Code::kBadSignature);
  EXPECT_EQ(status.message(), "the consistency proof does not lead to the earlier checkpoint's root");
  status = VerifyConsistency(6, 10, tree.roots[6], tree.roots[11], consistency);
  EXPECT_EQ(status.message(), "the consistency proof does not lead to the later checkpoint's root");
  status = VerifyConsistency(6, 10, tree.roots[6], tree.roots[10], {});
  EXPECT_EQ(status.message(), "the consistency proof is empty");
  status = VerifyConsistency(10, 6, tree.roots[10], tree.roots[6], consistency);
  EXPECT_EQ(status.code(), Code::kInvalidInput);
  EXPECT_EQ(status.message(), "the earlier tree size 10 is larger than the later tree size 6");
  status = VerifyConsistency(7, 7, tree.roots[7], tree.roots[8], {});
  EXPECT_EQ(status.code(), Code::kBadSignature);
  EXPECT_EQ(status.message(), "two checkpoints of the same tree size have different roots");
  status = VerifyConsistency(7, 7, tree.roots[7], tree.roots[7], consistency);
  EXPECT_EQ(status.message(), "a consistency proof between trees of the same size must be empty");

  EXPECT_EQ(MerkleInclusionProof(tree.nodes, 10, 10).status().code(), Code::kInvalidInput);
  EXPECT_EQ(MerkleConsistencyProof(tree.nodes, 11, 10).status().code(), Code::kInvalidInput);
  EXPECT_EQ(MerkleConsistencyProof(tree.nodes, 0, 10).status().code(), Code::kInvalidInput);
  // Beyond what is stored: the storage's kNotFound comes back unchanged.
  auto missing = MerkleRoot(tree.nodes, kMaxSize + 1);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "Merkle tree node (level 0, index 300) is not stored");
  EXPECT_EQ(MerkleInclusionProof(tree.nodes, 3, kMaxSize + 5).status().code(), Code::kNotFound);
}

// --- Appending -------------------------------------------------------------------------

struct Put {
  unsigned level;
  uint64_t index;
  Hash hash;
};

TEST(MerkleAppendTest, PutsTheLeafAndEveryNodeItCompletes) {
  MemoryMerkleNodes nodes;
  for (uint64_t i = 0; i < 64; ++i) {
    std::vector<Put> puts;
    CountingNodes counting(nodes);
    Status status = MerkleAppend(i, LeafAt(i), counting, [&](unsigned level, uint64_t index, const Hash& hash) {
      puts.push_back({level, index, hash});
      return Status::Ok();
    });
    ASSERT_TRUE(status.ok()) << status.message();
    // 1 + the trailing one bits of i, lowest level first, reading one left sibling each.
    ASSERT_EQ(puts.size(), 1u + static_cast<size_t>(std::countr_one(i))) << "leaf " << i;
    EXPECT_EQ(counting.reads, puts.size() - 1);
    for (size_t k = 0; k < puts.size(); ++k) {
      EXPECT_EQ(puts[k].level, k);
      EXPECT_EQ(puts[k].index, i >> k);
    }
    EXPECT_EQ(puts[0].hash, LeafAt(i));
    nodes.Append(LeafAt(i));
    for (const Put& put : puts) EXPECT_EQ(*nodes.Node(put.level, put.index), put.hash);
  }
}

// A writer whose reads do not see its own uncommitted puts (a staged batch): the append
// reads only nodes earlier appends completed, so it does not need to.
class StagedNodes : public MerkleNodes {
 public:
  Result<Hash> Node(unsigned level, uint64_t index) const override { return committed_.Node(level, index); }
  Status Stage(unsigned level, uint64_t index, const Hash& hash) {
    staged_.push_back({level, index, hash});
    return Status::Ok();
  }
  void Commit(const Hash& leaf) {
    committed_.Append(leaf);
    for (const Put& put : staged_) EXPECT_EQ(*committed_.Node(put.level, put.index), put.hash);
    staged_.clear();
  }

 private:
  MemoryMerkleNodes committed_;
  std::vector<Put> staged_;
};

TEST(MerkleAppendTest, NeedsNoneOfItsOwnPuts) {
  StagedNodes staged;
  for (uint64_t i = 0; i < 100; ++i) {
    Status status = MerkleAppend(i, LeafAt(i), staged, [&](unsigned level, uint64_t index, const Hash& hash) {
      return staged.Stage(level, index, hash);
    });
    ASSERT_TRUE(status.ok()) << status.message();
    staged.Commit(LeafAt(i));
  }
}

TEST(MerkleAppendTest, ReturnsTheFirstErrorOfAReadOrAPut) {
  MemoryMerkleNodes nodes;
  for (uint64_t i = 0; i < 3; ++i) nodes.Append(LeafAt(i));
  int puts = 0;
  Status full = MerkleAppend(3, LeafAt(3), nodes, [&](unsigned level, uint64_t, const Hash&) {
    ++puts;
    return level == 1 ? Status::MapFull("the log is full") : Status::Ok();
  });
  EXPECT_EQ(full.code(), Code::kMapFull);
  EXPECT_EQ(puts, 2);
  // Appending leaf 5 to a tree of 3: its left sibling, leaf 4, was never stored.
  Status missing = MerkleAppend(5, LeafAt(5), nodes, [](unsigned, uint64_t, const Hash&) { return Status::Ok(); });
  EXPECT_EQ(missing.code(), Code::kNotFound);
}

// An auditor's stream: a root recomputed from 100,003 leaves, and the root of an older
// checkpoint taken on the way, match the stored tree.
TEST(MerkleRootBuilderTest, StreamsALargeLog) {
  constexpr uint64_t kSize = 100003, kOldSize = 65537;
  MemoryMerkleNodes nodes;
  MerkleRootBuilder builder;
  Hash old_root;
  for (uint64_t i = 0; i < kSize; ++i) {
    Hash leaf = LeafAt(i);
    nodes.Append(leaf);
    builder.Add(leaf);
    if (builder.size() == kOldSize) old_root = builder.Root();
  }
  EXPECT_EQ(builder.Root(), *MerkleRoot(nodes, kSize));
  EXPECT_EQ(old_root, *MerkleRoot(nodes, kOldSize));
  auto proof = MerkleConsistencyProof(nodes, kOldSize, kSize);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(VerifyConsistency(kOldSize, kSize, old_root, builder.Root(), *proof).ok());
  for (uint64_t index : {uint64_t{0}, uint64_t{4242}, kOldSize, kSize - 1}) {
    auto inclusion = MerkleInclusionProof(nodes, index, kSize);
    ASSERT_TRUE(inclusion.ok());
    EXPECT_LE(inclusion->size(), 17u);
    EXPECT_TRUE(VerifyInclusion(LeafAt(index), index, kSize, *inclusion, builder.Root()).ok()) << index;
  }
  EXPECT_EQ(MerkleRootBuilder().Root(), MerkleEmptyRoot());
}

}  // namespace
}  // namespace samsync
