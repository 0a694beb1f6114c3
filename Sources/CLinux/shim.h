/* Linux headers the Glibc module does not cover. */
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <net/if.h>
#include <sys/fsuid.h>
#include <linux/vm_sockets.h>

/* glibc declares these only under _GNU_SOURCE, which Swift's Glibc module
   is built without. */
extern int setns(int fd, int nstype);
extern int unshare(int flags);
#define NFSVSOCK_CLONE_NEWNET 0x40000000

/* struct ucred (SO_PEERCRED), also _GNU_SOURCE only. */
struct nfsvsock_ucred {
    int pid;
    unsigned int uid;
    unsigned int gid;
};

/* ioctl(2) and prctl(2) are variadic, which Swift cannot call. */
static inline int nfsvsock_ioctl_ifreq(int fd, unsigned long request, struct ifreq *ifr) {
    return ioctl(fd, request, ifr);
}

static inline int nfsvsock_prctl(int option, unsigned long argument) {
    return prctl(option, argument, 0UL, 0UL, 0UL);
}

/* A guest's release (nfsd-control release-guest): a real-time signal queued
   to the bridge with the guest's CID as its value. SIGRTMIN is a function
   call in glibc, and siginfo_t's fields sit in unions Swift names poorly. */
#include <signal.h>
static inline int nfsvsock_release_signal(void) { return SIGRTMIN + 1; }
static inline int nfsvsock_sigqueue_int(int pid, int signo, int value) {
    union sigval v;
    v.sival_int = value;
    return sigqueue(pid, signo, v);
}
static inline int nfsvsock_siginfo_int(const siginfo_t *info) { return info->si_value.sival_int; }
static inline unsigned int nfsvsock_siginfo_uid(const siginfo_t *info) { return info->si_uid; }
static inline int nfsvsock_siginfo_queued(const siginfo_t *info) { return info->si_code == SI_QUEUE; }
