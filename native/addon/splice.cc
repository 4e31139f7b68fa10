// splice(fdA, fdB, headToA, headToB): Promise<{ aToB, bToA, reset }> — relays two connected TCP sockets in
// the kernel, for the agent's relay of program connections (src/vnet/relay.ts): splice(2) through a pipe per
// direction, on two threads of this relay's own, so that no byte is copied through JavaScript.
//
// Ownership: the addon takes its own duplicates of fdA and fdB (F_DUPFD_CLOEXEC) before returning; the caller
// must then close its descriptors at once and never read them again (a net.Socket: destroy() it). headToA /
// headToB (Buffers, may be empty) are bytes the caller had already read from the other side: they are written
// first, in order.
//
// Semantics, end to end as one TCP connection would behave:
//   - EOF from one side: the rest is flushed, then shutdown(SHUT_WR) on the other side (half-close).
//   - An error on either side (ECONNRESET, EPIPE, ...), or spliceAbortAll(): both sockets are closed with
//     SO_LINGER {on, 0}, so both peers see a reset; `reset` is true.
//   - Resolves once both directions have ended and both sockets are closed; never rejects after returning
//     (argument errors throw synchronously: EBADF, EINVAL; EMFILE / EAGAIN when a descriptor or thread cannot
//     be had, with nothing taken).
// The threads block in poll(2) only (the sockets stay non-blocking: O_NONBLOCK belongs to the shared open
// file), with an eventfd to be woken for an abort. A relay in progress keeps the event loop alive (it is work
// being done); spliceAbortAll() ends them all.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace boxer {

namespace {

// Bytes moved per splice(2) call; also the pipe's capacity we ask for (F_SETPIPE_SZ).
constexpr size_t kChunk = 256 * 1024;
// A relay thread's stack: it only loops over poll and splice.
constexpr size_t kStack = 64 * 1024;

struct Relay;

struct Direction {
  Relay *relay;
  int from, to;
  std::vector<char> head;  // written to `to` before the splice loop
  uint64_t bytes = 0;
};

struct Relay {
  int a, b, wake;
  Direction ab, ba;
  std::atomic<int> running{2};
  std::atomic<bool> reset{false};
  Napi::ThreadSafeFunction tsfn;
  Napi::Promise::Deferred deferred;
  explicit Relay(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

std::mutex g_mu;
std::set<Relay *> g_live;

// Wakes both threads of r (idempotent): they see `reset` and stop.
void Abort(Relay *r) {
  r->reset.store(true);
  uint64_t one = 1;
  ssize_t n = write(r->wake, &one, sizeof one);
  (void)n;
}

// Waits until fd is ready for `events`, or the relay is aborted. Returns false on abort or error.
bool WaitFor(Relay *r, int fd, short events) {
  for (;;) {
    if (r->reset.load()) return false;
    struct pollfd p[2] = {{fd, events, 0}, {r->wake, POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return false;
    if (p[0].revents & (events | POLLHUP | POLLERR)) return true;
  }
}

bool WriteAll(Relay *r, int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && WaitFor(r, fd, POLLOUT)) continue;
    return false;
  }
  return true;
}

// One direction: head, then splice from -> pipe -> to until EOF (then half-close) or an error (then abort).
void RunDirection(Direction *d) {
  Relay *r = d->relay;
  bool ok = WriteAll(r, d->to, d->head.data(), d->head.size());
  d->bytes += ok ? d->head.size() : 0;
  int pipefd[2] = {-1, -1};
  if (ok && pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) ok = false;
  if (ok) fcntl(pipefd[1], F_SETPIPE_SZ, (int)kChunk);  // best effort: the default 64 KiB also works
  while (ok) {
    ssize_t in = splice(d->from, nullptr, pipefd[1], nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (in < 0 && errno == EINTR) continue;
    if (in < 0 && errno == EAGAIN) {
      ok = WaitFor(r, d->from, POLLIN);
      continue;
    }
    if (in < 0) {
      ok = false;
      break;
    }
    if (in == 0) {  // EOF: pass the half-close on
      shutdown(d->to, SHUT_WR);
      break;
    }
    ssize_t left = in;
    while (ok && left > 0) {
      ssize_t out = splice(pipefd[0], nullptr, d->to, nullptr, (size_t)left, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (out > 0) {
        left -= out;
        d->bytes += (uint64_t)out;
      } else if (out < 0 && errno == EINTR) {
        continue;
      } else if (out < 0 && errno == EAGAIN) {
        ok = WaitFor(r, d->to, POLLOUT);
      } else {
        ok = false;
      }
    }
  }
  if (pipefd[0] >= 0) close(pipefd[0]);
  if (pipefd[1] >= 0) close(pipefd[1]);
  if (!ok && !r->reset.load()) Abort(r);
  if (r->running.fetch_sub(1) != 1) return;
  // The last direction to end closes both sockets (with a reset if anything failed) and settles the promise.
  if (r->reset.load()) {
    struct linger l = {1, 0};
    setsockopt(r->a, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    setsockopt(r->b, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close(r->a);
  close(r->b);
  close(r->wake);
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_live.erase(r);
  }
  r->tsfn.BlockingCall(r, [](Napi::Env env, Napi::Function, Relay *rr) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("aToB", Napi::Number::New(env, (double)rr->ab.bytes));
    o.Set("bToA", Napi::Number::New(env, (double)rr->ba.bytes));
    o.Set("reset", Napi::Boolean::New(env, rr->reset.load()));
    rr->deferred.Resolve(o);
  });
  r->tsfn.Release();
}

void *ThreadMain(void *arg) {
  RunDirection(static_cast<Direction *>(arg));
  return nullptr;
}

// Called on the JS thread after the promise settled: frees the relay.
void Finalize(Napi::Env, void *, Relay *r) { delete r; }

bool ArgBuffer(const Napi::CallbackInfo &info, size_t i, const char *name, std::vector<char> *out) {
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  if (!info[i].IsBuffer()) {
    ThrowErrno(info.Env(), EINVAL, std::string("argument ") + name + " must be a Buffer");
    return false;
  }
  auto buf = info[i].As<Napi::Buffer<char>>();
  out->assign(buf.Data(), buf.Data() + buf.Length());
  return true;
}

bool StartThread(Direction *d) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStack);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int rc = pthread_create(&t, &attr, ThreadMain, d);
  pthread_attr_destroy(&attr);
  errno = rc;
  return rc == 0;
}

Napi::Value Splice(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fa, fb;
  if (!ArgFd(info, 0, "fdA", &fa) || !ArgFd(info, 1, "fdB", &fb)) return env.Undefined();
  auto *r = new Relay(env);
  if (!ArgBuffer(info, 2, "headToA", &r->ba.head) || !ArgBuffer(info, 3, "headToB", &r->ab.head)) {
    delete r;
    return env.Undefined();
  }
  std::string what = "splice(fd " + std::to_string(fa) + ", fd " + std::to_string(fb) + ")";
  r->a = fcntl(fa, F_DUPFD_CLOEXEC, 0);
  r->b = r->a < 0 ? -1 : fcntl(fb, F_DUPFD_CLOEXEC, 0);
  r->wake = r->b < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (r->wake < 0) {
    int err = errno;
    if (r->a >= 0) close(r->a);
    if (r->b >= 0) close(r->b);
    delete r;
    ThrowErrno(env, err, what);
    return env.Undefined();
  }
  r->ab.relay = r->ba.relay = r;
  r->ab.from = r->a;
  r->ab.to = r->b;
  r->ba.from = r->b;
  r->ba.to = r->a;
  r->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "boxer splice", 0, 1, r, Finalize, (void *)nullptr);
  Napi::Promise promise = r->deferred.Promise();
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_live.insert(r);
  }
  if (!StartThread(&r->ab)) {
    int err = errno;
    {
      std::lock_guard<std::mutex> g(g_mu);
      g_live.erase(r);
    }
    close(r->a);
    close(r->b);
    close(r->wake);
    r->tsfn.Release();  // Finalize frees r
    ThrowErrno(env, err, what + ": pthread_create");
    return env.Undefined();
  }
  if (!StartThread(&r->ba)) {
    // The first direction runs already: abort it; it ends the relay (reset) as the last one standing.
    r->running.fetch_sub(1);
    Abort(r);
  }
  return promise;
}

// spliceAbortAll(): resets every relay in progress (the agent is stopping). Returns how many.
Napi::Value SpliceAbortAll(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> g(g_mu);
  for (Relay *r : g_live) Abort(r);
  return Napi::Number::New(info.Env(), (double)g_live.size());
}

// spliceActive(): relays in progress.
Napi::Value SpliceActive(const Napi::CallbackInfo &info) {
  std::lock_guard<std::mutex> g(g_mu);
  return Napi::Number::New(info.Env(), (double)g_live.size());
}

}  // namespace

void InitSplice(Napi::Env env, Napi::Object exports) {
  exports.Set("splice", Napi::Function::New(env, Splice, "splice"));
  exports.Set("spliceAbortAll", Napi::Function::New(env, SpliceAbortAll, "spliceAbortAll"));
  exports.Set("spliceActive", Napi::Function::New(env, SpliceActive, "spliceActive"));
}

}  // namespace boxer
