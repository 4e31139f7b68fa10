// boxer_native: the socket operations the agent needs and Node.js cannot do itself (SO_REUSEPORT on client
// sockets, a bound non-blocking connect for TCP simultaneous open, SCM_RIGHTS to non-Node processes,
// SO_PEERCRED, a relay of two sockets in the kernel with splice(2), keeping the secret from other processes). The JS surface is documented in ../index.d.ts.
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

namespace boxer {

std::string ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  if (name) return name;
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string &what) {
  std::string msg = what + ": " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string &what) {
  ErrnoError(env, err, what).ThrowAsJavaScriptException();
}

bool ArgFd(const Napi::CallbackInfo &info, size_t i, const char *name, int *out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " must be a file descriptor number");
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 2147483647.0) || v != (double)(int)v) {
    ThrowErrno(info.Env(), EBADF, std::string("argument ") + name + " is not a valid file descriptor");
    return false;
  }
  *out = (int)v;
  return true;
}

bool ArgIPv4(const Napi::CallbackInfo &info, size_t i, const char *name, struct in_addr *out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " must be an IPv4 address string");
    return false;
  }
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (inet_pton(AF_INET, s.c_str(), out) != 1) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " is not an IPv4 address: '" + s + "'");
    return false;
  }
  return true;
}

bool ArgPort(const Napi::CallbackInfo &info, size_t i, const char *name, uint16_t *out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " must be a port number");
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 65535) || v != (double)(int)v) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " is not a port (0-65535)");
    return false;
  }
  *out = (uint16_t)v;
  return true;
}

}  // namespace boxer

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  boxer::InitSockets(env, exports);
  boxer::InitConnectWait(env, exports);
  boxer::InitFdPass(env, exports);
  boxer::InitSplice(env, exports);
  boxer::InitSecrecy(env, exports);
  return exports;
}

NODE_API_MODULE(boxer_native, Init)
