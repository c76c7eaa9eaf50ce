/*
 * libpmem.h: the C interface of pmem-sys, a Rust reimplementation of PMDK's
 * libpmem, API version 1.1, as served by the pmem-capi crate.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * Build the library with `cargo build --release -p pmem-capi` and link with
 * `-lpmem` (target/release/libpmem.so, whose SONAME is libpmem.so.1, as
 * PMDK's is: install it, or a link to it, as libpmem.so.1 where the program
 * will look). The names, types and values below are those of PMDK's
 * libpmem.h, so a program written for libpmem compiles unchanged against
 * this header and runs unchanged against this library.
 *
 * Conventions shared by every function:
 * - Failures are reported the C way: a NULL or -1 return, with errno set to
 *   the same value libpmem sets, and a description of the failure available
 *   from pmem_errormsg() on the failing thread.
 * - Addresses passed in must lie in memory mapped into the process
 *   (pmem_map_file() mappings or any other memory); lengths are in bytes.
 * - Every function is thread-safe.
 *
 * Where this library behaves differently from PMDK's libpmem, the comment on
 * the function says so under "Differs from PMDK".
 */

#ifndef LIBPMEM_H
#define LIBPMEM_H 1

/*
 * Defined by this header only (not by PMDK's), for programs and build
 * systems that need to tell the two apart.
 */
#define PMEM_SYS_LIBPMEM_H 1

#include <stddef.h>    /* size_t */
#include <sys/types.h> /* mode_t */

#ifdef __cplusplus
extern "C" {
#endif

/* API version implemented; pass these to pmem_check_version(). */
#define PMEM_MAJOR_VERSION 1
#define PMEM_MINOR_VERSION 1

/*
 * Smallest size worth giving a pool part: room for a pool header plus
 * alignment slack. Two mebibytes, as a size_t.
 */
#define PMEM_MIN_PART ((size_t)2 * 1024 * 1024)

/* ------------------------------------------------------------------------
 * Mapping files
 * ------------------------------------------------------------------------ */

/* Flags of pmem_map_file(); any other bit makes it fail with EINVAL. */
#define PMEM_FILE_CREATE (1 << 0)  /* create if missing; size the file to len */
#define PMEM_FILE_EXCL (1 << 1)    /* with CREATE: fail (EEXIST) if it exists */
#define PMEM_FILE_SPARSE (1 << 2)  /* with CREATE: do not allocate the blocks */
#define PMEM_FILE_TMPFILE (1 << 3) /* with CREATE: path is a directory; map an
                                    * unnamed file created in it */

/*
 * Opens (or, with PMEM_FILE_CREATE, creates with permissions `mode`) the
 * file or Device DAX at `path` and maps all of it shared and writable.
 *
 * Without PMEM_FILE_CREATE, `len` must be 0 and the mapping covers the whole
 * file (an empty file is an error). With it, `len` must be non-zero and the
 * file is truncated or extended to exactly `len` bytes, with its blocks
 * allocated unless PMEM_FILE_SPARSE is given. A Device DAX is always mapped
 * whole; `len` is then 0 or the device's exact size.
 *
 * Returns the address of the mapping, and stores its length in *mapped_lenp
 * and whether it is persistent memory (see pmem_is_pmem()) in *is_pmemp;
 * either pointer may be NULL. On failure returns NULL with errno set (EINVAL
 * for invalid arguments, otherwise the errno of the failing system call, such
 * as ENOENT or EEXIST from open) and leaves *mapped_lenp and *is_pmemp
 * untouched; a file created by this call with CREATE|EXCL is removed again.
 *
 * Release the mapping with pmem_unmap().
 */
void *pmem_map_file(const char *path, size_t len, int flags, mode_t mode,
                    size_t *mapped_lenp, int *is_pmemp);

/*
 * Unmaps [addr, addr + len) (as munmap) and forgets that it was persistent
 * memory. Returns 0, or -1 with errno set: EINVAL when len is 0 or addr is
 * not page-aligned.
 */
int pmem_unmap(void *addr, size_t len);

/*
 * Returns 1 if all of [addr, addr + len) is persistent memory, so that the
 * flush functions below make stores durable without msync; otherwise 0.
 * A zero-length range is never persistent memory. The environment variable
 * PMEM_IS_PMEM_FORCE=1 (or 0), read once at first use, overrides the answer
 * for non-empty ranges.
 */
int pmem_is_pmem(const void *addr, size_t len);

/* ------------------------------------------------------------------------
 * Making stores durable
 * ------------------------------------------------------------------------ */

/* Writes back and waits: pmem_flush() followed by pmem_drain(). */
void pmem_persist(const void *addr, size_t len);

/*
 * Makes the range durable with msync(MS_SYNC), for memory that is not
 * persistent memory; addr need not be page-aligned. Returns 0, or -1 with
 * errno set by msync (ENOMEM for an unmapped range).
 */
int pmem_msync(const void *addr, size_t len);

/*
 * Returns 1 if the platform flushes CPU caches to persistent memory on power
 * failure (eADR), 0 if not (or no persistent memory regions exist), -1 if
 * that cannot be determined. Re-examined on every call.
 */
int pmem_has_auto_flush(void);

/*
 * Starts writing back the cache lines of the range without waiting for them
 * (nothing where caches are persistent). Follow with pmem_drain().
 */
void pmem_flush(const void *addr, size_t len);

/* Writes back the cache lines of the range even where pmem_flush() would not. */
void pmem_deep_flush(const void *addr, size_t len);

/*
 * Waits until earlier writes to the range have left the volatile queues of
 * the memory subsystem (msync for files, the region's deep flush control for
 * Device DAX). Returns 0, or -1 with errno set.
 */
int pmem_deep_drain(const void *addr, size_t len);

/* pmem_deep_flush() then pmem_deep_drain(); returns the latter's result. */
int pmem_deep_persist(const void *addr, size_t len);

/* Waits until earlier flushes and non-temporal stores are durable. */
void pmem_drain(void);

/* Returns 1 if the hardware drains by itself; 0 on every supported platform. */
int pmem_has_hw_drain(void);

/* ------------------------------------------------------------------------
 * Persistent copies
 *
 * Each behaves like the libc function of the same name and returns pmemdest,
 * then makes the written bytes durable. pmem_memcpy*() accept overlapping
 * ranges, exactly as pmem_memmove*() do. The _persist forms flush and drain;
 * the _nodrain forms flush but leave the drain to the caller.
 * ------------------------------------------------------------------------ */

void *pmem_memmove_persist(void *pmemdest, const void *src, size_t len);
void *pmem_memcpy_persist(void *pmemdest, const void *src, size_t len);
void *pmem_memset_persist(void *pmemdest, int c, size_t len);
void *pmem_memmove_nodrain(void *pmemdest, const void *src, size_t len);
void *pmem_memcpy_nodrain(void *pmemdest, const void *src, size_t len);
void *pmem_memset_nodrain(void *pmemdest, int c, size_t len);

/* Flags of pmem_memmove(), pmem_memcpy() and pmem_memset(). */
#define PMEM_F_MEM_NODRAIN (1U << 0)     /* flush, but skip the final drain */
#define PMEM_F_MEM_NONTEMPORAL (1U << 1) /* bypass the caches at any length */
#define PMEM_F_MEM_TEMPORAL (1U << 2)    /* store through the caches, flush */
#define PMEM_F_MEM_WC (1U << 3)          /* hint: write-combining stores */
#define PMEM_F_MEM_WB (1U << 4)          /* hint: write-back stores */
#define PMEM_F_MEM_NOFLUSH (1U << 5)     /* neither flush nor drain */

/* Every flag above; other bits are invalid. */
#define PMEM_F_MEM_VALID_FLAGS                                                 \
  (PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NONTEMPORAL | PMEM_F_MEM_TEMPORAL |         \
   PMEM_F_MEM_WC | PMEM_F_MEM_WB | PMEM_F_MEM_NOFLUSH)

/*
 * The general forms: copy, move or fill `len` bytes, making them durable as
 * `flags` (a combination of PMEM_F_MEM_* values, or 0) direct. Return
 * pmemdest.
 *
 * Differs from PMDK: a flag outside PMEM_F_MEM_VALID_FLAGS is rejected.
 * Nothing is written, errno is set to EINVAL, pmem_errormsg() says why, and
 * NULL is returned. (PMDK's release build ignores unknown bits and returns
 * pmemdest.) With valid flags the result is never NULL.
 */
void *pmem_memmove(void *pmemdest, const void *src, size_t len, unsigned flags);
void *pmem_memcpy(void *pmemdest, const void *src, size_t len, unsigned flags);
void *pmem_memset(void *pmemdest, int c, size_t len, unsigned flags);

/* ------------------------------------------------------------------------
 * Version and errors
 * ------------------------------------------------------------------------ */

/*
 * Returns NULL if this library provides API version
 * major_required.minor_required (same major, minor at least as high), or
 * else a message saying why not, such as
 * "libpmem major version mismatch (need 2, found 1)".
 *
 * The message is also this thread's last error (see pmem_errormsg()), and
 * the pointer has the same lifetime as pmem_errormsg()'s.
 */
const char *pmem_check_version(unsigned major_required,
                               unsigned minor_required);

/*
 * Returns a description of the last error reported by any function of this
 * library on the calling thread, or "" if there has been none. Never NULL.
 * Errors on other threads do not change it, and a successful call does not
 * clear it.
 *
 * Differs from PMDK (in what a program may rely on): the string is owned by
 * the library and stays valid and unchanged only until the next error on the
 * same thread (or the thread's exit); copy it to keep it longer.
 */
const char *pmem_errormsg(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBPMEM_H */
