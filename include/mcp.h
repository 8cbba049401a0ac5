/*
 * mcp.h - an MCP server (Model Context Protocol, revision 2025-11-25; also
 * answers clients of 2025-06-18, 2025-03-26 and 2024-11-05) over JSON-RPC
 * 2.0, one message per line (the stdio transport).  It offers the mesh to
 * AI agents as the user running it, through the same rules as the mount:
 *
 *   tools      search_products, describe_product (card, descriptor, schema),
 *              read_sample (the first rows, read through the MOUNT, so the
 *              daemon masks, denies and records the read - as program "mcp"),
 *              request_access, lineage, product_usage (owners and governance)
 *   resources  mesh://DOMAIN/PRODUCT: each visible product's card
 *
 * Every answer is filtered for `caller` (visibility.h); a restricted product
 * the caller may not read does not exist here either.
 *
 * Not here: reading stdin and writing stdout (meshctl mcp), the access
 * request file format (meshctl's request command, passed in as a callback).
 * A server is used by one thread.
 */
#ifndef MCP_H
#define MCP_H

#include <stddef.h>

#include "identity.h"

#define MCP_PROTOCOL_VERSION "2025-11-25"
#define MCP_MAX_MESSAGE (4u << 20)

/* Files an access request for the caller; 0 or -errno with a message
 * (malloc'ed) in *text either way. */
typedef int (*mcp_request_fn)(void *ctx, const char *product_ref, const char *reason, char **text);

struct mcp_options {
	const char *store;
	const char *mount;           /* where the mesh is mounted ("/mesh") */
	struct identity caller;
	mcp_request_fn request_access;
	void *request_ctx;
	/* Open a file under the mount as the caller (the daemon decides, masks
	 * and records for them): a descriptor or -errno.  NULL: open(2) here,
	 * when this process is the caller. */
	int (*open_as_caller)(void *ctx, const char *path);
	void *open_ctx;
};

struct mcp_server;

struct mcp_server *mcp_server_new(const struct mcp_options *opts);
void mcp_server_free(struct mcp_server *s);

/* Handle one message (a line, without its newline).  Returns the response
 * line (malloc'ed, no newline), or NULL for a notification or a response.
 * Never fails: malformed input gets a JSON-RPC error response. */
char *mcp_handle(struct mcp_server *s, const char *message, size_t len);

#endif
