// Shared helpers of the boxer_native addon: argument checks and errno-carrying errors.
//
// Every function of the addon reports failure by throwing (or rejecting with) a JS Error whose `code` is the
// errno name (e.g. "ECONNREFUSED"), whose `errno` is the positive errno number, and whose message says which
// call failed on what. Nothing in the addon aborts the process on bad input.
#pragma once
#include <napi.h>
#include <netinet/in.h>
#include <string>

namespace boxer {

// Returns the errno's symbolic name ("EINVAL"), or "E<number>" if glibc does not know it.
std::string ErrnoName(int err);

// Builds (does not throw) an Error carrying code/errno/syscall properties.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string &what);

// Throws ErrnoError as a pending JS exception; the caller returns right after.
void ThrowErrno(Napi::Env env, int err, const std::string &what);

// Argument helpers: on failure they throw an EINVAL error and return false.
bool ArgFd(const Napi::CallbackInfo &info, size_t i, const char *name, int *out);
bool ArgIPv4(const Napi::CallbackInfo &info, size_t i, const char *name, struct in_addr *out);
bool ArgPort(const Napi::CallbackInfo &info, size_t i, const char *name, uint16_t *out);

void InitSockets(Napi::Env env, Napi::Object exports);
void InitConnectWait(Napi::Env env, Napi::Object exports);
void InitFdPass(Napi::Env env, Napi::Object exports);
void InitSplice(Napi::Env env, Napi::Object exports);
void InitSecrecy(Napi::Env env, Napi::Object exports);

// Cancels a pending connectWait on fd (rejects it with ECANCELED); used by close(fd).
void CancelConnectWait(Napi::Env env, int fd);

}  // namespace boxer
