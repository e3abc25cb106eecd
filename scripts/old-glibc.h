/* Forced into every C++ file of the prebuilt addon (scripts/prebuild.mjs),
   which is compiled against the oldest glibc the tests fetch (2.27) with
   this machine's libstdc++ headers: those name functions glibc added in
   2.30, inside templates the addon never instantiates (timed waits of
   <mutex> and <condition_variable>). Declared here, they compile; the
   build then checks that the binary asks for none of them. */
#include <pthread.h>
#include <time.h>
#ifdef __cplusplus
extern "C" {
#endif
int pthread_cond_clockwait (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
int pthread_mutex_clocklock (pthread_mutex_t *, clockid_t, const struct timespec *);
int pthread_rwlock_clockrdlock (pthread_rwlock_t *, clockid_t, const struct timespec *);
int pthread_rwlock_clockwrlock (pthread_rwlock_t *, clockid_t, const struct timespec *);
#ifdef __cplusplus
}
#endif
