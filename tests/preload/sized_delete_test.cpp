// Sized frees under the shim reach checked mode with their size: with SLABPOOL_CHECKED=1 a sized
// operator delete (or free_sized) given the wrong size aborts with checked mode's report naming
// the pointer; right sizes pass; without checked mode the size changes nothing. Each case runs in
// a child process (this program re-executed with the case's name), because checked mode is
// chosen at the first allocation and a caught mistake ends the process. On plain glibc the same
// cases must all exit normally: glibc never checks the size.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "check.h"

namespace {

using free_sized_fn = void (*)(void*, std::size_t);

// C23's free_sized: the shim exports it, glibc 2.36 does not have it.
free_sized_fn find_free_sized() {
  return reinterpret_cast<free_sized_fn>(dlsym(RTLD_DEFAULT, "free_sized"));
}

void announce(const void* p) {
  std::printf("block %p\n", p);
  std::fflush(stdout);
}

struct wrong_case {
  const char* name;
  std::size_t allocated;
  std::size_t passed;
  void (*run)(std::size_t allocated, std::size_t passed);
};

constexpr std::align_val_t k64{64};
constexpr std::align_val_t k4096{4096};

const wrong_case kWrongCases[] = {
    {"delete_smaller", 100, 60,
     [](std::size_t n, std::size_t m) {
       void* p = ::operator new(n);
       announce(p);
       ::operator delete(p, m);
     }},
    {"delete_larger", 100, 200,
     [](std::size_t n, std::size_t m) {
       void* p = ::operator new(n);
       announce(p);
       ::operator delete(p, m);
     }},
    {"delete_array", 5000, 4096,
     [](std::size_t n, std::size_t m) {
       void* p = ::operator new[](n);
       announce(p);
       ::operator delete[](p, m);
     }},
    {"delete_aligned", 100, 60,
     [](std::size_t n, std::size_t m) {
       void* p = ::operator new(n, k64);
       announce(p);
       ::operator delete(p, m, k64);
     }},
    {"delete_array_aligned_large", 300000, 299999,
     [](std::size_t n, std::size_t m) {
       void* p = ::operator new[](n, k4096);
       announce(p);
       ::operator delete[](p, m, k4096);
     }},
    {"free_sized", 100, 60,
     [](std::size_t n, std::size_t m) {
       free_sized_fn free_sized = find_free_sized();
       if (free_sized == nullptr) return;  // glibc 2.36: nothing to test
       void* p = std::malloc(n);
       announce(p);
       free_sized(p, m);
     }},
};

// Every sized form with the size it was allocated with, including what new-expressions pass.
struct widget {
  char bytes[72];
};

void right_sizes() {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{5000},
                        std::size_t{300000}, std::size_t{5} << 20}) {
    ::operator delete(::operator new(n), n);
    ::operator delete[](::operator new[](n), n);
    ::operator delete(::operator new(n, k64), n, k64);
    ::operator delete[](::operator new[](n, k4096), n, k4096);
    if (free_sized_fn free_sized = find_free_sized()) free_sized(std::malloc(n), n);
  }
  delete new widget{};
  delete[] new widget[7];
  delete[] new std::string[3];  // an array cookie: the size passed includes it
}

int run_case(const char* name) {
  if (std::strcmp(name, "right") == 0) {
    right_sizes();
    return 0;
  }
  for (const wrong_case& c : kWrongCases) {
    if (std::strcmp(name, c.name) == 0) {
      c.run(c.allocated, c.passed);
      return 0;
    }
  }
  return 2;
}

struct outcome {
  int status = -1;
  std::string output;  // stdout and stderr together
};

outcome spawn(const char* self, const char* name, const char* checked) {
  outcome result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    setenv("SLABPOOL_CHECKED", checked, 1);
    execl(self, self, name, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buffer[512];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0)
    result.output.append(buffer, std::size_t(n));
  close(fds[0]);
  waitpid(pid, &result.status, 0);
  return result;
}

bool exited_cleanly(const outcome& o) {
  return WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
}

void check_case(const char* self, const wrong_case& c) {
  const bool shim = expect_shim();
  const bool has_free_sized = find_free_sized() != nullptr;
  // Checked mode: the mistake is reported with the block's address and both sizes.
  const outcome checked = spawn(self, c.name, "1");
  const bool applies = shim && (std::strcmp(c.name, "free_sized") != 0 || has_free_sized);
  if (applies) {
    const std::size_t at = checked.output.find("block 0x");
    CHECK(at != std::string::npos);
    const std::string pointer =
        at == std::string::npos
            ? "?"
            : checked.output.substr(at + 6, checked.output.find('\n', at) - at - 6);
    const std::string report = "slabpool: free(" + pointer + "): sized free with size " +
                               std::to_string(c.passed) + ", but " + std::to_string(c.allocated) +
                               " bytes were allocated";
    CHECK(WIFSIGNALED(checked.status) && WTERMSIG(checked.status) == SIGABRT);
    CHECK(checked.output.find(report) != std::string::npos);
    if (checked.output.find(report) == std::string::npos) {
      std::fprintf(stderr, "%s: expected \"%s\" in:\n%s\n", c.name, report.c_str(),
                   checked.output.c_str());
    }
  } else {
    CHECK(exited_cleanly(checked));
  }
  // Release mode: sizes are hints only, the block is freed as usual.
  const outcome release = spawn(self, c.name, "0");
  CHECK(exited_cleanly(release));
  if (!exited_cleanly(release)) std::fprintf(stderr, "%s: %s\n", c.name, release.output.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2) return run_case(argv[1]);
  check_allocator_in_use();
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  CHECK(n > 0);
  if (n <= 0) return check_summary("sized_delete_test");
  self[n] = '\0';
  for (const wrong_case& c : kWrongCases) check_case(self, c);
  for (const char* checked : {"1", "0"}) {
    const outcome right = spawn(self, "right", checked);
    CHECK(exited_cleanly(right));
    if (!exited_cleanly(right)) std::fprintf(stderr, "right: %s\n", right.output.c_str());
  }
  return check_summary("sized_delete_test");
}
