// A small TCP server on 127.0.0.1 and its client connection, for resource_pool's TCP example and
// tests. It speaks a subset of Redis's inline protocol ("PING" -> "+PONG", "INCR" -> ":<n>"), so
// the client works against redis-server too. The server can be stopped (every connection closed,
// the port refused) and started again on the same port: a database going away and coming back.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace loopback {

// One client connection; move-only; closes its socket when destroyed.
class connection {
 public:
  // Connects to 127.0.0.1:port; throws std::system_error (e.g. ECONNREFUSED when it is down).
  explicit connection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::system_error(e, std::generic_category(), "connect 127.0.0.1");
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  connection(connection&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  connection& operator=(connection&&) = delete;
  ~connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Sends one command line, returns the reply line (without CRLF); nullopt when the connection
  // is broken or the reply does not come within 2 s.
  std::optional<std::string> command(const std::string& line) {
    const std::string out = line + "\r\n";
    if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
      return std::nullopt;
    std::string reply;
    char c;
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1) return std::nullopt;
      if (::recv(fd_, &c, 1, 0) != 1) return std::nullopt;
      if (c == '\n') break;
      if (c != '\r') reply.push_back(c);
    }
    return reply;
  }
  // True when the server answers PING.
  bool ping() { return command("PING") == std::optional<std::string>("+PONG"); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// The server: one thread polling the listening socket and its clients.
class server {
 public:
  server() = default;
  server(const server&) = delete;
  ~server() { stop(); }

  // Starts listening (on `port`, or an ephemeral port the first time when 0); returns the port.
  // Throws std::system_error.
  int start(int port = 0) {
    if (port == 0) port = port_;
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(listen_, 128) != 0) {
      const int e = errno;
      ::close(listen_);
      throw std::system_error(e, std::generic_category(), "bind/listen 127.0.0.1");
    }
    socklen_t len = sizeof(a);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
    thread_ = std::thread([this] { run(); });
    return port_;
  }
  // Closes the listening socket and every client connection: clients see EOF or ECONNRESET,
  // new connects are refused. Never fails.
  void stop() {
    if (!thread_.joinable()) return;
    const char b = 'x';
    (void)!::write(wake_[1], &b, 1);
    thread_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  int port() const { return port_; }
  long accepted() const { return accepted_.load(); }
  long commands() const { return commands_.load(); }

 private:
  void run() {
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_, POLLIN, 0}};
    std::vector<std::string> pending(2);
    while (true) {
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
      if (fds[0].revents != 0) break;
      if (fds[1].revents & POLLIN) {
        const int c = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          fds.push_back({c, POLLIN, 0});
          pending.emplace_back();
          ++accepted_;
        }
      }
      for (std::size_t i = 2; i < fds.size();) {
        if (fds[i].revents == 0) {
          ++i;
          continue;
        }
        char buf[512];
        const ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<long>(i));
          pending.erase(pending.begin() + static_cast<long>(i));
          continue;
        }
        pending[i].append(buf, static_cast<std::size_t>(n));
        std::size_t eol;
        while ((eol = pending[i].find('\n')) != std::string::npos) {
          std::string cmd = pending[i].substr(0, eol);
          pending[i].erase(0, eol + 1);
          if (!cmd.empty() && cmd.back() == '\r') cmd.pop_back();
          const std::string reply = answer(cmd);
          (void)!::send(fds[i].fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
        ++i;
      }
    }
    for (std::size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);  // listener and clients
  }
  std::string answer(const std::string& cmd) {
    ++commands_;
    if (cmd == "PING") return "+PONG\r\n";
    if (cmd.rfind("INCR", 0) == 0) {
      char reply[32];  // snprintf: GCC 12 warns falsely (-Wrestrict) on ":" + std::to_string
      std::snprintf(reply, sizeof(reply), ":%ld\r\n", ++counter_);
      return reply;
    }
    return "-ERR unknown command\r\n";
  }

  int listen_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  long counter_ = 0;
  std::atomic<long> accepted_{0};
  std::atomic<long> commands_{0};
  std::thread thread_;
};

}  // namespace loopback
