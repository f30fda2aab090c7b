// Every replaceable operator new/delete form, called directly and through new-expressions, from
// several std::threads; the new-handler protocol; nothrow failures; containers and exceptions
// on top. Runs under the shim and on plain glibc + libstdc++ with the same expectations.
#include <malloc.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

constexpr std::size_t kHuge = std::size_t{1} << 62;  // no allocator can serve it

bool aligned_to(const void* p, std::size_t alignment) {
  return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

void use(void* p, std::size_t size, std::size_t alignment) {
  CHECK(p != nullptr && aligned_to(p, alignment));
  if (p == nullptr) return;
  CHECK(malloc_usable_size(p) >= size);
  fill_pattern(p, size, 42);
  CHECK(check_pattern(p, size, 42));
}

// Each replaceable form, paired with the deletes that may release it.
void all_forms_once(std::size_t size) {
  const std::nothrow_t& nt = std::nothrow;
  void* p = ::operator new(size);
  use(p, size, 16);
  ::operator delete(p);
  p = ::operator new[](size);
  use(p, size, 16);
  ::operator delete[](p);
  p = ::operator new(size, nt);
  use(p, size, 16);
  ::operator delete(p, nt);
  p = ::operator new[](size, nt);
  use(p, size, 16);
  ::operator delete[](p, nt);
  p = ::operator new(size);
  use(p, size, 16);
  ::operator delete(p, size);
  p = ::operator new[](size);
  use(p, size, 16);
  ::operator delete[](p, size);
  for (std::size_t a :
       {std::size_t{32}, std::size_t{4096}, std::size_t{1} << 20, std::size_t{8} << 20}) {
    const auto al = static_cast<std::align_val_t>(a);
    p = ::operator new(size, al);
    use(p, size, a);
    ::operator delete(p, al);
    p = ::operator new[](size, al);
    use(p, size, a);
    ::operator delete[](p, al);
    p = ::operator new(size, al, nt);
    use(p, size, a);
    ::operator delete(p, al, nt);
    p = ::operator new[](size, al, nt);
    use(p, size, a);
    ::operator delete[](p, al, nt);
    p = ::operator new(size, al);
    use(p, size, a);
    ::operator delete(p, size, al);
    p = ::operator new[](size, al);
    use(p, size, a);
    ::operator delete[](p, size, al);
  }
}

struct alignas(256) wide {
  char bytes[300];
};

// New-expressions pick the forms themselves: sized and aligned deletes included.
void expressions() {
  auto* one = new wide;
  CHECK(aligned_to(one, 256));
  delete one;
  auto* many = new wide[7];
  CHECK(aligned_to(many, 256));
  delete[] many;
  auto* ints = new int[1000]();
  CHECK(ints[999] == 0);
  delete[] ints;
  auto* text = new std::string(1000, 'x');
  delete text;
  auto* none = new (std::nothrow) wide[3];
  CHECK(none != nullptr);
  delete[] none;
}

int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls == 3) std::set_new_handler(nullptr);  // give up after three tries
}
void throwing_handler() {
  throw std::bad_alloc();
}

void new_handler_protocol() {
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  bool threw = false;
  try {
    void* p = ::operator new(kHuge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw && g_handler_calls == 3);

  threw = false;
  try {
    void* p = ::operator new[](kHuge, std::align_val_t{64});
    ::operator delete[](p, std::align_val_t{64});
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);

  // nothrow forms: null, whether or not a handler is installed or throws
  CHECK(::operator new(kHuge, std::nothrow) == nullptr);
  CHECK(::operator new[](kHuge, std::align_val_t{4096}, std::nothrow) == nullptr);
  std::set_new_handler(throwing_handler);
  CHECK(::operator new(kHuge, std::nothrow) == nullptr);
  CHECK(::operator new[](kHuge, std::nothrow) == nullptr);
  CHECK(::operator new (kHuge, std::align_val_t{32}, std::nothrow) == nullptr);
  std::set_new_handler(nullptr);

  // an alignment that is not a power of two is a failure, not a crash (volatile: the compiler
  // would warn about the constant)
  volatile std::size_t bad_alignment = 48;
  const auto bad = static_cast<std::align_val_t>(bad_alignment);
  threw = false;
  try {
    ::operator delete(::operator new(16, bad), bad);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);
  CHECK(::operator new(16, bad, std::nothrow) == nullptr);
}

// Containers, strings and exceptions (whose objects come from malloc) on several threads, with
// blocks handed from thread to thread.
unsigned long thread_work(int seed, std::vector<std::string>* handoff) {
  std::map<int, std::vector<std::string>> table;
  unsigned long sum = 0;
  for (int i = 0; i < 20000; ++i) {
    auto& v = table[(i * seed) % 512];
    v.push_back(std::to_string(i * seed));
    if (v.size() > 8) v.erase(v.begin());
    if (i % 1000 == 0) {
      try {
        throw std::runtime_error(std::string(200, 'e'));
      } catch (const std::runtime_error& e) {
        sum += std::string(e.what()).size();
      }
    }
  }
  for (const auto& [key, values] : table) {
    for (const auto& s : values) sum += s.size() + static_cast<unsigned long>(key);
  }
  for (int i = 0; i < 1000; ++i) handoff->push_back(std::string(i % 100 + 20, 'h'));
  return sum;
}

void threads() {
  constexpr int kThreads = 6;
  std::vector<std::vector<std::string>> handoffs(kThreads);
  std::vector<unsigned long> sums(kThreads);
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t) {
      pool.emplace_back([&, t] {
        sums[t] = thread_work(t + 3, &handoffs[t]);
        all_forms_once(static_cast<std::size_t>(t) * 1000 + 1);
      });
    }
    for (auto& th : pool) th.join();
    handoffs.assign(kThreads, {});  // strings built by exited threads, freed by this one
    for (int t = 0; t < kThreads; ++t) CHECK(sums[t] == thread_work(t + 3, &handoffs[t]));
    handoffs.assign(kThreads, {});
  }
}

}  // namespace

int main() {
  check_allocator_in_use();
  if (expect_shim()) {  // the operators themselves, not only malloc, come from the shim
    Dl_info info{};
    void* (*plain_new)(std::size_t) = &::operator new;
    CHECK(dladdr(reinterpret_cast<void*>(plain_new), &info) != 0 && info.dli_fname != nullptr &&
          std::strstr(info.dli_fname, "libslabpool-preload") != nullptr);
  }
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{5000},
                           std::size_t{200000}, std::size_t{3} << 20}) {
    all_forms_once(size);
  }
  expressions();
  new_handler_protocol();
  threads();
  return check_summary("cxx_test");
}
