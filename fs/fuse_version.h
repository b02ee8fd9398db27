/* SPDX-License-Identifier: MIT */
/*
 * The libfuse API mlfs is written against, named once: every file of fs/
 * takes <fuse_lowlevel.h> through this header.  Any thread.
 */
#ifndef MLFS_FUSE_VERSION_H
#define MLFS_FUSE_VERSION_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#endif
