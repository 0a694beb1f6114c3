/* Linux headers the Glibc module does not cover. */
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <linux/vm_sockets.h>
