// connectWait(fd, timeoutMs): Promise<void> — waits, on the event loop (a libuv poll handle plus a timer, no
// thread and no blocking), until a connect started with connectStart() completes.
//
// Resolves when the socket is connected. Rejects with an errno Error: the socket's SO_ERROR (ECONNREFUSED,
// ETIMEDOUT, EHOSTUNREACH, ...), ETIMEDOUT when timeoutMs passes first (the fd stays open and the kernel's
// connect goes on; the caller decides), ENOTCONN when the socket became writable without being connected (no
// connect was started), EALREADY when a connectWait on fd is already pending, ECANCELED when close(fd) of this
// addon closed it meanwhile, EEXIST when the event loop already watches fd (e.g. it was wrapped in net.Socket).
// The fd must not be handed to net.Socket before the promise settles.
#include "common.h"

#include <errno.h>
#include <sys/socket.h>
#include <uv.h>

#include <unordered_map>

namespace boxer {

namespace {

struct Waiter {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  int open_handles;
  bool settled;
  napi_env env;
  Napi::Promise::Deferred deferred;
  Napi::AsyncContext *ctx;
  unsigned timeout_ms;
  Waiter(napi_env e) : deferred(Napi::Promise::Deferred::New(e)) {}
};

// Pending waits by fd. The addon is used from the agent's main thread only (one event loop).
std::unordered_map<int, Waiter *> g_waiters;

void OnClosed(uv_handle_t *h) {
  Waiter *w = static_cast<Waiter *>(h->data);
  if (--w->open_handles == 0) {
    delete w->ctx;
    delete w;
  }
}

// Settles the promise (err 0: resolve) and releases the handles.
void Finish(Waiter *w, int err, const std::string &what) {
  if (w->settled) return;
  w->settled = true;
  auto it = g_waiters.find(w->fd);
  if (it != g_waiters.end() && it->second == w) g_waiters.erase(it);
  // Stop watching the fd now (synchronously removes it from the loop's epoll set), so that the caller can
  // wrap it with net.Socket as soon as the promise settles.
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  {
    Napi::Env env(w->env);
    Napi::HandleScope scope(env);
    Napi::CallbackScope cbscope(env, *w->ctx);  // runs the microtasks (promise reactions) when it closes
    if (err == 0)
      w->deferred.Resolve(env.Undefined());
    else
      w->deferred.Reject(ErrnoError(env, err, what).Value());
  }
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), OnClosed);
}

void OnPoll(uv_poll_t *h, int status, int events) {
  Waiter *w = static_cast<Waiter *>(h->data);
  std::string what = "connectWait(fd " + std::to_string(w->fd) + ")";
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
    Finish(w, errno, what + ": getsockopt(SO_ERROR)");
    return;
  }
  if (soerr != 0) {
    Finish(w, soerr, what + ": connect failed");
    return;
  }
  if (status < 0) {
    Finish(w, -status, what + ": poll failed");
    return;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(w->fd, reinterpret_cast<struct sockaddr *>(&ss), &sl) < 0) {
    // Writable but not connected: no connect in progress on this socket.
    Finish(w, ENOTCONN, what + ": socket is not connecting (call connectStart first)");
    return;
  }
  Finish(w, 0, what);
}

void OnTimer(uv_timer_t *h) {
  Waiter *w = static_cast<Waiter *>(h->data);
  Finish(w, ETIMEDOUT,
         "connectWait(fd " + std::to_string(w->fd) + "): not connected within " + std::to_string(w->timeout_ms) +
             " ms");
}

Napi::Value ConnectWait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "fd", &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsNumber() || !(info[1].As<Napi::Number>().DoubleValue() >= 0)) {
    ThrowErrno(env, EINVAL, "connectWait: argument timeoutMs must be a number >= 0");
    return env.Undefined();
  }
  double tmo = info[1].As<Napi::Number>().DoubleValue();
  if (tmo > 4294967295.0) tmo = 4294967295.0;

  Waiter *w = new Waiter(env);
  Napi::Promise promise = w->deferred.Promise();
  w->fd = fd;
  w->env = env;
  w->settled = false;
  w->open_handles = 0;
  w->timeout_ms = (unsigned)tmo;
  w->ctx = new Napi::AsyncContext(env, "boxer.connectWait");

  std::string what = "connectWait(fd " + std::to_string(fd) + ")";
  if (g_waiters.count(fd)) {
    w->deferred.Reject(ErrnoError(env, EALREADY, what + ": a wait on this fd is already pending").Value());
    delete w->ctx;
    delete w;
    return promise;
  }
  uv_loop_t *loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    w->deferred.Reject(ErrnoError(env, EINVAL, what + ": no event loop").Value());
    delete w->ctx;
    delete w;
    return promise;
  }
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    w->deferred.Reject(ErrnoError(env, -rc, what + ": cannot watch the fd (uv_poll_init)").Value());
    delete w->ctx;
    delete w;
    return promise;
  }
  w->poll.data = w;
  w->open_handles++;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles++;
  g_waiters[fd] = w;
  rc = uv_poll_start(&w->poll, UV_WRITABLE | UV_DISCONNECT, OnPoll);
  if (rc < 0) {
    // Settled synchronously: still fine for a promise (reactions run after this call returns).
    w->settled = true;
    g_waiters.erase(fd);
    w->deferred.Reject(ErrnoError(env, -rc, what + ": uv_poll_start").Value());
    uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), OnClosed);
    return promise;
  }
  uv_timer_start(&w->timer, OnTimer, (uint64_t)tmo, 0);
  return promise;
}

}  // namespace

void CancelConnectWait(Napi::Env env, int fd) {
  auto it = g_waiters.find(fd);
  if (it == g_waiters.end()) return;
  Finish(it->second, ECANCELED, "connectWait(fd " + std::to_string(fd) + "): the fd was closed");
}

void InitConnectWait(Napi::Env env, Napi::Object exports) {
  exports.Set("connectWait", Napi::Function::New(env, ConnectWait, "connectWait"));
}

}  // namespace boxer
