// The replicated key-value map of the embedding example (README.md, "Embedding"): the state
// machine an application hands to fastzab::Node. An entry is "key\0value"; the snapshot is the
// whole map, each pair as u32 key length, key, u32 value length, value.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <fastzab/fastzab.h>

namespace kv_example {

inline std::vector<std::byte> encode_set(const std::string& key, const std::string& value) {
  std::vector<std::byte> e(key.size() + 1 + value.size());
  std::memcpy(e.data(), key.data(), key.size());
  e[key.size()] = std::byte{0};
  std::memcpy(e.data() + key.size() + 1, value.data(), value.size());
  return e;
}

class KvMap final : public fastzab::StateMachine {
 public:
  // Called on the node's group thread; read `map` there or after stop(), or copy it under your
  // own synchronisation (the example reads it only when the node is quiet).
  std::map<std::string, std::string> map;
  std::uint64_t applied_zxid = 0;

  void apply(std::uint64_t zxid, std::span<const std::byte> entry) override {
    const char* p = reinterpret_cast<const char*>(entry.data());
    const std::string s(p, entry.size());
    const auto nul = s.find('\0');
    if (nul != std::string::npos) map[s.substr(0, nul)] = s.substr(nul + 1);
    applied_zxid = zxid;
  }

  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> out;
    auto put = [&](const std::string& x) {
      const auto n = static_cast<std::uint32_t>(x.size());
      const auto* b = reinterpret_cast<const std::byte*>(&n);
      out.insert(out.end(), b, b + 4);
      const auto* d = reinterpret_cast<const std::byte*>(x.data());
      out.insert(out.end(), d, d + x.size());
    };
    for (const auto& [k, v] : map) {
      put(k);
      put(v);
    }
    return out;
  }

  void restore(std::uint64_t zxid, std::span<const std::byte> snap) override {
    map.clear();
    std::size_t pos = 0;
    auto get = [&](std::string& x) {
      if (snap.size() - pos < 4) return false;
      std::uint32_t n;
      std::memcpy(&n, snap.data() + pos, 4);
      pos += 4;
      if (snap.size() - pos < n) return false;
      x.assign(reinterpret_cast<const char*>(snap.data() + pos), n);
      pos += n;
      return true;
    };
    std::string k, v;
    while (pos < snap.size() && get(k) && get(v)) map[k] = v;
    applied_zxid = zxid;
  }
};

}  // namespace kv_example
