// resource_pool with real sqlite3 connections. What makes a connection worth pooling: opening
// the database file, applying pragmas (WAL, busy timeout) and preparing the statements the
// service runs. Six threads insert and query through a pool of 3 connections; the reset hook
// clears each statement on return, the validate hook runs "SELECT 1" on connections idle for a
// while. Exits non-zero when a row is missing or a count is wrong.
#include <sqlite3.h>
#include <unistd.h>
#include <slabpool/resource_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// One open database connection with its prepared statements. Not copyable or movable (sqlite
// handles), so the pool holds it through unique_ptr.
class db_connection {
 public:
  explicit db_connection(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      fail("open");
    sqlite3_busy_timeout(db_, 5000);  // first: other connections may be switching to WAL now
    switch_to_wal();
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, worker INT, n INT)");
    prepare("INSERT INTO events(worker, n) VALUES(?, ?)", &insert_);
    prepare("SELECT count(*) FROM events WHERE worker = ?", &count_);
    prepare("SELECT 1", &ping_);
  }
  db_connection(const db_connection&) = delete;
  ~db_connection() {
    for (sqlite3_stmt* s : {insert_, count_, ping_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }

  void insert(int worker, int n) {
    sqlite3_bind_int(insert_, 1, worker);
    sqlite3_bind_int(insert_, 2, n);
    if (sqlite3_step(insert_) != SQLITE_DONE) fail("insert");
    sqlite3_reset(insert_);
  }
  long count(int worker) {
    sqlite3_bind_int(count_, 1, worker);
    if (sqlite3_step(count_) != SQLITE_ROW) fail("count");
    const long n = sqlite3_column_int64(count_, 0);
    sqlite3_reset(count_);
    return n;
  }
  bool ping() {
    const bool ok = sqlite3_step(ping_) == SQLITE_ROW;
    sqlite3_reset(ping_);
    return ok;
  }
  // Leaves no statement half-run (called by the pool on every return).
  void reset() {
    for (sqlite3_stmt* s : {insert_, count_, ping_}) {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  }

 private:
  // Switching to WAL takes the file's exclusive lock. While another connection opening at the
  // same moment holds its shared lock and waits for more, SQLite answers SQLITE_BUSY at once
  // instead of calling the busy handler (both waiting would deadlock), so the switch is retried.
  void switch_to_wal() {
    for (int attempt = 0;; ++attempt) {
      const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if (rc != SQLITE_BUSY || attempt == 500) fail("PRAGMA journal_mode=WAL");
      std::this_thread::sleep_for(10ms);
    }
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }
  void prepare(const char* sql, sqlite3_stmt** out) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, out, nullptr) != SQLITE_OK)
      fail(sql);
  }
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("sqlite3: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt *insert_ = nullptr, *count_ = nullptr, *ping_ = nullptr;
};

using db_ptr = std::unique_ptr<db_connection>;

}  // namespace

int main() {
  char dir[] = "/tmp/slabpool-sqlite-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 2;
  const std::string path = std::string(dir) + "/events.db";
  std::atomic<int> opened{0};
  int failures = 0;
  {
    slabpool::resource_pool<db_ptr>::options o;
    o.name = "events-sqlite";
    o.max_open = 3;
    o.min_idle = 1;
    o.validate = [](db_ptr& c) { return c->ping(); };
    o.reset = [](db_ptr& c) { c->reset(); };
    slabpool::resource_pool<db_ptr> pool(
        [&] {
          ++opened;
          return std::make_unique<db_connection>(path);
        },
        o);

    constexpr int kThreads = 6, kRows = 300;
    std::vector<std::thread> threads;
    for (int w = 0; w < kThreads; ++w) {
      threads.emplace_back([&pool, w] {
        for (int i = 0; i < kRows; ++i) {
          auto c = pool.acquire(10s);
          (*c)->insert(w, i);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int w = 0; w < kThreads; ++w) {
      auto c = pool.acquire();
      const long n = (*c)->count(w);
      if (n != kRows) {
        std::printf("worker %d: %ld rows, expected %d\n", w, n, kRows);
        ++failures;
      }
    }
    const auto st = pool.stats();
    std::printf(
        "%d threads x %d inserts through %d connections (max_open 3); waits %llu, "
        "max wait %.2f ms, created %llu\n",
        kThreads, kRows, opened.load(), static_cast<unsigned long long>(st.waits),
        st.max_wait.count() / 1e6, static_cast<unsigned long long>(st.created));
    if (opened.load() > 3 || st.in_use != 0) ++failures;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
  rmdir(dir);
  std::printf("%s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
