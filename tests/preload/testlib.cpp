// A library the preload tests dlopen and dlclose repeatedly: it allocates when loaded, frees
// when unloaded, hands blocks across the library boundary in both directions, and runs threads
// with thread_local objects whose destructors free memory.
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

// Built when the library is loaded, destroyed at dlclose.
std::vector<std::string> g_loaded_words = [] {
  std::vector<std::string> words;
  for (int i = 0; i < 200; ++i) words.push_back(std::string(50 + i, 'a' + i % 26));
  return words;
}();

unsigned long work_in_thread() {
  thread_local std::string scratch(300, 's');  // destroyed at thread exit, inside this library
  std::map<int, std::string> table;
  for (int i = 0; i < 2000; ++i) table[i * 7 % 1999] = scratch.substr(0, i % 300);
  unsigned long sum = 0;
  for (const auto& [key, value] : table) sum += static_cast<unsigned long>(key) + value.size();
  return sum + g_loaded_words.size();
}

}  // namespace

extern "C" {

// A NUL-terminated string of n letters from malloc, for the caller to free.
__attribute__((visibility("default"))) char* testlib_make_string(std::size_t n) {
  char* s = static_cast<char*>(std::malloc(n + 1));
  if (s == nullptr) return nullptr;
  std::memset(s, 'z', n);
  s[n] = '\0';
  return s;
}

// Frees a block the caller allocated.
__attribute__((visibility("default"))) void testlib_take(void* p) {
  std::free(p);
}

// Runs `threads` threads doing container work; returns threads * one thread's checksum.
__attribute__((visibility("default"))) unsigned long testlib_churn(unsigned threads) {
  std::vector<unsigned long> sums(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&sums, t] { sums[t] = work_in_thread(); });
  for (auto& thread : pool) thread.join();
  unsigned long total = 0;
  for (unsigned long s : sums) total += s;
  return total;
}

// 1 when operator new of a size nothing can serve keeps the C++ protocol in this library,
// opened (RTLD_LOCAL) by a C program: the throwing form throws std::bad_alloc, the nothrow forms
// return null, also when a new-handler is installed that throws. The preload shim links no C++
// runtime of its own and finds this library's (operators.cpp).
__attribute__((visibility("default"))) int testlib_new_fails_cleanly() {
  volatile std::size_t huge = std::size_t{1} << 62;
  int ok = 0;
  try {
    void* p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    ok = 1;
  }
  if (::operator new(huge, std::nothrow) != nullptr) ok = 0;
  std::set_new_handler([] { throw std::bad_alloc(); });
  if (::operator new(huge, std::nothrow) != nullptr) ok = 0;
  if (::operator new[](huge, std::align_val_t{64}, std::nothrow) != nullptr) ok = 0;
  std::set_new_handler(nullptr);
  return ok;
}

}  // extern "C"
