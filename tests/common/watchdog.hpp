// A hang is a test failure with a diagnosis. `watchdog` fails the whole test process when it runs
// past a bound, after printing every thread's stack (gdb, when installed) or at least each
// thread's state and kernel wait channel; `wait_child` does the same for a forked child.
//
// The bound is a hang detector, not a speed assertion: it is minutes where the work takes
// seconds, and SP_TEST_WATCHDOG_SECONDS overrides it (0 disables it, e.g. under a debugger).
// Children forked by a test should call die_with_parent(), so a parent failed by its watchdog
// leaves no spinning orphan behind.
// Stacks are taken with posix_spawn, which runs no fork handlers: a process that hangs holding an
// allocator lock would hang again in a plain fork().
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

extern char** environ;

namespace sp_test {

inline int watchdog_seconds(int default_seconds) {
  const char* text = std::getenv("SP_TEST_WATCHDOG_SECONDS");
  return text != nullptr ? std::atoi(text) : default_seconds;
}

// Prints a file of /proc to stderr with a prefix (no allocation from the allocator under test is
// needed: stdio and std::string use the system malloc in these tests).
inline void print_proc_file(const std::string& path, const char* prefix) {
  char buffer[512];
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return;
  buffer[n] = '\0';
  if (buffer[n - 1] == '\n') buffer[n - 1] = '\0';
  std::fprintf(stderr, "%s%s\n", prefix, buffer);
}

// Every thread of `pid`: its stack through gdb if it can attach, then state and wait channel.
inline void dump_stacks(pid_t pid) {
  std::fprintf(stderr, "--- stacks of process %d ---\n", static_cast<int>(pid));
  std::fflush(stderr);
  if (access("/usr/bin/gdb", X_OK) == 0) {
    const std::string pid_text = std::to_string(pid);
    const char* argv[] = {"/usr/bin/gdb",        "-batch", "-nx",          "-p",
                          pid_text.c_str(),      "-ex",    "info threads", "-ex",
                          "thread apply all bt", nullptr};
    pid_t gdb = 0;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    if (posix_spawn(&gdb, argv[0], &actions, nullptr, const_cast<char**>(argv), environ) == 0) {
      int status = 0;
      waitpid(gdb, &status, 0);
    }
    posix_spawn_file_actions_destroy(&actions);
  } else {
    std::fprintf(stderr, "(gdb is not installed: kernel states only)\n");
  }
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* dir = opendir(task_dir.c_str())) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      const std::string base = task_dir + "/" + entry->d_name;
      const std::string prefix = std::string("thread ") + entry->d_name + " ";
      print_proc_file(base + "/comm", (prefix + "name: ").c_str());
      print_proc_file(base + "/wchan", (prefix + "waits in: ").c_str());
      print_proc_file(base + "/stat", (prefix + "stat: ").c_str());
    }
    closedir(dir);
  }
  std::fflush(stderr);
}

inline void die_with_parent() {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

// Fails the process when it is still alive `seconds` after construction (unless destroyed
// first). Declare one at namespace scope in a test file that could hang.
class watchdog {
 public:
  watchdog(int seconds, const char* what) : what_(what) {
    seconds = watchdog_seconds(seconds);
    if (seconds <= 0) return;
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);  // let gdb attach under Yama
    thread_ = std::thread([this, seconds] {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) return;
      std::fprintf(stderr, "\nWATCHDOG: %s still running after %d s: a hang. Every thread:\n",
                   what_, seconds);
      dump_stacks(getpid());
      std::fprintf(stderr, "WATCHDOG: failing %s (hang)\n", what_);
      std::fflush(stderr);
      _exit(124);
    });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  const char* what_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

// Waits for child `pid` up to `seconds` (a third of SP_TEST_WATCHDOG_SECONDS when that is set, so
// the child is diagnosed before the parent's own watchdog fires); on a hang prints its stacks,
// kills it and returns false. *status gets waitpid's status otherwise.
inline bool wait_child(pid_t pid, int seconds, int* status, const char* what) {
  seconds = watchdog_seconds(3 * seconds) / 3;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    const pid_t done = waitpid(pid, status, WNOHANG);
    if (done == pid) return true;
    if (done < 0) return false;
    if (seconds > 0 && std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::fprintf(stderr, "\nWATCHDOG: child %d (%s) still running after %d s: a hang.\n",
               static_cast<int>(pid), what, seconds);
  dump_stacks(pid);
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return false;
}

}  // namespace sp_test
