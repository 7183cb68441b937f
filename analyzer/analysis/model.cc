#include "ncclfr/analysis/model.h"

#include <algorithm>

#include "ncclfr/dump_file.h"

namespace ncclfr::analysis {

namespace {

bool rooted(schema::Op op) {
  return op == schema::Op::BROADCAST || op == schema::Op::REDUCE || op == schema::Op::GATHER ||
         op == schema::Op::SCATTER;
}

bool reduces(schema::Op op) {
  return op == schema::Op::ALL_REDUCE || op == schema::Op::REDUCE || op == schema::Op::REDUCE_SCATTER;
}

uint64_t mix(uint64_t h, uint64_t v) {
  // splitmix64 step: cheap, and every input bit reaches every output bit.
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace

CallSignature normalizedSignature(schema::Op op, schema::DataType dtype, schema::RedOp redOp, int32_t root,
                                  uint64_t count) {
  CallSignature s;
  s.op = op;
  s.dtype = dtype;
  s.count = count;
  s.root = rooted(op) ? root : -1;
  s.redOp = reduces(op) ? redOp : schema::RedOp::SUM;
  return s;
}

uint32_t CallSignature::fingerprint() const {
  uint64_t h = mix(0x6e63636c66720001ULL, static_cast<uint64_t>(op));
  h = mix(h, static_cast<uint64_t>(dtype));
  h = mix(h, static_cast<uint64_t>(redOp));
  h = mix(h, static_cast<uint32_t>(root));
  h = mix(h, count);
  auto fp = static_cast<uint32_t>(h ^ (h >> 32));
  return fp == 0 ? 1 : fp;
}

std::string CallSignature::describe() const {
  std::string s = enumName(op) + " " + enumName(dtype);
  if (reduces(op)) s += " " + enumName(redOp);
  if (rooted(op)) s += " root=" + std::to_string(root);
  s += " count=" + std::to_string(count);
  return s;
}

const CallSignature* CommView::signatureFor(uint32_t fp) const {
  for (const auto& s : signatures) {
    if (s.fingerprint() == fp) return &s;
  }
  return nullptr;
}

const P2PCounterView* CommView::p2pCounter(int32_t peer, bool send) const {
  auto it = std::lower_bound(p2p.begin(), p2p.end(), std::make_pair(peer, send),
                             [](const P2PCounterView& c, const std::pair<int32_t, bool>& k) {
                               return c.peer != k.first ? c.peer < k.first : c.send < k.second;
                             });
  if (it != p2p.end() && it->peer == peer && it->send == send) return &*it;
  return nullptr;
}

std::string ProcessDump::label() const {
  if (globalRank >= 0) return "rank " + std::to_string(globalRank);
  return host + ":" + std::to_string(pid);
}

const EntryView* ProcessDump::findCollective(uint32_t comm, int64_t seq) const {
  for (const auto& e : entries) {
    if (e.comm == comm && !e.isP2P() && e.seq == seq) return &e;
  }
  return nullptr;
}

const EntryView* ProcessDump::findP2P(uint32_t comm, int32_t peer, bool send, int64_t p2pSeq) const {
  auto op = send ? schema::Op::SEND : schema::Op::RECV;
  for (const auto& e : entries) {
    if (e.comm == comm && e.op == op && e.root == peer && e.p2pSeq == p2pSeq) return &e;
  }
  return nullptr;
}

}  // namespace ncclfr::analysis
