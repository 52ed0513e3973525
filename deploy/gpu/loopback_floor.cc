// The host's own floor under any batch-1 gRPC number: a TCP round trip over loopback between
// two processes, with nothing else in it (no HTTP/2, no protobuf, no Triton). A gRPC call
// needs at least one such round trip, and each side's thread must be woken for it, so what
// this costs on a machine is what no server or client change can take off there.
//
//   c++ -O2 -o loopback_floor deploy/gpu/loopback_floor.cc
//   loopback_floor [round_trips=20000] [bytes=512] [client_cpu server_cpu]
//
// bytes: each message's size (a one-row netflow request is about 300 bytes of gRPC frames).
// With two CPU numbers each process is pinned: the same number twice puts both on one core,
// where a wake-up needs no interrupt between cores. Prints one JSON line (µs).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void Pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    std::perror("sched_setaffinity");
    std::exit(2);
  }
}

bool Exactly(int fd, char* buf, size_t n, bool send_it) {
  size_t done = 0;
  while (done < n) {
    const ssize_t k = send_it ? send(fd, buf + done, n - done, 0) : recv(fd, buf + done, n - done, 0);
    if (k <= 0) return false;
    done += static_cast<size_t>(k);
  }
  return true;
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // as gRPC sets it
}

}  // namespace

int main(int argc, char** argv) {
  const int trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const size_t bytes = argc > 2 ? static_cast<size_t>(std::atol(argv[2])) : 512;
  const int client_cpu = argc > 4 ? std::atoi(argv[3]) : -1;
  const int server_cpu = argc > 4 ? std::atoi(argv[4]) : -1;
  if (trips < 100 || bytes < 1) {
    std::fprintf(stderr, "round_trips >= 100, bytes >= 1\n");
    return 2;
  }
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("listen");
    return 1;
  }
  std::vector<char> buf(bytes, 'x');
  const int warmup = trips / 10;
  const pid_t child = fork();
  if (child == 0) {  // the echo server: one blocking thread, as a woken gRPC poller would be
    Pin(server_cpu);
    const int fd = accept(listener, nullptr, nullptr);
    NoDelay(fd);
    while (Exactly(fd, buf.data(), bytes, false) && Exactly(fd, buf.data(), bytes, true)) {
    }
    _exit(0);
  }
  Pin(client_cpu);
  close(listener);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    return 1;
  }
  NoDelay(fd);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(trips));
  for (int i = 0; i < warmup + trips; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!Exactly(fd, buf.data(), bytes, true) || !Exactly(fd, buf.data(), bytes, false)) {
      std::fprintf(stderr, "echo failed at round trip %d\n", i);
      return 1;
    }
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    if (i >= warmup) us.push_back(took.count());
  }
  close(fd);
  waitpid(child, nullptr, 0);
  std::sort(us.begin(), us.end());
  auto pct = [&us](double q) { return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))]; };
  std::printf("{\"round_trips\": %d, \"bytes\": %zu, \"client_cpu\": %d, \"server_cpu\": %d, "
              "\"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f}\n",
              trips, bytes, client_cpu, server_cpu, pct(0.5), pct(0.9), pct(0.99));
  return 0;
}
