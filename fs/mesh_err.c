/* mesh_err.c - error recording for all modules (see include/mesh_err.h). */
#include "mesh_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mesh_errf(struct mesh_err *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	err->code = code ? code : -1;
	return err->code;
}

int mesh_err_prefix(struct mesh_err *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char prefix[256], old[MESH_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t plen = strnlen(prefix, sizeof err->msg - 1);
	memcpy(err->msg, prefix, plen);
	size_t olen = strnlen(old, sizeof err->msg - 1 - plen);
	memcpy(err->msg + plen, old, olen);
	err->msg[plen + olen] = '\0';
	return err->code;
}

void mesh_err_clear(struct mesh_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
