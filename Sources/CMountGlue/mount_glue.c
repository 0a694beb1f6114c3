/* See include/mount_glue.h for what this bridges and why it is C. */
#include "mount_glue.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dispatch ---- */

struct dispatch_target {
    mountglue_handler handler;
    void *context;
};

/*
 * The one piece of state: which Swift handler the current thread is serving
 * for. Set only for the duration of mountglue_serve, so a call can never
 * reach a server that is not on the stack of this very thread.
 */
static _Thread_local const struct dispatch_target *current_target;

static void trampoline(struct svc_req *request, SVCXPRT *xprt)
{
    const struct dispatch_target *target = current_target;
    if (target == NULL) {
        /* Someone else's svc loop picked up our program: nobody to answer. */
        svcerr_noprog(xprt);
        return;
    }
    target->handler(target->context, request, xprt);
}

bool mountglue_svc_reg(SVCXPRT *xprt, rpcprog_t program, rpcvers_t version)
{
    return svc_reg(xprt, program, version, trampoline, NULL);
}

void mountglue_serve(int fd, mountglue_handler handler, void *context)
{
    const struct dispatch_target target = { handler, context };
    const struct dispatch_target *saved = current_target;
    current_target = &target;
    svc_getreq_common(fd);
    current_target = saved;
}

/* svc_pollfd is libtirpc's public table of server descriptors (-1 = free slot). */
bool mountglue_fd_is_registered(int fd)
{
    for (int i = 0; i < svc_max_pollfd; i++)
        if (svc_pollfd[i].fd == fd)
            return true;
    return false;
}

int mountglue_registered_fds(int *out, int capacity)
{
    int count = 0;
    for (int i = 0; i < svc_max_pollfd; i++) {
        if (svc_pollfd[i].fd < 0)
            continue;
        if (count < capacity)
            out[count] = svc_pollfd[i].fd;
        count++;
    }
    return count;
}

void mountglue_destroy(SVCXPRT *xprt)
{
    SVC_DESTROY(xprt);
}

/* ---- arguments ---- */

/*
 * dirpath is string<MNTPATHLEN>. xdr_string would reject a longer one as
 * garbage, but MOUNT answers it with NAMETOOLONG; and it would allocate
 * whatever length the wire claims. So: read the length, keep it if it fits,
 * otherwise consume the bytes in 4-aligned chunks (so only the last chunk is
 * padded, exactly as one xdr_opaque would be) and remember it was too long.
 * A claimed length beyond the end of the record fails inside xdr_opaque.
 */
static bool_t xdr_path_argument(XDR *xdrs, struct mountglue_path *path, enum mountglue_path_status *status)
{
    u_int length;
    if (!xdr_u_int(xdrs, &length))
        return FALSE;
    path->length = length;
    if (length <= MOUNTGLUE_MNTPATHLEN) {
        if (!xdr_opaque(xdrs, path->bytes, length))
            return FALSE;
        path->bytes[length] = '\0';
        *status = MOUNTGLUE_PATH_OK;
        return TRUE;
    }
    char scratch[1024];
    while (length > 0) {
        u_int chunk = length > sizeof scratch ? (u_int)sizeof scratch : length;
        if (!xdr_opaque(xdrs, scratch, chunk))
            return FALSE;
        length -= chunk;
    }
    path->bytes[0] = '\0';
    *status = MOUNTGLUE_PATH_TOO_LONG;
    return TRUE;
}

struct path_call {
    struct mountglue_path *path;
    enum mountglue_path_status status;
    u_int datagram_length;
};

static bool_t xdr_path_call(XDR *xdrs, struct path_call *call)
{
    if (xdrs->x_op == XDR_FREE)
        return TRUE; /* nothing allocated */
    if (xdrs->x_op != XDR_DECODE)
        return FALSE;
    if (!xdr_path_argument(xdrs, call->path, &call->status))
        return FALSE;
    /*
     * svc_dg's xdrmem stream spans the whole receive buffer, so reads past
     * the datagram succeed on stale bytes (never past the buffer). For a
     * datagram, XDR_GETPOS is the offset from its first byte: past its
     * length means the argument was cut short.
     */
    if (call->datagram_length != 0 && XDR_GETPOS(xdrs) > call->datagram_length)
        return FALSE;
    return TRUE;
}

enum mountglue_path_status mountglue_getargs_path(SVCXPRT *xprt, struct mountglue_path *path,
                                                  unsigned int datagramLength)
{
    struct path_call call = { path, MOUNTGLUE_PATH_GARBAGE, datagramLength };
    if (!svc_getargs(xprt, (xdrproc_t)xdr_path_call, &call))
        return MOUNTGLUE_PATH_GARBAGE;
    return call.status;
}

enum mountglue_path_status mountglue_decode_path(const uint8_t *bytes, unsigned int length,
                                                 struct mountglue_path *path)
{
    struct path_call call = { path, MOUNTGLUE_PATH_GARBAGE, 0 };
    XDR xdrs;
    /* An XDR_DECODE stream only reads: the cast drops a const it keeps. */
    xdrmem_create(&xdrs, (char *)bytes, length, XDR_DECODE);
    bool_t decoded = xdr_path_call(&xdrs, &call);
    xdr_destroy(&xdrs);
    return decoded ? call.status : MOUNTGLUE_PATH_GARBAGE;
}

/* ---- pre-encoded bytes out ---- */

struct encoded {
    const uint8_t *bytes;
    u_int length;
};

/* The bytes are XDR already (Swift encodes them, 4-byte aligned): copy them. */
static bool_t xdr_encoded(XDR *xdrs, struct encoded *encoded)
{
    if (xdrs->x_op == XDR_FREE)
        return TRUE;
    if (xdrs->x_op != XDR_ENCODE)
        return FALSE;
    if (encoded->length == 0)
        return TRUE;
    return XDR_PUTBYTES(xdrs, (const char *)encoded->bytes, encoded->length);
}

bool mountglue_sendreply_bytes(SVCXPRT *xprt, const uint8_t *bytes, unsigned int length)
{
    struct encoded encoded = { bytes, length };
    return svc_sendreply(xprt, (xdrproc_t)xdr_encoded, &encoded);
}

/* ---- raw bytes in (client results) ---- */

struct capture {
    struct mountglue_bytes *bytes;
    u_int limit;
};

/*
 * A reply does not announce its length to the results routine. XDR is made
 * of 4-byte units, and both libtirpc streams (xdrmem for a datagram, xdrrec
 * for a record) fail a read past the end, so read units until one fails.
 */
static bool_t xdr_capture(XDR *xdrs, struct capture *capture)
{
    struct mountglue_bytes *out = capture->bytes;
    if (xdrs->x_op == XDR_FREE)
        return TRUE; /* the caller frees with mountglue_bytes_free */
    if (xdrs->x_op != XDR_DECODE)
        return FALSE;
    for (;;) {
        char unit[4];
        if (!XDR_GETBYTES(xdrs, unit, sizeof unit))
            return TRUE;
        if (out->length + 4 > capture->limit)
            return FALSE;
        if (out->length + 4 > out->capacity) {
            unsigned int capacity = out->capacity ? out->capacity * 2 : 256;
            uint8_t *grown = realloc(out->data, capacity);
            if (grown == NULL)
                return FALSE;
            out->data = grown;
            out->capacity = capacity;
        }
        memcpy(out->data + out->length, unit, sizeof unit);
        out->length += 4;
    }
}

void mountglue_bytes_free(struct mountglue_bytes *bytes)
{
    free(bytes->data);
    bytes->data = NULL;
    bytes->length = 0;
    bytes->capacity = 0;
}

enum clnt_stat mountglue_call(CLIENT *client, rpcproc_t procedure,
                              const uint8_t *arguments, unsigned int argumentsLength,
                              struct mountglue_bytes *result, unsigned int limit,
                              unsigned int timeoutMilliseconds)
{
    struct encoded encoded = { arguments, argumentsLength };
    struct capture capture = { result, limit };
    struct timeval timeout = {
        .tv_sec = timeoutMilliseconds / 1000,
        .tv_usec = (timeoutMilliseconds % 1000) * 1000,
    };

    /*
     * A server that closed the connection turns libtirpc's write() into
     * SIGPIPE, which would kill the calling process. Block it for the call
     * (it is then raised on this thread only and stays pending), take a
     * pending one back, and restore the mask: the call just fails instead.
     */
    sigset_t pipe_only, saved;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &saved);
    enum clnt_stat status = clnt_call(client, procedure, (xdrproc_t)xdr_encoded, (void *)&encoded,
                                      (xdrproc_t)xdr_capture, (void *)&capture, timeout);
    if (!sigismember(&saved, SIGPIPE)) {
        const struct timespec now = { 0, 0 };
        while (sigtimedwait(&pipe_only, NULL, &now) == SIGPIPE)
            ;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
    return status;
}

/* ---- macro wrappers ---- */

void mountglue_clnt_error_text(CLIENT *client, char *buffer, size_t size)
{
    /* clnt_sperror returns a per-thread static buffer: copy it out now. */
    snprintf(buffer, size, "%s", clnt_sperror(client, ""));
}

void mountglue_clnt_use_authsys(CLIENT *client)
{
    AUTH *auth = authunix_create_default();
    if (auth == NULL)
        return; /* keep AUTH_NONE */
    if (client->cl_auth != NULL)
        auth_destroy(client->cl_auth);
    client->cl_auth = auth;
}

void mountglue_clnt_destroy(CLIENT *client)
{
    if (client->cl_auth != NULL)
        auth_destroy(client->cl_auth);
    clnt_destroy(client);
}

bool mountglue_clnt_set_retry(CLIENT *client, unsigned int milliseconds)
{
    struct timeval retry = {
        .tv_sec = milliseconds / 1000,
        .tv_usec = (milliseconds % 1000) * 1000,
    };
    return clnt_control(client, CLSET_RETRY_TIMEOUT, (char *)&retry);
}

void mountglue_createerr_clear(void)
{
    rpc_createerr.cf_stat = RPC_SUCCESS;
}

bool mountglue_createerr_is_set(void)
{
    return rpc_createerr.cf_stat != RPC_SUCCESS;
}

void mountglue_createerr_text(char *buffer, size_t size)
{
    snprintf(buffer, size, "%s", clnt_spcreateerror(""));
}
