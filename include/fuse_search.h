/*
 * fuse_search.h - FUSE glue of /mesh/.search (search_dir.h): each call
 * answers the request and returns true when the inode is the tree's, and
 * returns false (nothing replied) otherwise.  fuse_ops.c asks first.
 */
#ifndef FUSE_SEARCH_H
#define FUSE_SEARCH_H

#include "fuse_ops.h"   /* FUSE_USE_VERSION and fuse_lowlevel.h */
#include <stdbool.h>

bool fuse_search_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
bool fuse_search_getattr(fuse_req_t req, fuse_ino_t ino);
bool fuse_search_readlink(fuse_req_t req, fuse_ino_t ino);
bool fuse_search_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool fuse_search_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
			 bool plus);
bool fuse_search_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool fuse_search_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
bool fuse_search_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
bool fuse_search_release(fuse_req_t req, fuse_ino_t ino);
bool fuse_search_access(fuse_req_t req, fuse_ino_t ino, int mask);

#endif
