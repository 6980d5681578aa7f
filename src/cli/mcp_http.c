/* mcp_http.c - the Streamable HTTP transport of `airlock mcp` (not yet). */
#include "mcp.h"

#include <stdio.h>

int mcp_http_serve(const struct mcp_config *cfg, const char *listen, const char *token)
{
    (void)cfg, (void)listen, (void)token;
    fprintf(stderr, "airlock mcp: the http transport is not built yet\n");
    return 1;
}
