// Keeping the network secret away from the member's program, which runs as the same user as the agent:
// hideProcess() makes the agent non-dumpable (prctl PR_SET_DUMPABLE 0: /proc/PID/environ, mem, maps, fd and
// ptrace are closed to other processes of the user, and no core dump is written), and scrubEnv(NAME)
// overwrites the value of NAME in the process's own environment block (what /proc/PID/environ shows) before
// removing it from the environment.
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

namespace boxer {

static Napi::Value HideProcess(const Napi::CallbackInfo &info) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    ThrowErrno(info.Env(), errno, "hideProcess: prctl(PR_SET_DUMPABLE, 0)");
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
}

// scrubEnv(name): how many values were overwritten (0 when the variable was not set).
static Napi::Value ScrubEnv(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowErrno(info.Env(), EINVAL, "scrubEnv: the argument must be a variable name");
    return info.Env().Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.find('=') != std::string::npos) {
    ThrowErrno(info.Env(), EINVAL, "scrubEnv: not a variable name: '" + name + "'");
    return info.Env().Undefined();
  }
  int n = 0;
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, name.c_str(), name.size()) == 0 && (*e)[name.size()] == '=') {
      char *v = *e + name.size() + 1;
      memset(v, 0, strlen(v));
      n++;
    }
  }
  unsetenv(name.c_str());
  return Napi::Number::New(info.Env(), n);
}

void InitSecrecy(Napi::Env env, Napi::Object exports) {
  exports.Set("hideProcess", Napi::Function::New(env, HideProcess, "hideProcess"));
  exports.Set("scrubEnv", Napi::Function::New(env, ScrubEnv, "scrubEnv"));
}

}  // namespace boxer
