/* Linux headers the Glibc module does not cover. */
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <linux/vm_sockets.h>

/* splice(2) and pipe2(2) without _GNU_SOURCE in the Glibc module: the raw
   system calls, with the constants of <linux/fcntl.h> and <fcntl.h>. */
#include <stddef.h>
#include <unistd.h>
#include <sys/syscall.h>

#define CLINUX_SPLICE_F_MOVE     1u
#define CLINUX_SPLICE_F_NONBLOCK 2u
#define CLINUX_SPLICE_F_MORE     4u
#define CLINUX_F_SETPIPE_SZ      1031
#define CLINUX_F_GETPIPE_SZ      1032

static inline long clinux_splice(int fd_in, int fd_out, size_t len, unsigned int flags) {
    return syscall(SYS_splice, fd_in, (void *)0, fd_out, (void *)0, len, flags);
}

static inline int clinux_pipe2(int fds[2], int flags) {
    return (int)syscall(SYS_pipe2, fds, flags);
}
