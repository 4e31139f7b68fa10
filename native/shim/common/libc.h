/* The real libc functions, resolved lazily with dlsym(RTLD_NEXT) on first use (thread-safe: a racing
 * resolution stores the same pointer). REAL(name) evaluates to a pointer of name's type. */
#pragma once
#include <dlfcn.h>

#define REAL(name)                                                                         \
	({                                                                                 \
		static __typeof__(&name) real_##name;                                      \
		__typeof__(&name) f_ = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);    \
		if (!f_) {                                                                 \
			f_ = (__typeof__(&name))dlsym(RTLD_NEXT, #name);                   \
			__atomic_store_n(&real_##name, f_, __ATOMIC_RELEASE);              \
		}                                                                          \
		f_;                                                                        \
	})
