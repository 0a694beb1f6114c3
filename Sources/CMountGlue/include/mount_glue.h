/*
 * The few lines of the MOUNT service that must be C.
 *
 * libtirpc dispatches a call to a plain C function pointer that carries no
 * user context, and its XDR routines are C callbacks too. Everything about
 * the MOUNT protocol itself (procedures, result encoding, status codes) is
 * Swift (Sources/MountProtocol); this file only bridges:
 *
 *   - the dispatch trampoline registered with svc_reg, and the call that
 *     runs libtirpc on one descriptor with a Swift handler in reach;
 *   - argument decoding for the one argument type MOUNT has (dirpath),
 *     done without trusting the length on the wire;
 *   - replies and client arguments as pre-encoded XDR bytes, and client
 *     results captured as raw bytes for Swift to decode;
 *   - wrappers for the libtirpc macros Swift cannot call (clnt_call, ...).
 */
#ifndef MOUNT_GLUE_H
#define MOUNT_GLUE_H

#include <rpc/rpc.h>
#include <stdbool.h>
#include <stdint.h>

/* RFC 1813 / RFC 1094 appendix: the longest dirpath a client may send. */
#define MOUNTGLUE_MNTPATHLEN 1024

/* Swift's side of a dispatch. `context` is what was given to mountglue_serve. */
typedef void (*mountglue_handler)(void *context, struct svc_req *request, SVCXPRT *xprt);

/*
 * svc_reg(xprt, program, version, <trampoline>, NULL): makes libtirpc route
 * calls for program/version to the trampoline. Never talks to rpcbind (the
 * caller registers addresses itself, per netid). Registering the same
 * program/version again from another transport is harmless.
 */
bool mountglue_svc_reg(SVCXPRT *xprt, rpcprog_t program, rpcvers_t version);

/*
 * Runs svc_getreq_common(fd) with `handler` and `context` visible to the
 * trampoline for calls dispatched during it. Why a thread-local: libtirpc's
 * dispatch signature has no context argument, and svc_reg allows only one
 * dispatch function per program/version for the whole process; the thread
 * that serves the descriptor is the one that knows which server it is.
 * The caller must serialize libtirpc server calls process-wide (libtirpc's
 * transport table is global).
 */
void mountglue_serve(int fd, mountglue_handler handler, void *context);

/* True while `fd` belongs to a live libtirpc server transport. */
bool mountglue_fd_is_registered(int fd);

/* Copies up to `capacity` registered server descriptors; returns how many exist. */
int mountglue_registered_fds(int *out, int capacity);

/* SVC_DESTROY: unregisters the transport, closes its descriptor, frees it. */
void mountglue_destroy(SVCXPRT *xprt);

enum mountglue_path_status {
    MOUNTGLUE_PATH_OK = 0,
    /* Well-formed, but longer than MOUNTGLUE_MNTPATHLEN (skipped, not stored). */
    MOUNTGLUE_PATH_TOO_LONG = 1,
    /* The arguments do not decode: reply with svcerr_decode. */
    MOUNTGLUE_PATH_GARBAGE = 2,
};

struct mountglue_path {
    char bytes[MOUNTGLUE_MNTPATHLEN + 1]; /* NUL-terminated when OK */
    unsigned int length;                  /* length on the wire */
};

/*
 * Decodes the call's dirpath argument (MNT, UMNT). `datagramLength` is the
 * length of the UDP datagram being served (0 for a TCP record): libtirpc's
 * UDP transport decodes from its whole receive buffer, not just from the
 * datagram, so without it a truncated argument would be read from the
 * previous call's leftovers instead of being refused.
 */
enum mountglue_path_status mountglue_getargs_path(SVCXPRT *xprt, struct mountglue_path *path,
                                                  unsigned int datagramLength);

/*
 * The same decoding from `length` bytes in memory (the argument alone, as
 * it follows the call header): what the fuzz target and unit tests reach
 * without a transport.
 */
enum mountglue_path_status mountglue_decode_path(const uint8_t *bytes, unsigned int length,
                                                 struct mountglue_path *path);

/* svc_sendreply with a result already encoded as XDR (4-byte aligned). */
bool mountglue_sendreply_bytes(SVCXPRT *xprt, const uint8_t *bytes, unsigned int length);

/* ---- client side ---- */

/* Raw reply bytes, malloc'd; release with mountglue_bytes_free. */
struct mountglue_bytes {
    uint8_t *data;
    unsigned int length;
    unsigned int capacity;
};

void mountglue_bytes_free(struct mountglue_bytes *bytes);

/*
 * clnt_call with pre-encoded argument bytes; the reply body is captured raw
 * into `result` (up to `limit` bytes) for Swift to decode.
 */
enum clnt_stat mountglue_call(CLIENT *client, rpcproc_t procedure,
                              const uint8_t *arguments, unsigned int argumentsLength,
                              struct mountglue_bytes *result, unsigned int limit,
                              unsigned int timeoutMilliseconds);

/* Sends AUTH_SYS credentials (as mount.nfs and showmount do) instead of AUTH_NONE. */
void mountglue_clnt_use_authsys(CLIENT *client);

/* clnt_sperror's text (copied into `buffer`), and clnt_destroy (with the
   client's auth, which clnt_destroy leaves). */
void mountglue_clnt_error_text(CLIENT *client, char *buffer, size_t size);
void mountglue_clnt_destroy(CLIENT *client);
/* Sets the UDP retransmission interval (clnt_control CLSET_RETRY_TIMEOUT). */
bool mountglue_clnt_set_retry(CLIENT *client, unsigned int milliseconds);

/*
 * rpc_createerr (per thread): why the last client creation or rpcbind call
 * failed. Cleared before a call so a refusal that sets nothing is told apart
 * from a stale error; the text (clnt_spcreateerror) is copied out.
 */
void mountglue_createerr_clear(void);
bool mountglue_createerr_is_set(void);
void mountglue_createerr_text(char *buffer, size_t size);

#endif
