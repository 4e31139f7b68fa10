// Descriptor passing and peer credentials on Unix stream sockets: sendFd/recvFd (SCM_RIGHTS), peerCred
// (SO_PEERCRED), socketPair (for tests and in-process channels).
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace boxer {

// sendFd(unixFd, fd, data): number — one sendmsg() of data with fd as SCM_RIGHTS on its first byte.
// Returns the bytes sent (>= 1; the caller writes any rest through its own stream, after them).
// Never blocks: EAGAIN is thrown when the socket buffer is full. data must not be empty.
static Napi::Value SendFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ufd, fd;
  if (!ArgFd(info, 0, "unixFd", &ufd) || !ArgFd(info, 1, "fd", &fd)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer() || info[2].As<Napi::Buffer<uint8_t>>().Length() == 0) {
    ThrowErrno(env, EINVAL, "sendFd: argument data must be a non-empty Buffer");
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> data = info[2].As<Napi::Buffer<uint8_t>>();
  struct iovec iov = {data.Data(), data.Length()};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = sendmsg(ufd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ThrowErrno(env, errno, "sendFd: sendmsg(fd " + std::to_string(ufd) + ", SCM_RIGHTS fd " + std::to_string(fd) + ")");
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)n);
}

// recvFd(unixFd, maxBytes = 4096): {fd, data} — one recvmsg(); fd is -1 when no descriptor came with the
// bytes; received descriptors are close-on-exec. data is empty at end of stream. Blocks if unixFd is
// blocking; throws EAGAIN on a non-blocking socket with nothing to read.
static Napi::Value RecvFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ufd;
  if (!ArgFd(info, 0, "unixFd", &ufd)) return env.Undefined();
  size_t max = 4096;
  if (info.Length() > 1 && info[1].IsNumber()) {
    double v = info[1].As<Napi::Number>().DoubleValue();
    if (!(v >= 1 && v <= 1 << 20)) {
      ThrowErrno(env, EINVAL, "recvFd: maxBytes must be 1..1048576");
      return env.Undefined();
    }
    max = (size_t)v;
  }
  std::string buf(max, '\0');
  struct iovec iov = {&buf[0], max};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int) * 8)];
  } ctl;
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  ssize_t n;
  do n = recvmsg(ufd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ThrowErrno(env, errno, "recvFd: recvmsg(fd " + std::to_string(ufd) + ")");
    return env.Undefined();
  }
  int got = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; i++) {
      int f;
      memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      if (got < 0)
        got = f;
      else
        close(f);  // one descriptor per message by contract; never leak extras
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, got));
  o.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), (size_t)n));
  return o;
}

// peerCred(unixFd): {pid, uid, gid} of the process at the other end (as of its connect()).
static Napi::Value PeerCred(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int ufd;
  if (!ArgFd(info, 0, "unixFd", &ufd)) return env.Undefined();
  struct ucred cr = {};
  socklen_t len = sizeof cr;
  if (getsockopt(ufd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
    ThrowErrno(env, errno, "peerCred: getsockopt(fd " + std::to_string(ufd) + ", SO_PEERCRED)");
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cr.pid));
  o.Set("uid", Napi::Number::New(env, cr.uid));
  o.Set("gid", Napi::Number::New(env, cr.gid));
  return o;
}

// socketPair(): [number, number] — a connected, blocking, close-on-exec AF_UNIX stream pair.
static Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    ThrowErrno(env, errno, "socketPair: socketpair(AF_UNIX, SOCK_STREAM)");
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set((uint32_t)0, Napi::Number::New(env, sv[0]));
  a.Set((uint32_t)1, Napi::Number::New(env, sv[1]));
  return a;
}

void InitFdPass(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd, "recvFd"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
}

}  // namespace boxer
