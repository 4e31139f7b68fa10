// TCP socket primitives for the agent's punching sockets: create, bind, local address, non-blocking connect,
// linger-0, close.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace boxer {

// tcpSocket(reuse = true): number — a non-blocking, close-on-exec AF_INET TCP socket; with SO_REUSEADDR and
// SO_REUSEPORT unless reuse is false (a socket whose kernel-chosen port must be its own).
static Napi::Value TcpSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool reuse = true;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsBoolean()) {
      ThrowErrno(env, EINVAL, "tcpSocket: argument reuse must be a boolean");
      return env.Undefined();
    }
    reuse = info[0].As<Napi::Boolean>().Value();
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    ThrowErrno(env, errno, "tcpSocket: socket(AF_INET, SOCK_STREAM)");
    return env.Undefined();
  }
  int one = 1;
  if (reuse && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "tcpSocket: setsockopt(SO_REUSEADDR/SO_REUSEPORT)");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static void FillSin(struct sockaddr_in *sin, struct in_addr ip, uint16_t port) {
  *sin = {};
  sin->sin_family = AF_INET;
  sin->sin_addr = ip;
  sin->sin_port = htons(port);
}

static std::string Endpoint(const std::string &ip, uint16_t port) { return ip + ":" + std::to_string(port); }

// The (fd, ip, port) arguments of bind and connectStart, as a sockaddr_in. False (a JS exception pending) on a
// bad argument.
static bool ArgsFdEndpoint(const Napi::CallbackInfo &info, int *fd, struct sockaddr_in *sin, uint16_t *port) {
  struct in_addr ip;
  if (!ArgFd(info, 0, "fd", fd) || !ArgIPv4(info, 1, "ip", &ip) || !ArgPort(info, 2, "port", port)) return false;
  FillSin(sin, ip, *port);
  return true;
}

// bind(fd, ip, port): void
static Napi::Value Bind(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  uint16_t port;
  struct sockaddr_in sin;
  if (!ArgsFdEndpoint(info, &fd, &sin, &port)) return env.Undefined();
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
    ThrowErrno(env, errno,
               "bind(fd " + std::to_string(fd) + ", " + Endpoint(info[1].As<Napi::String>(), port) + ")");
  return env.Undefined();
}

// localAddress(fd): {address, port}
static Napi::Value LocalAddress(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  struct sockaddr_in sin = {};
  socklen_t len = sizeof sin;
  if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    ThrowErrno(env, errno, "localAddress: getsockname(fd " + std::to_string(fd) + ")");
    return env.Undefined();
  }
  if (sin.sin_family != AF_INET) {
    ThrowErrno(env, EAFNOSUPPORT, "localAddress: fd " + std::to_string(fd) + " is not an AF_INET socket");
    return env.Undefined();
  }
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", buf);
  o.Set("port", ntohs(sin.sin_port));
  return o;
}

// connectStart(fd, ip, port): boolean — true if connected at once, false if in progress. A handshake the
// kernel completed during the call (loopback, a veth path in the lab, a simultaneous open whose SYN crossed
// ours) counts as at once: connect(2) says EINPROGRESS, but getpeername(2) already succeeds (it fails while
// SYN_SENT). That spares the caller connectWait's poll handle, timer and event-loop turn (issue 15).
static Napi::Value ConnectStart(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  uint16_t port;
  struct sockaddr_in sin;
  if (!ArgsFdEndpoint(info, &fd, &sin, &port)) return env.Undefined();
  int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
  // EINTR: the kernel carries on with the connect in the background, exactly as for EINPROGRESS.
  if (rc == 0) return Napi::Boolean::New(env, true);
  if (errno == EINPROGRESS || errno == EINTR) {
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    return Napi::Boolean::New(env, getpeername(fd, (struct sockaddr *)&peer, &pl) == 0);
  }
  ThrowErrno(env, errno,
             "connectStart: connect(fd " + std::to_string(fd) + ", " + Endpoint(info[1].As<Napi::String>(), port) +
                 ")");
  return env.Undefined();
}

// setLinger0(fd): void — SO_LINGER {on, 0}: close() then sends RST instead of FIN.
static Napi::Value SetLinger0(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  struct linger l = {1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0)
    ThrowErrno(env, errno, "setLinger0: setsockopt(fd " + std::to_string(fd) + ", SO_LINGER)");
  return env.Undefined();
}

// tcpLiveness(fd, idleS, intvlS, count, userTimeoutMs): void — SO_KEEPALIVE with TCP_KEEPIDLE/INTVL/CNT, and
// TCP_USER_TIMEOUT: a socket whose far end vanished (a NAT forgot the flow) errors with ETIMEDOUT once it was
// idle idleS + intvlS x count, or once data it sent stayed unacknowledged userTimeoutMs.
static Napi::Value TcpLiveness(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  int v[4];
  for (int i = 0; i < 4; i++) {
    if (info.Length() <= (size_t)(i + 1) || !info[i + 1].IsNumber() || info[i + 1].As<Napi::Number>().Int64Value() < 1 ||
        info[i + 1].As<Napi::Number>().Int64Value() > 86400000) {
      ThrowErrno(env, EINVAL, "tcpLiveness: argument " + std::to_string(i + 2) + " must be a positive integer");
      return env.Undefined();
    }
    v[i] = (int)info[i + 1].As<Napi::Number>().Int64Value();
  }
  int one = 1;
  unsigned int user = (unsigned int)v[3];
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v[0], sizeof v[0]) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v[1], sizeof v[1]) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v[2], sizeof v[2]) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof user) < 0)
    ThrowErrno(env, errno, "tcpLiveness: setsockopt(fd " + std::to_string(fd) + ", keepalive/TCP_USER_TIMEOUT)");
  return env.Undefined();
}

// close(fd): void — cancels a pending connectWait on fd (it rejects with ECANCELED) and closes fd.
static Napi::Value Close(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  CancelConnectWait(env, fd);
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(env, errno, "close(fd " + std::to_string(fd) + ")");
  return env.Undefined();
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpSocket", Napi::Function::New(env, TcpSocket, "tcpSocket"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("localAddress", Napi::Function::New(env, LocalAddress, "localAddress"));
  exports.Set("connectStart", Napi::Function::New(env, ConnectStart, "connectStart"));
  exports.Set("setLinger0", Napi::Function::New(env, SetLinger0, "setLinger0"));
  exports.Set("tcpLiveness", Napi::Function::New(env, TcpLiveness, "tcpLiveness"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace boxer
