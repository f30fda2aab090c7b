// A request-object pool in a small loopback server: 4 clients send newline-terminated requests
// ("GET /item/<n> key=value ...") over TCP to 127.0.0.1; the server handles each connection on
// its own thread, parses every line into a pooled `request` object and answers with one line.
// The requests' strings and vectors keep their capacity across uses, so a steady server stops
// allocating for them. Bounded (4 x 500 requests), exits by itself, prints the pool's stats.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <slabpool/pool.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int kClients = 4;
constexpr int kRequestsPerClient = 500;

struct request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  std::string reply;

  // Parses one request line; false when it is malformed.
  bool parse(std::string_view line) {
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) return false;
    method.assign(line.substr(0, sp));
    line.remove_prefix(sp + 1);
    const auto end = line.find(' ');
    path.assign(line.substr(0, end));
    line.remove_prefix(end == std::string_view::npos ? line.size() : end + 1);
    while (!line.empty()) {
      const auto next = line.find(' ');
      const std::string_view kv = line.substr(0, next);
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos) return false;
      params.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
      line.remove_prefix(next == std::string_view::npos ? line.size() : next + 1);
    }
    return true;
  }
  // Clears the contents but keeps the capacity: that is what the pool is for.
  void clear() {
    method.clear();
    path.clear();
    params.clear();
    reply.clear();
  }
};

slabpool::object_pool<request> g_requests({}, [](request& r) { r.clear(); });

// Reads one '\n'-terminated line into `line` (without the newline); false at end of stream.
bool read_line(int fd, std::string& pending, std::string& line) {
  for (;;) {
    const auto nl = pending.find('\n');
    if (nl != std::string::npos) {
      line.assign(pending, 0, nl);
      pending.erase(0, nl + 1);
      return true;
    }
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;
    pending.append(chunk, static_cast<std::size_t>(n));
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void serve_connection(int fd) {
  std::string pending, line;
  while (read_line(fd, pending, line)) {
    auto req = g_requests.get();  // a reset request from this thread's cache, or stolen, or new
    if (!req->parse(line)) {
      write_all(fd, "400 bad request\n");
      continue;
    }
    req->reply = "200 " + req->method + " " + req->path +
                 " params=" + std::to_string(req->params.size()) + "\n";
    if (!write_all(fd, req->reply)) break;
  }  // each handle returns its request to the pool here, cleared by the reset hook
  close(fd);
}

int client(int port, int id) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 1;
  std::string pending, line;
  int errors = 0;
  for (int i = 0; i < kRequestsPerClient; ++i) {
    const std::string path = "/item/" + std::to_string(id * 1000 + i);
    const std::string msg =
        "GET " + path + " client=" + std::to_string(id) + " n=" + std::to_string(i) + "\n";
    if (!write_all(fd, msg) || !read_line(fd, pending, line)) return 1;
    if (line != "200 GET " + path + " params=2") ++errors;
  }
  close(fd);
  return errors;
}

}  // namespace

int main() {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
  addr.sin_port = 0;                              // any free port
  socklen_t len = sizeof(addr);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, kClients) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("request_pool_server: socket setup");
    return 1;
  }
  const int port = ntohs(addr.sin_port);

  std::thread server([listener] {
    std::vector<std::thread> handlers;
    for (int i = 0; i < kClients; ++i) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) break;
      handlers.emplace_back(serve_connection, fd);
    }
    for (auto& h : handlers) h.join();
  });
  std::vector<std::thread> clients;
  std::vector<int> errors(kClients, 0);
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&errors, port, c] { errors[c] = client(port, c); });
  for (auto& c : clients) c.join();
  server.join();
  close(listener);

  int failed = 0;
  for (int e : errors) failed += e;
  const slabpool::pool_stats s = g_requests.stats();
  std::printf(
      "request pool: %llu gets, %llu hits, %llu misses (new requests), %llu steals, "
      "%llu puts, %llu overflows, %llu trimmed, %llu cached\n",
      (unsigned long long)s.gets, (unsigned long long)s.hits, (unsigned long long)s.misses,
      (unsigned long long)s.steals, (unsigned long long)s.puts, (unsigned long long)s.overflows,
      (unsigned long long)s.trimmed, (unsigned long long)s.cached);
  const bool ok = failed == 0 && s.gets == kClients * kRequestsPerClient && s.puts == s.gets &&
                  s.misses * 10 < s.gets;  // one request per handler thread, reused
  std::printf("%d wrong replies; %s\n", failed, ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
