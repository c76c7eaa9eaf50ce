/*
 * Exercises the whole libpmem.h 1.1 API through the C ABI of pmem-sys (served
 * by pmem-capi) and checks every result. Written against the standard
 * libpmem.h interface only, so it compiles unchanged with PMDK's header and
 * with pmem-sys's own.
 *
 * Usage: libpmem_api DIR
 *   DIR is an empty, writable directory for the test's files.
 *
 * Prints one line per failed check on stderr and exits with status 1 if any
 * check failed, 0 otherwise.
 *
 * Build-time switches (set by pmem-capi/tests/capi.rs):
 *   -DEXPECT_PMEM_SYS_HEADER  fail to compile unless pmem-sys's header is used
 *   -DEXPECT_SYSTEM_HEADER    fail to compile if pmem-sys's header is used
 *
 * Environment: with PMEM_IS_PMEM_FORCE=1 every non-empty range must be
 * reported as persistent memory, with PMEM_IS_PMEM_FORCE=0 none.
 */

#define _POSIX_C_SOURCE 200809L

#include <libpmem.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(EXPECT_PMEM_SYS_HEADER) && !defined(PMEM_SYS_LIBPMEM_H)
#error "expected pmem-sys's include/libpmem.h, but another libpmem.h was found first"
#endif
#if defined(EXPECT_SYSTEM_HEADER) && defined(PMEM_SYS_LIBPMEM_H)
#error "expected the system's libpmem.h, but pmem-sys's header was found first"
#endif

/* ---- the constants, checked at compile time ---------------------------- */

_Static_assert(PMEM_FILE_CREATE == 1, "PMEM_FILE_CREATE");
_Static_assert(PMEM_FILE_EXCL == 2, "PMEM_FILE_EXCL");
_Static_assert(PMEM_FILE_SPARSE == 4, "PMEM_FILE_SPARSE");
_Static_assert(PMEM_FILE_TMPFILE == 8, "PMEM_FILE_TMPFILE");
_Static_assert(PMEM_F_MEM_NODRAIN == 1, "PMEM_F_MEM_NODRAIN");
_Static_assert(PMEM_F_MEM_NONTEMPORAL == 2, "PMEM_F_MEM_NONTEMPORAL");
_Static_assert(PMEM_F_MEM_TEMPORAL == 4, "PMEM_F_MEM_TEMPORAL");
_Static_assert(PMEM_F_MEM_WC == 8, "PMEM_F_MEM_WC");
_Static_assert(PMEM_F_MEM_WB == 16, "PMEM_F_MEM_WB");
_Static_assert(PMEM_F_MEM_NOFLUSH == 32, "PMEM_F_MEM_NOFLUSH");
_Static_assert(PMEM_F_MEM_VALID_FLAGS == 63, "PMEM_F_MEM_VALID_FLAGS");
_Static_assert(_Generic(PMEM_F_MEM_VALID_FLAGS, unsigned: 1, default: 0),
               "copy flags are unsigned");
_Static_assert(_Generic(PMEM_FILE_CREATE, int: 1, default: 0),
               "map flags are int");
_Static_assert(PMEM_MAJOR_VERSION == 1, "PMEM_MAJOR_VERSION");
_Static_assert(PMEM_MINOR_VERSION == 1, "PMEM_MINOR_VERSION");
_Static_assert(PMEM_MIN_PART == 2 * 1024 * 1024, "PMEM_MIN_PART");
_Static_assert(_Generic(PMEM_MIN_PART, size_t: 1, default: 0),
               "PMEM_MIN_PART is a size_t");

/* The prototypes, checked by assigning each function to a pointer of the
 * standard type: a mismatch is a compile error (with -Werror). */
static void *(*const p_map_file)(const char *, size_t, int, mode_t, size_t *,
                                 int *) = pmem_map_file;
static int (*const p_unmap)(void *, size_t) = pmem_unmap;
static int (*const p_is_pmem)(const void *, size_t) = pmem_is_pmem;
static void (*const p_persist)(const void *, size_t) = pmem_persist;
static int (*const p_msync)(const void *, size_t) = pmem_msync;
static int (*const p_has_auto_flush)(void) = pmem_has_auto_flush;
static void (*const p_flush)(const void *, size_t) = pmem_flush;
static void (*const p_deep_flush)(const void *, size_t) = pmem_deep_flush;
static int (*const p_deep_drain)(const void *, size_t) = pmem_deep_drain;
static int (*const p_deep_persist)(const void *, size_t) = pmem_deep_persist;
static void (*const p_drain)(void) = pmem_drain;
static int (*const p_has_hw_drain)(void) = pmem_has_hw_drain;
static void *(*const p_memmove_persist)(void *, const void *, size_t) =
    pmem_memmove_persist;
static void *(*const p_memcpy_persist)(void *, const void *, size_t) =
    pmem_memcpy_persist;
static void *(*const p_memset_persist)(void *, int, size_t) =
    pmem_memset_persist;
static void *(*const p_memmove_nodrain)(void *, const void *, size_t) =
    pmem_memmove_nodrain;
static void *(*const p_memcpy_nodrain)(void *, const void *, size_t) =
    pmem_memcpy_nodrain;
static void *(*const p_memset_nodrain)(void *, int, size_t) =
    pmem_memset_nodrain;
static void *(*const p_memmove)(void *, const void *, size_t, unsigned) =
    pmem_memmove;
static void *(*const p_memcpy)(void *, const void *, size_t, unsigned) =
    pmem_memcpy;
static void *(*const p_memset)(void *, int, size_t, unsigned) = pmem_memset;
static const char *(*const p_check_version)(unsigned, unsigned) =
    pmem_check_version;
static const char *(*const p_errormsg)(void) = pmem_errormsg;

/* ---- reporting ---------------------------------------------------------- */

static int failures;
static int checks;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, " [errno %d (%s), pmem_errormsg \"%s\"]\n", errno,       \
              strerror(errno), pmem_errormsg());                               \
    }                                                                          \
  } while (0)

/* Like CHECK, but returns from the calling function on failure, for checks
 * whose failure would make the rest of the function meaningless. */
#define REQUIRE(cond, ...)                                                     \
  do {                                                                         \
    int ok_ = (cond);                                                          \
    CHECK(ok_, __VA_ARGS__);                                                   \
    if (!ok_)                                                                  \
      return;                                                                  \
  } while (0)

static const char *dir;
static int forced = -1; /* PMEM_IS_PMEM_FORCE: -1 unset/other, 0, 1 */

static char *path_in_dir(const char *name) {
  size_t len = strlen(dir) + 1 + strlen(name) + 1;
  char *path = malloc(len);
  if (path == NULL) {
    perror("malloc");
    exit(2);
  }
  snprintf(path, len, "%s/%s", dir, name);
  return path;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static long long file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return -1;
  return (long long)st.st_size;
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0) {
    perror(path);
    exit(2);
  }
}

/* A reproducible byte pattern, different for each seed. */
static void fill_pattern(unsigned char *buf, size_t len, unsigned seed) {
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (unsigned char)x;
  }
}

/* Index of the first differing byte of a and b, or -1 if equal. */
static long first_difference(const unsigned char *a, const unsigned char *b,
                             size_t len) {
  for (size_t i = 0; i < len; i++)
    if (a[i] != b[i])
      return (long)i;
  return -1;
}

/* ---- version ------------------------------------------------------------ */

static void test_check_version(void) {
  CHECK(pmem_check_version(PMEM_MAJOR_VERSION, PMEM_MINOR_VERSION) == NULL,
        "the header's own version is accepted");
  CHECK(pmem_check_version(1, 0) == NULL, "1.0 is provided by 1.1");
  CHECK(pmem_check_version(1, 1) == NULL, "1.1 is provided");

  const char *msg = pmem_check_version(2, 0);
  REQUIRE(msg != NULL, "2.0 must be refused");
  CHECK(strcmp(msg, "libpmem major version mismatch (need 2, found 1)") == 0,
        "message for 2.0: \"%s\"", msg);
  CHECK(strcmp(pmem_errormsg(), msg) == 0,
        "the version message is also the last error: \"%s\"", pmem_errormsg());

  msg = pmem_check_version(1, 2);
  REQUIRE(msg != NULL, "1.2 must be refused");
  CHECK(strcmp(msg, "libpmem minor version mismatch (need 2, found 1)") == 0,
        "message for 1.2: \"%s\"", msg);

  msg = pmem_check_version(0, 9);
  REQUIRE(msg != NULL, "0.9 must be refused");
  CHECK(strcmp(msg, "libpmem major version mismatch (need 0, found 1)") == 0,
        "message for 0.9: \"%s\"", msg);
}

/* ---- pmem_map_file failures -------------------------------------------- */

/* Calls pmem_map_file expecting failure with `want_errno`; checks that the
 * out-parameters are untouched and an error message is set. */
static void expect_map_failure(const char *what, const char *path, size_t len,
                               int flags, int want_errno) {
  size_t mapped_len = (size_t)0xdeadbeef;
  int is_pmem = 0x5a5a;
  errno = 0;
  void *addr = pmem_map_file(path, len, flags, 0644, &mapped_len, &is_pmem);
  int err = errno;
  CHECK(addr == NULL, "%s: must fail, got %p", what, addr);
  if (addr != NULL) {
    pmem_unmap(addr, mapped_len);
    return;
  }
  CHECK(err == want_errno, "%s: errno %d (%s), want %d (%s)", what, err,
        strerror(err), want_errno, strerror(want_errno));
  CHECK(mapped_len == (size_t)0xdeadbeef, "%s: *mapped_lenp changed to %zu",
        what, mapped_len);
  CHECK(is_pmem == 0x5a5a, "%s: *is_pmemp changed to %d", what, is_pmem);
  CHECK(pmem_errormsg() != NULL && pmem_errormsg()[0] != '\0',
        "%s: pmem_errormsg is empty after the failure", what);
}

static void test_map_file_errors(void) {
  char *missing = path_in_dir("missing");
  char *existing = path_in_dir("existing");
  char *empty = path_in_dir("empty");
  static const char content[] = "existing file content, 37 bytes long";
  write_file(existing, content, sizeof content);
  write_file(empty, "", 0);

  /* The path is named in the message of an open failure. */
  expect_map_failure("missing file", missing, 0, 0, ENOENT);
  CHECK(strstr(pmem_errormsg(), missing) != NULL,
        "the message names the missing path %s: \"%s\"", missing,
        pmem_errormsg());
  CHECK(!file_exists(missing), "a failed open must not create %s", missing);

  expect_map_failure("NULL path", NULL, 0, 0, EINVAL);
  expect_map_failure("unknown flag 16", existing, 0, 16, EINVAL);
  expect_map_failure("unknown flag 16 with CREATE", missing, 4096,
                     PMEM_FILE_CREATE | 16, EINVAL);
  CHECK(!file_exists(missing), "CREATE|16 must not create %s", missing);
  expect_map_failure("unknown flag 1<<20", existing, 0, 1 << 20, EINVAL);
  expect_map_failure("len without CREATE", existing, 4096, 0, EINVAL);
  expect_map_failure("len without CREATE, missing file", missing, 4096, 0,
                     EINVAL);
  expect_map_failure("CREATE with len 0", missing, 0, PMEM_FILE_CREATE, EINVAL);
  CHECK(!file_exists(missing), "CREATE with len 0 must not create %s",
        missing);
  expect_map_failure("TMPFILE without CREATE", dir, 0, PMEM_FILE_TMPFILE,
                     EINVAL);
  expect_map_failure("CREATE with len > OFF_MAX", missing, SIZE_MAX - 4095,
                     PMEM_FILE_CREATE, EINVAL);
  expect_map_failure("empty file without CREATE", empty, 0, 0, EINVAL);
  expect_map_failure("directory without CREATE", dir, 0, 0, EISDIR);

  expect_map_failure("EXCL on an existing file", existing, 4096,
                     PMEM_FILE_CREATE | PMEM_FILE_EXCL, EEXIST);
  CHECK(strstr(pmem_errormsg(), existing) != NULL,
        "the message names %s: \"%s\"", existing, pmem_errormsg());
  CHECK(file_size(existing) == (long long)sizeof content,
        "a failed CREATE|EXCL must leave the existing file alone (size %lld)",
        file_size(existing));

  free(missing);
  free(existing);
  free(empty);
}

/* ---- pmem_map_file successes ------------------------------------------- */

/* Whether pmem_is_pmem(addr, len) agrees with PMEM_IS_PMEM_FORCE. */
static void check_is_pmem_forced(const char *what, const void *addr,
                                 size_t len) {
  int got = pmem_is_pmem(addr, len);
  CHECK(got == 0 || got == 1, "%s: pmem_is_pmem returned %d", what, got);
  if (forced == 1)
    CHECK(got == 1, "%s: PMEM_IS_PMEM_FORCE=1 but pmem_is_pmem is %d", what,
          got);
  if (forced == 0)
    CHECK(got == 0, "%s: PMEM_IS_PMEM_FORCE=0 but pmem_is_pmem is %d", what,
          got);
}

static void test_map_file_success(void) {
  char *path = path_in_dir("pool");
  const size_t len = (1 << 20) + 100; /* not a multiple of the page size */
  size_t mapped_len = 0;
  int is_pmem = -7;

  mode_t old_umask = umask(022);
  char *addr = pmem_map_file(path, len, PMEM_FILE_CREATE, 0640, &mapped_len,
                             &is_pmem);
  umask(old_umask);
  REQUIRE(addr != NULL, "create %s", path);
  CHECK((uintptr_t)addr % (uintptr_t)sysconf(_SC_PAGESIZE) == 0,
        "mapping %p is page-aligned", (void *)addr);
  CHECK(mapped_len == len, "mapped_len %zu, want %zu (not rounded)",
        mapped_len, len);
  CHECK(is_pmem == pmem_is_pmem(addr, len),
        "is_pmem out-param %d agrees with pmem_is_pmem", is_pmem);
  check_is_pmem_forced("new mapping", addr, len);
  CHECK(pmem_is_pmem(addr, 0) == 0, "a zero-length range is never pmem");
  CHECK(file_size(path) == (long long)len, "file size %lld, want %zu",
        file_size(path), len);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640,
        "created with mode 0640, got %o", (unsigned)(st.st_mode & 0777));

  /* Stores through the mapping reach the file. */
  static const char hello[] = "hello from the C ABI";
  CHECK(pmem_memcpy_persist(addr + 4096, hello, sizeof hello) == addr + 4096,
        "memcpy_persist returns its destination");
  CHECK(pmem_msync(addr + 4096, sizeof hello) == 0, "msync");
  char back[sizeof hello];
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0 && pread(fd, back, sizeof back, 4096) == (ssize_t)sizeof back &&
            memcmp(back, hello, sizeof hello) == 0,
        "read(2) sees the stored bytes");
  if (fd >= 0)
    close(fd);
  addr[len - 1] = 'z'; /* the last byte of the mapping is writable */

  CHECK(pmem_unmap(addr, len) == 0, "unmap %zu bytes", len);

  /* Reopen: the whole file is mapped, with the data written before. */
  mapped_len = 0;
  is_pmem = -7;
  addr = pmem_map_file(path, 0, 0, 0, &mapped_len, &is_pmem);
  REQUIRE(addr != NULL, "reopen %s", path);
  CHECK(mapped_len == len, "reopened mapped_len %zu, want %zu", mapped_len,
        len);
  CHECK(is_pmem == pmem_is_pmem(addr, len), "reopened is_pmem %d", is_pmem);
  check_is_pmem_forced("reopened mapping", addr, len);
  CHECK(memcmp(addr + 4096, hello, sizeof hello) == 0 && addr[len - 1] == 'z',
        "reopened mapping shows the earlier stores");
  CHECK(pmem_unmap(addr, len) == 0, "unmap reopened");

  /* NULL out-parameters are allowed; EXCL and SPARSE without CREATE are
   * ignored. */
  addr = pmem_map_file(path, 0, PMEM_FILE_EXCL | PMEM_FILE_SPARSE, 0, NULL,
                       NULL);
  CHECK(addr != NULL, "open with NULL out-params, EXCL|SPARSE ignored");
  if (addr != NULL)
    CHECK(pmem_unmap(addr, len) == 0, "unmap");

  /* CREATE on an existing file resizes it (here: shrinks). */
  addr = pmem_map_file(path, 8192, PMEM_FILE_CREATE, 0640, &mapped_len, NULL);
  CHECK(addr != NULL && mapped_len == 8192 && file_size(path) == 8192,
        "CREATE resizes the existing file to 8192 (size %lld)",
        file_size(path));
  if (addr != NULL) {
    CHECK(memcmp(addr + 4096, hello, sizeof hello) == 0,
          "shrinking keeps the head of the file");
    CHECK(pmem_unmap(addr, 8192) == 0, "unmap");
  }

  /* CREATE|EXCL on a new file, and SPARSE. */
  char *fresh = path_in_dir("fresh");
  addr = pmem_map_file(fresh, 3 << 20, PMEM_FILE_CREATE | PMEM_FILE_EXCL |
                                           PMEM_FILE_SPARSE,
                       0600, &mapped_len, &is_pmem);
  CHECK(addr != NULL && mapped_len == (size_t)3 << 20,
        "CREATE|EXCL|SPARSE on a new file");
  if (addr != NULL) {
    check_is_pmem_forced("sparse mapping", addr, mapped_len);
    CHECK(addr[0] == 0 && addr[mapped_len - 1] == 0, "a new file reads as 0");
    CHECK(pmem_unmap(addr, mapped_len) == 0, "unmap");
  }
  CHECK(file_size(fresh) == 3 << 20, "fresh file size %lld", file_size(fresh));

  /* TMPFILE: an unnamed file in the directory. */
  addr = pmem_map_file(dir, 1 << 16, PMEM_FILE_CREATE | PMEM_FILE_TMPFILE,
                       0600, &mapped_len, &is_pmem);
  CHECK(addr != NULL && mapped_len == 1 << 16, "CREATE|TMPFILE in %s", dir);
  if (addr != NULL) {
    CHECK(is_pmem == pmem_is_pmem(addr, mapped_len), "tmpfile is_pmem");
    pmem_memset_persist(addr, 0xab, mapped_len);
    CHECK(addr[0] == (char)0xab && addr[mapped_len - 1] == (char)0xab,
          "tmpfile mapping is writable");
    CHECK(pmem_unmap(addr, mapped_len) == 0, "unmap");
  }

  free(fresh);
  free(path);
}

/* ---- unmap, is_pmem, flush and friends --------------------------------- */

static void test_unmap_and_flushes(void) {
  char *path = path_in_dir("flushes");
  size_t len = 2 << 20;
  size_t mapped_len = 0;
  char *addr =
      pmem_map_file(path, len, PMEM_FILE_CREATE, 0600, &mapped_len, NULL);
  REQUIRE(addr != NULL, "create %s", path);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);

  errno = 0;
  CHECK(pmem_unmap(addr, 0) == -1 && errno == EINVAL,
        "unmap with len 0: -1/EINVAL");
  errno = 0;
  CHECK(pmem_unmap(addr + 1, page) == -1 && errno == EINVAL,
        "unmap of an unaligned address: -1/EINVAL");
  CHECK(pmem_is_pmem(addr, 0) == 0, "is_pmem(len 0) == 0");
  check_is_pmem_forced("mapping", addr, len);
  check_is_pmem_forced("part of the mapping", addr + 100, 1000);

  /* Flushes and fences keep the data and report success. */
  fill_pattern((unsigned char *)addr, len, 7);
  unsigned char *copy = malloc(len);
  REQUIRE(copy != NULL, "malloc");
  memcpy(copy, addr, len);
  pmem_flush(addr, len);
  pmem_flush(addr + 3, 1);
  pmem_drain();
  pmem_persist(addr, len);
  pmem_persist(addr + 65, 130);
  pmem_persist(addr, 0);
  pmem_deep_flush(addr, len);
  pmem_deep_flush(addr + 1, 63);
  CHECK(pmem_msync(addr, len) == 0, "msync of the whole mapping");
  CHECK(pmem_msync(addr + 100, 10) == 0, "msync of an unaligned range");
  CHECK(pmem_msync(addr + len - 1, 1) == 0, "msync of the last byte");
  CHECK(pmem_deep_drain(addr, len) == 0, "deep_drain");
  CHECK(pmem_deep_drain(addr + 5, 0) == 0, "deep_drain of nothing");
  CHECK(pmem_deep_persist(addr, len) == 0, "deep_persist");
  CHECK(pmem_deep_persist(addr + 4097, 3) == 0, "deep_persist, unaligned");
  CHECK(memcmp(copy, addr, len) == 0, "flushing must not change the data");

  CHECK(pmem_has_hw_drain() == 0, "has_hw_drain is 0");
  int auto_flush = pmem_has_auto_flush();
  CHECK(auto_flush == -1 || auto_flush == 0 || auto_flush == 1,
        "has_auto_flush is -1, 0 or 1: %d", auto_flush);

  /* Unmapping part of the mapping, then the rest. */
  CHECK(pmem_unmap(addr + len - page, page) == 0, "unmap the last page");
  CHECK(pmem_unmap(addr, len - page) == 0, "unmap the rest");

  /* The range is gone: msync and deep_drain report msync's ENOMEM. */
  errno = 0;
  CHECK(pmem_msync(addr, page) == -1 && errno == ENOMEM,
        "msync of an unmapped range: -1/ENOMEM");
  errno = 0;
  CHECK(pmem_deep_drain(addr, page) == -1 && errno == ENOMEM,
        "deep_drain of an unmapped range: -1/ENOMEM");

  /* Ordinary memory. */
  char on_stack[256];
  CHECK(pmem_is_pmem(on_stack, 0) == 0, "is_pmem(stack, 0) == 0");
  if (forced != 1)
    CHECK(pmem_is_pmem(on_stack, sizeof on_stack) == 0,
          "stack memory is not pmem");
  check_is_pmem_forced("stack", on_stack, sizeof on_stack);

  free(copy);
  free(path);
}

/* ---- persistent copies -------------------------------------------------- */

#define REGION (96 * 1024)

static const unsigned flag_sets_extra[] = {
    PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NONTEMPORAL,
    PMEM_F_MEM_WC | PMEM_F_MEM_NODRAIN,
    PMEM_F_MEM_VALID_FLAGS,
};

static const size_t lengths[] = {0,   1,   2,   3,    4,    7,    8,   9,
                                 15,  16,  31,  32,   33,   63,   64,  65,
                                 127, 128, 255, 256,  257,  511,  512, 1000,
                                 4095, 4096, 4097, 8192 + 24, 40000};

static const size_t offsets[] = {0, 1, 8, 13, 63, 64};

enum op { OP_MEMCPY, OP_MEMMOVE, OP_MEMSET };
enum form { FORM_FLAGS, FORM_PERSIST, FORM_NODRAIN };

struct region {
  unsigned char *pmem;   /* in the mapping */
  unsigned char *shadow; /* heap copy, updated with libc */
};

/* Applies one operation to the region and to its shadow, and compares. */
static void run_op(struct region *r, enum op op, enum form form, size_t dst_off,
                   size_t src_off, size_t len, unsigned flags, int c) {
  unsigned char *dst = r->pmem + dst_off;
  const unsigned char *src = r->pmem + src_off;
  void *ret = NULL;
  switch (op) {
  case OP_MEMCPY:
    /* pmem_memcpy is defined for overlap too, but libc's is not: the
     * callers pass disjoint ranges. */
    ret = form == FORM_FLAGS     ? pmem_memcpy(dst, src, len, flags)
          : form == FORM_PERSIST ? pmem_memcpy_persist(dst, src, len)
                                 : pmem_memcpy_nodrain(dst, src, len);
    memcpy(r->shadow + dst_off, r->shadow + src_off, len);
    break;
  case OP_MEMMOVE:
    ret = form == FORM_FLAGS     ? pmem_memmove(dst, src, len, flags)
          : form == FORM_PERSIST ? pmem_memmove_persist(dst, src, len)
                                 : pmem_memmove_nodrain(dst, src, len);
    memmove(r->shadow + dst_off, r->shadow + src_off, len);
    break;
  case OP_MEMSET:
    ret = form == FORM_FLAGS     ? pmem_memset(dst, c, len, flags)
          : form == FORM_PERSIST ? pmem_memset_persist(dst, c, len)
                                 : pmem_memset_nodrain(dst, c, len);
    memset(r->shadow + dst_off, c, len);
    break;
  }
  if (form == FORM_NODRAIN || (form == FORM_FLAGS && (flags & 1)))
    pmem_drain();

  static const char *const op_names[] = {"memcpy", "memmove", "memset"};
  static const char *const form_names[] = {"", "_persist", "_nodrain"};
  CHECK(ret == dst, "pmem_%s%s(dst+%zu, src+%zu, len %zu, flags %#x): returned "
                    "%p, want %p",
        op_names[op], form_names[form], dst_off, src_off, len, flags, ret,
        (void *)dst);

  /* Compare a window around the written range: the bytes just outside it
   * must be untouched too. */
  size_t lo = dst_off > 256 ? dst_off - 256 : 0;
  size_t hi = dst_off + len + 256 < REGION ? dst_off + len + 256 : REGION;
  long diff = first_difference(r->pmem + lo, r->shadow + lo, hi - lo);
  CHECK(diff < 0,
        "pmem_%s%s(dst+%zu, src+%zu, len %zu, flags %#x, c %#x): byte at "
        "dst%+ld is %#x, libc gives %#x",
        op_names[op], form_names[form], dst_off, src_off, len, flags,
        (unsigned)c, (long)(lo + (size_t)diff) - (long)dst_off,
        diff < 0 ? 0u : r->pmem[lo + (size_t)diff],
        diff < 0 ? 0u : r->shadow[lo + (size_t)diff]);
  if (diff >= 0) /* resynchronise, so that one failure is reported once */
    memcpy(r->pmem, r->shadow, REGION);
}

static void test_copies(void) {
  char *path = path_in_dir("copies");
  size_t mapped_len = 0;
  unsigned char *addr =
      pmem_map_file(path, REGION, PMEM_FILE_CREATE, 0600, &mapped_len, NULL);
  REQUIRE(addr != NULL, "create %s", path);
  struct region r = {addr, malloc(REGION)};
  REQUIRE(r.shadow != NULL, "malloc");
  fill_pattern(r.shadow, REGION, 1);
  memcpy(r.pmem, r.shadow, REGION);

  const size_t half = REGION / 2;
  unsigned seed = 2;
  for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
    size_t len = lengths[li];
    for (size_t oi = 0; oi < sizeof offsets / sizeof offsets[0]; oi++) {
      size_t doff = offsets[oi];
      size_t soff = offsets[(oi + 2) % (sizeof offsets / sizeof offsets[0])];
      /* Fresh source bytes, so that every copy changes the destination. */
      fill_pattern(r.shadow + half, half, seed++);
      memcpy(r.pmem + half, r.shadow + half, half);

      /* Every valid flag combination, for each operation. */
      for (unsigned flags = 0; flags <= PMEM_F_MEM_VALID_FLAGS; flags++) {
        run_op(&r, OP_MEMCPY, FORM_FLAGS, doff, half + soff, len, flags, 0);
        run_op(&r, OP_MEMMOVE, FORM_FLAGS, doff + 7, half + soff, len, flags,
               0);
        run_op(&r, OP_MEMSET, FORM_FLAGS, doff, 0, len, flags,
               (int)(flags * 37 + 1));
      }
      /* Overlapping moves, both ways, with a few distances. */
      static const size_t shifts[] = {1, 8, 63, 64, 100, 4096};
      for (size_t si = 0; si < sizeof shifts / sizeof shifts[0]; si++) {
        size_t base = 300 + doff;
        size_t s = shifts[si];
        for (size_t fi = 0; fi < 3; fi++) {
          unsigned flags = flag_sets_extra[fi];
          run_op(&r, OP_MEMMOVE, FORM_FLAGS, base + s, base, len, flags, 0);
          run_op(&r, OP_MEMMOVE, FORM_FLAGS, base, base + s, len, flags, 0);
        }
        run_op(&r, OP_MEMMOVE, FORM_PERSIST, base + s, base, len, 0, 0);
        run_op(&r, OP_MEMMOVE, FORM_NODRAIN, base, base + s, len, 0, 0);
        /* pmem_memcpy is overlap-safe as well; compare with memmove. */
        void *ret = pmem_memcpy(r.pmem + base + s, r.pmem + base, len, 0);
        memmove(r.shadow + base + s, r.shadow + base, len);
        CHECK(ret == r.pmem + base + s, "overlapping memcpy returns dest");
        CHECK(memcmp(r.pmem, r.shadow, REGION) == 0,
              "overlapping pmem_memcpy (shift %zu, len %zu) acts as memmove",
              s, len);
        memcpy(r.pmem, r.shadow, REGION);
      }
      /* The fixed-flag forms. */
      run_op(&r, OP_MEMCPY, FORM_PERSIST, doff, half + soff, len, 0, 0);
      run_op(&r, OP_MEMCPY, FORM_NODRAIN, doff + 3, half + soff, len, 0, 0);
      run_op(&r, OP_MEMMOVE, FORM_PERSIST, doff, half + soff + 1, len, 0, 0);
      run_op(&r, OP_MEMMOVE, FORM_NODRAIN, doff + 9, half + soff, len, 0, 0);
      /* memset converts c to unsigned char, as libc does. */
      run_op(&r, OP_MEMSET, FORM_PERSIST, doff, 0, len, 0, -1);
      run_op(&r, OP_MEMSET, FORM_NODRAIN, doff + 5, 0, len, 0, 0x1c3);
      run_op(&r, OP_MEMSET, FORM_FLAGS, doff + 2, 0, len, 0, -200);
    }
  }
  CHECK(memcmp(r.pmem, r.shadow, REGION) == 0,
        "the whole region matches libc's results");

  CHECK(pmem_unmap(addr, REGION) == 0, "unmap");
  free(r.shadow);
  free(path);
}

/* Unknown copy flags: NULL, EINVAL, nothing written (pmem-sys's rule). */
static void test_unknown_copy_flags(void) {
  unsigned char dst[512], src[512], before[512];
  fill_pattern(dst, sizeof dst, 40);
  fill_pattern(src, sizeof src, 41);
  memcpy(before, dst, sizeof dst);
  static const unsigned bad[] = {64, 64 | PMEM_F_MEM_NODRAIN, 128, 1U << 31,
                                 ~PMEM_F_MEM_VALID_FLAGS, ~0U};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    unsigned flags = bad[i];
    errno = 0;
    void *ret = pmem_memcpy(dst, src, sizeof dst, flags);
    CHECK(ret == NULL && errno == EINVAL,
          "memcpy with flags %#x: NULL/EINVAL, got %p", flags, ret);
    CHECK(pmem_errormsg()[0] != '\0', "memcpy with flags %#x sets a message",
          flags);
    errno = 0;
    ret = pmem_memmove(dst + 1, dst, 100, flags);
    CHECK(ret == NULL && errno == EINVAL,
          "memmove with flags %#x: NULL/EINVAL, got %p", flags, ret);
    errno = 0;
    ret = pmem_memset(dst, 0x77, sizeof dst, flags);
    CHECK(ret == NULL && errno == EINVAL,
          "memset with flags %#x: NULL/EINVAL, got %p", flags, ret);
    CHECK(memcmp(dst, before, sizeof dst) == 0,
          "nothing written with flags %#x (first difference at %ld)", flags,
          first_difference(dst, before, sizeof dst));
  }
  /* Valid flags still work on ordinary memory afterwards. */
  CHECK(pmem_memcpy(dst, src, sizeof dst, PMEM_F_MEM_VALID_FLAGS) == dst &&
            memcmp(dst, src, sizeof dst) == 0,
        "memcpy with every valid flag");
}

/* ---- per-thread error messages ------------------------------------------ */

#define THREADS 8
#define ROUNDS 50

struct thread_arg {
  int index;
  int failures; /* this thread's failed checks */
  char detail[512];
};

static void *thread_main(void *p) {
  struct thread_arg *arg = p;
  char name[64];
  snprintf(name, sizeof name, "missing-in-thread-%d", arg->index);
  char *path = path_in_dir(name);

  const char *initial = pmem_errormsg();
  if (initial == NULL || initial[0] != '\0') {
    arg->failures++;
    snprintf(arg->detail, sizeof arg->detail,
             "a new thread's errormsg is \"%s\", want \"\"",
             initial ? initial : "(NULL)");
  }
  for (int round = 0; round < ROUNDS; round++) {
    errno = 0;
    void *addr = pmem_map_file(path, 0, 0, 0, NULL, NULL);
    int err = errno;
    const char *msg = pmem_errormsg();
    if (addr != NULL || err != ENOENT || msg == NULL ||
        strstr(msg, path) == NULL) {
      arg->failures++;
      snprintf(arg->detail, sizeof arg->detail,
               "thread %d round %d: addr %p errno %d message \"%s\", want "
               "NULL/ENOENT and a message naming %s",
               arg->index, round, addr, err, msg ? msg : "(NULL)", path);
    }
    /* An error of another kind, to interleave different messages. */
    void *ret = pmem_memset(name, 0, 1, 64);
    if (ret != NULL) {
      arg->failures++;
      snprintf(arg->detail, sizeof arg->detail,
               "thread %d round %d: pmem_memset with flag 64 returned %p, "
               "want NULL",
               arg->index, round, ret);
    }
  }
  free(path);
  return NULL;
}

static void test_errormsg_per_thread(void) {
  char *mine = path_in_dir("missing-in-main");
  CHECK(pmem_map_file(mine, 0, 0, 0, NULL, NULL) == NULL && errno == ENOENT,
        "open %s fails with ENOENT", mine);
  const char *msg = pmem_errormsg();
  REQUIRE(msg != NULL && strstr(msg, mine) != NULL,
          "message names %s: \"%s\"", mine, msg ? msg : "(NULL)");
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", msg);

  pthread_t threads[THREADS];
  struct thread_arg args[THREADS];
  int started = 0;
  for (int i = 0; i < THREADS; i++) {
    args[i].index = i;
    args[i].failures = 0;
    args[i].detail[0] = '\0';
    if (pthread_create(&threads[i], NULL, thread_main, &args[i]) != 0)
      break;
    started++;
  }
  CHECK(started == THREADS, "started %d of %d threads", started, THREADS);
  for (int i = 0; i < started; i++) {
    pthread_join(threads[i], NULL);
    CHECK(args[i].failures == 0, "thread %d: %d failures, last: %s", i,
          args[i].failures, args[i].detail);
  }

  /* Other threads' errors changed neither our message nor the string our
   * pointer refers to (no error happened on this thread meanwhile). */
  CHECK(strcmp(pmem_errormsg(), saved) == 0,
        "after other threads' errors, ours is still \"%s\", got \"%s\"", saved,
        pmem_errormsg());
  CHECK(strcmp(msg, saved) == 0,
        "the earlier pmem_errormsg pointer still reads \"%s\", got \"%s\"",
        saved, msg);
  /* A successful call does not clear the message. */
  CHECK(pmem_check_version(1, 1) == NULL, "1.1 is provided");
  CHECK(strcmp(pmem_errormsg(), saved) == 0,
        "a successful call leaves the message: \"%s\"", pmem_errormsg());
  free(mine);
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  const char *force = getenv("PMEM_IS_PMEM_FORCE");
  if (force != NULL && strcmp(force, "1") == 0)
    forced = 1;
  else if (force != NULL && strcmp(force, "0") == 0)
    forced = 0;

  /* Every function is reachable through a pointer of the standard type. */
  CHECK(p_map_file && p_unmap && p_is_pmem && p_persist && p_msync &&
            p_has_auto_flush && p_flush && p_deep_flush && p_deep_drain &&
            p_deep_persist && p_drain && p_has_hw_drain &&
            p_memmove_persist && p_memcpy_persist && p_memset_persist &&
            p_memmove_nodrain && p_memcpy_nodrain && p_memset_nodrain &&
            p_memmove && p_memcpy && p_memset && p_check_version &&
            p_errormsg,
        "function pointers");
  CHECK(pmem_errormsg() != NULL && pmem_errormsg()[0] == '\0',
        "no error yet: pmem_errormsg is \"\"");

  test_check_version();
  test_map_file_errors();
  test_map_file_success();
  test_unmap_and_flushes();
  test_copies();
  test_unknown_copy_flags();
  test_errormsg_per_thread();

  printf("libpmem_api: %d checks, %d failed (PMEM_IS_PMEM_FORCE=%s, "
         "PMEM_NO_MOVNT=%s)\n",
         checks, failures, force ? force : "unset",
         getenv("PMEM_NO_MOVNT") ? getenv("PMEM_NO_MOVNT") : "unset");
  return failures == 0 ? 0 : 1;
}
