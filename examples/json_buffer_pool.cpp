// A buffer pool for JSON-like serialisation: 3 threads serialise 20 000 records each into pooled
// byte buffers (one buffer per message, as a server would before a write). One record in 500 has
// a 1 MiB attachment: its buffer grows far past the usual size, and the pool's calibrated cap
// (the 95th percentile of requested sizes) makes put() drop it instead of pinning 1 MiB per
// thread (the golang/go#23199 trap). Prints the pool's stats; exits non-zero on a wrong result.
#include <slabpool/buffer_pool.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 3;
constexpr int kRecords = 20000;

struct record {
  std::uint64_t id;
  std::string name;
  std::vector<std::string> tags;
  std::size_t attachment_bytes;  // 0 for most records
};

void append_escaped(slabpool::byte_buffer& out, const std::string& s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

void serialise(const record& r, slabpool::byte_buffer& out) {
  out.append("{\"id\":");
  out.append(std::to_string(r.id));
  out.append(",\"name\":");
  append_escaped(out, r.name);
  out.append(",\"tags\":[");
  for (std::size_t i = 0; i < r.tags.size(); ++i) {
    if (i != 0) out.push_back(',');
    append_escaped(out, r.tags[i]);
  }
  out.push_back(']');
  if (r.attachment_bytes != 0) {
    out.append(",\"attachment\":\"");
    const std::size_t at = out.size();
    out.resize(at + r.attachment_bytes);
    for (std::size_t i = 0; i < r.attachment_bytes; ++i)
      out.data()[at + i] = static_cast<std::byte>('A' + i % 26);
    out.push_back('"');
  }
  out.push_back('}');
}

// FNV-1a over the serialised bytes: the same records must give the same checksum every run.
std::uint64_t checksum(const slabpool::byte_buffer& b, std::uint64_t h) {
  for (std::size_t i = 0; i < b.size(); ++i)
    h = (h ^ std::to_integer<std::uint8_t>(b.data()[i])) * 0x100000001b3ull;
  return h;
}

}  // namespace

int main() {
  slabpool::buffer_pool pool(slabpool::buffer_pool_options{.min_capacity = 256,
                                                           .cap = 64 << 20,
                                                           .per_thread = 8,
                                                           .calibrate = true,
                                                           .percentile = 0.95,
                                                           .window = 1000});
  std::atomic<std::uint64_t> total_bytes{0}, combined{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t h = 0xcbf29ce484222325ull, bytes = 0;
      for (int i = 0; i < kRecords; ++i) {
        record r{static_cast<std::uint64_t>(t) * kRecords + i,
                 "item \"" + std::to_string(i) + "\"",
                 {"a", "bb", std::to_string(i % 7)},
                 i % 500 == 499 ? std::size_t{1} << 20 : 0};
        // Expected size: a typical message is ~100 bytes; the attachment ones say so too.
        auto buf = pool.get(128 + r.attachment_bytes);
        serialise(r, *buf);
        bytes += buf->size();
        h = checksum(*buf, h);
      }  // the buffer goes back (or is dropped when above the cap)
      total_bytes += bytes;
      combined ^= h;
    });
  }
  for (auto& t : threads) t.join();

  const slabpool::pool_stats s = pool.stats();
  std::printf(
      "buffer pool: cap %zu B after calibration; %llu gets, %llu hits, %llu misses, "
      "%llu steals, %llu puts, %llu drops (oversized), %llu overflows, %llu trimmed, "
      "%llu cached\n",
      pool.cap(), (unsigned long long)s.gets, (unsigned long long)s.hits,
      (unsigned long long)s.misses, (unsigned long long)s.steals, (unsigned long long)s.puts,
      (unsigned long long)s.drops, (unsigned long long)s.overflows, (unsigned long long)s.trimmed,
      (unsigned long long)s.cached);
  std::printf("serialised %llu bytes, checksum %016llx\n", (unsigned long long)total_bytes.load(),
              (unsigned long long)combined.load());
  const std::uint64_t big = kThreads * (kRecords / 500);
  const bool ok = s.gets == kThreads * kRecords && s.puts == s.gets && pool.cap() <= 4096 &&
                  s.drops + 3 * kThreads >= big && s.hits * 2 > s.gets;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
