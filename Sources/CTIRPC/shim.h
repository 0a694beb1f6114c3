/* libtirpc (Debian's libtirpc-dev; pkg-config adds -I/usr/include/tirpc):
   the RPC server and client calls, rpcbind registration, netconfig. */
#include <rpc/rpc.h>
#include <rpc/rpc_com.h>
#include <netconfig.h>
